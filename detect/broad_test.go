package detect

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/scopewatch/scopewatch/ingest"
	"github.com/scopewatch/scopewatch/rules"
	"github.com/scopewatch/scopewatch/store"
)

// TestBroadRequestByStoreNumber feeds the same grants and refusals to
// detectors that observe each event after the accountant counted it, as
// the engine runs them (the scopes' verdicts found by the store's numbers
// of the scopes), and to detectors that observe them alone (found by
// name), and wants the same findings: wildcards, catalog lifecycles, an
// admin scope, scopes outside a role, scopes new for a formed client,
// names repeated in a request, and refusals of invented names.
func TestBroadRequestByStoreNumber(t *testing.T) {
	cfg := testDetect()
	r := policyRules(t)
	at := t0
	now := func() time.Time { return at }
	acc := NewAccountant(r, nil, nil)
	numbered := NewFindings(nil, nil, now, nil)
	withAcc := NewDetectors(DetectorOptions{Config: cfg, Rules: r, Known: acc.Known()}, numbered)
	named := NewFindings(nil, nil, now, nil)
	alone := NewDetectors(DetectorOptions{Config: cfg, Rules: r}, named)
	b := store.NewBatch()
	n := int64(0)
	feed := func(ev ingest.Event) {
		n++
		ev.Source, ev.Pos = "keycloak", ingest.Position{Source: "keycloak", Line: n, Offset: n * 100}
		ev.IP = netip.MustParseAddr("198.51.100.7")
		at = ev.Time
		e1, e2 := ev, ev
		acc.Apply(&e1, b)
		withAcc.Enrich(&e1)
		withAcc.Observe(&e1)
		alone.Enrich(&e2)
		alone.Observe(&e2)
	}
	step := time.Duration(rules.DefaultLearningPeriod) / time.Duration(rules.DefaultMinEvents-1)
	for _, c := range []string{"lab-portal", "rx-app", "svc-x"} {
		for i := range rules.DefaultMinEvents {
			feed(grant(c, t0.Add(time.Duration(i)*step), "openid", "view_lab_results"))
		}
	}
	later := t0.Add(time.Duration(rules.DefaultLearningPeriod) + time.Hour)
	requests := [][]string{
		{"openid", "patient/*.read", "view_lab_results", "patient/*.read"},
		{"read_all_data", "legacy_admin", "old_reports"},
		{"manage_users", "rx_refill", "patient/MedicationRequest.rs", "order_lab_tests"},
		{"system/*.cruds", "user/Observation.rs", "openid"},
	}
	// Twice over: the second round judges again, with the scopes the
	// first found clean for each client known to be (clientState.
	// judgedClean), and must raise the same findings as often.
	for round := range 2 {
		for i, scopes := range requests {
			for j, c := range []string{"lab-portal", "rx-app", "svc-x"} {
				ev := grant(c, later.Add(time.Duration(round*20+3*i+j)*time.Minute), scopes...)
				ev.Granted = append(slices.Clone(scopes), "extra_granted")
				feed(ev)
			}
		}
	}
	// Clean scopes still count towards max_scopes, and do not hide a new
	// one beside them.
	many := []string{"openid", "view_lab_results", "extra_granted", "order_lab_tests", "patient/Observation.rs"}
	for i := range 12 {
		many = append(many, fmt.Sprintf("lab_panel_%d", i))
	}
	for j, c := range []string{"lab-portal", "rx-app", "svc-x"} {
		feed(grant(c, later.Add(time.Duration(50+j)*time.Minute), many...))
		feed(grant(c, later.Add(time.Duration(55+j)*time.Minute), "openid", "view_lab_results", "fresh_scope"))
	}
	for i := range 5 {
		feed(ingest.Event{Kind: ingest.KindDeny, Client: "lab-portal", Time: later.Add(time.Duration(20+i) * time.Minute),
			Reason: "invalid_scope", Requested: []string{fmt.Sprintf("invented_%d", i), "patient/*.*", "legacy_admin"}, Granted: []string{"openid"}})
	}
	counts := func(fs *Findings) (out []string) {
		fs.Each(func(f *store.Finding) { out = append(out, fmt.Sprintf("%s|%s|%d", f.Client, f.Subject, f.Count)) })
		slices.Sort(out)
		return out
	}
	if got, want := counts(numbered), counts(named); !slices.Equal(got, want) {
		t.Fatalf("counts with the store's numbers:\n%q\nby name:\n%q", got, want)
	}
	got, want := findingsOf(numbered), findingsOf(named)
	if !slices.Equal(got, want) {
		t.Fatalf("findings with the store's numbers:\n%q\nby name:\n%q", got, want)
	}
	if len(want) < 10 {
		t.Fatalf("only %d findings: the events did not exercise the verdicts: %q", len(want), want)
	}
	if len(withAcc.broad.byNumber) == 0 || len(alone.broad.byNumber) != 0 {
		t.Errorf("verdicts by number: %d with the accountant, %d alone; want some, and none", len(withAcc.broad.byNumber), len(alone.broad.byNumber))
	}
}

// findingsOf lists fs's findings as key, severity, detail and summary,
// sorted.
func findingsOf(fs *Findings) []string {
	var out []string
	fs.Each(func(f *store.Finding) {
		out = append(out, fmt.Sprintf("%s|%s|%s|%s|%s|%s", f.Kind, f.Client, f.Subject, f.Severity, f.Evidence.Detail, f.Summary))
	})
	slices.Sort(out)
	return out
}

// TestBroadRequestBoundsMadeUpNames asks a registered client's IdP for a
// new made-up scope in each of 5,000 requests it grants less: the names
// the accountant does not keep (store.MaxAskedOnly) raise no finding of
// their own, while a wildcard and a catalog scope asked for past the
// bound still do.
func TestBroadRequestBoundsMadeUpNames(t *testing.T) {
	cfg := testDetect()
	r := policyRules(t)
	at := t0
	acc := NewAccountant(r, nil, nil)
	fs := NewFindings(nil, nil, func() time.Time { return at }, nil)
	d := NewDetectors(DetectorOptions{Config: cfg, Rules: r, Known: acc.Known()}, fs)
	b := store.NewBatch()
	feed := func(ev ingest.Event) {
		ev.Source = "keycloak"
		at = ev.Time
		acc.Apply(&ev, b)
		d.Enrich(&ev)
		d.Observe(&ev)
	}
	for i := range 5000 {
		ev := grant("lab-portal", t0.Add(time.Duration(i)*time.Second), fmt.Sprintf("made_up_%d", i), "openid")
		ev.Granted = []string{"openid"}
		feed(ev)
	}
	ev := grant("lab-portal", t0.Add(time.Hour*2), "patient/*.*", "legacy_admin", "openid")
	ev.Granted = []string{"openid"}
	feed(ev)
	var madeUp int
	var wildcard, catalog bool
	fs.Each(func(f *store.Finding) {
		switch {
		case strings.HasPrefix(f.Subject, "made_up_"):
			madeUp++
		case f.Subject == "patient/*.*":
			wildcard = true
		case f.Subject == "legacy_admin":
			catalog = true
		}
	})
	if madeUp != store.MaxAskedOnly || !wildcard || !catalog {
		t.Errorf("%d findings of made-up names (want %d, those the client keeps), wildcard %v, catalog %v (want both)",
			madeUp, store.MaxAskedOnly, wildcard, catalog)
	}
}
