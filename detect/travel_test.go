package detect

import (
	"net/netip"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/scopewatch/scopewatch/ingest"
	"github.com/scopewatch/scopewatch/rules"
	"github.com/scopewatch/scopewatch/store"
)

// travelWorld places networks in Boston, New York (300 km from Boston),
// Frankfurt (5,900 km), and one without a location.
var travelWorld = places{
	netip.MustParsePrefix("198.51.100.0/24"): {Country: "US", ASN: 64500, Lat: 42.36, Lon: -71.06, RadiusKm: 10, Located: true},
	netip.MustParsePrefix("192.0.2.0/24"):    {Country: "US", ASN: 64501, Lat: 40.71, Lon: -74.01, RadiusKm: 10, Located: true},
	netip.MustParsePrefix("203.0.113.0/24"):  {Country: "DE", ASN: 64502, Lat: 50.11, Lon: 8.68, RadiusKm: 20, Located: true},
	netip.MustParsePrefix("93.184.0.0/16"):   {Country: "DE", ASN: 64504},
}

// travelHarness returns detectors whose two clients formed their
// baselines in Boston, and the first moment after that: only networks
// seen later are new to them.
func travelHarness(t *testing.T, cfg rules.Detect) (*harness, time.Time) {
	h := newHarness(t, cfg, travelWorld)
	var at time.Time
	for _, c := range []string{"mychart-app", "lab-portal"} {
		seen(h, "", c, "198.51.100.2", t0)
		at = h.warm(c)
	}
	return h, at
}

func seen(h *harness, subject, client, ip string, at time.Time) {
	ev := use(client, ip, at)
	ev.Subject = subject
	h.observe(ev)
}

func TestImpossibleTravel(t *testing.T) {
	cfg := testDetect()
	cfg.ImpossibleTravel.SpeedKmh = rules.DefaultTravelSpeedKmh
	t.Run("Boston then Frankfurt an hour later", func(t *testing.T) {
		h, at := travelHarness(t, cfg)
		seen(h, "p-3f2a", "mychart-app", "198.51.100.7", at)
		seen(h, "p-3f2a", "mychart-app", "203.0.113.9", at.Add(time.Hour))
		f := h.fs.Get(store.FindingKey{Kind: rules.KindImpossibleTravel, Client: "mychart-app", Subject: "p-3f2a"})
		if f == nil || f.Severity != store.SeverityHigh {
			t.Fatalf("no high impossible_travel finding: %v", h.keys())
		}
		if !strings.Contains(f.Evidence.Detail, "from US to DE") || f.Evidence.IP != "203.0.113.9" {
			t.Errorf("evidence = %+v", f.Evidence)
		}
	})
	t.Run("Boston then Frankfurt a day later", func(t *testing.T) {
		h, at := travelHarness(t, cfg)
		seen(h, "p-3f2a", "mychart-app", "198.51.100.7", at)
		seen(h, "p-3f2a", "mychart-app", "203.0.113.9", at.Add(24*time.Hour))
		h.wantNo(t, rules.KindImpossibleTravel)
	})
	t.Run("Boston then New York two hours later", func(t *testing.T) {
		// 300 km, less 20 km of radii, in two hours: 140 km/h.
		h, at := travelHarness(t, cfg)
		seen(h, "p-3f2a", "mychart-app", "198.51.100.7", at)
		seen(h, "p-3f2a", "mychart-app", "192.0.2.1", at.Add(2*time.Hour))
		h.wantNo(t, rules.KindImpossibleTravel)
	})
	t.Run("between familiar networks", func(t *testing.T) {
		// A service in two regions from its first day: both are in its
		// baseline, and it moves between them all day.
		h := newHarness(t, cfg, travelWorld)
		seen(h, "", "lab-portal", "198.51.100.2", t0)
		seen(h, "", "lab-portal", "203.0.113.2", t0.Add(time.Minute))
		at := h.warm("lab-portal")
		seen(h, "", "lab-portal", "198.51.100.2", at)
		seen(h, "", "lab-portal", "203.0.113.2", at.Add(time.Minute))
		h.wantNo(t, rules.KindImpossibleTravel)
	})
	t.Run("two subjects of one client are apart", func(t *testing.T) {
		h, at := travelHarness(t, cfg)
		seen(h, "p-3f2a", "mychart-app", "198.51.100.7", at)
		seen(h, "p-77c1", "mychart-app", "203.0.113.9", at.Add(time.Minute))
		h.wantNo(t, rules.KindImpossibleTravel)
	})
	t.Run("a client without a subject travels as itself", func(t *testing.T) {
		h, at := travelHarness(t, cfg)
		seen(h, "", "lab-portal", "198.51.100.7", at)
		seen(h, "", "lab-portal", "203.0.113.9", at.Add(time.Hour))
		if f := h.fs.Get(store.FindingKey{Kind: rules.KindImpossibleTravel, Client: "lab-portal", Subject: "client lab-portal"}); f == nil {
			t.Errorf("no finding for the client: %v", h.keys())
		}
	})
	t.Run("no location, no judgement", func(t *testing.T) {
		h, at := travelHarness(t, cfg)
		seen(h, "p-3f2a", "mychart-app", "198.51.100.7", at)
		seen(h, "p-3f2a", "mychart-app", "93.184.216.34", at.Add(time.Minute))
		h.wantNo(t, rules.KindImpossibleTravel)
	})
	t.Run("an allowlisted network is exempt", func(t *testing.T) {
		c := cfg
		c.UnfamiliarGeo.AllowPrefixes = []netip.Prefix{netip.MustParsePrefix("203.0.113.0/24")}
		h, at := travelHarness(t, c)
		seen(h, "p-3f2a", "mychart-app", "198.51.100.7", at)
		seen(h, "p-3f2a", "mychart-app", "203.0.113.9", at.Add(time.Hour))
		h.wantNo(t, rules.KindImpossibleTravel)
	})
	t.Run("refusals do not travel", func(t *testing.T) {
		h, at := travelHarness(t, cfg)
		seen(h, "p-3f2a", "mychart-app", "198.51.100.7", at)
		h.observe(ingest.Event{Kind: ingest.KindDeny, Client: "mychart-app", Subject: "p-3f2a", Time: at.Add(time.Hour),
			IP: netip.MustParseAddr("203.0.113.9"), Reason: "invalid_scope"})
		h.wantNo(t, rules.KindImpossibleTravel)
	})
}

// wantNo fails if a finding of kind stands.
func (h *harness) wantNo(t *testing.T, kind string) {
	t.Helper()
	for k := range h.keys() {
		if strings.HasPrefix(k, kind+"/") {
			t.Errorf("unexpected %s", k)
		}
	}
}

// TestTravellersBounded fills the table past maxTravellers: it holds
// maxTravellers, forgets the oldest of a shard first, and a flush and
// restore give back the same table, oldest first.
func TestTravellersBounded(t *testing.T) {
	ts := travellers{prefix: winTravelSubject}
	key := func(i int) uint64 { return travelKey("subject-" + strconv.Itoa(i)) }
	var inserted [256][]uint64
	for i := range maxTravellers + 1000 {
		ts.put(key(i), lastPlace{t: int64(i)})
		inserted[key(i)>>56] = append(inserted[key(i)>>56], key(i))
	}
	if ts.n != maxTravellers {
		t.Fatalf("holding %d, want %d", ts.n, maxTravellers)
	}
	for i, keys := range inserted {
		sh := &ts.shards[i]
		// The shard holds the newest of its keys, as many as it has.
		newest := keys[len(keys)-sh.n:]
		for j, k := range newest {
			if got := sh.at(j).h; got != k {
				t.Fatalf("shard %d: position %d holds %x, want %x (the oldest are forgotten first)", i, j, got, k)
			}
		}
	}
	b := store.NewBatch()
	ts.flush(b)
	if len(b.Windows) != 256 {
		t.Fatalf("flushed %d shards, want 256", len(b.Windows))
	}
	// The row layout of earlier versions: each entry's five numbers
	// after one another.
	columns, rows := decodeWindows(t, b.Windows), map[string][]int64{}
	for k, v := range columns {
		if v[0] != travelColumns || len(v)%5 != 1 {
			t.Fatalf("shard %q flushed in %d numbers starting %d, not in the column layout", k, len(v), v[0])
		}
		n := len(v) / 5
		for j := range n {
			for f := range 5 {
				rows[k] = append(rows[k], v[1+f*n+j])
			}
		}
	}
	for layout, windows := range map[string]map[string][]int64{"column": columns, "row": rows} {
		back := travellers{prefix: winTravelSubject}
		for k, v := range windows {
			if !back.restore(strings.TrimPrefix(k, winTravelSubject), v) {
				t.Fatalf("%s layout: shard %q not restored", layout, k)
			}
		}
		if back.n != ts.n {
			t.Fatalf("%s layout: restored %d, want %d", layout, back.n, ts.n)
		}
		for i := range ts.shards {
			a, r := &ts.shards[i], &back.shards[i]
			if a.n != r.n {
				t.Fatalf("%s layout: shard %d holds %d after a restore, want %d", layout, i, r.n, a.n)
			}
			for j := range a.n {
				if x, y := a.at(j), r.at(j); *x != *y {
					t.Fatalf("%s layout: shard %d differs at %d after a restore", layout, i, j)
				}
			}
		}
	}
}

// BenchmarkTravellersChurn measures the table of last places when every
// event brings a subject not seen before, as in the bench's traffic: a
// lookup that misses, then a put that forgets the oldest of a full table.
func BenchmarkTravellersChurn(b *testing.B) {
	ts := travellers{prefix: winTravelSubject}
	keys := make([]uint64, 1<<20)
	for i := range keys {
		keys[i] = travelKey("subject-" + strconv.Itoa(i))
	}
	for i := range maxTravellers {
		ts.put(keys[i], lastPlace{t: int64(i)})
	}
	i := maxTravellers
	for b.Loop() {
		h := keys[i%len(keys)]
		if p, ok := ts.get(h); ok {
			ts.update(h, lastPlace{t: p.t + 1})
		} else {
			ts.put(h, lastPlace{t: int64(i)})
		}
		i++
	}
}
