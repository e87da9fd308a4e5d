package detect

import (
	"testing"
	"time"

	"github.com/scopewatch/scopewatch/ingest"
	"github.com/scopewatch/scopewatch/rules"
	"github.com/scopewatch/scopewatch/store"
)

func TestCoverageObserve(t *testing.T) {
	h := func(n int) time.Time { return t0.Add(time.Duration(n) * time.Hour) }
	c := NewCoverage(nil, 12*time.Hour)
	for _, n := range []int{0, 5, 16, 40, 41, 30, 28} { // 40 starts after a 24h gap; 30 is still 14h from 16, 28 bridges it
		c.Observe("kc", h(n))
	}
	got := c.Spans("kc")
	want := []store.Span{{Start: h(0), End: h(41)}}
	if len(got) != 1 || got[0] != want[0] {
		t.Errorf("spans = %v, want %v", got, want)
	}
	c.Observe("kc", h(60))
	c.Break("kc")
	c.Observe("kc", h(61)) // after lost lines: a new span even within the gap
	if got := c.Spans("kc"); len(got) != 3 {
		t.Errorf("spans = %v, want 3", got)
	}
	b := store.NewBatch()
	c.Flush(b)
	if len(b.Coverage["kc"]) != 3 {
		t.Errorf("flushed %v", b.Coverage)
	}
	b.Reset()
	c.Flush(b)
	if len(b.Coverage) != 0 {
		t.Errorf("an unchanged source was flushed again: %v", b.Coverage)
	}
}

func TestCovered(t *testing.T) {
	d := func(n int) time.Time { return t0.Add(time.Duration(n) * day) }
	spans := map[string][]store.Span{
		"kc":  {{Start: d(0), End: d(50)}, {Start: d(60), End: d(100)}},
		"api": {{Start: d(10), End: d(100)}},
		"old": {{Start: d(0), End: d(80)}},
	}
	gap := 12 * time.Hour
	tests := []struct {
		name    string
		sources []string
		from    time.Time
		to      time.Time
		want    time.Duration
	}{
		{"one source", []string{"kc"}, d(0), d(100), 90 * day},
		{"intersection", []string{"kc", "api"}, d(0), d(100), 80 * day},
		{"clipped", []string{"api"}, d(40), d(100), 60 * day},
		{"quiet source reaches now", []string{"api"}, d(40), d(100).Add(6 * time.Hour), 60*day + 6*time.Hour},
		{"stale source does not", []string{"old"}, d(40), d(100), 40 * day},
		{"never seen", []string{"nope"}, d(0), d(100), 0},
		{"no sources", nil, d(0), d(100), 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Covered(spans, tt.sources, tt.from, tt.to, gap); got != tt.want {
				t.Errorf("Covered = %v, want %v", got, tt.want)
			}
		})
	}
}

// clientList serves clients to a sweep.
type clientList []store.Client

func (l clientList) ForEachClientUsage(fn func(*store.ClientUsage) error) error {
	for _, c := range l {
		u := c.Usage()
		if err := fn(&u); err != nil {
			return err
		}
	}
	return nil
}

func sweepConfig(t testing.TB) *rules.Config {
	t.Helper()
	cfg := &rules.Config{
		Detect: testDetect(),
		Sources: []rules.Source{
			{Name: "keycloak", Format: "keycloak", Path: "/var/log/keycloak/keycloak.log"},
			{Name: "fhir-gw", Format: "nginx-json", Path: "/var/log/nginx/fhir.json"},
		},
		Rules: policyRules(t),
	}
	cfg.Detect.UnusedScope.Window = rules.Duration(30 * day)
	cfg.Detect.UnusedScope.MinObservation = rules.Duration(10 * day)
	return cfg
}

func TestSweepUnusedIsCoverageAware(t *testing.T) {
	cfg := sweepConfig(t)
	now := t0.Add(60 * day)
	clock := func() time.Time { return now }
	fs := NewFindings(nil, nil, clock, nil)
	full := map[string][]store.Span{
		"keycloak": {{Start: t0, End: now}},
		"fhir-gw":  {{Start: t0, End: now}},
	}
	partial := map[string][]store.Span{
		"keycloak": {{Start: t0, End: now}},
		"fhir-gw":  {{Start: t0, End: now.Add(-20 * day)}, {Start: now.Add(-5 * day), End: now}},
	}
	clients := clientList{{
		ID:   "lab-portal",
		Seen: store.Counter{N: 100, First: t0, Last: now},
		Scopes: map[string]store.ScopeUsage{
			"openid":           {Granted: store.Counter{N: 9, First: t0, Last: now}, Used: store.Counter{N: 9, First: t0, Last: now}},
			"view_lab_results": {Granted: store.Counter{N: 9, First: t0, Last: now}, Used: store.Counter{N: 9, First: t0, Last: now}},
			"order_lab_tests":  {Granted: store.Counter{N: 9, First: t0, Last: now}},
		},
	}}
	k := store.FindingKey{Kind: rules.KindUnusedScope, Client: "lab-portal", Subject: "order_lab_tests"}

	sweep := func(spans map[string][]store.Span, cs clientList) {
		t.Helper()
		sw := NewSweeper(SweeperOptions{Config: cfg, Findings: fs, Coverage: NewCoverage(spans, 12*time.Hour), Live: true, Started: t0})
		if err := sw.Sweep(now, cs); err != nil {
			t.Fatal(err)
		}
	}
	// Fifteen days of the API log are missing: no claim either way.
	sweep(partial, clients)
	if f := fs.Get(k); f != nil {
		t.Fatalf("raised with 15 of 30 days covered: %+v", f)
	}
	sweep(full, clients)
	f := fs.Get(k)
	if f == nil || f.State != store.StateOpen || f.Evidence.Detail != StatusNeverUsed || f.Severity != store.SeverityWarning {
		t.Fatalf("with full coverage: %+v", f)
	}
	// A gap later does not resolve what was found.
	sweep(partial, clients)
	if f.State != store.StateOpen {
		t.Errorf("resolved by a coverage gap: %+v", f)
	}
	// An unchanged finding is not rewritten every sweep.
	b := store.NewBatch()
	fs.Flush(b)
	sweep(full, clients)
	b.Reset()
	fs.Flush(b)
	if _, ok := b.Findings[k]; ok {
		t.Error("an unchanged unused finding was written again")
	}
	// A day later it is confirmed: Last moves and it is written once.
	now = now.Add(25 * time.Hour)
	sweep(map[string][]store.Span{
		"keycloak": {{Start: t0, End: now}},
		"fhir-gw":  {{Start: t0, End: now}},
	}, clients)
	b.Reset()
	fs.Flush(b)
	if got, ok := b.Findings[k]; !ok || !got.Last.Equal(now) {
		t.Errorf("a day later: written %v, Last %v; want written with Last %v", ok, got.Last, now)
	}
	// The scope gets used: the finding resolves.
	used := clients[0]
	used.Scopes = map[string]store.ScopeUsage{
		"order_lab_tests": {Granted: store.Counter{N: 9, First: t0, Last: now}, Used: store.Counter{N: 1, First: now, Last: now}},
	}
	sweep(full, clientList{used})
	if f.State != store.StateResolved {
		t.Errorf("after use: %+v", f)
	}
}

func TestSweepStaleSourceAndResolveAfter(t *testing.T) {
	cfg := sweepConfig(t)
	now := t0.Add(60 * day)
	fs := NewFindings(nil, nil, func() time.Time { return now }, nil)
	geo := store.FindingKey{Kind: rules.KindUnfamiliarGeo, Client: "billing", Subject: "BR"}
	fs.Raise(geo, store.SeverityWarning, now.Add(-8*day), ingest.Position{})
	recent := store.FindingKey{Kind: rules.KindUnfamiliarGeo, Client: "billing", Subject: "AR"}
	fs.Raise(recent, store.SeverityWarning, now.Add(-6*day), ingest.Position{})
	cov := NewCoverage(map[string][]store.Span{
		"keycloak": {{Start: t0, End: now.Add(-2 * day)}},
		"fhir-gw":  {{Start: t0, End: now.Add(-time.Hour)}},
	}, 12*time.Hour)
	sw := NewSweeper(SweeperOptions{Config: cfg, Findings: fs, Coverage: cov, Live: true, Started: t0})
	if err := sw.Sweep(now, clientList{}); err != nil {
		t.Fatal(err)
	}
	if f := fs.Get(geo); f.State != store.StateResolved {
		t.Errorf("not seen for 8 days, resolve_after 7d: %+v", f)
	}
	if f := fs.Get(recent); f.State != store.StateOpen {
		t.Errorf("seen 6 days ago: %+v", f)
	}
	stale := fs.Get(store.FindingKey{Kind: rules.KindStaleSource, Subject: "keycloak"})
	if stale == nil || stale.State != store.StateOpen {
		t.Fatalf("stale keycloak: %+v", stale)
	}
	if fs.Get(store.FindingKey{Kind: rules.KindStaleSource, Subject: "fhir-gw"}) != nil {
		t.Error("fhir-gw, an hour quiet, reported stale")
	}
	cov.Observe("keycloak", now)
	if err := sw.Sweep(now, clientList{}); err != nil {
		t.Fatal(err)
	}
	if stale.State != store.StateResolved {
		t.Errorf("keycloak flowing again: %+v", stale)
	}
}

func TestSweepSeverityFollowsTheCondition(t *testing.T) {
	cfg := sweepConfig(t)
	now := t0.Add(60 * day)
	fs := NewFindings(nil, nil, func() time.Time { return now }, nil)
	spans := map[string][]store.Span{"keycloak": {{Start: t0, End: now}}, "fhir-gw": {{Start: t0, End: now}}}
	k := store.FindingKey{Kind: rules.KindUnusedScope, Client: "mychart-app", Subject: "patient/*.read"}
	c := store.Client{ID: "mychart-app", Seen: store.Counter{N: 9, First: t0, Last: now},
		Scopes: map[string]store.ScopeUsage{
			"patient/*.read":     {Granted: store.Counter{N: 9, First: t0, Last: now}},
			"fhir:Observation.r": {Used: store.Counter{N: 9, First: now.Add(-day), Last: now.Add(-day)}},
		}}
	sw := NewSweeper(SweeperOptions{Config: cfg, Findings: fs, Coverage: NewCoverage(spans, 12*time.Hour), Live: true, Started: t0})
	if err := sw.Sweep(now, clientList{c}); err != nil {
		t.Fatal(err)
	}
	if f := fs.Get(k); f == nil || f.Severity != store.SeverityInfo {
		t.Fatalf("broader than used: %+v", f)
	}
	c.Scopes["fhir:Observation.r"] = store.ScopeUsage{Used: store.Counter{N: 9, First: t0, Last: t0.Add(day)}}
	if err := sw.Sweep(now, clientList{c}); err != nil {
		t.Fatal(err)
	}
	if f := fs.Get(k); f.Severity != store.SeverityWarning || f.Evidence.Detail != StatusUnused {
		t.Errorf("no longer used: %+v", f)
	}
}

func TestSweepAfterDowntimeWaitsForTheBacklog(t *testing.T) {
	cfg := sweepConfig(t)
	now := t0.Add(60 * day)
	fs := NewFindings(nil, nil, func() time.Time { return now }, nil)
	geo := store.FindingKey{Kind: rules.KindUnfamiliarGeo, Client: "billing", Subject: "BR"}
	fs.Raise(geo, store.SeverityWarning, now.Add(-10*day), ingest.Position{})
	cov := NewCoverage(map[string][]store.Span{"keycloak": {{Start: t0, End: now.Add(-10 * day)}}}, 12*time.Hour)
	// The daemon was down for ten days and starts now.
	sw := NewSweeper(SweeperOptions{Config: cfg, Findings: fs, Coverage: cov, Live: true, Started: now})
	if err := sw.Sweep(now, clientList{}); err != nil {
		t.Fatal(err)
	}
	if f := fs.Get(geo); f.State != store.StateOpen {
		t.Errorf("resolved before the backlog was read: %+v", f)
	}
	if f := fs.Get(store.FindingKey{Kind: rules.KindStaleSource, Subject: "keycloak"}); f != nil {
		t.Errorf("stale before the backlog was read: %+v", f)
	}
}

func TestCoverageIsBounded(t *testing.T) {
	c := NewCoverage(nil, time.Hour)
	// A backfill read newest first: every event is older than the last.
	for i := 3 * store.MaxSpans; i > 0; i-- {
		c.Observe("kc", t0.Add(time.Duration(i)*2*time.Hour))
	}
	if n := len(c.Spans("kc")); n != store.MaxSpans {
		t.Errorf("%d spans kept, want %d", n, store.MaxSpans)
	}
}
