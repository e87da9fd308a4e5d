package detect

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/scopewatch/scopewatch/store"
)

// BenchmarkSweepMany measures a sweep of unused scopes over 10,000 stored
// clients holding 30 scopes each (the one that ends a scan), read from a
// bbolt file, each client with the store's bound of addresses, which the
// sweep leaves unread. Each client was granted every scope, and used all
// of them (few findings, as in the bench command's traffic) or a third
// (200,000 unused-scope findings, raised by a sweep before those measured
// and held again by each of them).
func BenchmarkSweepMany(b *testing.B) {
	for _, used := range []int{1, 3} {
		name := "all_used"
		if used > 1 {
			name = "third_used"
		}
		b.Run(name, func(b *testing.B) { benchmarkSweep(b, used) })
	}
}

func benchmarkSweep(b *testing.B, usedEvery int) {
	w := newBenchWorld(10_000, 30, 1024)
	db, err := store.Open(filepath.Join(b.TempDir(), "sweep.db"), store.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	state := store.NewState(db, 0)
	now := t0.Add(60 * day)
	for i := range w.clients {
		bc := &w.clients[i]
		c := state.Client(bc.id)
		c.Seen.Add(1, t0)
		c.Seen.Add(499, now)
		c.Issued.Add(100, now)
		for j, s := range bc.scopes {
			kinds := store.ScopeRequested | store.ScopeGranted
			if j%usedEvery == 0 {
				kinds |= store.ScopeUsed
			}
			c.CountScope(s, kinds, 1, t0)
			c.CountScope(s, kinds, 99, now)
		}
		for h := range store.MaxIPs {
			c.SawIP(w.addr(bc.homes[h%len(bc.homes)], h*7), now.Add(-time.Duration(h)*time.Minute))
		}
		c.SawCountry(w.nets[bc.homes[0]].country, now)
	}
	batch := store.NewBatch()
	state.Checkpoint(batch)
	if err := db.Commit(batch); err != nil {
		b.Fatal(err)
	}
	cfg := sweepConfig(b)
	spans := map[string][]store.Span{"keycloak": {{Start: t0, End: now}}, "fhir-gw": {{Start: t0, End: now}}}
	fs := NewFindings(nil, nil, func() time.Time { return now }, nil)
	sw := NewSweeper(SweeperOptions{Config: cfg, Findings: fs, Coverage: NewCoverage(spans, 12*time.Hour), Started: t0})
	// The first sweep raises the findings; the ones measured hold them,
	// as every sweep after it does.
	if err := sw.Sweep(now, db); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if err := sw.Sweep(now, db); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(len(w.clients))*float64(b.N)/b.Elapsed().Seconds(), "clients/s")
	raised := 0
	fs.Each(func(f *store.Finding) { raised++ })
	if usedEvery > 1 && raised == 0 {
		b.Fatal("the sweep raised no unused scope")
	}
}
