package api

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/scopewatch/scopewatch/rules"
	"github.com/scopewatch/scopewatch/store"
)

// socketAPI serves the API of the findings fixture on a real control
// socket whose peers check judges, and returns the socket's path.
func socketAPI(t *testing.T, check peerCheck) string {
	t.Helper()
	cfg := &rules.Config{Store: filepath.Join(t.TempDir(), "scopewatch.db"), Listen: "127.0.0.1:9464"}
	db, err := store.Open(cfg.Store, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	sock := filepath.Join(t.TempDir(), "ctl.sock")
	c, err := startControl(sock, NewHandler(Options{Daemon: &testDaemon{cfg: cfg}, Store: db, Metrics: prometheus.NewRegistry()}), check, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Stop(slog.New(slog.DiscardHandler)) })
	return sock
}

func socketGet(t *testing.T, sock, path string) (int, string) {
	t.Helper()
	resp, err := socketClient(sock).Get("http://localhost" + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestControlSocketPeerCheck: a peer the check refuses gets 403 with what
// to do on every path; one it allows reads the store.
func TestControlSocketPeerCheck(t *testing.T) {
	refuse := socketAPI(t, func(pr *peer) error {
		if pr.uid != uint32(os.Getuid()) || pr.pid != int32(os.Getpid()) {
			t.Errorf("peer %+v, want this process's uid %d and pid %d", pr, os.Getuid(), os.Getpid())
		}
		return errors.New("join group scopewatch")
	})
	for _, path := range []string{"/api/v1/clients", "/api/v1/backup", "/metrics"} {
		if code, body := socketGet(t, refuse, path); code != http.StatusForbidden || !strings.Contains(body, "join group scopewatch") {
			t.Errorf("refused peer, GET %s = %d %q, want 403 naming the group", path, code, body)
		}
	}
	allow := socketAPI(t, func(*peer) error { return nil })
	for _, path := range []string{"/api/v1/clients", "/api/v1/silences", "/api/v1/backup"} {
		if code, body := socketGet(t, allow, path); code != http.StatusOK {
			t.Errorf("allowed peer, GET %s = %d %q, want 200", path, code, body)
		}
	}
	if fi, err := os.Stat(allow); err != nil || fi.Mode().Perm() != 0o660 || fi.Mode().Type() != os.ModeSocket {
		t.Errorf("control socket: %v %v, want a socket of mode 0660", fi.Mode(), err)
	}
}

// TestSocketGroupCheck judges peers as the daemon does: root, its own
// user and the socket group's members pass; anyone else is told what to
// do.
func TestSocketGroupCheck(t *testing.T) {
	const gid = 4242
	check := socketGroupCheck("/run/scopewatch/control.sock", gid)
	for _, pr := range []peer{{uid: 0, gid: 1}, {uid: uint32(os.Getuid()), gid: 1}, {uid: 5000, gid: gid}} {
		if err := check(&pr); err != nil {
			t.Errorf("peer %+v refused: %v", pr, err)
		}
	}
	err := check(&peer{uid: 5000, gid: 5000})
	if err == nil || !strings.Contains(err.Error(), "may not use the control socket /run/scopewatch/control.sock: join group") || !strings.Contains(err.Error(), "run the command as root") {
		t.Errorf("outsider: %v, want a refusal naming the group and root", err)
	}
}

// TestControlSocketFile: a stale socket is replaced, a file that is no
// socket or a socket a daemon answers on is refused, the file goes at
// stop, and a missing directory means no socket.
func TestControlSocketFile(t *testing.T) {
	dir := t.TempDir()
	sock := filepath.Join(dir, "ctl.sock")
	stale, err := net.ListenUnix("unix", &net.UnixAddr{Name: sock, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	stale.SetUnlinkOnClose(false)
	stale.Close()
	c, err := startControl(sock, http.NotFoundHandler(), func(*peer) error { return nil }, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatalf("over a stale socket: %v", err)
	}
	if _, err := startControl(sock, http.NotFoundHandler(), nil, slog.New(slog.DiscardHandler)); err == nil || !strings.Contains(err.Error(), "another scopewatch daemon answers on it") {
		t.Errorf("second daemon on the socket: %v", err)
	}
	c.Stop(slog.New(slog.DiscardHandler))
	if _, err := os.Lstat(sock); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("socket file after stop: %v, want it removed", err)
	}
	if err := os.WriteFile(sock, []byte("not a socket"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := startControl(sock, http.NotFoundHandler(), nil, slog.New(slog.DiscardHandler)); err == nil || !strings.Contains(err.Error(), "is not a socket") {
		t.Errorf("over a regular file: %v", err)
	}
	c, err = startControl(filepath.Join(dir, "none", "ctl.sock"), http.NotFoundHandler(), nil, slog.New(slog.DiscardHandler))
	if err != nil || c.path != "" {
		t.Errorf("socket in a missing directory: %+v %v, want none and no error", c, err)
	}
}

// testDaemon is the part of a daemon the API asks, with nothing running.
type testDaemon struct{ cfg *rules.Config }

func (d *testDaemon) Config() *rules.Config { return d.cfg }
func (d *testDaemon) Ready() bool           { return true }
func (d *testDaemon) SilencesChanged()      {}

// socketClient is an HTTP client that reaches the control socket at path,
// whatever the host of the URL.
func socketClient(path string) *http.Client {
	var d net.Dialer
	return &http.Client{Transport: &http.Transport{
		Proxy: nil,
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return d.DialContext(ctx, "unix", path)
		},
	}}
}
