package engine

import (
	"fmt"
	"testing"
	"time"

	"github.com/scopewatch/scopewatch/detect"
	"github.com/scopewatch/scopewatch/ingest"
	"github.com/scopewatch/scopewatch/store"
)

// TestEngineBoundsClientsInMemory feeds grants of 200 clients, round and
// round, through an engine whose State may hold 20: the clients held stay
// within the bound (plus the quarter that forces a checkpoint), clients
// are evicted and read back all along, and every grant is counted.
func TestEngineBoundsClientsInMemory(t *testing.T) {
	db := openTestDB(t)
	const clients, rounds, bound = 200, 5, 20
	state := store.NewState(db, bound)
	var most int
	m := NewMetrics(nil)
	e := New(Options{
		Parsers: testParsers(t), Accountant: detect.NewAccountant(loadTestRules(t), nil, state), Store: db,
		MaxEvents: 50, MaxDelay: time.Hour, Metrics: m,
		taken: func() { most = max(most, state.Len()) },
	})
	in := make(chan ingest.Line, clients*rounds)
	for i := range clients * rounds {
		in <- line("idp", 1, int64(100*(i+1)), int64(i+1), fmt.Sprintf(
			`{"ts":"2026-10-01T10:%02d:%02dZ","type":"token","client":"app-%03d","scope":"openid view_lab_results"}`,
			i/60%60, i%60, i%clients))
	}
	close(in)
	if err := e.Run(t.Context(), in); err != nil {
		t.Fatal(err)
	}
	if limit := bound + bound/4 + 1; most > limit {
		t.Errorf("held %d clients at most, want at most %d", most, limit)
	}
	evicted, loaded := state.Stats()
	t.Logf("held %d clients at most; evicted %d, read back %d", most, evicted, loaded)
	if evicted == 0 || loaded == 0 {
		t.Errorf("evicted %d, loaded back %d: the bound never bit", evicted, loaded)
	}
	cs, err := db.Clients()
	if err != nil {
		t.Fatal(err)
	}
	if len(cs) != clients {
		t.Fatalf("%d clients stored, want %d", len(cs), clients)
	}
	for _, c := range cs {
		if c.Issued.N != rounds || c.Scopes["view_lab_results"].Granted.N != rounds {
			t.Fatalf("%s: issued %d, granted %d; want %d each", c.ID, c.Issued.N, c.Scopes["view_lab_results"].Granted.N, rounds)
		}
	}
}
