package main

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/scopewatch/scopewatch/internal/traffic"
)

var (
	failpointOnce sync.Once
	failpointBin  string
	failpointErr  error
)

// failpointBinary builds scopewatch with the failpoints tag once: it kills
// itself at the points SCOPEWATCH_FAILPOINTS names (internal/failpoint).
func failpointBinary(t *testing.T) string {
	t.Helper()
	failpointOnce.Do(func() {
		dir, err := os.MkdirTemp("", "scopewatch-failpoints-")
		if err != nil {
			failpointErr = err
			return
		}
		failpointBin = filepath.Join(dir, "scopewatch")
		out, err := exec.Command("go", "build", "-tags", "failpoints", "-o", failpointBin, ".").CombinedOutput()
		if err != nil {
			failpointErr = &buildFailure{out: string(out), err: err}
		}
	})
	if failpointErr != nil {
		t.Fatal(failpointErr)
	}
	return failpointBin
}

// TestCrashInsideCheckpoint kills a scanning scopewatch inside the bbolt
// transaction of a checkpoint (every record and position written, nothing
// committed) and in the middle of an eviction, restarting it each time,
// with so few clients allowed in memory (batch.max_clients 100 of 300) that
// clients are evicted and read back all along. The final counts must equal
// those of one uninterrupted scan that evicts nothing.
func TestCrashInsideCheckpoint(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("crash loop: slow")
	}
	bin := failpointBinary(t)
	dir := t.TempDir()
	clients := traffic.GeneratedClients(17, 300)
	write(t, filepath.Join(dir, "rules.yaml"), registering(traffic.DemoRules, clients))
	const events = 60_000
	start := time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC)
	crashLogs(t, dir, traffic.New(17, clients, start, start.Add(30*24*time.Hour), events), 0, events)
	files := []string{filepath.Join(dir, "kc.log"), filepath.Join(dir, "api.log")}
	scanArgs := func(cfg string) []string { return append([]string{"scan", "--quiet", "--config", cfg}, files...) }

	ref := writeCrashConfig(t, dir, "reference", "127.0.0.1:1")
	runChild(t, bin, scanArgs(ref)...)

	crashed := writeCrashConfig(t, dir, "crashed", "127.0.0.1:1")
	raw, err := os.ReadFile(crashed)
	if err != nil {
		t.Fatal(err)
	}
	small := strings.Replace(string(raw), "batch: {max_events: 1000, max_delay: 250ms}", "batch: {max_events: 2000, max_delay: 250ms, max_clients: 100}", 1)
	if small == string(raw) {
		t.Fatal("the crash configuration has no batch line to change")
	}
	write(t, crashed, small)
	crashedDB := filepath.Join(dir, "crashed.db")

	for _, point := range []string{"checkpoint=50", "evict=80", "checkpoint=120", "evict=200", "checkpoint=300"} {
		before := committedLines(t, crashedDB)
		cmd := exec.Command(bin, scanArgs(crashed)...)
		cmd.Env = append(os.Environ(), "SCOPEWATCH_FAILPOINTS="+point)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		err := cmd.Run()
		var exit *exec.ExitError
		if !errors.As(err, &exit) || !exit.Sys().(syscall.WaitStatus).Signaled() || exit.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
			t.Fatalf("scan with failpoint %s ended with %v, want killed there (is the point reached?)\n%s", point, err, stderr.Bytes())
		}
		if !strings.Contains(stderr.String(), "failpoint "+point) {
			t.Fatalf("scan killed, but not by failpoint %s:\n%s", point, stderr.Bytes())
		}
		after := committedLines(t, crashedDB)
		t.Logf("killed at %s: %d lines committed before, %d after", point, before, after)
		if after >= events {
			t.Fatalf("killed at %s with every line committed: the kill proved nothing", point)
		}
	}
	runChild(t, bin, scanArgs(crashed)...)
	compareSnapshots(t, snapshot(t, crashedDB), snapshot(t, filepath.Join(dir, "reference.db")))
}
