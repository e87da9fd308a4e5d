package daemon

import (
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestSystemdFromEnv checks what the daemon takes from the environment
// systemd gives it, and that it leaves none of it for a child.
func TestSystemdFromEnv(t *testing.T) {
	self := strconv.Itoa(os.Getpid())
	tests := []struct {
		name              string
		socket, usec, pid string
		wantEnabled       bool
		wantWatchdog      time.Duration
		wantErr           string
	}{
		{"outside systemd", "", "", "", false, 0, ""},
		{"socket and watchdog", "/run/systemd/notify", "30000000", "", true, 30 * time.Second, ""},
		{"watchdog for this process", "/run/systemd/notify", "2000000", self, true, 2 * time.Second, ""},
		{"watchdog for another process", "/run/systemd/notify", "2000000", "1", true, 0, ""},
		{"abstract socket", "@/org/freedesktop/systemd1/notify", "", "", true, 0, ""},
		{"relative socket", "notify.sock", "", "", false, 0, `NOTIFY_SOCKET="notify.sock": want an absolute path`},
		{"bad watchdog", "/run/systemd/notify", "soon", "", false, 0, `WATCHDOG_USEC="soon"`},
		{"zero watchdog", "/run/systemd/notify", "0", "", false, 0, `WATCHDOG_USEC="0"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv("NOTIFY_SOCKET", tt.socket)
			t.Setenv("WATCHDOG_USEC", tt.usec)
			t.Setenv("WATCHDOG_PID", tt.pid)
			sd, err := SystemdFromEnv()
			for _, k := range []string{"NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID"} {
				if v, ok := os.LookupEnv(k); ok {
					t.Errorf("%s=%q left in the environment", k, v)
				}
			}
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if sd.enabled() != tt.wantEnabled || sd.watchdog != tt.wantWatchdog {
				t.Errorf("enabled %v, watchdog %v; want %v, %v", sd.enabled(), sd.watchdog, tt.wantEnabled, tt.wantWatchdog)
			}
		})
	}
}

// TestSystemdNotifyAbstractSocket sends to a notification socket in the
// abstract namespace, as systemd in a container may give one.
func TestSystemdNotifyAbstractSocket(t *testing.T) {
	name := fmt.Sprintf("@scopewatch-test-%d-%d", os.Getpid(), time.Now().UnixNano())
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: name, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	t.Setenv("NOTIFY_SOCKET", name)
	sd, err := SystemdFromEnv()
	if err != nil {
		t.Fatal(err)
	}
	if err := sd.notify(reloading()); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 512)
	n, err := conn.Read(buf)
	if err != nil {
		t.Fatal(err)
	}
	got := string(buf[:n])
	if !strings.HasPrefix(got, "RELOADING=1\nMONOTONIC_USEC=") || !strings.HasSuffix(got, "\nSTATUS=reloading the configuration") {
		t.Errorf("got %q", got)
	}
}
