package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/scopewatch/scopewatch/internal/probe"
)

// TestRealPrometheusScrapes runs a real Prometheus server (Debian's
// prometheus package) against the daemon and queries a scopewatch metric
// through Prometheus' HTTP API: the exposition is not only well formed
// but ingested.
func TestRealPrometheusScrapes(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("starts a Prometheus server")
	}
	bin := needTool(t, "prometheus", "Debian package prometheus")
	dir := t.TempDir()
	addr, p, stop := startDaemon(t, dir)
	defer stop()
	writeDemoTraffic(t, dir, p, 5, mustTime("2026-04-01T00:00:00Z"), 300, "")

	promAddr, err := probe.FreeAddr()
	if err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(dir, "prometheus.yml")
	write(t, cfg, fmt.Sprintf("global: {scrape_interval: 1s}\nscrape_configs:\n  - job_name: scopewatch\n    static_configs: [{targets: [%q]}]\n", addr))
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "--config.file="+cfg, "--storage.tsdb.path="+filepath.Join(dir, "tsdb"),
		"--web.listen-address="+promAddr)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	defer func() { cancel(); <-exited }()

	// Poll Prometheus until its query API returns the lines the daemon
	// committed, scraped from it.
	query := "http://" + promAddr + "/api/v1/query?query=" + "sum(scopewatch_lines_committed_total)"
	deadline := time.Now().Add(60 * time.Second)
	for {
		var res struct {
			Status string `json:"status"`
			Data   struct {
				Result []struct {
					Value [2]any `json:"value"`
				} `json:"result"`
			} `json:"data"`
		}
		resp, err := http.Get(query)
		if err == nil {
			err = json.NewDecoder(resp.Body).Decode(&res)
			resp.Body.Close()
		}
		if err == nil && res.Status == "success" && len(res.Data.Result) == 1 {
			if v, _ := res.Data.Result[0].Value[1].(string); v == fmt.Sprint(p.Committed()) {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("Prometheus did not return the committed lines within 60s: %+v, %v", res, err)
		}
		select {
		case err := <-exited:
			t.Fatalf("prometheus exited: %v", err)
		case <-time.After(100 * time.Millisecond): // polling another process
		}
	}
}
