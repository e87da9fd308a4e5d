package detect

import (
	"cmp"
	"math/rand/v2"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/scopewatch/scopewatch/ingest"
	"github.com/scopewatch/scopewatch/store"
)

// TestNetSet checks the sorted set of a client's networks against a map,
// past the networks the state holds in itself, including which network
// forgetOldest drops.
func TestNetSet(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	st := newClientState()
	model := map[netKey]time.Time{}
	for step := range 2000 {
		k := asnKey(uint32(r.IntN(40)))
		if r.IntN(3) == 0 {
			k = prefixKey(netip.AddrFrom4([4]byte{byte(r.IntN(4)), byte(r.IntN(4)), 0, 1}))
		}
		switch ns, want := st.nets.find(k), model[k]; {
		case (ns != nil) != !want.IsZero():
			t.Fatalf("step %d: find(%v) = %v, model has %v", step, k, ns, want)
		case ns != nil && !ns.first.Equal(want):
			t.Fatalf("step %d: find(%v).first = %v, want %v", step, k, ns.first, want)
		case ns == nil:
			if len(st.nets) >= 12 {
				// The model's oldest: times are distinct.
				var oldest netKey
				var at time.Time
				for k, first := range model {
					if at.IsZero() || first.Before(at) {
						oldest, at = k, first
					}
				}
				st.nets.forgetOldest()
				delete(model, oldest)
				if st.nets.find(oldest) != nil {
					t.Fatalf("step %d: forgetOldest kept %v, the oldest", step, oldest)
				}
			}
			first := t0.Add(time.Duration(step) * time.Minute)
			if got := st.nets.add(k, first); !got.first.Equal(first) || got != st.nets.find(k) {
				t.Fatalf("step %d: add(%v) returned %v", step, k, got)
			}
			model[k] = first
		}
		if len(st.nets) != len(model) {
			t.Fatalf("step %d: %d networks, model %d", step, len(st.nets), len(model))
		}
		if !slices.IsSortedFunc(st.nets, func(a, b netEntry) int { return cmp.Compare(a.key, b.key) }) {
			t.Fatalf("step %d: networks out of order", step)
		}
	}
}

// TestNetSetForgetsZeroTimesLast checks that a network first seen at the
// zero time is forgotten only when every network was.
func TestNetSetForgetsZeroTimesLast(t *testing.T) {
	var s netSet
	s.add(asnKey(1), time.Time{})
	s.add(asnKey(2), t0.Add(time.Hour))
	s.add(asnKey(3), t0)
	s.forgetOldest()
	if s.find(asnKey(3)) != nil || s.find(asnKey(1)) == nil || s.find(asnKey(2)) == nil {
		t.Fatalf("forgetOldest left %v, want AS1 and AS2", s)
	}
	s = s[:0]
	s.add(asnKey(1), time.Time{})
	s.add(asnKey(2), time.Time{})
	s.forgetOldest()
	if len(s) != 1 {
		t.Fatalf("forgetOldest of zero times left %d networks, want 1", len(s))
	}
}

// TestCountryCodes checks the search of a client's countries, whose codes
// of two bytes are compared in the entry, against a map.
func TestCountryCodes(t *testing.T) {
	st := newClientState()
	model := map[string]time.Time{}
	codes := []string{"US", "CA", "U", "USA", "us", "\x00\x00", "\x00", "SU", "GB", "DE", "U\x00", "CAN"}
	for i := range 3 * len(codes) {
		code := codes[(i*7)%len(codes)]
		at := t0.Add(time.Duration(i) * time.Hour)
		first, known := st.sawCountry(code, at)
		want, ok := model[code]
		if !ok {
			want = at
			model[code] = at
		}
		if known != ok || !first.Equal(want) {
			t.Fatalf("sawCountry(%q) = %v, %v; want %v, %v", code, first, known, want, ok)
		}
		for _, c := range codes {
			first, ok := st.country(c)
			if want, wok := model[c]; ok != wok || !first.Equal(want) {
				t.Fatalf("country(%q) = %v, %v; want %v, %v", c, first, ok, want, wok)
			}
		}
	}
}

// TestKnownClientsHoldStates checks that the first detectors sharing a
// set of known clients keep their states in it, for clients issued a
// token (a registered client's state made before its first token too),
// that other detectors sharing the set keep theirs apart, and that a
// forgotten client starts afresh.
func TestKnownClientsHoldStates(t *testing.T) {
	r := policyRules(t)
	known := NewKnownClients(r)
	fs := NewFindings(nil, nil, func() time.Time { return t0 }, nil)
	opt := DetectorOptions{Config: testDetect(), Rules: r, Known: known}
	d := NewDetectors(opt, fs)
	other := NewDetectors(opt, fs)
	if !d.holds || other.holds {
		t.Fatalf("holds: first %v, second %v; want true, false", d.holds, other.holds)
	}
	observe := func(d *Detectors, ev ingest.Event) {
		ev.Source = "keycloak"
		d.Observe(&ev)
	}
	use := func(client string, at time.Time) ingest.Event {
		return ingest.Event{Kind: ingest.KindUse, Client: client, Time: at, Method: "GET", Path: "/x", Status: 200}
	}

	// A registered client used before its first token: a state in
	// clients only, kept with the client once it is issued one.
	observe(d, use("lab-portal", t0))
	if st := d.clients["lab-portal"]; st == nil || st.events != 1 || known.issued["lab-portal"] != nil {
		t.Fatalf("registered client before a token: state %v, held %v", st, known.issued["lab-portal"])
	}
	observe(d, grant("lab-portal", t0.Add(time.Minute), "view_lab_results"))
	if st := d.clients["lab-portal"]; st == nil || st.events != 2 || known.issued["lab-portal"] != st {
		t.Fatalf("registered client after a token: state %v, held %v", st, known.issued["lab-portal"])
	}

	// A client known by its token only.
	observe(d, grant("billing-export", t0, "view_billing"))
	observe(d, use("billing-export", t0.Add(time.Minute)))
	st := d.clients["billing-export"]
	if st == nil || st.events != 2 || known.issued["billing-export"] != st {
		t.Fatalf("issued client: state %v, held %v", st, known.issued["billing-export"])
	}
	// The other detectors keep a state of their own.
	observe(other, use("billing-export", t0.Add(2*time.Minute)))
	if o := other.clients["billing-export"]; o == nil || o == st || o.events != 1 || st.events != 2 {
		t.Fatalf("second detectors: state %v (first's %v)", o, st)
	}
	// Neither a client never issued a token nor one unregistered gets
	// state.
	observe(d, use("invented", t0))
	if d.clients["invented"] != nil || known.Known("invented") {
		t.Fatal("an unknown client got state")
	}

	d.Forget("billing-export")
	if d.clients["billing-export"] != nil || known.Known("billing-export") {
		t.Fatal("a forgotten client is still held")
	}
	observe(d, use("billing-export", t0.Add(3*time.Minute)))
	if d.clients["billing-export"] != nil {
		t.Fatal("a forgotten client's use made state before a token")
	}
	observe(d, grant("billing-export", t0.Add(4*time.Minute), "view_billing"))
	if st := d.clients["billing-export"]; st == nil || st.events != 1 || known.issued["billing-export"] != st {
		t.Fatalf("a forgotten client issued a token again: state %v, held %v", st, known.issued["billing-export"])
	}

	// A stored client loads into the held state.
	d.Load(store.Client{ID: "rx-portal", Seen: store.Counter{N: 7, First: t0, Last: t0}, Issued: store.Counter{N: 7, First: t0, Last: t0}})
	if st := d.clients["rx-portal"]; st == nil || st.events != 7 || known.issued["rx-portal"] != st {
		t.Fatalf("loaded client: state %v, held %v", st, known.issued["rx-portal"])
	}
}
