package store

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"path/filepath"
	"runtime"
	"testing"
	"time"
)

// benchWorkload generates batches shaped like production traffic: a fixed
// population of clients, each with its own handful of scopes, addresses and
// a home country; half the events are grants (every scope requested and
// granted), half are API uses of one scope.
//
// In grants mode every event is a grant of all of the client's scopes from
// an address drawn from a large pool, as `scopewatch bench` generates: the
// address sets fill up to MaxIPs and then every new address evicts one.
type benchWorkload struct {
	rng     *rand.Rand
	zipf    *rand.Zipf // nil: clients drawn uniformly
	clients []string
	scopes  [][]string
	ips     [][]netip.Addr
	grants  bool
	ipPool  []netip.Addr // grants mode: addresses shared by all clients
	now     time.Time
}

const (
	benchClients        = 1000
	benchScopesPer      = 5
	benchGrantScopesPer = 7 // `scopewatch bench` grants each client up to 7 scopes
	benchIPsPerClient   = 16
	benchCountriesTotal = 8
	benchIPPool         = 1 << 16
)

func newBenchWorkload(grants bool) *benchWorkload {
	scopesPer := benchScopesPer
	if grants {
		scopesPer = benchGrantScopesPer
	}
	w := &benchWorkload{
		rng: rand.New(rand.NewPCG(1, 2)),
		now: time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC),
	}
	for i := range benchClients {
		w.clients = append(w.clients, fmt.Sprintf("client-%04d-ehr-integration", i))
		var sc []string
		var ips []netip.Addr
		for j := range scopesPer {
			sc = append(sc, fmt.Sprintf("patient/Resource%d.rs", (i+j)%40))
		}
		for j := range benchIPsPerClient {
			ips = append(ips, netip.AddrFrom4([4]byte{10, byte(i / 250), byte(i % 250), byte(j)}))
		}
		w.scopes = append(w.scopes, sc)
		w.ips = append(w.ips, ips)
	}
	if grants {
		w.grants = true
		for range benchIPPool {
			w.ipPool = append(w.ipPool, netip.AddrFrom4([4]byte{10, byte(w.rng.IntN(4)), byte(w.rng.IntN(256)), byte(1 + w.rng.IntN(254))}))
		}
	}
	return w
}

var benchCountries = [benchCountriesTotal]string{"US", "CA", "GB", "DE", "FR", "NL", "IE", "SE"}

// fill folds n events into st and b the way detect does.
func (w *benchWorkload) fill(st *State, b *Batch, n int) {
	b.Reset()
	for i := range n {
		w.now = w.now.Add(time.Millisecond)
		ci := w.rng.IntN(benchClients)
		if w.zipf != nil {
			ci = int(w.zipf.Uint64())
		}
		c := st.Client(w.clients[ci])
		c.Seen.Add(1, w.now)
		if w.grants {
			c.SawIP(w.ipPool[w.rng.IntN(benchIPPool)], w.now)
		} else {
			c.SawIP(w.ips[ci][w.rng.IntN(benchIPsPerClient)], w.now)
		}
		c.SawCountry(benchCountries[ci%benchCountriesTotal], w.now)
		if w.grants || i%2 == 0 {
			for _, s := range w.scopes[ci] {
				c.CountScope(s, ScopeRequested|ScopeGranted, 1, w.now)
			}
		} else {
			c.CountScope(w.scopes[ci][w.rng.IntN(benchScopesPer)], ScopeUsed, 1, w.now)
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

// BenchmarkCommit measures the storage cost per event of checkpointing
// the clients that batches of events changed and committing them to a
// store that already knows every client. In the
// plain cases every event picks its client uniformly, so a 1000-event batch
// touches ~630 of the 1000 clients and rewrites nearly every page of the
// clients bucket: the worst case. The skewed cases draw clients from a Zipf
// distribution (s=1.2), nearer to real traffic where a few integrations
// dominate. The grants case is the daemon's hot case under `scopewatch
// bench`: every event grants a client its 7 scopes, clients uniform, and
// the warm-up fills every client's address set to MaxIPs.
func BenchmarkCommit(b *testing.B) {
	for _, bc := range []struct {
		size   int
		skewed bool
		grants bool
	}{{100, false, false}, {1000, false, false}, {100, true, false}, {1000, true, false}, {1000, false, true}} {
		name := fmt.Sprintf("batch_%d", bc.size)
		if bc.skewed {
			name += "_skewed"
		}
		if bc.grants {
			name += "_grants"
		}
		size := bc.size
		b.Run(name, func(b *testing.B) {
			db, err := Open(filepath.Join(b.TempDir(), "bench.db"), Options{})
			if err != nil {
				b.Fatal(err)
			}
			defer db.Close()
			w := newBenchWorkload(bc.grants)
			batch := NewBatch()
			state := NewState(db, 0)
			// Warm up uniformly: every client and scope exists, so the timed
			// commits measure the steady state of a running daemon. In grants
			// mode each client sees ~100 addresses, more than MaxIPs.
			warmup := 4 * benchClients / size
			if bc.grants {
				warmup = 20 * benchClients / size
			}
			for range warmup {
				w.fill(state, batch, size*5)
				state.Checkpoint(batch)
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
				w.fill(state, batch, size)
				events += batch.Events
				b.StartTimer()
				state.Checkpoint(batch)
				clients += len(batch.Records)
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

// BenchmarkStateMemory reports the Go heap a State holds for 10,000
// clients, each with 30 scopes and a full set of MaxIPs addresses and
// three countries: the worst case of the bench's 10,000-client traffic.
func BenchmarkStateMemory(b *testing.B) {
	const clients, scopes = 10_000, 30
	for b.Loop() {
		runtime.GC()
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		st := NewState(nil, 0)
		now := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
		for i := range clients {
			c := st.Client(fmt.Sprintf("client-%05d-ehr-integration", i))
			c.Seen.Add(1, now)
			for s := range scopes {
				c.CountScope(fmt.Sprintf("patient/Resource%d.rs", (i+s)%60), ScopeRequested|ScopeGranted, 1, now)
			}
			for j := range MaxIPs {
				c.SawIP(netip.AddrFrom4([4]byte{10, byte(i >> 8), byte(i), byte(j)}), now)
			}
			for _, cc := range []string{"US", "CA", "GB"} {
				c.SawCountry(cc, now)
			}
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/(1<<20), "MiB")
		b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/clients, "B/client")
		runtime.KeepAlive(st)
	}
}

// BenchmarkSawIPChurn measures a client's address set when every event
// brings an address not seen before to a full set, as with clients whose
// users come from many hosts: the least recently seen goes, and the new
// one takes its place in the order.
func BenchmarkSawIPChurn(b *testing.B) {
	st := NewState(nil, 0)
	cs := make([]*ClientState, 1000)
	for i := range cs {
		cs[i] = st.Client(fmt.Sprintf("client-%04d", i))
	}
	t := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	i := 0
	for b.Loop() {
		c := cs[i%len(cs)]
		c.SawIP(netip.AddrFrom4([4]byte{byte(20 + i%3), byte(i >> 16), byte(i >> 8), byte(i)}), t.Add(time.Duration(i)*time.Millisecond))
		i++
	}
}
