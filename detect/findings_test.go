package detect

import (
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/scopewatch/scopewatch/ingest"
	"github.com/scopewatch/scopewatch/rules"
	"github.com/scopewatch/scopewatch/store"
)

func TestFindingsLifecycle(t *testing.T) {
	now := t0
	m := NewFindingMetrics(nil)
	fs := NewFindings(nil, nil, func() time.Time { return now }, m)
	k := store.FindingKey{Kind: rules.KindUnfamiliarGeo, Client: "billing", Subject: "BR"}
	open := func() float64 {
		return testutil.ToFloat64(m.Open.WithLabelValues(rules.KindUnfamiliarGeo, store.SeverityWarning))
	}

	// Opened is the time of the event that opened it, an hour before the
	// clock (in a scan, the clock is the newest event of any reader).
	f := fs.Raise(k, store.SeverityWarning, t0.Add(-time.Hour), ingest.Position{Source: "okta", Line: 3})
	if f.State != store.StateOpen || f.Count != 1 || !f.Opened.Equal(t0.Add(-time.Hour)) || !f.Changed.Equal(now) || open() != 1 {
		t.Fatalf("after Raise: %+v, open gauge %v", f, open())
	}
	now = now.Add(time.Hour)
	fs.Raise(k, store.SeverityWarning, t0, ingest.Position{})
	if f.Count != 2 || !f.Last.Equal(t0) || !f.First.Equal(t0.Add(-time.Hour)) {
		t.Errorf("after second Raise: %+v", f)
	}
	fs.Resolve(k)
	if f.State != store.StateResolved || !f.Resolved.Equal(now) || open() != 0 {
		t.Errorf("after Resolve: %+v, open gauge %v", f, open())
	}
	now = now.Add(time.Hour)
	fs.Raise(k, store.SeverityHigh, t0.Add(2*time.Hour), ingest.Position{})
	if f.State != store.StateOpen || !f.Resolved.IsZero() || f.Count != 3 || f.Severity != store.SeverityHigh || !f.Opened.Equal(now) {
		t.Errorf("after reopening: %+v", f)
	}
	if got := testutil.ToFloat64(m.Raised.WithLabelValues(rules.KindUnfamiliarGeo, store.SeverityHigh)); got != 1 {
		t.Errorf("raised{high} = %v, want 1 (the reopening)", got)
	}
	// A milder sighting does not lower the severity.
	fs.Raise(k, store.SeverityInfo, t0.Add(3*time.Hour), ingest.Position{})
	if f.Severity != store.SeverityHigh {
		t.Errorf("severity fell to %s", f.Severity)
	}

	b := store.NewBatch()
	fs.Flush(b)
	got := b.Findings[k]
	fs.Raise(k, store.SeverityHigh, t0.Add(4*time.Hour), ingest.Position{Source: "okta", Line: 9})
	if got.Count != 4 || len(got.Evidence.Lines) != 1 {
		t.Errorf("the flushed copy changed with the finding: %+v", got)
	}
	if fs.Pending() != true {
		t.Error("a raise after a flush is not pending")
	}
}

func TestFindingsSilences(t *testing.T) {
	now := t0
	sil := []store.Silence{{ID: "s1", Client: "legacy-*", Kind: rules.KindUnusedScope, Expires: t0.Add(day), Reason: "retiring"}}
	fs := NewFindings(nil, sil, func() time.Time { return now }, nil)
	k := store.FindingKey{Kind: rules.KindUnusedScope, Client: "legacy-export", Subject: "read_all_data"}
	other := store.FindingKey{Kind: rules.KindUnusedScope, Client: "lab-portal", Subject: "read_all_data"}
	f := fs.Raise(k, store.SeverityWarning, t0, ingest.Position{})
	g := fs.Raise(other, store.SeverityWarning, t0, ingest.Position{})
	if f.State != store.StateSilenced || f.Silence != "s1" || g.State != store.StateOpen {
		t.Fatalf("silenced %+v, other %+v", f, g)
	}
	// The silence expires: the finding opens again.
	now = t0.Add(2 * day)
	b := store.NewBatch()
	fs.Flush(b)
	fs.ApplySilences()
	if f.State != store.StateOpen || f.Silence != "" {
		t.Errorf("after expiry: %+v", f)
	}
	fs.Flush(b)
	if b.Findings[k].State != store.StateOpen {
		t.Errorf("the reopening was not flushed: %+v", b.Findings[k])
	}
	// A silence added at run time applies at once.
	fs.SetSilences([]store.Silence{{ID: "s2", Subject: "read_all_*", Expires: now.Add(day), Reason: "x"}})
	if f.State != store.StateSilenced || g.State != store.StateSilenced || g.Silence != "s2" {
		t.Errorf("after SetSilences: %+v / %+v", f, g)
	}
}

func TestFindingsPrune(t *testing.T) {
	now := t0
	fs := NewFindings([]store.Finding{
		{FindingKey: store.FindingKey{Kind: rules.KindBroadRequest, Client: "a", Subject: "x"}, State: store.StateResolved, Resolved: t0.Add(-100 * day)},
		{FindingKey: store.FindingKey{Kind: rules.KindBroadRequest, Client: "b", Subject: "x"}, State: store.StateResolved, Resolved: t0.Add(-10 * day)},
		{FindingKey: store.FindingKey{Kind: rules.KindBroadRequest, Client: "c", Subject: "x"}, State: store.StateOpen, Last: t0.Add(-200 * day)},
	}, nil, func() time.Time { return now }, nil)
	fs.Prune(t0.Add(-90 * day))
	b := store.NewBatch()
	fs.Flush(b)
	if _, ok := b.DropFindings[store.FindingKey{Kind: rules.KindBroadRequest, Client: "a", Subject: "x"}]; !ok || len(b.DropFindings) != 1 {
		t.Errorf("dropped %v, want only client a's", b.DropFindings)
	}
	n := 0
	fs.Each(func(*store.Finding) { n++ })
	if n != 2 {
		t.Errorf("%d findings kept, want 2", n)
	}
}

func TestPseudonym(t *testing.T) {
	p := NewPseudonymiser([]byte("k1"))
	a, b := p.Pseudonym("alice@clinic.example"), p.Pseudonym("alice@clinic.example")
	if a != b || a == "alice@clinic.example" || len(a) != 2+32 {
		t.Errorf("pseudonyms %q, %q", a, b)
	}
	if NewPseudonymiser([]byte("k2")).Pseudonym("alice@clinic.example") == a {
		t.Error("another key gives the same pseudonym")
	}
	if p.Pseudonym("") != "" {
		t.Error("an empty subject got a pseudonym")
	}
}
