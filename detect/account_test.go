package detect

import (
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
