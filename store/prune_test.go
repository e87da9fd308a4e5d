package store

import (
	"errors"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

// TestDropClients deletes client records in the transaction that carries
// the rest of the batch: a failed commit keeps them, a good one removes
// them together with the position, and a dropped client with a delta in
// the same batch starts a new record.
func TestDropClients(t *testing.T) {
	db, _ := newTestDB(t)
	t0 := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	b := NewBatch()
	st := NewState(db, 0)
	for _, id := range []string{"a", "b", "c"} {
		c := st.Client(id)
		c.Seen.Add(2, t0)
		c.Issued.Add(1, t0)
	}
	st.Checkpoint(b)
	if err := db.Commit(b); err != nil {
		t.Fatal(err)
	}

	pos := Position{Source: "kc", File: FileID{Dev: 1, Ino: 2}, Offset: 100, Line: 3}
	drop := func() *Batch {
		b := NewBatch()
		st := NewState(nil, 0) // as the engine's, which forgot the dropped clients
		b.DropClients["a"] = struct{}{}
		b.DropClients["b"] = struct{}{}
		b.DropClients["never-stored"] = struct{}{}
		st.Client("b").Seen.Add(1, t0.Add(time.Hour))
		st.Checkpoint(b)
		b.SetPosition(pos)
		return b
	}
	hookErr := errors.New("disk gone")
	db.beforeCommit = func(*bolt.Tx) error { return hookErr }
	if err := db.Commit(drop()); !errors.Is(err, hookErr) {
		t.Fatalf("Commit with a failing hook = %v", err)
	}
	db.beforeCommit = nil
	if cs, _ := db.Clients(); len(cs) != 3 {
		t.Fatalf("after a failed commit %d clients, want the 3 kept", len(cs))
	}
	if err := db.Commit(drop()); err != nil {
		t.Fatal(err)
	}
	cs, err := db.Clients()
	if err != nil {
		t.Fatal(err)
	}
	if len(cs) != 2 || cs[0].ID != "b" || cs[1].ID != "c" {
		t.Fatalf("clients %+v, want b (new) and c", cs)
	}
	if cs[0].Seen.N != 1 || cs[0].Issued.N != 0 || !cs[0].Seen.First.Equal(t0.Add(time.Hour)) {
		t.Errorf("b after drop and delta: %+v, want a new record of the delta only", cs[0])
	}
	if cs[1].Issued.N != 1 || !cs[1].Issued.Last.Equal(t0) {
		t.Errorf("c: issued %+v, want 1 at %v", cs[1].Issued, t0)
	}
	if ps, _ := db.Positions("kc"); len(ps) != 1 || ps[0].Offset != 100 {
		t.Errorf("positions %+v, want the one of the dropping batch", ps)
	}

	bad := NewBatch()
	bad.DropClients["x\x00y"] = struct{}{}
	if err := db.Commit(bad); !errors.Is(err, ErrInvalid) {
		t.Errorf("drop of a client id with a 0 byte: %v, want ErrInvalid", err)
	}
}

// TestClientFormat2 reads a client record of schema 3 (format 2, no
// Issued counter) and rewrites it in the current format when a batch
// touches it.
func TestClientFormat2(t *testing.T) {
	db, _ := newTestDB(t)
	t0 := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	var v []byte
	v = append(v, formatClientV2)
	v = appendCounter(v, &Counter{N: 4, First: t0, Last: t0.Add(time.Minute)})
	v = appendUvarint(v, 1)
	v = appendString(v, "openid")
	v = appendCounter(v, &Counter{})
	v = appendCounter(v, &Counter{N: 4, First: t0, Last: t0})
	v = appendCounter(v, &Counter{})
	v = appendUvarint(v, 0)
	v = appendUvarint(v, 0)
	if err := db.bolt.Update(func(tx *bolt.Tx) error { return tx.Bucket(bucketClients).Put([]byte("old"), v) }); err != nil {
		t.Fatal(err)
	}
	c, ok, err := db.Client("old")
	if err != nil || !ok || c.Seen.N != 4 || c.Issued.N != 0 || c.Scopes["openid"].Granted.N != 4 {
		t.Fatalf("format 2 record read as %+v, %v, %v", c, ok, err)
	}
	b := NewBatch()
	st := NewState(db, 0)
	st.Client("old").Issued.Add(1, t0.Add(time.Hour))
	st.Checkpoint(b)
	if err := db.Commit(b); err != nil {
		t.Fatal(err)
	}
	c, _, err = db.Client("old")
	if err != nil || c.Seen.N != 4 || c.Issued.N != 1 || c.Scopes["openid"].Granted.N != 4 {
		t.Fatalf("after a commit: %+v, %v", c, err)
	}
	if err := db.bolt.View(func(tx *bolt.Tx) error {
		if got := tx.Bucket(bucketClients).Get([]byte("old"))[0]; got != formatClient {
			t.Errorf("record rewritten in format %d, want %d", got, formatClient)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
}

// TestClientFormat3 reads a record as schema 7 wrote it (absolute times,
// addresses spelled as text, IPv6 with a zone among them), checks that a
// commit rewrites it in the current format, and that the rewritten record
// reads back to the same client with the new event added.
func TestClientFormat3(t *testing.T) {
	db, _ := newTestDB(t)
	t0 := time.Date(2026, 3, 1, 10, 0, 0, 123_000_000, time.UTC)
	ns := t0.Add(-time.Hour + 7) // a time of nanosecond precision
	var v []byte
	v = append(v, formatClientV3)
	v = appendCounter(v, &Counter{N: 4, First: ns, Last: t0})
	v = appendCounter(v, &Counter{N: 2, First: ns, Last: t0})
	v = appendUvarint(v, 1)
	v = appendString(v, "openid")
	v = appendCounter(v, &Counter{})
	v = appendCounter(v, &Counter{N: 4, First: t0.Add(-90 * 24 * time.Hour), Last: t0})
	v = appendCounter(v, &Counter{})
	ips := []string{"10.0.0.9", "2001:db8::1", "::ffff:10.0.0.1", "fe80::1%eth0"} // sorted by text, as format 3 is
	v = appendUvarint(v, uint64(len(ips)))
	for i, ip := range ips {
		v = appendString(v, ip)
		v = appendCounter(v, &Counter{N: uint64(i + 1), First: ns, Last: t0})
	}
	v = appendUvarint(v, 1)
	v = appendString(v, "US")
	v = appendCounter(v, &Counter{N: 4, First: ns, Last: t0})
	if err := db.bolt.Update(func(tx *bolt.Tx) error { return tx.Bucket(bucketClients).Put([]byte("old"), v) }); err != nil {
		t.Fatal(err)
	}
	before, ok, err := db.Client("old")
	if err != nil || !ok || before.Seen.N != 4 || before.Issued.N != 2 || len(before.IPs) != len(ips) || before.IPs["fe80::1%eth0"].N != 4 {
		t.Fatalf("format 3 record read as %+v, %v, %v", before, ok, err)
	}
	st := NewState(db, 0)
	later := t0.Add(time.Minute)
	st.Client("old").Seen.Add(1, later)
	b := NewBatch()
	st.Checkpoint(b)
	if err := db.Commit(b); err != nil {
		t.Fatal(err)
	}
	after, _, err := db.Client("old")
	if err != nil {
		t.Fatal(err)
	}
	want := before
	want.Seen.Add(1, later)
	if !clientEqual(after, want) {
		t.Errorf("after a commit:\n got %+v\nwant %+v", after, want)
	}
	if err := db.bolt.View(func(tx *bolt.Tx) error {
		rec := tx.Bucket(bucketClients).Get([]byte("old"))
		if rec[0] != formatClient || len(rec) >= len(v) {
			t.Errorf("record rewritten in format %d, %d bytes; want %d, fewer than the %d of format 3", rec[0], len(rec), formatClient, len(v))
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
}
