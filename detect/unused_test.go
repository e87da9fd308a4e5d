package detect

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/scopewatch/scopewatch/rules"
	"github.com/scopewatch/scopewatch/store"
)

const day = 24 * time.Hour

func counter(n uint64, first, last time.Time) store.Counter {
	return store.Counter{N: n, First: first, Last: last}
}

func TestUnused(t *testing.T) {
	now := time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)
	ago := func(days int) time.Time { return now.Add(-time.Duration(days) * day) }
	clients := []store.Client{
		{
			ID:   "lab-portal",
			Seen: counter(100, ago(200), ago(0)),
			Scopes: map[string]store.ScopeUsage{
				"view_lab_results": {Granted: counter(10, ago(200), ago(1)), Used: counter(50, ago(199), ago(1))},
				"read_all_data":    {Granted: counter(10, ago(200), ago(1))},                                      // never used
				"view_notes":       {Granted: counter(10, ago(200), ago(1)), Used: counter(3, ago(190), ago(95))}, // used, not lately
				"old_scope":        {Granted: counter(2, ago(200), ago(150)), Used: counter(0, time.Time{}, time.Time{})},
			},
		},
		{
			ID:     "new-app", // observed 10 days: not judged
			Seen:   counter(5, ago(10), ago(1)),
			Scopes: map[string]store.ScopeUsage{"admin": {Granted: counter(5, ago(10), ago(1))}},
		},
		{
			ID:     "billing", // registered scope never seen in a token
			Seen:   counter(40, ago(60), ago(2)),
			Scopes: map[string]store.ScopeUsage{"view_billing": {Granted: counter(4, ago(60), ago(2)), Used: counter(9, ago(59), ago(2))}},
		},
	}
	regs := map[string]rules.Client{
		"billing": {Owner: "finance", Role: "billing", Scopes: []string{"view_imaging"}},
		"dormant": {Owner: "nobody"},
		"new-app": {Owner: "x"},
	}
	rep := Unused(clients, UnusedOptions{
		Window: 90 * day, MinObservation: 30 * day, Registrations: regs,
		Now: func() time.Time { return now },
	})
	type row struct{ client, scope, status, idle string }
	var got []row
	for _, u := range rep.Unused {
		got = append(got, row{u.Client, u.Scope, u.Status, u.IdleFor})
	}
	want := []row{
		{"billing", "view_imaging", StatusNeverRequested, "60d"},
		{"lab-portal", "read_all_data", StatusNeverUsed, "200d"},
		{"lab-portal", "view_notes", StatusUnused, "95d"},
	}
	if len(got) != len(want) {
		t.Fatalf("unused = %+v, want %+v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("unused[%d] = %+v, want %+v", i, got[i], want[i])
		}
	}
	if !rep.Unused[0].Registered || rep.Unused[0].Owner != "finance" {
		t.Errorf("registered scope lost its registration: %+v", rep.Unused[0])
	}
	var pending []string
	for _, p := range rep.Pending {
		pending = append(pending, p.Client)
	}
	if len(pending) != 2 || pending[0] != "dormant" || pending[1] != "new-app" {
		t.Errorf("pending = %v, want [dormant new-app]", pending)
	}
	if rep.Window != "90d" || rep.MinObservation != "30d" {
		t.Errorf("window = %q, min_observation = %q", rep.Window, rep.MinObservation)
	}
}

func TestUnusedWindowEdges(t *testing.T) {
	now := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	tests := []struct {
		name       string
		lastGrant  time.Time
		lastUse    time.Time
		wantReport bool
	}{
		{"used exactly at window start counts as used", now.Add(-day), now.Add(-90 * day), false},
		{"used a second before window start is unused", now.Add(-day), now.Add(-90*day - time.Second), true},
		{"granted only before the window is not held any more", now.Add(-91 * day), time.Time{}, false},
		{"granted at window start is held", now.Add(-90 * day), time.Time{}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			u := store.ScopeUsage{Granted: counter(1, now.Add(-100*day), tt.lastGrant)}
			if !tt.lastUse.IsZero() {
				u.Used = counter(1, tt.lastUse, tt.lastUse)
			}
			c := store.Client{ID: "c", Seen: counter(1, now.Add(-100*day), now), Scopes: map[string]store.ScopeUsage{"s": u}}
			rep := Unused([]store.Client{c}, UnusedOptions{Window: 90 * day, MinObservation: 30 * day, Now: func() time.Time { return now }})
			if got := len(rep.Unused) == 1; got != tt.wantReport {
				t.Errorf("reported = %v, want %v (%+v)", got, tt.wantReport, rep.Unused)
			}
		})
	}
}

func TestUnusedNarrowsSMARTScopes(t *testing.T) {
	now := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	ago := func(days int) time.Time { return now.Add(-time.Duration(days) * day) }
	granted := counter(10, ago(200), ago(1))
	used := func(n uint64, last time.Time) store.ScopeUsage {
		return store.ScopeUsage{Used: counter(n, ago(199), last)}
	}
	c := store.Client{
		ID:   "mychart",
		Seen: counter(100, ago(200), ago(1)),
		Scopes: map[string]store.ScopeUsage{
			"patient/*.read":          {Granted: granted},
			"user/*.*":                {Granted: granted},
			"patient/Observation.rs":  {Granted: granted},
			"patient/Patient.read":    {Granted: granted},
			"system/*.read":           {Granted: granted},
			"patient/Encounter.read":  {Granted: granted}, // never used at all
			"patient/Observation.dus": {Granted: granted}, // out of order: reported as such
			// Only reads were seen: a write scope was never needed.
			"patient/Observation.write": {Granted: counter(4, ago(20), ago(1))},
			"fhir:Observation.r":        used(40, ago(2)),
			"fhir:Observation.s":        used(12, ago(3)),
			"fhir:Condition.r":          used(5, ago(4)),
			"fhir:Patient.r":            used(3, ago(120)), // before the window
		},
	}
	rep := Unused([]store.Client{c}, UnusedOptions{Window: 90 * day, MinObservation: 30 * day, Now: func() time.Time { return now }})
	type row struct {
		scope, status, narrower, lastUsed string
	}
	var got []row
	for _, u := range rep.Unused {
		got = append(got, row{u.Scope, u.Status, strings.Join(u.Narrower, " "), u.LastUsed.Format("2006-01-02")})
	}
	want := []row{
		{"patient/*.read", StatusBroader, "patient/Condition.r patient/Observation.rs", "2026-10-30"},
		{"patient/Encounter.read", StatusNeverUsed, "", "0001-01-01"},
		{"patient/Observation.dus", StatusInvalid, "", "0001-01-01"},
		{"patient/Observation.write", StatusNeverUsed, "", "0001-01-01"},
		{"patient/Patient.read", StatusUnused, "", "2026-07-04"},
		// The log does not show the token's launch context, so every grant
		// that would have allowed the calls counts as used by them.
		{"system/*.read", StatusBroader, "system/Condition.r system/Observation.rs", "2026-10-30"},
		{"user/*.*", StatusBroader, "user/Condition.r user/Observation.rs", "2026-10-30"},
	}
	if !slices.Equal(got, want) {
		t.Errorf("report rows:\n got %+v\nwant %+v", got, want)
	}
	for _, u := range rep.Unused {
		switch u.Scope {
		case "patient/Observation.write":
			if u.IdleFor != "20d" || u.Uses != 0 {
				t.Errorf("%s: idle %s, uses %d; want idle since its first grant (20d), no uses", u.Scope, u.IdleFor, u.Uses)
			}
		case "patient/*.read":
			if u.Uses != 60 {
				t.Errorf("%s: uses %d, want the 60 FHIR calls it would have allowed", u.Scope, u.Uses)
			}
		}
	}
}
