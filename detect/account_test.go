package detect

import (
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/scopewatch/scopewatch/ingest"
	"github.com/scopewatch/scopewatch/rules"
	"github.com/scopewatch/scopewatch/store"
)

// TestAccountantIdentityScopesUsedOnGrant grants two clients identity
// scopes and others, several times and in different orders, and wants
// each identity scope counted as used by every grant that names it and
// the others never: the answer is kept per scope after the first.
func TestAccountantIdentityScopesUsedOnGrant(t *testing.T) {
	r := &rules.Rules{IdentityScopes: []string{"openid", "profile"}}
	if err := r.Compile(); err != nil {
		t.Fatal(err)
	}
	acc := NewAccountant(r, nil, nil)
	b := store.NewBatch()
	at := time.Date(2026, 10, 1, 0, 0, 0, 0, time.UTC)
	grants := map[string][][]string{
		"app-a": {{"openid", "view_lab_results"}, {"view_lab_results", "profile", "openid"}, {"openid"}},
		"app-b": {{"write_orders", "profile"}, {"profile", "write_orders"}},
	}
	for client, lists := range grants {
		for i, scopes := range lists {
			acc.Apply(&ingest.Event{Time: at.Add(time.Duration(i) * time.Minute), Source: "keycloak", Kind: ingest.KindGrant,
				Client: client, Granted: scopes}, b)
		}
	}
	acc.State().Checkpoint(b)
	db := checkpointed(t, b)
	want := map[string]map[string][2]uint64{ // scope → granted, used
		"app-a": {"openid": {3, 3}, "profile": {1, 1}, "view_lab_results": {2, 0}},
		"app-b": {"profile": {2, 2}, "write_orders": {2, 0}},
	}
	for client, scopes := range want {
		c, ok, err := db.Client(client)
		if err != nil || !ok {
			t.Fatalf("client %s: %v %v", client, ok, err)
		}
		if len(c.Scopes) != len(scopes) {
			t.Errorf("%s holds %d scopes, want %d: %v", client, len(c.Scopes), len(scopes), c.Scopes)
		}
		for s, w := range scopes {
			u := c.Scopes[s]
			if got := [2]uint64{u.Granted.N, u.Used.N}; got != w {
				t.Errorf("%s %s: granted, used %v, want %v", client, s, got, w)
			}
		}
	}
}

// TestAccountantBoundsAskedScopes asks for a new made-up scope in each of
// 20,000 refusals and 20,000 grants of a registered client: the client
// keeps store.MaxAskedOnly of them, and a scope asked for and granted by
// the same event is counted whole past the bound.
func TestAccountantBoundsAskedScopes(t *testing.T) {
	st := store.NewState(nil, 0)
	acc := NewAccountant(policyRules(t), nil, st)
	b := store.NewBatch()
	const n = 20000
	for i := range n {
		at := t0.Add(time.Duration(i) * time.Second)
		deny := ingest.Event{Kind: ingest.KindDeny, Source: "keycloak", Client: "lab-portal", Time: at, Reason: "invalid_scope",
			Requested: []string{fmt.Sprintf("invented_%d", i)}}
		acc.Apply(&deny, b)
		less := grant("lab-portal", at, fmt.Sprintf("asked_%d", i), "openid")
		less.Source, less.Granted = "keycloak", []string{"openid"}
		acc.Apply(&less, b)
	}
	both := grant("lab-portal", t0.Add(n*time.Second), "view_lab_results")
	both.Source = "keycloak"
	acc.Apply(&both, b)
	if got, want := st.NotKept(), uint64(2*n-store.MaxAskedOnly); got != want {
		t.Errorf("NotKept = %d, want %d", got, want)
	}
	st.Checkpoint(b)
	t.Logf("record %d bytes, %d scope names numbered", len(b.Records[0].Value), len(b.ScopeNames))
	if len(b.Records) != 1 || len(b.ScopeNames) != store.MaxAskedOnly+2 || len(b.Records[0].Value) > 2048 {
		t.Fatalf("%d records, the first %d bytes, %d names numbered; want 1, at most 2 KiB, %d",
			len(b.Records), len(b.Records[0].Value), len(b.ScopeNames), store.MaxAskedOnly+2)
	}
	db, err := store.Open(filepath.Join(t.TempDir(), "s.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.Commit(b); err != nil {
		t.Fatal(err)
	}
	c, ok, err := db.Client("lab-portal")
	if err != nil || !ok {
		t.Fatal(ok, err)
	}
	if u := c.Scopes["openid"]; u.Requested.N != n || u.Granted.N != n {
		t.Errorf("openid %+v; want asked for and granted %d times", u, n)
	}
	if u := c.Scopes["view_lab_results"]; u.Requested.N != 1 || u.Granted.N != 1 {
		t.Errorf("view_lab_results %+v, past the bound; want asked for and granted once", u)
	}
	if u, ok := c.Scopes["asked_19999"]; ok {
		t.Errorf("the last made-up name is kept: %+v", u)
	}
}
