package main

import (
	"bufio"
	"bytes"
	"fmt"
	"net/netip"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/scopewatch/scopewatch/rules"
	"github.com/scopewatch/scopewatch/store"
)

// maxSeries is the most time series one daemon may expose, whatever the
// number of clients: labels are bounded (source, kind, severity, reason,
// result), never a client, address, subject or scope.
const maxSeries = 300

// TestMetricSeriesBounded fills a store with 10,000 clients holding 30
// scopes each and findings of every kind and severity, runs the daemon on
// it with traffic (a malformed line included) and counts the series of a
// scrape.
func TestMetricSeriesBounded(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("builds a store of 10,000 clients")
	}
	dir := t.TempDir()
	db, err := store.Open(filepath.Join(dir, "scopewatch.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	b := store.NewBatch()
	st := store.NewState(db, 0)
	for i := range 10_000 {
		id := fmt.Sprintf("client-%05d", i)
		c := st.Client(id)
		c.Seen.Add(1, t0)
		for s := range 30 {
			c.CountScope(fmt.Sprintf("scope-%02d", s), store.ScopeGranted, 1, t0)
		}
		c.SawIP(netip.AddrFrom4([4]byte{198, 51, byte(i / 256 % 256), byte(i % 256)}), t0)
		kinds := rules.FindingKinds()
		sev := []string{store.SeverityInfo, store.SeverityWarning, store.SeverityHigh}[i/len(kinds)%3]
		b.Findings[store.FindingKey{Kind: kinds[i%len(kinds)], Client: id, Subject: "scope-00"}] = store.Finding{
			Severity: sev, State: store.StateOpen, First: t0, Last: t0, Count: 1,
		}
		if b.Events++; b.Events%1000 == 0 {
			st.Checkpoint(b)
			if err := db.Commit(b); err != nil {
				t.Fatal(err)
			}
			b.Reset()
		}
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}

	addr, p, stop := startDaemon(t, dir)
	defer stop()
	writeDemoTraffic(t, dir, p, 3, mustTime("2026-04-01T00:00:00Z"), 500, "{broken\n")
	body := get(t, "http://"+addr+"/metrics")

	series := map[string]int{} // metric family → series
	n := 0
	sc := bufio.NewScanner(bytes.NewReader(body))
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		n++
		name, _, _ := strings.Cut(line, "{")
		name, _, _ = strings.Cut(name, " ")
		series[name]++
	}
	if n > maxSeries {
		t.Errorf("%d series, more than %d", n, maxSeries)
	}
	t.Logf("%d series in %d families with 10,000 clients", n, len(series))
	if got := series["scopewatch_findings_open"]; got == 0 || got > len(rules.FindingKinds())*3 {
		t.Errorf("scopewatch_findings_open has %d series, want 1 to %d (kind × severity)", got, len(rules.FindingKinds())*3)
	}
	for _, forbidden := range []string{"client-0", "198.51.", "scope-0"} {
		if bytes.Contains(body, []byte(forbidden)) {
			t.Errorf("/metrics exposes %q: client ids, addresses and scopes must never be labels", forbidden)
		}
	}
	for _, want := range []string{
		fmt.Sprintf("scopewatch_findings_open{kind=%q,severity=%q}", rules.KindUnusedScope, store.SeverityInfo),
		`scopewatch_source_newest_event_timestamp_seconds{source="keycloak"}`,
		`scopewatch_source_lag_seconds{source="api-gateway"}`,
	} {
		if !bytes.Contains(body, []byte(want)) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	t.Run("promtool", func(t *testing.T) {
		cmd := exec.Command(needPromtool(t), "check", "metrics")
		cmd.Stdin = bytes.NewReader(body)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("promtool check metrics: %v\n%s", err, out)
		}
	})
}
