package store

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math"
	"math/rand/v2"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestTallyMatchesCounter adds the same increments to a Tally and a
// Counter, the zero time, times before the epoch and the first and last
// instants a Tally holds among them, and checks that the Tally's encoding
// relative to each of those times as a Base decodes to the Counter.
func TestTallyMatchesCounter(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	times := []time.Time{{}, time.Unix(-1e9, 7).UTC(), time.Unix(0, 0).UTC(), at(0), at(time.Nanosecond), at(time.Hour),
		at(-90 * 24 * time.Hour), time.Unix(1<<32, 999_999_999).UTC(), time.Unix(0, math.MinInt64+1).UTC(),
		time.Unix(0, math.MaxInt64).UTC(), time.Unix(0, math.MaxInt64-999_999).UTC()}
	for range 2000 {
		var c Counter
		var tl Tally
		for range 1 + rng.IntN(6) {
			n, when := uint64(rng.IntN(3)), times[rng.IntN(len(times))]
			c.Add(n, when)
			tl.Add(n, when)
		}
		if got := tl.Counter(); !counterEqual(got, c) || got.First.IsZero() != c.First.IsZero() {
			t.Fatalf("Tally %+v, Counter %+v", got, c)
		}
		if back := tallyOf(c); back != tl {
			t.Fatalf("tallyOf(%+v) = %+v, want %+v", c, back, tl)
		}
		var base Tally
		base.Add(1, times[rng.IntN(len(times))])
		enc := appendTally(nil, &tl, &base)
		d := decoder{b: enc, relative: true, base: base.Last()}
		if got := d.counter(); d.end("counter") != nil || !counterEqual(got, c) || got.First.IsZero() != c.First.IsZero() || got.Last.IsZero() != c.Last.IsZero() {
			t.Fatalf("Tally %+v relative to %v encodes to %x, decoded as %+v (%v)", c, base.Last(), enc, got, d.err)
		}
	}
}

// TestTallyClampsInstantsOutOfRange checks that an instant a Tally cannot
// hold, from a Counter or an Add, is held as the nearest one it can, and
// that such a tally still encodes and decodes.
func TestTallyClampsInstantsOutOfRange(t *testing.T) {
	first, last := time.Unix(0, math.MinInt64+1).UTC(), time.Unix(0, math.MaxInt64).UTC()
	for _, c := range []struct {
		in, want time.Time
	}{
		{time.Date(1, 1, 1, 0, 0, 0, 1, time.UTC), first},
		{time.Unix(0, math.MinInt64).UTC(), first},
		{time.Date(1677, 9, 21, 0, 12, 43, 145224193, time.UTC), first},
		{time.Date(1677, 9, 21, 0, 12, 43, 145224194, time.UTC), first.Add(time.Nanosecond)},
		{time.Date(2262, 4, 11, 23, 47, 16, 854775806, time.UTC), last.Add(-time.Nanosecond)},
		{time.Date(2262, 4, 11, 23, 47, 16, 854775808, time.UTC), last},
		{time.Date(9999, 12, 31, 23, 59, 59, 999_000_000, time.UTC), last},
	} {
		var tl Tally
		tl.Add(1, c.in)
		if !tl.First().Equal(c.want) || !tl.Last().Equal(c.want) {
			t.Errorf("Add(%v): first %v, last %v, want %v", c.in, tl.First(), tl.Last(), c.want)
		}
		if back := tallyOf(Counter{N: 1, First: c.in, Last: c.in}); back != tl {
			t.Errorf("tallyOf(%v) = %+v, want %+v", c.in, back, tl)
		}
	}
	var tl, base Tally
	tl.Add(1, time.Date(1, 1, 1, 0, 0, 0, 1, time.UTC))
	tl.Add(1, time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC))
	base.Add(1, at(0))
	d := decoder{b: appendTally(nil, &tl, &base), relative: true, base: base.Last()}
	if got := d.counter(); d.end("counter") != nil || !got.First.Equal(first) || !got.Last.Equal(last) {
		t.Fatalf("decoded %+v (%v), want %v to %v", got, d.err, first, last)
	}
}

// TestStateEvictsDurableOnly checks that only clients whose state is in a
// committed checkpoint leave memory, the least recently active first, and
// that one read back encodes to the bytes it was written as.
func TestStateEvictsDurableOnly(t *testing.T) {
	db, _ := newTestDB(t)
	st := NewState(db, 10)
	for i := range 12 {
		c := st.Client(name(i))
		c.Seen.Add(1, at(time.Duration(i)*time.Minute))
		c.CountScope("openid", ScopeGranted, 2, at(0))
		c.SawIP(ipOf(i), at(0))
		c.SawCountry("US", at(0))
	}
	b := NewBatch()
	st.Checkpoint(b)
	if len(b.Records) != 12 || st.Dirty() != 0 {
		t.Fatalf("checkpoint of %d records, %d dirty after; want 12, 0", len(b.Records), st.Dirty())
	}
	written := map[string][]byte{}
	for _, r := range b.Records {
		written[r.ID] = bytes.Clone(r.Value)
	}
	if n := st.Evict(); n != 0 {
		t.Fatalf("evicted %d clients before their checkpoint was committed", n)
	}
	commit(t, db, b)
	st.Client(name(0)).Seen.Add(1, at(time.Hour)) // the least recent is active again, and dirty
	st.Durable(b.Gen)
	if n := st.Evict(); n != 3 || st.Len() != 9 {
		t.Fatalf("evicted %d, holding %d; want 3 evicted down to 9", n, st.Len())
	}
	if _, ok := st.clients[name(0)]; !ok {
		t.Fatal("the dirty client was evicted")
	}
	for i := 1; i <= 3; i++ {
		if _, ok := st.clients[name(i)]; ok {
			t.Errorf("%s, among the least recent, is still held", name(i))
		}
	}
	st.Client(name(1)) // read back
	if _, loaded := st.Stats(); loaded != 1 {
		t.Errorf("loads = %d, want 1", loaded)
	}
	b2 := NewBatch()
	st.Checkpoint(b2)
	for _, r := range b2.Records {
		if r.ID == name(1) && !bytes.Equal(r.Value, written[r.ID]) {
			t.Errorf("%s read back encodes to\n%x\nwritten as\n%x", r.ID, r.Value, written[r.ID])
		}
	}
	if err := st.Err(); err != nil {
		t.Fatal(err)
	}
}

// TestStateForget drops a client from memory and from the next checkpoint.
func TestStateForget(t *testing.T) {
	st := NewState(nil, 0)
	st.Client("a").Seen.Add(1, at(0))
	st.Client("b").SawIP(netip.MustParseAddr("2001:db8::1"), at(0))
	st.Forget("a")
	b := NewBatch()
	st.Checkpoint(b)
	if len(b.Records) != 1 || b.Records[0].ID != "b" || st.Len() != 1 {
		t.Fatalf("records %+v, holding %d; want b only", b.Records, st.Len())
	}
}

// recordAddr returns the bytes a record spells a as, without their length.
func recordAddr(a netip.Addr) string {
	b := appendAddr(nil, a)
	_, n := binary.Uvarint(b)
	return string(b[n:])
}

// TestSawIPKeepsOrder checks the address set against a plain model: the
// MaxIPs most recently seen (among equal times, the smaller address
// stays), sorted by the bytes the record spells them as. Addresses come
// from a small pool, IPv4, IPv6, IPv4-mapped IPv6 and zoned, at times
// that go back now and then.
func TestSawIPKeepsOrder(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	var pool []netip.Addr
	for i := range 150 {
		pool = append(pool, netip.AddrFrom4([4]byte{10, byte(rng.IntN(3)), byte(i), byte(rng.IntN(256))}))
		pool = append(pool, netip.AddrFrom4([4]byte{192, 168, byte(100 + rng.IntN(3)), byte(100 + rng.IntN(20))}))
	}
	for i := range 50 {
		pool = append(pool, netip.MustParseAddr("2001:db8:85a3:1234:5678:8a2e:370:"+strconv.FormatInt(int64(7000+i), 16)))
	}
	for i := range 10 {
		pool = append(pool, netip.MustParseAddr("::ffff:10.0.0."+strconv.Itoa(i)), netip.MustParseAddr("fe80::"+strconv.Itoa(i+1)+"%eth"+strconv.Itoa(i%2)))
		// Zones long enough that the record's length of the address takes
		// two bytes.
		pool = append(pool, netip.MustParseAddr("fe80::"+strconv.Itoa(i%3+1)+"%"+strings.Repeat("z", 100+i*5)))
	}
	st := NewState(nil, 0)
	c := st.Client("lab-app")
	type seen struct {
		key string // the record's bytes of the address
		t   Tally
	}
	var model []seen
	for step := range 20000 {
		a := pool[rng.IntN(len(pool))]
		when := at(time.Duration(step-rng.IntN(50)) * time.Second)
		c.SawIP(a, when)
		key := recordAddr(a)
		found := false
		for i := range model {
			if model[i].key == key {
				model[i].t.Add(1, when)
				found = true
			}
		}
		if !found {
			n := seen{key: key}
			n.t.Add(1, when)
			model = append(model, n)
			if len(model) > MaxIPs {
				// The least recently seen goes; among equal times the
				// greater address.
				drop := 0
				for j := range model {
					x, y := &model[j].t, &model[drop].t
					if x.lastBefore(y) || (x.lastEqual(y) && model[j].key > model[drop].key) {
						drop = j
					}
				}
				model = slices.Delete(model, drop, drop+1)
			}
		}
		slices.SortFunc(model, func(x, y seen) int { return strings.Compare(x.key, y.key) })
		if len(c.ips) != len(model) {
			t.Fatalf("step %d: %d addresses, the model %d", step, len(c.ips), len(model))
		}
		for i := range model {
			a := c.ip(i).addr()
			if got := recordAddr(a); got != model[i].key || c.ips[i] != model[i].t || c.ipKeys[i] != ipKey(a) {
				t.Fatalf("step %d: address %d is %v %+v, the model's %x %+v", step, i, a, c.ips[i], model[i].key, model[i].t)
			}
		}
	}
	// The record spells them in the order its decoder checks.
	b := NewBatch()
	st.Checkpoint(b)
	if got, err := decodeClient(b.ScopeNames, "lab-app", b.Records[0].Value); err != nil || len(got.IPs) != len(model) {
		t.Errorf("the record decodes to %d addresses (%v), want %d", len(got.IPs), err, len(model))
	}
}

// TestCountScopeKinds counts random kinds of 40 scopes (more than the
// eight whose counters talliesBefore counts at once) in a client, added in
// random order, against a Usage per scope, and checks each scope's counters
// through usageIn, in the checkpointed record, and once loaded back from the
// store, which holds only the counters each scope has.
func TestCountScopeKinds(t *testing.T) {
	db, _ := newTestDB(t)
	st := NewState(db, 0)
	rng := rand.New(rand.NewPCG(5, 6))
	want := map[string]*ScopeUsage{}
	c := st.Client("svc")
	for i := range 3000 {
		name := "scope/" + strconv.Itoa(rng.IntN(40))
		kinds := ScopeKinds(1 + rng.IntN(7))
		n, when := uint64(rng.IntN(3)), at(time.Duration(rng.IntN(1000))*time.Second)
		c.CountScope(name, kinds, n, when)
		if n == 0 {
			continue
		}
		u := want[name]
		if u == nil {
			u = &ScopeUsage{}
			want[name] = u
		}
		for k, counter := range []*Counter{&u.Requested, &u.Granted, &u.Used} {
			if kinds&(1<<k) != 0 {
				counter.Add(n, when)
			}
		}
		if i%500 == 0 || i == 2999 {
			for name, w := range want {
				got := usageIn(c, name)
				if g := (ScopeUsage{Requested: got.Requested.Counter(), Granted: got.Granted.Counter(), Used: got.Used.Counter()}); !usageEqual(g, *w) {
					t.Fatalf("after %d counts, %s: %+v, want %+v", i+1, name, g, *w)
				}
			}
		}
	}
	if u := usageIn(c, "scope/none"); u != (Usage{}) {
		t.Errorf("a scope never counted: %+v", u)
	}
	c.Seen.Add(1, at(0))
	b := NewBatch()
	st.Checkpoint(b)
	commit(t, db, b)
	check := func(how string, got Client) {
		t.Helper()
		if len(got.Scopes) != len(want) {
			t.Fatalf("%s: %d scopes, want %d", how, len(got.Scopes), len(want))
		}
		for name, w := range want {
			if !usageEqual(got.Scopes[name], *w) {
				t.Errorf("%s, %s: %+v, want %+v", how, name, got.Scopes[name], *w)
			}
		}
	}
	stored, ok, err := db.Client("svc")
	if err != nil || !ok {
		t.Fatalf("client not stored: %v", err)
	}
	check("stored", stored)
	// Loaded back, counted on, and written again: the record is the same
	// but for the count.
	again := NewState(db, 0)
	d := again.Client("svc")
	d.CountScope("scope/0", ScopeUsed, 1, at(2000*time.Second))
	w := want["scope/0"]
	if w == nil {
		w = &ScopeUsage{}
		want["scope/0"] = w
	}
	w.Used.Add(1, at(2000*time.Second))
	b = NewBatch()
	again.Checkpoint(b)
	commit(t, db, b)
	if stored, _, err = db.Client("svc"); err != nil {
		t.Fatal(err)
	}
	check("loaded and stored again", stored)
}

// Usage is one scope's counters in a ClientState, as usageIn reads them.
type Usage struct {
	Requested, Granted, Used Tally
}

// usageIn returns the counters of scope name in c: zero when it has none.
func usageIn(c *ClientState, name string) Usage {
	id, ok := c.state.ids[name]
	if !ok {
		return Usage{}
	}
	i := slices.Index(c.scopeIDs, id)
	if i < 0 {
		return Usage{}
	}
	var u Usage
	off := c.talliesBefore(i)
	for k, t := range [...]*Tally{&u.Requested, &u.Granted, &u.Used} {
		if c.scopeHas[i]&(1<<k) != 0 {
			*t = c.tallies[off]
			off++
		}
	}
	return u
}

// TestSawCountryNames counts countries named by two letters, and by other
// names (none, three letters, two zero bytes, which pack to no code),
// before and after a checkpoint is read back, and wants each name held
// once and counted once for each sighting.
func TestSawCountryNames(t *testing.T) {
	db, _ := newTestDB(t)
	names := []string{"US", "CA", "USA", "", "\x00\x00", "U", "SU"}
	st := NewState(db, 10)
	c := st.Client("lab")
	for i, cc := range names {
		for range i + 1 {
			c.SawCountry(cc, at(time.Duration(i)*time.Minute))
		}
	}
	b := NewBatch()
	st.Checkpoint(b)
	commit(t, db, b)
	back := NewState(db, 10).Client("lab")
	for i, cc := range names {
		back.SawCountry(cc, at(time.Hour))
		c.SawCountry(cc, at(time.Hour))
		for _, s := range []*ClientState{c, back} {
			var n, entries uint64
			for _, e := range s.countries {
				if e.name == cc {
					n += e.t.N
					entries++
				}
			}
			if want := uint64(i + 2); n != want || entries != 1 {
				t.Errorf("%q counted %d times in %d entries, want %d in 1", cc, n, entries, want)
			}
		}
	}
}

// TestDirtyBytesCountsNewClientsAsTheyGrow checks the estimate of a
// checkpoint's size against the records it encodes, for clients new since
// the last one: each became dirty empty, and grew.
func TestDirtyBytesCountsNewClientsAsTheyGrow(t *testing.T) {
	st := NewState(nil, 0)
	for i := range 100 {
		c := st.Client(fmt.Sprintf("client-%d", i))
		for s := range 30 {
			c.CountScope(fmt.Sprintf("patient/Resource%d.rs", s), ScopeGranted|ScopeUsed, 1, at(time.Duration(s)*time.Second))
		}
		for a := range 64 {
			c.SawIP(netip.AddrFrom4([4]byte{10, 1, byte(i), byte(a)}), at(time.Duration(a)*time.Second))
		}
	}
	est := st.DirtyBytes()
	b := NewBatch()
	st.Checkpoint(b)
	encoded := 0
	for _, r := range b.Records {
		encoded += len(r.Value)
	}
	if est < encoded/2 || est > 2*encoded {
		t.Errorf("DirtyBytes %d for records of %d bytes: want within a factor of 2", est, encoded)
	}
	if n := st.DirtyBytes(); n != 0 {
		t.Errorf("DirtyBytes %d after the checkpoint, want 0", n)
	}
}

// TestDropEncoded checks what a committed batch lets go of before it is
// emptied: its records and windows, and nothing the engine still reads.
func TestDropEncoded(t *testing.T) {
	st := NewState(nil, 0)
	st.Client("lab").SawIP(netip.MustParseAddr("10.0.0.1"), at(0))
	b := NewBatch()
	st.Checkpoint(b)
	b.Windows["probing\x00lab"] = []byte{1}
	b.Source("idp").Lines = 3
	gen := b.Gen
	if len(b.Records) != 1 || gen == 0 {
		t.Fatalf("checkpoint: %d records, generation %d", len(b.Records), gen)
	}
	b.DropEncoded()
	if len(b.Records) != 0 || len(b.Windows) != 0 {
		t.Errorf("%d records and %d windows held after DropEncoded", len(b.Records), len(b.Windows))
	}
	if b.Gen != gen || b.Sources["idp"] == nil || b.Sources["idp"].Lines != 3 {
		t.Errorf("DropEncoded took more: generation %d (want %d), sources %v", b.Gen, gen, b.Sources)
	}
}

// TestCountAskedBound keeps at most MaxAskedOnly scopes a client was only
// asked for: past it a new name is neither kept nor numbered and is
// counted (NotKept); a scope held is counted still, and one granted
// frees its place.
func TestCountAskedBound(t *testing.T) {
	st := NewState(nil, 0)
	c := st.Client("app")
	c.CountScope("openid", ScopeGranted, 1, at(0))
	for i := range MaxAskedOnly {
		if id := c.CountAsked(fmt.Sprintf("asked_%02d", i), 1, at(time.Second)); id == NoScope {
			t.Fatalf("scope %d of %d not kept", i, MaxAskedOnly)
		}
	}
	if id := c.CountAsked("one_too_many", 1, at(2*time.Second)); id != NoScope || st.NotKept() != 1 {
		t.Fatalf("past the bound: id %d, NotKept %d; want NoScope, 1", id, st.NotKept())
	}
	if _, numbered := st.ids["one_too_many"]; numbered {
		t.Error("a scope not kept was numbered")
	}
	if id := c.CountAsked("asked_00", 2, at(3*time.Second)); id == NoScope || st.NotKept() != 1 {
		t.Fatalf("a scope held, past the bound: id %d, NotKept %d", id, st.NotKept())
	}
	if id := c.CountAsked("openid", 1, at(3*time.Second)); id == NoScope {
		t.Fatal("a granted scope asked for again was not counted")
	}
	c.CountScope("asked_01", ScopeGranted, 1, at(4*time.Second)) // granted now: no longer only asked for
	if id := c.CountAsked("now_room", 1, at(5*time.Second)); id == NoScope {
		t.Fatal("no room after a scope asked for was granted")
	}
	b := NewBatch()
	st.Checkpoint(b)
	got, err := decodeClient(b.ScopeNames, "app", b.Records[0].Value)
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Scopes) != MaxAskedOnly+2 || got.Scopes["asked_00"].Requested.N != 3 || got.Scopes["openid"].Requested.N != 1 {
		t.Errorf("record holds %d scopes (asked_00 %+v, openid %+v); want %d", len(got.Scopes), got.Scopes["asked_00"], got.Scopes["openid"], MaxAskedOnly+2)
	}
	if _, ok := got.Scopes["one_too_many"]; ok {
		t.Error("the record holds the scope not kept")
	}
}
