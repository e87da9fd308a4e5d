package main

import (
	"bytes"
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
