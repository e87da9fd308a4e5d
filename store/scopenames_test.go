package store

import (
	"encoding/binary"
	"errors"
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
