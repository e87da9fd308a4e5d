package detect

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"path/filepath"
	"runtime"
	"strconv"
	"testing"
	"time"

	"github.com/scopewatch/scopewatch/detect/geoip"
	"github.com/scopewatch/scopewatch/detect/geoip/geoiptest"
	"github.com/scopewatch/scopewatch/ingest"
	"github.com/scopewatch/scopewatch/rules"
	"github.com/scopewatch/scopewatch/store"
)

// benchWorld is the generated population of the detector benchmarks:
// clients with a formed baseline, each on a few public /24 networks of
// one country, spread over eight autonomous systems per country.
type benchWorld struct {
	clients []benchClient
	nets    []benchNet
	rules   *rules.Rules
}

type benchClient struct {
	id     string
	scopes []string
	homes  []int // indexes into nets
}

type benchNet struct {
	pfx     netip.Prefix
	country string
	asn     uint32
}

var benchCountries = []string{"US", "CA", "GB", "DE", "FR", "NL", "BR", "IN", "JP", "AU", "ZA", "SE"}

// benchScopes are narrow scopes no detector flags by name.
var benchScopes = func() []string {
	s := []string{"view_lab_results", "view_billing", "write_orders", "view_schedule", "write_schedule", "view_notes"}
	for _, r := range []string{"Observation", "Patient", "Condition", "Encounter", "MedicationRequest", "AllergyIntolerance",
		"Immunization", "Procedure", "DiagnosticReport", "DocumentReference", "CarePlan", "Goal", "Appointment", "Claim"} {
		s = append(s, "patient/"+r+".read", "user/"+r+".read", "user/"+r+".write")
	}
	return s
}()

// newBenchWorld makes n clients holding openid, profile and scopes-2
// narrow scopes, on 2 to 4 of nets networks.
func newBenchWorld(n, scopes, nets int) *benchWorld {
	r := rand.New(rand.NewPCG(3, 5))
	w := &benchWorld{nets: make([]benchNet, nets)}
	byCountry := map[string][]int{}
	for i := range w.nets {
		c := i % len(benchCountries)
		a := [4]byte{byte(20 + i%180), byte(i / 180), byte(i * 37), 0}
		w.nets[i] = benchNet{
			pfx:     netip.PrefixFrom(netip.AddrFrom4(a), 24),
			country: benchCountries[c],
			asn:     uint32(64512 + c*8 + (i/len(benchCountries))%8),
		}
		byCountry[benchCountries[c]] = append(byCountry[benchCountries[c]], i)
	}
	w.clients = make([]benchClient, n)
	for i := range w.clients {
		c := benchClient{id: fmt.Sprintf("client-%05d", i), scopes: []string{"openid", "profile"}}
		for _, j := range r.Perm(len(benchScopes))[:min(scopes-2, len(benchScopes))] {
			c.scopes = append(c.scopes, benchScopes[j])
		}
		local := byCountry[benchCountries[r.IntN(len(benchCountries))]]
		for _, j := range r.Perm(len(local))[:2+r.IntN(3)] {
			c.homes = append(c.homes, local[j])
		}
		w.clients[i] = c
	}
	w.rules = &rules.Rules{IdentityScopes: rules.DefaultIdentityScopes()}
	if err := w.rules.Compile(); err != nil {
		panic(err)
	}
	return w
}

// addr returns host h of network i.
func (w *benchWorld) addr(i, h int) netip.Addr {
	a := w.nets[i].pfx.Addr().As4()
	a[3] = byte(1 + h%254)
	return netip.AddrFrom4(a)
}

// record returns the stored record of client i as the store decodes it
// (its strings its own), with a history of 500 events over 60 days from
// t0, every scope requested and granted, and the store's bound of
// addresses on its home networks.
func (w *benchWorld) record(i int) store.Client {
	c := &w.clients[i]
	first, last := t0, t0.Add(60*day)
	cnt := func(n uint64) store.Counter { return store.Counter{N: n, First: first, Last: last} }
	rec := store.Client{
		ID:        string([]byte(c.id)),
		Seen:      cnt(500),
		Scopes:    make(map[string]store.ScopeUsage, len(c.scopes)),
		IPs:       make(map[string]store.Counter, store.MaxIPs),
		Countries: make(map[string]store.Counter),
	}
	for _, s := range c.scopes {
		rec.Scopes[string([]byte(s))] = store.ScopeUsage{Requested: cnt(100), Granted: cnt(100), Used: cnt(40)}
	}
	for h := range store.MaxIPs {
		n := c.homes[h%len(c.homes)]
		rec.IPs[w.addr(n, h*7).String()] = cnt(8)
		rec.Countries[string([]byte(w.nets[n].country))] = cnt(100)
	}
	return rec
}

// benchLocator places the addresses of the world's networks from a map
// keyed by /24, standing in for a GeoIP database with a network cache.
type benchLocator map[netip.Prefix]Place

func (w *benchWorld) locator() benchLocator {
	l := make(benchLocator, len(w.nets))
	for _, n := range w.nets {
		l[n.pfx] = Place{Country: n.country, ASN: n.asn, Network: n.pfx}
	}
	return l
}

func (l benchLocator) Locate(ip netip.Addr) Place {
	pfx, _ := ip.Prefix(24)
	return l[pfx]
}

// geoLocator places addresses with a geoip.DB, as the daemon does.
type geoLocator struct{ db *geoip.DB }

func (g geoLocator) Locate(ip netip.Addr) Place {
	i := g.db.Lookup(ip)
	return Place{Country: i.Country, ASN: i.ASN, Network: i.Network, Internal: i.Internal,
		Lat: i.Lat, Lon: i.Lon, RadiusKm: i.RadiusKm, Located: i.Located}
}

// detectors returns detectors with every client's baseline loaded.
func (w *benchWorld) detectors(loc Locator) *Detectors {
	now := t0.Add(61 * day)
	fs := NewFindings(nil, nil, func() time.Time { return now }, nil)
	d := NewDetectors(DetectorOptions{Config: testDetect(), Rules: w.rules, Locator: loc, ByASN: loc != nil}, fs)
	for i := range w.clients {
		d.Load(w.record(i))
	}
	return d
}

// events returns n events of the given kind from random clients on their
// home networks, after their baselines formed: grants carry openid and 4
// to 8 of the client's scopes.
func (w *benchWorld) events(n int, kind ingest.Kind) []ingest.Event {
	r := rand.New(rand.NewPCG(9, 9))
	evs := make([]ingest.Event, n)
	for i := range evs {
		c := &w.clients[r.IntN(len(w.clients))]
		ev := ingest.Event{
			Kind: kind, Source: "keycloak", Client: c.id, Subject: "8f2c1d-" + strconv.Itoa(i%5000),
			IP:  w.addr(c.homes[r.IntN(len(c.homes))], r.IntN(254)),
			Pos: ingest.Position{Source: "keycloak", Path: "/var/log/keycloak/keycloak.log", Line: int64(i + 1), Offset: int64(i+1) * 790},
		}
		switch kind {
		case ingest.KindGrant:
			ev.Type = "CODE_TO_TOKEN"
			ev.Granted = []string{c.scopes[0]}
			for _, j := range r.Perm(len(c.scopes) - 1)[:min(4+r.IntN(5), len(c.scopes)-1)] {
				ev.Granted = append(ev.Granted, c.scopes[1+j])
			}
		case ingest.KindUse:
			ev.Source, ev.Pos.Source = "api-gateway", "api-gateway"
			ev.Method, ev.Path, ev.Status = "GET", "/fhir/Observation/"+strconv.Itoa(1000+i), 200
		}
		evs[i] = ev
	}
	return evs
}

// mmdb returns a locator reading generated GeoIP City and ASN databases
// of the world's networks.
func (w *benchWorld) mmdb(b *testing.B) Locator {
	entries := make([]geoiptest.Entry, len(w.nets))
	for i, n := range w.nets {
		entries[i] = geoiptest.Entry{Network: n.pfx.String(), Country: n.country, ASN: n.asn, Org: "Example Networks " + strconv.Itoa(int(n.asn))}
	}
	dir := b.TempDir()
	city, asn := filepath.Join(dir, "city.mmdb"), filepath.Join(dir, "asn.mmdb")
	if err := geoiptest.WriteCity(city, entries); err != nil {
		b.Fatal(err)
	}
	if err := geoiptest.WriteASN(asn, entries); err != nil {
		b.Fatal(err)
	}
	db, err := geoip.Open(geoip.Options{Country: city, ASN: asn})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { db.Close() })
	return geoLocator{db}
}

// BenchmarkObserve measures the detectors' cost per event, as the engine
// pays it (Enrich, then Observe), on 1,000 clients with formed baselines
// and events from their familiar networks: the steady state.
func BenchmarkObserve(b *testing.B) {
	w := newBenchWorld(1000, 12, 1024)
	grants := w.events(4096, ingest.KindGrant)
	uses := w.events(4096, ingest.KindUse)
	flagged := w.events(4096, ingest.KindGrant)
	for i := range flagged {
		flagged[i].Granted = append(flagged[i].Granted, "admin") // a finding raised on every grant
	}
	mmdb := func(b *testing.B) Locator { return w.mmdb(b) }
	for _, bc := range []struct {
		name string
		evs  []ingest.Event
		loc  func(*testing.B) Locator
	}{
		{"grant", grants, func(*testing.B) Locator { return nil }},
		{"grant_flagged", flagged, func(*testing.B) Locator { return nil }},
		{"use", uses, func(*testing.B) Locator { return nil }},
		{"use_geo", uses, func(*testing.B) Locator { return w.locator() }},
		{"grant_geoip", grants, mmdb},
		{"use_geoip", uses, mmdb},
	} {
		b.Run(bc.name, func(b *testing.B) {
			d := w.detectors(bc.loc(b))
			at := t0.Add(61 * day)
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				ev := bc.evs[i%len(bc.evs)]
				ev.Time = at.Add(time.Duration(i) * time.Millisecond)
				d.Enrich(&ev)
				d.Observe(&ev)
				i++
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
		})
	}
}

// BenchmarkBaselineMemory builds the detectors' state for many clients
// from their stored records, as the daemon does at start, with two
// findings per client, and reports the Go heap it holds after a
// collection. The process's RSS adds the runtime, the store's mapped
// pages and the garbage between collections: `scopewatch bench --clients
// 10000 --scopes 30` measures that.
func BenchmarkBaselineMemory(b *testing.B) {
	for _, bc := range []struct {
		clients, scopes int
	}{
		{1000, 30},
		{10_000, 30},
	} {
		b.Run(fmt.Sprintf("%dk_clients_%d_scopes", bc.clients/1000, bc.scopes), func(b *testing.B) {
			w := newBenchWorld(bc.clients, bc.scopes, 1024)
			loc := w.locator()
			heap := func() uint64 {
				var ms runtime.MemStats
				runtime.GC()
				runtime.ReadMemStats(&ms)
				return ms.HeapAlloc
			}
			var dets, finds uint64
			for b.Loop() {
				before := heap()
				d := w.detectors(loc)
				mid := heap()
				existing := make([]store.Finding, 0, 2*len(w.clients))
				for i, c := range w.clients {
					for j, kind := range []string{rules.KindUnusedScope, rules.KindUnfamiliarGeo} {
						f := store.Finding{
							FindingKey: store.FindingKey{Kind: kind, Client: c.id, Subject: c.scopes[2+j]},
							Severity:   store.SeverityWarning, State: store.StateOpen, Count: 3,
							First: t0, Last: t0.Add(day), Opened: t0, Changed: t0,
							Summary: c.id + " holds " + c.scopes[2+j] + " and has never used it (held for 90 days).",
						}
						for l := range store.MaxEvidenceLines {
							f.Evidence.AddLine(store.LineRef{Source: "keycloak", Path: "/var/log/keycloak/keycloak.log", Line: int64(i*10 + l), Offset: int64(i*10+l) * 790})
						}
						existing = append(existing, f)
					}
				}
				fs := NewFindings(existing, nil, time.Now, nil)
				existing = nil
				after := heap()
				runtime.KeepAlive(d)
				runtime.KeepAlive(fs)
				dets, finds = mid-before, after-mid
			}
			b.ReportMetric(float64(dets)/(1<<20), "baseline-MiB")
			b.ReportMetric(float64(finds)/(1<<20), "findings-MiB")
			b.ReportMetric(float64(dets)/float64(bc.clients), "B/client")
		})
	}
}

// grants returns 65,536 grants of w's clients, drawn at random: each
// token carries its client's first scope and 3 to 7 of the others, drawn
// afresh each time, and a user of its own.
func (w *benchWorld) grants() []ingest.Event {
	r := rand.New(rand.NewPCG(11, 13))
	evs := make([]ingest.Event, 1<<16)
	for i := range evs {
		c := &w.clients[r.IntN(len(w.clients))]
		ev := ingest.Event{
			Kind: ingest.KindGrant, Type: "CODE_TO_TOKEN", Source: "keycloak", Client: c.id,
			Subject: fmt.Sprintf("%08x-4c1d-4e2a-9b7f-%012x", i, r.Uint64()>>16),
			IP:      w.addr(c.homes[r.IntN(len(c.homes))], r.IntN(254)),
			Granted: []string{c.scopes[0]},
			Pos:     ingest.Position{Source: "keycloak", Path: "/var/log/keycloak/keycloak.log", Line: int64(i + 1), Offset: int64(i+1) * 783},
		}
		for _, j := range r.Perm(len(c.scopes) - 1)[:3+r.IntN(5)] {
			ev.Granted = append(ev.Granted, c.scopes[1+j])
		}
		evs[i] = ev
	}
	return evs
}

// BenchmarkObserveMany measures the detectors' cost per grant on 10,000
// clients holding 30 scopes each, with a GeoIP City and ASN database and
// impossible travel on: tokens carry openid and 3 to 7 of the client's
// other scopes, drawn afresh each time, and a user of their own, so no
// request repeats the last and every user is new to impossible travel.
// The clients' state does not fit the processor's caches.
func BenchmarkObserveMany(b *testing.B) {
	w := newBenchWorld(10_000, 30, 1024)
	evs := w.grants()
	cfg := testDetect()
	cfg.ImpossibleTravel.SpeedKmh = rules.DefaultTravelSpeedKmh
	loc := w.mmdb(b)
	now := t0.Add(61 * day)
	fs := NewFindings(nil, nil, func() time.Time { return now }, nil)
	d := NewDetectors(DetectorOptions{Config: cfg, Rules: w.rules, Locator: loc, ByASN: true}, fs)
	for i := range w.clients {
		d.Load(w.record(i))
	}
	at := t0.Add(61 * day)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		ev := evs[i%len(evs)]
		ev.Time = at.Add(time.Duration(i) * time.Millisecond)
		d.Enrich(&ev)
		d.Observe(&ev)
		i++
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
}

// BenchmarkApplyMany measures the accounting of a grant on 10,000 clients
// holding 30 scopes each, as the engine's accounting goroutine does it:
// Apply into the clients' state, a checkpoint encoded every 50,000
// events (batch.max_events), and, in the detectors run, Enrich and
// Observe after each Apply. The events are BenchmarkObserveMany's. The
// accounting run is the engine without detectors (scan --no-detect).
func BenchmarkApplyMany(b *testing.B) {
	w := newBenchWorld(10_000, 30, 1024)
	evs := w.grants()
	for _, detectors := range []bool{false, true} {
		name := "accounting"
		if detectors {
			name = "detectors"
		}
		b.Run(name, func(b *testing.B) {
			acc := NewAccountant(w.rules, nil, nil)
			var d *Detectors
			if detectors {
				cfg := testDetect()
				cfg.ImpossibleTravel.SpeedKmh = rules.DefaultTravelSpeedKmh
				now := t0.Add(61 * day)
				fs := NewFindings(nil, nil, func() time.Time { return now }, nil)
				d = NewDetectors(DetectorOptions{Config: cfg, Rules: w.rules, Locator: w.mmdb(b), ByASN: true, Known: acc.Known()}, fs)
			}
			at := t0.Add(61 * day)
			batch := store.NewBatch()
			checkpoint := func() {
				acc.State().Checkpoint(batch)
				acc.State().Durable(batch.Gen)
				batch.Reset()
			}
			// Every client once, so that the runs measure a formed state.
			for i := range w.clients {
				ev := ingest.Event{Kind: ingest.KindGrant, Source: "keycloak", Client: w.clients[i].id, Time: at,
					IP: w.addr(w.clients[i].homes[0], 1), Granted: w.clients[i].scopes}
				acc.Apply(&ev, batch)
			}
			checkpoint()
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				ev := evs[i%len(evs)]
				ev.Time = at.Add(time.Duration(i) * time.Millisecond)
				if d != nil {
					d.Enrich(&ev)
				}
				acc.Apply(&ev, batch)
				if d != nil {
					d.Observe(&ev)
				}
				if i++; i%50_000 == 0 {
					checkpoint()
				}
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
		})
	}
}
