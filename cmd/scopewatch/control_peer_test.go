package main

import (
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/scopewatch/scopewatch/store"
)

// socketAPI serves the API of the findings fixture on a real control
// socket whose peers check judges, and returns the socket's path.
func socketAPI(t *testing.T, check peerCheck) string {
	t.Helper()
	cfg, err := loadConfig(findingsFixture(t))
	if err != nil {
		t.Fatal(err)
	}
	db, err := store.Open(cfg.Store, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	sock := filepath.Join(t.TempDir(), "ctl.sock")
	c, err := startControl(sock, newAPI(apiPipeline(cfg, db)), check, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.stop(slog.New(slog.DiscardHandler)) })
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
	c.stop(slog.New(slog.DiscardHandler))
	if _, err := os.Lstat(sock); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("socket file after stop: %v, want it removed", err)
	}
	write(t, sock, "not a socket")
	if _, err := startControl(sock, http.NotFoundHandler(), nil, slog.New(slog.DiscardHandler)); err == nil || !strings.Contains(err.Error(), "is not a socket") {
		t.Errorf("over a regular file: %v", err)
	}
	c, err = startControl(filepath.Join(dir, "none", "ctl.sock"), http.NotFoundHandler(), nil, slog.New(slog.DiscardHandler))
	if err != nil || c.path != "" {
		t.Errorf("socket in a missing directory: %+v %v, want none and no error", c, err)
	}
}

// TestControlSocketOtherUser runs the real binary as another user against
// a daemon: outside the socket's group the kernel's credentials are
// refused even when the file's mode lets the user connect; inside it, the
// command goes through and the silence it adds is recorded with that
// user's name.
func TestControlSocketOtherUser(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("needs root to run a command as another user")
	}
	bin := scopewatchBinary(t)
	dir := t.TempDir()
	addr, _, stop := startDaemon(t, dir)
	defer stop()
	cfgPath := filepath.Join(dir, "cli.yaml")
	write(t, cfgPath, strings.Replace(sprintfConfig(dir), "127.0.0.1:0", addr, 1))
	sock := filepath.Join(dir, "ctl.sock")
	// Let the other user reach the socket: the peer check must hold alone.
	for d := dir; d != filepath.Dir(d) && strings.HasPrefix(d, os.TempDir()) && d != os.TempDir(); d = filepath.Dir(d) {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Chmod(sock, 0o666); err != nil {
		t.Fatal(err)
	}
	gid, err := socketGID(sock)
	if err != nil {
		t.Fatal(err)
	}
	// The binary's own directory is root's alone: a copy the user may run.
	b, err := os.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	bin = filepath.Join(dir, "scopewatch")
	if err := os.WriteFile(bin, b, 0o755); err != nil {
		t.Fatal(err)
	}
	const nobody = 65534
	run := func(groups []uint32, args ...string) (string, error) {
		cmd := exec.Command(bin, append(args, "--config", cfgPath)...)
		cmd.Env = []string{"PATH=/usr/bin:/bin", "HOME=/"}
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: nobody, Gid: nobody, Groups: groups}}
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	out, err := run(nil, "silence", "add", "--kind", "unused_scope", "--for", "1d", "--reason", "r")
	if err == nil || !strings.Contains(out, "may not use the control socket "+sock) || !strings.Contains(out, "join group") {
		t.Errorf("outside the group: %v %s; want a refusal naming the group", err, out)
	}
	out, err = run([]uint32{gid}, "silence", "add", "--kind", "unused_scope", "--for", "1d", "--reason", "r")
	if err != nil || strings.TrimSpace(out) != "s1" {
		t.Fatalf("in the group: %v %s", err, out)
	}
	code, body := socketGet(t, sock, "/api/v1/silences")
	if want := `"author": "` + userName(nobody) + `"`; code != http.StatusOK || !strings.Contains(body, want) {
		t.Errorf("silences: %d %s; want %s", code, body, want)
	}
	out, err = run([]uint32{gid}, "silence", "add", "--kind", "unused_scope", "--for", "1d", "--reason", "r", "--author", "admin")
	if err == nil || !strings.Contains(out, `author "admin" refused`) {
		t.Errorf("--author admin as another user: %v %s; want a refusal", err, out)
	}
}
