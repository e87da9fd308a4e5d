package store

import (
	"bytes"
	"encoding/binary"
	"errors"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

// storedScopeNames returns bucketScopes as it is on disk, by number.
func storedScopeNames(t *testing.T, db *DB) []string {
	t.Helper()
	var names []string
	err := db.bolt.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketScopes).ForEach(func(k, v []byte) error {
			if len(k) != 4 || binary.BigEndian.Uint32(k) != uint32(len(names)) {
				t.Errorf("scope name key %x after %d names", k, len(names))
			}
			names = append(names, string(v))
			return nil
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	return names
}

// TestScopeNumbers checks the store's numbering of scope names: records
// name their scopes by number, the names are written with the first
// record that uses them, survive a reopen and keep their numbers; a
// failed commit writes none and the next writes them; a batch numbering
// the names otherwise than the store is refused whole.
func TestScopeNumbers(t *testing.T) {
	db, path := newTestDB(t)
	st := NewState(db, 0)
	a := st.Client("a")
	a.CountScope("patient/Observation.rs", ScopeGranted|ScopeUsed, 2, at(0))
	a.CountScope("openid", ScopeGranted, 1, at(time.Second))
	b := NewBatch()
	st.Checkpoint(b)
	commit(t, db, b)
	if got := storedScopeNames(t, db); !slices.Equal(got, []string{"patient/Observation.rs", "openid"}) {
		t.Fatalf("stored names %q", got)
	}
	var rec []byte
	_ = db.bolt.View(func(tx *bolt.Tx) error {
		rec = slices.Clone(tx.Bucket(bucketClients).Get([]byte("a")))
		return nil
	})
	if rec[0] != formatClient || strings.Contains(string(rec), "openid") {
		t.Fatalf("record %q: want format %d without the names", rec, formatClient)
	}

	// A failed commit leaves the names as they were; the next writes them.
	b = NewBatch()
	st.Client("b").CountScope("user/Claim.read", ScopeRequested, 1, at(time.Minute))
	st.Checkpoint(b)
	hookErr := errors.New("disk gone")
	db.beforeCommit = func(*bolt.Tx) error { return hookErr }
	if err := db.Commit(b); !errors.Is(err, hookErr) {
		t.Fatalf("Commit with a failing hook = %v", err)
	}
	db.beforeCommit = nil
	if got := storedScopeNames(t, db); len(got) != 2 {
		t.Fatalf("after a failed commit, stored names %q", got)
	}
	b = NewBatch()
	st.Client("b").CountScope("user/Claim.read", ScopeRequested, 1, at(time.Minute))
	st.Checkpoint(b)
	commit(t, db, b)
	if got := storedScopeNames(t, db); !slices.Equal(got, []string{"patient/Observation.rs", "openid", "user/Claim.read"}) {
		t.Fatalf("stored names %q", got)
	}

	// A state of another numbering: refused, nothing of it written.
	foreign := NewState(nil, 0)
	foreign.Client("c").CountScope("openid", ScopeGranted, 1, at(0))
	fb := NewBatch()
	foreign.Checkpoint(fb)
	if err := db.Commit(fb); !errors.Is(err, ErrInvalid) {
		t.Fatalf("Commit of a batch numbering openid 0 = %v, want ErrInvalid", err)
	}
	if _, ok, _ := db.Client("c"); ok {
		t.Error("the refused batch's client was written")
	}

	// Reopened, the store reads its names back: the records decode, and
	// a State goes on numbering after them.
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	db = openTest(t, path, Options{})
	got, ok, err := db.Client("a")
	if err != nil || !ok || got.Scopes["patient/Observation.rs"].Used.N != 2 || got.Scopes["openid"].Granted.N != 1 || len(got.Scopes) != 2 {
		t.Fatalf("client a after a reopen = %+v, %v, %v", got, ok, err)
	}
	st = NewState(db, 0)
	if n := st.ScopeNumber("user/Claim.read"); n != 2 {
		t.Errorf("user/Claim.read numbered %d after a reopen, want 2", n)
	}
	if n := st.ScopeNumber("launch"); n != 3 {
		t.Errorf("a new name numbered %d, want 3", n)
	}
	if r, err := Check(path); err == nil {
		t.Fatalf("Check of an open store = %+v, want it locked", r)
	}
	db.Close()
	r, err := Check(path)
	if err != nil || r.Damaged() {
		t.Fatalf("Check = %+v, %v", r, err)
	}
}

// TestCheckScopeNames checks that Check reports a hole in the numbering
// and the records naming a scope by a number the store lacks.
func TestCheckScopeNames(t *testing.T) {
	db, path := newTestDB(t)
	st := NewState(db, 0)
	st.Client("a").CountScope("openid", ScopeGranted, 1, at(0))
	st.Client("a").CountScope("profile", ScopeGranted, 1, at(0))
	b := NewBatch()
	st.Checkpoint(b)
	commit(t, db, b)
	err := db.bolt.Update(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketScopes).Delete([]byte{0, 0, 0, 0})
	})
	if err != nil {
		t.Fatal(err)
	}
	db.Close()
	r, err := Check(path)
	if err != nil {
		t.Fatal(err)
	}
	var what []string
	for _, p := range r.Problems {
		what = append(what, p.Bucket+" "+p.Key+": "+p.What)
	}
	want := []string{
		"scopes 1: scope name key 00000001 where number 0 belongs: corrupt record",
		`clients "a": truncated or malformed scope number 0, which the store does not name: corrupt record`,
	}
	if !slices.Equal(what, want) {
		t.Errorf("problems:\n%q\nwant\n%q", what, want)
	}
	if _, err := Open(path, Options{ReadOnly: true}); !errors.Is(err, ErrCorrupt) {
		t.Errorf("Open of a store missing scope name 0 = %v, want ErrCorrupt", err)
	}
}

// TestClientFormat4 reads a record as schema 8 wrote it, and as a
// changelog carries it (selfContained): each scope named in full, in a
// store whose numbering does not know the names; a commit rewrites it in
// format 5 with the store's numbers, to the same client with the new
// event added.
func TestClientFormat4(t *testing.T) {
	fb := fullBatch()
	v4, err := selfContained(fb.ScopeNames, fb.Records[0].Value)
	if err != nil || v4[0] != formatClientV4 || !strings.Contains(string(v4), "patient/Observation.rs") {
		t.Fatalf("selfContained = %q, %v", v4, err)
	}
	want, err := decodeClient(fb.ScopeNames, "ehr-app", fb.Records[0].Value)
	if err != nil {
		t.Fatal(err)
	}
	db, _ := newTestDB(t)
	st := NewState(db, 0)
	st.Client("other").CountScope("launch", ScopeGranted, 1, at(0)) // number 0 here
	b := NewBatch()
	st.Checkpoint(b)
	commit(t, db, b)
	if err := db.bolt.Update(func(tx *bolt.Tx) error { return tx.Bucket(bucketClients).Put([]byte("ehr-app"), v4) }); err != nil {
		t.Fatal(err)
	}
	got, ok, err := db.Client("ehr-app")
	if err != nil || !ok || !clientEqual(got, want) {
		t.Fatalf("format 4 record read as %+v, %v, %v; want %+v", got, ok, err, want)
	}
	later := at(2 * time.Hour)
	st.Client("ehr-app").CountScope("openid", ScopeGranted, 1, later)
	b = NewBatch()
	st.Checkpoint(b)
	commit(t, db, b)
	u := want.Scopes["openid"]
	u.Granted.Add(1, later)
	want.Scopes["openid"] = u
	if got, _, err = db.Client("ehr-app"); err != nil || !clientEqual(got, want) {
		t.Errorf("after a commit:\n got %+v (%v)\nwant %+v", got, err, want)
	}
	_ = db.bolt.View(func(tx *bolt.Tx) error {
		if rec := tx.Bucket(bucketClients).Get([]byte("ehr-app")); rec[0] != formatClient || len(rec) >= len(v4) {
			t.Errorf("record rewritten in format %d, %d bytes; want %d, fewer than the %d of format 4", rec[0], len(rec), formatClient, len(v4))
		}
		return nil
	})
	if names := db.scopes.load(); !slices.Equal(names, []string{"launch", "openid", "patient/Observation.rs"}) && !slices.Equal(names, []string{"launch", "patient/Observation.rs", "openid"}) {
		t.Errorf("the store numbers %q", names)
	}
}

// formatV5 returns client record v (format 6) in format 5: each address
// an addr instead of a daddr, everything else as it is.
func formatV5(t testing.TB, names []string, v []byte) []byte {
	t.Helper()
	d := decoder{b: v, names: names}
	d.clientHead()
	count := d.count(4)
	var prev []byte
	for i := range count {
		prev = d.scopeName(prev, i == 0)
		d.scopeUsage()
	}
	out := append([]byte{formatClientV5}, v[1:len(v)-len(d.b)]...)
	out = appendAddrList(out, &d)
	if d.err != nil {
		t.Fatal(d.err)
	}
	return append(out, d.b...)
}

// TestClientFormat5 reads a record of schema 9 (format 5, addresses as
// bytes), carries it in a changelog as the same format 4 record as its
// format 6 form, and rewrites it in format 6 on the next commit.
func TestClientFormat5(t *testing.T) {
	st := NewState(nil, 0)
	c := st.Client("ehr-app")
	for i, a := range []string{"10.0.0.1", "10.0.0.2", "10.0.3.9", "192.0.2.10", "2001:db8::1", "fe80::1%eth0", "0.0.0.0", "255.255.255.255"} {
		c.SawIP(netip.MustParseAddr(a), at(time.Duration(i)*time.Minute))
	}
	c.CountScope("openid", ScopeGranted, 1, at(0))
	b := NewBatch()
	st.Checkpoint(b)
	names, v6 := b.ScopeNames, b.Records[0].Value
	want, err := decodeClient(names, "ehr-app", v6)
	if err != nil || len(want.IPs) != 8 {
		t.Fatalf("format 6 record read as %+v, %v", want, err)
	}
	v5 := formatV5(t, names, v6)
	if v5[0] != formatClientV5 || len(v5) <= len(v6) {
		t.Fatalf("format 5 record %d bytes, format %d; format 6 %d bytes", len(v5), v5[0], len(v6))
	}
	if got, err := decodeClient(names, "ehr-app", v5); err != nil || !clientEqual(got, want) {
		t.Fatalf("format 5 record read as %+v, %v; want %+v", got, err, want)
	}
	c4from5, err5 := selfContained(names, v5)
	c4from6, err6 := selfContained(names, v6)
	if err5 != nil || err6 != nil || c4from5[0] != formatClientV4 || !bytes.Equal(c4from5, c4from6) {
		t.Fatalf("changelog records differ: %v %v\n%x\n%x", err5, err6, c4from5, c4from6)
	}
	if got, err := decodeClient(nil, "ehr-app", c4from6); err != nil || !clientEqual(got, want) {
		t.Fatalf("changelog record read as %+v, %v; want %+v", got, err, want)
	}

	db, _ := newTestDB(t)
	commit(t, db, b) // numbers the names
	if err := db.bolt.Update(func(tx *bolt.Tx) error { return tx.Bucket(bucketClients).Put([]byte("ehr-app"), v5) }); err != nil {
		t.Fatal(err)
	}
	if got, ok, err := db.Client("ehr-app"); err != nil || !ok || !clientEqual(got, want) {
		t.Fatalf("stored format 5 record read as %+v, %v, %v; want %+v", got, ok, err, want)
	}
	later := NewState(db, 0)
	later.Client("ehr-app").SawIP(netip.MustParseAddr("10.0.0.3"), at(time.Hour))
	b = NewBatch()
	later.Checkpoint(b)
	commit(t, db, b)
	want.IPs["10.0.0.3"] = counter(1, at(time.Hour), at(time.Hour))
	wantClient(t, db, want)
	_ = db.bolt.View(func(tx *bolt.Tx) error {
		rec := tx.Bucket(bucketClients).Get([]byte("ehr-app"))
		if rec[0] != formatClient {
			t.Fatalf("record rewritten in format %d, want %d", rec[0], formatClient)
		}
		if as5 := formatV5(t, db.scopes.load(), rec); len(rec) >= len(as5) {
			t.Errorf("record rewritten in %d bytes, not fewer than the %d of its format 5", len(rec), len(as5))
		}
		return nil
	})
}

// TestDaddrs decodes address lists of format 6 built by hand, good and
// malformed.
func TestDaddrs(t *testing.T) {
	v6 := netip.MustParseAddr("2001:db8::1").As16()
	long := appendUvarint(nil, 16<<1|1)
	long = append(long, v6[:]...)
	entry := func(u uint64) []byte { return append(appendUvarint(nil, u), 0) } // a daddr and a zero counter
	list := func(entries ...[]byte) []byte {
		b := appendUvarint(nil, uint64(len(entries)))
		for _, e := range entries {
			b = append(b, e...)
		}
		return b
	}
	for _, tc := range []struct {
		name string
		b    []byte
		want []string // nil: malformed
	}{
		{"first is 0.0.0.0", list(entry(0), entry(2)), []string{"0.0.0.0", "0.0.0.1"}},
		{"IPv6 between", list(entry(uint64(0x0a000001)<<1), append(long, 0), entry(uint64(0xc0000201-0x0a000001)<<1)), []string{"10.0.0.1", "2001:db8::1", "192.0.2.1"}},
		{"last is 255.255.255.255", list(entry(uint64(0xffffffff) << 1)), []string{"255.255.255.255"}},
		{"the same address twice", list(entry(4), entry(0)), nil},
		{"beyond 32 bits", list(entry(uint64(0xffffffff)<<1), entry(2)), nil},
		{"an IPv4 address spelled as bytes", list(append([]byte{4<<1 | 1, 10, 0, 0, 1}, 0)), nil},
		{"out of order", list(entry(uint64(0xc0000201)<<1), append(long, 0)), nil},
		{"truncated bytes", list(long[:10]), nil},
	} {
		d := decoder{b: tc.b, relative: true, daddrs: true}
		got := decodeSeenSet(&d, true)
		if tc.want == nil {
			if !errors.Is(d.err, ErrCorrupt) {
				t.Errorf("%s: decoded %v, %v; want ErrCorrupt", tc.name, got, d.err)
			}
			continue
		}
		if d.err != nil || len(d.b) != 0 || len(got) != len(tc.want) {
			t.Errorf("%s: decoded %v, %v, %d bytes left; want %q", tc.name, got, d.err, len(d.b), tc.want)
			continue
		}
		for _, a := range tc.want {
			if _, ok := got[a]; !ok {
				t.Errorf("%s: decoded %v; want %q", tc.name, got, tc.want)
			}
		}
	}
}
