package detect

import (
	"maps"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/scopewatch/scopewatch/ingest"
	"github.com/scopewatch/scopewatch/rules"
	"github.com/scopewatch/scopewatch/store"
)

func TestAccountantFHIRUses(t *testing.T) {
	acc := NewAccountant(loadTestRules(t), map[string]string{"fhir-gw": "/fhir"}, nil)
	acc.Known().Issue("app") // issued a token before: its uses count
	b := store.NewBatch()
	at := time.Date(2026, 10, 1, 0, 0, 0, 0, time.UTC)
	use := func(method, path string, status int) Outcome {
		return acc.Apply(&ingest.Event{Time: at, Source: "fhir-gw", Kind: ingest.KindUse, Client: "app",
			Method: method, Path: path, Status: status}, b)
	}
	for _, tt := range []struct {
		method, path string
		status       int
		want         Outcome
	}{
		{"GET", "/fhir/Observation/1", 200, Counted},
		{"GET", "/fhir/Observation", 200, Counted},
		{"GET", "/fhir/Observation/2", 0, Counted},
		{"POST", "/fhir/Condition", 201, Counted},
		{"GET", "/fhir/Patient/1", 403, Refused},
		{"GET", "/fhir/metadata", 200, Unmapped},
		{"GET", "/other/thing", 200, Unmapped},
	} {
		if got := use(tt.method, tt.path, tt.status); got != tt.want {
			t.Errorf("%s %s %d: outcome %d, want %d", tt.method, tt.path, tt.status, got, tt.want)
		}
	}
	got := map[string]uint64{}
	acc.State().Checkpoint(b)
	db := checkpointed(t, b)
	c, _, err := db.Client("app")
	if err != nil {
		t.Fatal(err)
	}
	for name, u := range c.Scopes {
		got[name] = u.Used.N
	}
	want := map[string]uint64{"fhir:Observation.r": 2, "fhir:Observation.s": 1, "fhir:Condition.c": 1}
	if !maps.Equal(got, want) {
		t.Errorf("recorded uses = %v, want %v", got, want)
	}
}

const testRules = `
routes:
  - {method: GET, path: "/api/labs/{id}", scopes: [view_lab_results]}
  - {method: POST, path: /api/orders, scopes: [write_orders]}
identity_scopes: [openid]
`

func loadTestRules(t *testing.T) *rules.Rules {
	t.Helper()
	p := filepath.Join(t.TempDir(), "rules.yaml")
	if err := os.WriteFile(p, []byte(testRules), 0o600); err != nil {
		t.Fatal(err)
	}
	r, err := rules.LoadRules(p)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// checkpointed commits b to a new store and returns the store.
func checkpointed(t *testing.T, b *store.Batch) *store.DB {
	t.Helper()
	db, err := store.Open(filepath.Join(t.TempDir(), "s.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	if err := db.Commit(b); err != nil {
		t.Fatal(err)
	}
	return db
}
