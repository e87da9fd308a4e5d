package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/scopewatch/scopewatch/internal/probe"
)

// TestUnreadableSourceOthersGoOn runs the daemon with one log it may not
// read: the error is logged and counted, and the other source is still
// tailed and committed. As root, the daemon runs as nobody so that file
// permissions apply.
func TestUnreadableSourceOthersGoOn(t *testing.T) {
	bin := scopewatchBinary(t)
	dir, err := os.MkdirTemp("", "scopewatch-perm-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o777); err != nil {
		t.Fatal(err)
	}
	binCopy := filepath.Join(dir, "scopewatch")
	copyFile(t, bin, binCopy, 0o755)

	addr, err := probe.FreeAddr()
	if err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(dir, "cfg.yaml")
	write(t, cfg, fmt.Sprintf(`store: %[1]s/s.db
listen: %[2]s
control_socket: %[1]s/ctl.sock
sources:
  - {name: secret, path: %[1]s/secret.log, format: keycloak}
  - name: api
    path: %[1]s/api.log
    format: json
    fields: {time: time, client: client_id, method: method, path: path}
`, dir, addr))
	write(t, filepath.Join(dir, "secret.log"), "x\n")
	if err := os.Chmod(filepath.Join(dir, "secret.log"), 0o000); err != nil {
		t.Fatal(err)
	}
	api := filepath.Join(dir, "api.log")
	write(t, api, `{"time":"2026-10-01T10:00:00Z","client_id":"lab","method":"GET","path":"/x"}`+"\n")
	os.Chmod(api, 0o644)
	os.Chmod(cfg, 0o644)

	cmd := exec.Command(binCopy, "run", "--config", cfg)
	logPath := filepath.Join(dir, "daemon.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	defer logFile.Close()
	cmd.Stderr = logFile
	daemonLog := func() string {
		b, _ := os.ReadFile(logPath)
		return string(b)
	}
	if os.Geteuid() == 0 {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() { cmd.Process.Kill() }) // after a failure; harmless once it exited

	deadline := time.Now().Add(30 * time.Second)
	for {
		perm, _ := probe.Counter(addr, `scopewatch_read_errors_total{reason="permission",source="secret"}`)
		lines, _ := storedLines(filepath.Join(dir, "ctl.sock"))
		if perm >= 1 && lines == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after 30s: permission errors %v, committed lines %d\nstderr:\n%s", perm, lines, daemonLog())
		}
		select {
		case err := <-exited:
			t.Fatalf("daemon exited: %v\n%s", err, daemonLog())
		case <-time.After(50 * time.Millisecond):
		}
	}
	cmd.Process.Signal(syscall.SIGTERM)
	if err := <-exited; err != nil {
		t.Fatalf("daemon exit: %v\n%s", err, daemonLog())
	}
	// Which file, that permission was denied, and what to do.
	if want := filepath.Join(dir, "secret.log") + ": permission denied; run scopewatch as a user that may read it, such as a member of the group that owns it (adm "; !strings.Contains(daemonLog(), want) {
		t.Errorf("log does not name the unreadable file, why and what to do (%q):\n%s", want, daemonLog())
	}
	if strings.Contains(daemonLog(), "open: open") {
		t.Errorf("log repeats the operation:\n%s", daemonLog())
	}
}

func copyFile(t *testing.T, src, dst string, mode os.FileMode) {
	t.Helper()
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dst, b, mode); err != nil {
		t.Fatal(err)
	}
}
