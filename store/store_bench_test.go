package store

import (
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"testing"
	"time"
)

// benchWorkload generates batches shaped like production traffic: a fixed
// population of clients, each with its own handful of scopes, addresses and
// a home country; half the events are grants (every scope requested and
// granted), half are API uses of one scope.
type benchWorkload struct {
	rng     *rand.Rand
	zipf    *rand.Zipf // nil: clients drawn uniformly
	clients []string
	scopes  [][]string
	ips     [][]string
	now     time.Time
}

const (
	benchClients        = 1000
	benchScopesPer      = 5
	benchIPsPerClient   = 16
	benchCountriesTotal = 8
)

func newBenchWorkload() *benchWorkload {
	w := &benchWorkload{
		rng: rand.New(rand.NewPCG(1, 2)),
		now: time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC),
	}
	for i := range benchClients {
		w.clients = append(w.clients, fmt.Sprintf("client-%04d-ehr-integration", i))
		var sc, ips []string
		for j := range benchScopesPer {
			sc = append(sc, fmt.Sprintf("patient/Resource%d.rs", (i+j)%40))
		}
		for j := range benchIPsPerClient {
			ips = append(ips, fmt.Sprintf("10.%d.%d.%d", i/250, i%250, j))
		}
		w.scopes = append(w.scopes, sc)
		w.ips = append(w.ips, ips)
	}
	return w
}

var benchCountries = [benchCountriesTotal]string{"US", "CA", "GB", "DE", "FR", "NL", "IE", "SE"}

// fill folds n events into b the way detect does.
func (w *benchWorkload) fill(b *Batch, n int) {
	b.Reset()
	for i := range n {
		w.now = w.now.Add(time.Millisecond)
		ci := w.rng.IntN(benchClients)
		if w.zipf != nil {
			ci = int(w.zipf.Uint64())
		}
		c := b.Client(w.clients[ci])
		c.Seen.Add(1, w.now)
		c.SawIP(w.ips[ci][w.rng.IntN(benchIPsPerClient)], w.now)
		c.SawCountry(benchCountries[ci%benchCountriesTotal], w.now)
		if i%2 == 0 {
			for _, s := range w.scopes[ci] {
				u := c.Scope(s)
				u.Requested.Add(1, w.now)
				u.Granted.Add(1, w.now)
			}
		} else {
			c.Scope(w.scopes[ci][w.rng.IntN(benchScopesPer)]).Used.Add(1, w.now)
		}
		src := b.Source("keycloak")
		src.Lines++
		src.Events.Add(1, w.now)
		b.Events++
	}
	b.SetPosition(Position{
		Source: "keycloak", File: FileID{Dev: 2049, Ino: 1234567},
		HeadLen: HeadMax, HeadHash: 0xcbf29ce484222325,
		Offset: int64(b.Events) * 600, Line: int64(b.Events),
		Path: "/var/log/keycloak/keycloak.log", Size: int64(b.Events) * 600, ModTime: w.now,
	})
}

// BenchmarkCommit measures the storage cost per event of committing
// batches of events to a store that already knows every client. In the
// plain cases every event picks its client uniformly, so a 1000-event batch
// touches ~630 of the 1000 clients and rewrites nearly every page of the
// clients bucket: the worst case. The skewed cases draw clients from a Zipf
// distribution (s=1.2), nearer to real traffic where a few integrations
// dominate.
func BenchmarkCommit(b *testing.B) {
	for _, bc := range []struct {
		size   int
		skewed bool
	}{{100, false}, {1000, false}, {100, true}, {1000, true}} {
		name := fmt.Sprintf("batch_%d", bc.size)
		if bc.skewed {
			name += "_skewed"
		}
		size := bc.size
		b.Run(name, func(b *testing.B) {
			db, err := Open(filepath.Join(b.TempDir(), "bench.db"), Options{})
			if err != nil {
				b.Fatal(err)
			}
			defer db.Close()
			w := newBenchWorkload()
			batch := NewBatch()
			// Warm up uniformly: every client and scope exists, so the timed
			// commits measure the steady state of a running daemon.
			for range 4 * benchClients / size {
				w.fill(batch, size*5)
				if err := db.Commit(batch); err != nil {
					b.Fatal(err)
				}
			}
			if bc.skewed {
				w.zipf = rand.NewZipf(w.rng, 1.2, 1, benchClients-1)
			}
			b.ReportAllocs()
			st := db.bolt.Stats()
			io0 := st.TxStats.GetWriteTime()
			var events, clients int
			for b.Loop() {
				b.StopTimer()
				w.fill(batch, size)
				events += batch.Events
				clients += len(batch.Clients)
				b.StartTimer()
				if err := db.Commit(batch); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(events), "ns/event")
			b.ReportMetric(float64(clients)/float64(b.N), "clients/batch")
			// Page writes and fsyncs, to tell the disk's share from the CPU's.
			st = db.bolt.Stats()
			io := st.TxStats.GetWriteTime() - io0
			b.ReportMetric(float64(io.Nanoseconds())/float64(events), "io-ns/event")
		})
	}
}
