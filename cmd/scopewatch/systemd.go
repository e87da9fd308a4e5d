package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"strconv"
	"time"

	"golang.org/x/sys/unix"
)

// systemd speaks the service manager's notification protocol
// (sd_notify(3)): one datagram of newline-separated assignments to the
// unix socket named by $NOTIFY_SOCKET. Outside systemd (no NOTIFY_SOCKET)
// every method does nothing, so the daemon runs the same under any
// supervisor.
type systemd struct {
	addr *net.UnixAddr
	// watchdog is how often systemd expects WATCHDOG=1 ($WATCHDOG_USEC),
	// zero when the unit has no WatchdogSec.
	watchdog time.Duration
}

// systemdFromEnv reads the notification socket and the watchdog interval
// from the environment systemd gives a Type=notify service, and removes
// them from it so that no child process inherits them.
func systemdFromEnv() (*systemd, error) {
	s := &systemd{}
	if sock := os.Getenv("NOTIFY_SOCKET"); sock != "" {
		if sock[0] != '/' && sock[0] != '@' {
			return nil, fmt.Errorf("NOTIFY_SOCKET=%q: want an absolute path or an abstract socket (@name)", sock)
		}
		s.addr = &net.UnixAddr{Name: sock, Net: "unixgram"}
	}
	if usec := os.Getenv("WATCHDOG_USEC"); usec != "" {
		// WATCHDOG_PID, when set, names the process meant to ping; a
		// variable inherited from a parent is not ours.
		if pid := os.Getenv("WATCHDOG_PID"); pid == "" || pid == strconv.Itoa(os.Getpid()) {
			n, err := strconv.ParseUint(usec, 10, 63)
			if err != nil || n == 0 {
				return nil, fmt.Errorf("WATCHDOG_USEC=%q: want a positive number of microseconds", usec)
			}
			s.watchdog = time.Duration(n) * time.Microsecond
		}
	}
	for _, k := range []string{"NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID"} {
		os.Unsetenv(k)
	}
	return s, nil
}

// enabled reports whether systemd listens for notifications.
func (s *systemd) enabled() bool { return s != nil && s.addr != nil }

// notify sends one state message, such as "READY=1". It does nothing
// outside systemd.
func (s *systemd) notify(state string) error {
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
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts); err != nil {
		return "RELOADING=1\nSTATUS=reloading the configuration"
	}
	usec := ts.Sec*1_000_000 + ts.Nsec/1_000
	return fmt.Sprintf("RELOADING=1\nMONOTONIC_USEC=%d\nSTATUS=reloading the configuration", usec)
}

// watchdogLoop pings systemd's watchdog from the pipeline's own progress:
// every half interval it asks the pipeline to prove it is alive (probe
// returns a channel that is closed once the engine has handled the
// request and every commit queued before it is durable) and sends
// WATCHDOG=1 only after that answer. A pipeline stuck in a detector, a
// parser or a commit stops the pings, and systemd restarts the service
// after WatchdogSec. It returns when ctx ends.
func (s *systemd) watchdogLoop(ctx context.Context, probe func(context.Context) <-chan struct{}, onErr func(error)) {
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
