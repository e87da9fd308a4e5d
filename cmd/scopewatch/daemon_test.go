package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/scopewatch/scopewatch/daemon"
	"github.com/scopewatch/scopewatch/internal/traffic"
	"github.com/scopewatch/scopewatch/rules"
)

// startDaemon runs the daemon in-process on the demo configuration with
// an ephemeral port and returns its address and a stop function that
// waits for a clean exit.
func startDaemon(t *testing.T, dir string) (string, *daemon.Daemon, func()) {
	t.Helper()
	return startDaemonWith(t, dir, "")
}

// startDaemonWith is startDaemon with more configuration appended to the
// demo's.
func startDaemonWith(t *testing.T, dir, extra string) (string, *daemon.Daemon, func()) {
	t.Helper()
	write(t, filepath.Join(dir, "rules.yaml"), traffic.DemoRules)
	cfgPath := filepath.Join(dir, "scopewatch.yaml")
	write(t, cfgPath, sprintfConfig(dir)+extra)
	cfg, err := loadConfig(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	d, addr, stop := runInProcess(t, cfg, slog.New(slog.DiscardHandler))
	return addr, d, stop
}

// runInProcess runs the daemon on cfg in this process, as `run` does but
// without systemd or SIGHUP, and returns it once its sources have
// attached, with its HTTP address and a stop function that waits for a
// clean exit (also called at cleanup).
func runInProcess(t testing.TB, cfg *rules.Config, log *slog.Logger) (*daemon.Daemon, string, func()) {
	t.Helper()
	started := make(chan string, 1)
	d, err := daemon.New(cfg, daemon.Options{Logger: log, Started: func(a string) { started <- a }})
	if err != nil {
		t.Fatalf("daemon did not start: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	var addr string
	select {
	case addr = <-started:
	case err := <-done:
		d.Close()
		t.Fatalf("daemon did not start: %v", err)
	}
	select {
	case <-d.Attached():
	case err := <-done:
		d.Close()
		t.Fatalf("daemon stopped before its sources attached: %v", err)
	}
	stop := sync.OnceFunc(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("daemon exit: %v", err)
		}
		d.Close()
	})
	t.Cleanup(stop)
	return d, addr, stop
}

// sprintfConfig is the demo's configuration with the control socket in
// dir, which the commands of the tests reach the daemon through.
func sprintfConfig(dir string) string {
	return keepDatedClients(fmt.Sprintf(traffic.DemoConfig, dir, "127.0.0.1:0")) + "control_socket: " + filepath.Join(dir, "ctl.sock") + "\n"
}

// keepDatedClients sets a client_retention in a configuration's detect
// section that keeps the clients of traffic dated 2026 (the tests' fixed
// dates) from being pruned as the wall clock moves past them.
func keepDatedClients(cfg string) string {
	return strings.Replace(cfg, "\ndetect:\n", "\ndetect:\n  client_retention: 3650d\n", 1)
}

func mustTime(s string) time.Time {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		panic(err)
	}
	return t
}

// writeDemoTraffic appends n demo events from 2026-01-01 to end, plus
// extra raw API lines, and waits until the daemon has committed them all.
func writeDemoTraffic(t *testing.T, dir string, p *daemon.Daemon, seed uint64, end time.Time, n int, extra string) {
	t.Helper()
	w, err := traffic.OpenWriters(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	gen := traffic.New(seed, traffic.DemoClients(), mustTime("2026-01-01T00:00:00Z"), end, n)
	if err := w.Write(gen, 0, n); err != nil {
		t.Fatal(err)
	}
	w.API.WriteString(extra)
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	want := uint64(n + strings.Count(extra, "\n"))
	for p.Committed() < want {
		<-p.Progress()
	}
}

func TestMetricsPassPromtool(t *testing.T) {
	promtool := needPromtool(t)
	dir := t.TempDir()
	addr, p, stop := startDaemon(t, dir)
	defer stop()
	// Give the metrics something to say: some lines, including a bad one.
	writeDemoTraffic(t, dir, p, 1, mustTime("2026-04-01T00:00:00Z"), 500, "{broken\n")
	body := get(t, "http://"+addr+"/metrics")
	cmd := exec.Command(promtool, "check", "metrics")
	cmd.Stdin = bytes.NewReader(body)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("promtool check metrics: %v\n%s", err, out)
	}
	for _, want := range []string{
		"scopewatch_lines_read_total{source=\"api-gateway\"}",
		"scopewatch_lines_malformed_total{reason=\"bad_json\",source=\"api-gateway\"} 1",
		"scopewatch_events_total{kind=\"use\",source=\"api-gateway\"}",
		"scopewatch_store_commit_duration_seconds_bucket",
		"scopewatch_position_lag_bytes{source=\"keycloak\"}",
		"scopewatch_build_info{",
		"process_resident_memory_bytes",
	} {
		if !bytes.Contains(body, []byte(want)) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	for _, forbidden := range []string{"lab-portal", "10.0.", "view_lab_results"} {
		if bytes.Contains(body, []byte(forbidden)) {
			t.Errorf("/metrics exposes %q: client ids, IPs and scopes must never be labels", forbidden)
		}
	}
	if got := string(get(t, "http://"+addr+"/readyz")); got != "ready\n" {
		t.Errorf("/readyz = %q", got)
	}
}

func TestReportReadsFromRunningDaemon(t *testing.T) {
	dir := t.TempDir()
	addr, p, stop := startDaemon(t, dir)
	defer stop()
	writeDemoTraffic(t, dir, p, 2, mustTime("2026-06-01T00:00:00Z"), 2000, "")
	// The daemon holds the store; the commands must go through its API.
	cfgPath := filepath.Join(dir, "scopewatch.yaml")
	write(t, cfgPath, strings.Replace(sprintfConfig(dir), "127.0.0.1:0", addr, 1))
	code, out, errOut := runCmd(t, "report", "unused", "--config", cfgPath, "--at", "2026-06-02", "--format", "csv")
	if code != exitOK {
		t.Fatalf("report while the daemon runs: exit %d: %s", code, errOut)
	}
	if !strings.HasPrefix(out, "client,owner,role,scope,status") || !strings.Contains(out, "lab-portal,lab-systems@clinic.example,lab-technician,read_all_data,never_used") {
		t.Errorf("csv report:\n%s", out)
	}
	code, out, errOut = runCmd(t, "clients", "--config", cfgPath, "--client", "scheduler")
	if code != exitOK {
		t.Fatalf("clients: exit %d: %s", code, errOut)
	}
	if !strings.Contains(out, "write_schedule") {
		t.Errorf("clients output:\n%s", out)
	}
}

func get(t *testing.T, url string) []byte {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
