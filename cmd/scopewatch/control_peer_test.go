package main

import (
	"net/http"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

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
	fi, err := os.Stat(sock)
	if err != nil {
		t.Fatal(err)
	}
	gid := fi.Sys().(*syscall.Stat_t).Gid
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
	if want := `"author": "` + nobodyName() + `"`; code != http.StatusOK || !strings.Contains(body, want) {
		t.Errorf("silences: %d %s; want %s", code, body, want)
	}
	out, err = run([]uint32{gid}, "silence", "add", "--kind", "unused_scope", "--for", "1d", "--reason", "r", "--author", "admin")
	if err == nil || !strings.Contains(out, `author "admin" refused`) {
		t.Errorf("--author admin as another user: %v %s; want a refusal", err, out)
	}
}

// nobodyName is the user name of uid 65534, as the daemon records it.
func nobodyName() string {
	u, err := user.LookupId("65534")
	if err != nil {
		return "65534"
	}
	return u.Username
}
