package daemon

import (
	"context"
	"net"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/scopewatch/scopewatch/detect"
	"github.com/scopewatch/scopewatch/engine"
	"github.com/scopewatch/scopewatch/ingest"
	"github.com/scopewatch/scopewatch/rules"
	"github.com/scopewatch/scopewatch/store"
)

// TestWatchdogStopsWhenPipelineStalls checks that the watchdog is fed by
// the pipeline's progress, not by a timer: with a real engine whose
// commit hangs (a real bbolt file behind a gate, as a hung disk would
// hold it), no WATCHDOG=1 is sent for many intervals, and pings resume
// once the commit goes through.
func TestWatchdogStopsWhenPipelineStalls(t *testing.T) {
	sock := listenNotify(t)
	sd := &Systemd{addr: &net.UnixAddr{Name: sock.path, Net: "unixgram"}, watchdog: 100 * time.Millisecond}

	db, err := store.Open(filepath.Join(t.TempDir(), "s.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	g := &gatedCommitter{db: db, entered: make(chan struct{}, 1), gate: make(chan struct{})}
	open := sync.OnceFunc(func() { close(g.gate) })
	cfg, err := rules.Load("../testdata/config/example/scopewatch.yaml", ingest.Formats{})
	if err != nil {
		t.Fatal(err)
	}
	parsers, err := newParsers(cfg)
	if err != nil {
		t.Fatal(err)
	}
	p := &Daemon{probes: make(chan chan<- struct{})}
	eng := engine.New(engine.Options{
		Parsers: parsers, Accountant: detect.NewAccountant(cfg.Rules, nil, nil), Store: g,
		MaxEvents: 1, Probes: p.probes,
	})
	lines := make(chan ingest.Line)
	ctx, cancel := context.WithCancel(t.Context())
	var wg sync.WaitGroup
	engineErr := make(chan error, 1)
	wg.Go(func() { engineErr <- eng.Run(ctx, lines) })
	wg.Go(func() { sd.watchdogLoop(ctx, p.Probe, func(err error) { t.Error(err) }) })
	defer func() {
		open() // a failed test must not leave the engine waiting
		cancel()
		close(lines)
		wg.Wait()
		if err := <-engineErr; err != nil {
			t.Error(err)
		}
	}()

	for range 2 { // idle: pinged
		sock.next(t, "WATCHDOG=1")
	}
	// One line makes a full batch; its commit hangs.
	lines <- ingest.Line{Pos: ingest.Position{Source: "keycloak", File: store.FileID{Dev: 1, Ino: 2}, Offset: 200}, Text: []byte(
		`2026-11-01 10:00:00,000 DEBUG [org.keycloak.events] (executor-thread-1) type="CLIENT_LOGIN", realmId="clinic", clientId="lab-portal", userId="u", ipAddress="10.0.0.5", grant_type="client_credentials", scope="openid"`)}
	<-g.entered
	// A ping already on its way when the commit started may still come;
	// after that, none for ten intervals.
	drain := time.After(sd.watchdog)
	for waiting := true; waiting; {
		select {
		case <-sock.msgs:
		case <-drain:
			waiting = false
		}
	}
	select {
	case m := <-sock.msgs:
		t.Fatalf("%q sent while the commit hangs", m)
	case <-time.After(10 * sd.watchdog):
	}
	open()
	sock.next(t, "WATCHDOG=1")
}

// gatedCommitter is a real store whose commits wait at a gate.
type gatedCommitter struct {
	db      *store.DB
	entered chan struct{}
	gate    chan struct{}
}

func (g *gatedCommitter) Commit(b *store.Batch) error {
	select {
	case g.entered <- struct{}{}:
	default:
	}
	<-g.gate
	return g.db.Commit(b)
}

// notifySocket is a service manager's notification socket: it collects
// the datagrams a Type=notify service sends.
type notifySocket struct {
	path string
	msgs chan string
}

func listenNotify(t *testing.T) *notifySocket {
	t.Helper()
	path := filepath.Join(t.TempDir(), "notify.sock")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	n := &notifySocket{path: path, msgs: make(chan string, 1024)}
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 4096)
		for {
			k, err := conn.Read(buf)
			if err != nil {
				return
			}
			n.msgs <- string(buf[:k])
		}
	}()
	t.Cleanup(func() { conn.Close(); <-done })
	return n
}

// next returns the next message that starts with state, failing the test
// after a minute.
func (n *notifySocket) next(t *testing.T, state string) {
	t.Helper()
	deadline := time.After(time.Minute)
	for {
		select {
		case m := <-n.msgs:
			if strings.HasPrefix(m, state) {
				return
			}
		case <-deadline:
			t.Fatalf("no %s within a minute", state)
		}
	}
}
