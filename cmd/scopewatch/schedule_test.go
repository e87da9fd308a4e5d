package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestDaemonWritesScheduledReport runs the daemon with a weekly report and
// no report written yet: the report falls due at start, in every format.
func TestDaemonWritesScheduledReport(t *testing.T) {
	dir := t.TempDir()
	reports := filepath.Join(dir, "reports")
	addr, _, stop := startDaemonWith(t, dir, "alert:\n  report: {every: 1w, dir: "+reports+"}\n")
	defer stop()
	var names []string
	for deadline := time.Now().Add(30 * time.Second); len(names) < 3; {
		if time.Now().After(deadline) {
			t.Fatalf("reports after 30s: %v", names)
		}
		names = names[:0]
		entries, _ := os.ReadDir(reports)
		for _, e := range entries {
			if !strings.HasPrefix(e.Name(), ".") {
				names = append(names, e.Name())
			}
		}
		time.Sleep(20 * time.Millisecond) // polling a directory another goroutine writes
	}
	exts := map[string]bool{}
	for _, n := range names {
		exts[filepath.Ext(n)] = strings.HasPrefix(n, "unused-scopes-")
	}
	if !exts[".csv"] || !exts[".json"] || !exts[".md"] {
		t.Errorf("report files %v, want csv, json and md", names)
	}
	md, err := os.ReadFile(filepath.Join(reports, strings.TrimSuffix(names[0], filepath.Ext(names[0]))+".md"))
	if err != nil || !bytes.Contains(md, []byte("# Unused OAuth scopes")) {
		t.Errorf("markdown report: %v\n%s", err, md)
	}
	if body := get(t, "http://"+addr+"/metrics"); !bytes.Contains(body, []byte("scopewatch_report_last_success_timestamp_seconds ")) {
		t.Error("/metrics lacks scopewatch_report_last_success_timestamp_seconds")
	}
}

// TestFirstReportAfterCatchUp starts the daemon on a backlog of 40,000
// token lines from 200 clients and no report yet: the report that falls
// due at start is written once that backlog is committed, so it examines
// every client rather than the few read in the first milliseconds.
func TestFirstReportAfterCatchUp(t *testing.T) {
	dir := t.TempDir()
	const clients, lines = 200, 40000
	var b strings.Builder
	at := time.Now().Add(-48 * time.Hour).UTC()
	for i := range lines {
		fmt.Fprintf(&b, "%s INFO  [org.keycloak.events] (executor-thread-1) type=CLIENT_LOGIN, realmId=clinic, clientId=svc-%03d, userId=u, ipAddress=10.0.0.5, grant_type=client_credentials, scope=view_lab_results\n",
			at.Add(time.Duration(i)*time.Second).Format("2006-01-02 15:04:05,000"), i%clients)
	}
	write(t, filepath.Join(dir, "keycloak.log"), b.String())
	reports := filepath.Join(dir, "reports")
	_, p, stop := startDaemonWith(t, dir, "alert:\n  report: {every: 1w, formats: [json], dir: "+reports+"}\n")
	defer stop()
	var rep struct {
		Clients int `json:"clients_examined"`
	}
	for deadline := time.Now().Add(60 * time.Second); ; {
		if time.Now().After(deadline) {
			t.Fatalf("no report after 60s (%d lines committed)", p.Committed())
		}
		entries, _ := os.ReadDir(reports)
		var name string
		for _, e := range entries {
			if strings.HasSuffix(e.Name(), ".json") && !strings.HasPrefix(e.Name(), ".") {
				name = e.Name()
			}
		}
		if name != "" {
			data, err := os.ReadFile(filepath.Join(reports, name))
			if err != nil {
				t.Fatal(err)
			}
			if err := json.Unmarshal(data, &rep); err != nil {
				t.Fatal(err)
			}
			break
		}
		time.Sleep(20 * time.Millisecond) // polling a directory another goroutine writes
	}
	if rep.Clients != clients {
		t.Errorf("first report examined %d clients, want all %d of the backlog", rep.Clients, clients)
	}
}
