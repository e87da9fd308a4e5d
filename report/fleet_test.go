package report

import (
	"errors"
	"testing"
	"time"

	"github.com/scopewatch/scopewatch/detect"
	"github.com/scopewatch/scopewatch/store"
)

func TestFleetConflict(t *testing.T) {
	_, err := NewFleet([]string{"a:9464", "b:9464"}, [][]ClientView{{{ID: "portal"}}, {{ID: "lab"}, {ID: "portal"}}})
	var c *ConflictError
	if !errors.As(err, &c) || c.Client != "portal" || c.Peers != [2]string{"a:9464", "b:9464"} {
		t.Fatalf("NewFleet with portal on a and b: %v; want a ConflictError naming portal, a and b", err)
	}
}

// TestFleetUnused merges the reports of two instances: each client's
// entries from the instance holding it, a registered client no instance
// has seen once, and a client's stale entries from an instance that does
// not hold it dropped.
func TestFleetUnused(t *testing.T) {
	f, err := NewFleet([]string{"a", "b"}, [][]ClientView{{{ID: "portal"}}, {{ID: "lab"}}})
	if err != nil {
		t.Fatal(err)
	}
	never := detect.PendingClient{Client: "billing", ObservedFor: "never"}
	a := detect.UnusedReport{Window: "90d", MinObservation: "7d",
		Unused:  []detect.UnusedScope{{Client: "portal", Scope: "view_notes"}, {Client: "portal", Scope: "admin"}},
		Pending: []detect.PendingClient{never}}
	b := detect.UnusedReport{Window: "90d", MinObservation: "7d",
		Unused:  []detect.UnusedScope{{Client: "lab", Scope: "lab_results"}, {Client: "portal", Scope: "stale"}},
		Pending: []detect.PendingClient{never}}
	got, err := f.Unused([]detect.UnusedReport{a, b})
	if err != nil {
		t.Fatal(err)
	}
	var scopes []string
	for _, u := range got.Unused {
		scopes = append(scopes, u.Client+" "+u.Scope)
	}
	want := []string{"lab lab_results", "portal admin", "portal view_notes"}
	if len(scopes) != len(want) || scopes[0] != want[0] || scopes[1] != want[1] || scopes[2] != want[2] {
		t.Errorf("unused %q, want %q", scopes, want)
	}
	if len(got.Pending) != 1 || got.Pending[0] != never {
		t.Errorf("pending %+v, want billing once", got.Pending)
	}
	if got.Clients != 2 {
		t.Errorf("clients examined %d, want 2", got.Clients)
	}
	b.Window = "30d"
	if _, err := f.Unused([]detect.UnusedReport{a, b}); err == nil {
		t.Error("reports judged over 90d and 30d merged; want an error")
	}
}

// TestFleetFindings merges findings: about a client from its instance;
// about an address raised by two instances, as one.
func TestFleetFindings(t *testing.T) {
	f, err := NewFleet([]string{"a", "b"}, [][]ClientView{{{ID: "portal"}}, {{ID: "lab"}}})
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC)
	probe := func(state string, first, last time.Time, n uint64, sev string) FindingView {
		v := NewFindingView(store.Finding{FindingKey: store.FindingKey{Kind: "probing", Subject: "203.0.113.9"},
			State: state, First: first, Last: last, Count: n, Severity: sev, Summary: last.String()})
		return v
	}
	lab := NewFindingView(store.Finding{FindingKey: store.FindingKey{Kind: "burst", Client: "lab", Subject: "x"}, State: store.StateOpen})
	stale := NewFindingView(store.Finding{FindingKey: store.FindingKey{Kind: "burst", Client: "lab", Subject: "y"}, State: store.StateOpen})
	got := f.Findings([][]FindingView{
		{probe(store.StateResolved, t0, t0.Add(time.Hour), 3, store.SeverityWarning), stale},
		{probe(store.StateOpen, t0.Add(time.Minute), t0.Add(2*time.Hour), 4, store.SeverityHigh), lab},
	})
	if len(got) != 2 || got[0].Kind != "burst" || got[0].Subject != "x" || got[1].Kind != "probing" {
		t.Fatalf("findings %+v; want lab's burst x from b, then one probing", got)
	}
	p := got[1]
	if p.Count != 7 || !p.First.Equal(t0) || !p.Last.Equal(t0.Add(2*time.Hour)) || p.State != store.StateOpen ||
		p.Severity != store.SeverityHigh || p.Summary != t0.Add(2*time.Hour).String() {
		t.Errorf("merged probing %+v; want count 7 from t0 to t0+2h, open, high, the latest summary", p)
	}
}
