package daemon

import (
	"context"
	"fmt"
	"net"
	"os"
	"time"

	sdnotify "github.com/coreos/go-systemd/v22/daemon"
)

// Systemd speaks the service manager's notification protocol
// (sd_notify(3)): one datagram of newline-separated assignments to the
// unix socket named by $NOTIFY_SOCKET. Outside systemd (no NOTIFY_SOCKET)
// every method does nothing, so the daemon runs the same under any
// supervisor.
//
// The watchdog settings and MONOTONIC_USEC come from go-systemd's daemon
// package. Its sender, sdnotify.SdNotify, is not used: it reads
// $NOTIFY_SOCKET at every call, so the variable would have to stay in the
// environment for the process's life (with unsetEnvironment, every message
// after the first silently goes nowhere), whereas sd_notify(3) advises
// unsetting it at start so that no child inherits it; and its errors do
// not name the socket. The sender below keeps the address read once.
type Systemd struct {
	addr *net.UnixAddr
	// watchdog is how often systemd expects WATCHDOG=1 ($WATCHDOG_USEC),
	// zero when the unit has no WatchdogSec.
	watchdog time.Duration
}

// SystemdFromEnv reads the notification socket and the watchdog interval
// from the environment systemd gives a Type=notify service, and removes
// them from it so that no child process inherits them.
func SystemdFromEnv() (*Systemd, error) {
	// The watchdog is zero when WATCHDOG_PID names another process: a
	// variable inherited from a parent is not ours. Both are unset.
	usec, pid := os.Getenv("WATCHDOG_USEC"), os.Getenv("WATCHDOG_PID")
	wd, wdErr := sdnotify.SdWatchdogEnabled(true)
	sock := os.Getenv("NOTIFY_SOCKET")
	os.Unsetenv("NOTIFY_SOCKET")
	if wdErr != nil {
		return nil, fmt.Errorf("WATCHDOG_USEC=%q WATCHDOG_PID=%q: want a positive number of microseconds and a pid: %w", usec, pid, wdErr)
	}
	s := &Systemd{watchdog: wd}
	if sock != "" {
		// Go's net package turns a leading @ into the NUL byte of an
		// abstract socket's name.
		if sock[0] != '/' && sock[0] != '@' {
			return nil, fmt.Errorf("NOTIFY_SOCKET=%q: want an absolute path or an abstract socket (@name)", sock)
		}
		s.addr = &net.UnixAddr{Name: sock, Net: "unixgram"}
	}
	return s, nil
}

// enabled reports whether systemd listens for notifications.
func (s *Systemd) enabled() bool { return s != nil && s.addr != nil }

// notify sends one state message, such as "READY=1". It does nothing
// outside systemd.
func (s *Systemd) notify(state string) error {
	if !s.enabled() {
		return nil
	}
	conn, err := net.DialUnix("unixgram", nil, s.addr)
	if err != nil {
		return fmt.Errorf("sd_notify %s: %w", s.addr.Name, err)
	}
	defer conn.Close()
	if _, err := conn.Write([]byte(state)); err != nil {
		return fmt.Errorf("sd_notify %s: %w", s.addr.Name, err)
	}
	return nil
}

// reloading is the RELOADING=1 message. MONOTONIC_USEC is what systemd
// 253 and later require with it (Type=notify-reload); older versions
// ignore it.
func reloading() string {
	return "RELOADING=1\n" + sdnotify.SdNotifyMonotonicUsec() + "STATUS=reloading the configuration"
}

// watchdogLoop pings systemd's watchdog from the daemon's own progress:
// every half interval it asks the engine to prove it is alive (probe
// returns a channel that is closed once the engine has handled the
// request and every commit queued before it is durable) and sends
// WATCHDOG=1 only after that answer. An engine stuck in a detector, a
// parser or a commit stops the pings, and systemd restarts the service
// after WatchdogSec. It returns when ctx ends.
func (s *Systemd) watchdogLoop(ctx context.Context, probe func(context.Context) <-chan struct{}, onErr func(error)) {
	if !s.enabled() || s.watchdog == 0 {
		return
	}
	tick := time.NewTicker(s.watchdog / 2)
	defer tick.Stop()
	for {
		alive := probe(ctx)
		select {
		case <-alive:
		case <-ctx.Done():
			return
		}
		if err := s.notify("WATCHDOG=1"); err != nil {
			onErr(err)
		}
		select {
		case <-tick.C:
		case <-ctx.Done():
			return
		}
	}
}
