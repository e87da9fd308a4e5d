package store

import (
	"bytes"
	"errors"
	"math"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

// testWindowClient names the client of the test's windows: "w\x00" and
// the client id.
func testWindowClient(k string) (string, bool) { return strings.CutPrefix(k, "w\x00") }

// keepChangelog makes db keep the changelog of source "kc".
func keepChangelog(t *testing.T, db *DB) {
	t.Helper()
	if err := db.KeepChangelog(ChangelogOptions{Sources: []string{"kc"}, WindowClient: testWindowClient}); err != nil {
		t.Fatal(err)
	}
}

// changelogDB returns a store keeping the changelog of source "kc", a
// State on it, and the key of partition 0.
func changelogDB(t *testing.T) (*DB, *State, PositionKey) {
	t.Helper()
	db, _ := newTestDB(t)
	keepChangelog(t, db)
	return db, NewState(db, 100), partitionKey(0)
}

// partitionKey is the position key of partition n of source "kc".
func partitionKey(n uint64) PositionKey {
	return PositionKey{Source: "kc", File: FileID{Dev: math.MaxUint64, Ino: n}}
}

// changelogCommit commits, on db, usage of the clients ids through st,
// each owned by partition k, with a finding and a window of each, and k's
// position at offset.
func changelogCommit(t *testing.T, db *DB, st *State, k PositionKey, offset int64, ids ...string) {
	t.Helper()
	b := NewBatch()
	for _, id := range ids {
		c := st.Client(id)
		c.Seen.Add(1, at(time.Duration(offset)*time.Second))
		c.CountScope("openid", ScopeGranted, 1, at(0))
		st.Own(id, k)
		fk := FindingKey{Kind: "broad_request", Client: id, Subject: "admin"}
		b.Findings[fk] = Finding{FindingKey: fk, Severity: "high", State: StateOpen, Count: uint64(offset)}
		b.Windows["w\x00"+id] = EncodeWindow([]int64{offset, offset + 1})
	}
	b.Windows["address\x00203.0.113.1"] = EncodeWindow([]int64{offset}) // of no client: never shipped
	b.SetPosition(Position{Source: k.Source, File: k.File, Offset: offset, Line: offset, Path: "kafka:t/0"})
	st.Checkpoint(b)
	if err := db.Commit(b); err != nil {
		t.Fatal(err)
	}
	st.Durable(b.Gen)
}

// restoreChanges writes what a changelog holding chs, in order, would
// give a restore, as a compacted topic keeps it: the newest value of each
// client, deletions gone.
func restoreChanges(t *testing.T, chs ...*Changes) *Snapshot {
	t.Helper()
	clients := map[string][]byte{}
	var partition []byte
	var k PositionKey
	for _, ch := range chs {
		for _, c := range ch.Clients {
			if c.Value == nil {
				delete(clients, c.ID)
			} else {
				clients[c.ID] = c.Value
			}
		}
		var err error
		if partition, err = EncodePartition(ch.Position, ch.Coverage, uint64(len(ch.Clients))); err != nil {
			t.Fatal(err)
		}
		k = ch.Key
	}
	s, err := DecodeSnapshot(k, partition, clients)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestChangelogRoundTrip ships a partition's changes and restores them
// into another store: the clients' records, findings and windows, their
// partition and its position arrive as they were; a client deleted is
// deleted there too; what was shipped is not shipped again, what changed
// since is; a released partition's entries go; and a source that keeps
// no changelog records nothing.
func TestChangelogRoundTrip(t *testing.T) {
	db, _ := newTestDB(t)
	keepChangelog(t, db)
	st := NewState(db, 100)
	k0, k1 := partitionKey(0), partitionKey(1)
	changelogCommit(t, db, st, k0, 10, "a", "b")
	changelogCommit(t, db, st, k1, 5, "z")

	first, err := db.Changes(k0)
	if err != nil || first == nil {
		t.Fatalf("Changes = %v, %v", first, err)
	}
	if !first.Seed || len(first.Clients) != 2 || first.Clients[0].ID != "a" || first.Position.Offset != 10 {
		t.Fatalf("first changes: seed %v, %d clients, offset %d; want a seed of a and b at 10", first.Seed, len(first.Clients), first.Position.Offset)
	}
	// A commit between the read and its shipping is shipped next time.
	changelogCommit(t, db, st, k0, 20, "b")
	if err := db.Shipped(first, 1); err != nil {
		t.Fatal(err)
	}
	second, err := db.Changes(k0)
	if err != nil || second == nil || second.Seed || len(second.Clients) != 1 || second.Clients[0].ID != "b" || second.Position.Offset != 20 {
		t.Fatalf("second changes = %+v, %v; want b alone at 20", second, err)
	}
	if err := db.Shipped(second, 2); err != nil {
		t.Fatal(err)
	}
	if ch, err := db.Changes(k0); err != nil || ch != nil {
		t.Fatalf("after shipping everything, Changes = %+v, %v; want nil", ch, err)
	}
	if n, ok, err := db.ChangelogNonce(k0); err != nil || !ok || n != 2 {
		t.Errorf("ChangelogNonce = %d, %v, %v; want the last shipped, 2", n, ok, err)
	}
	if _, ok, _ := db.ChangelogNonce(k1); ok {
		t.Error("a nonce of partition 1, never shipped")
	}

	// a is pruned: its deletion is shipped.
	drop := NewBatch()
	drop.DropClients["a"] = struct{}{}
	st.Forget("a")
	if err := db.Commit(drop); err != nil {
		t.Fatal(err)
	}
	third, err := db.Changes(k0)
	if err != nil || third == nil || len(third.Clients) != 1 || third.Clients[0].ID != "a" || third.Clients[0].Value != nil {
		t.Fatalf("after a deletion, Changes = %+v, %v; want a deleted", third, err)
	}

	// The records go out naming their scopes (format 4): the store
	// restoring them numbers its scopes otherwise.
	for _, c := range first.Clients {
		r, err := decodeState(c.ID, c.Value)
		if err != nil || len(r.record) == 0 || r.record[0] != formatClientV4 {
			t.Fatalf("shipped client %s: %v, record %x; want format %d", c.ID, err, r.record, formatClientV4)
		}
	}
	snap := restoreChanges(t, first, second, third)
	other, _ := newTestDB(t)
	pre := NewState(other, 100)
	pre.Client("pre").CountScope("zeta", ScopeGranted, 1, at(0))
	pre.Client("pre").CountScope("alpha", ScopeGranted, 1, at(0))
	pb := NewBatch()
	pre.Checkpoint(pb)
	if err := other.Commit(pb); err != nil {
		t.Fatal(err)
	}
	rb := NewBatch()
	rb.Restore = snap
	rb.SetPosition(snap.Position)
	if err := other.Commit(rb); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"a", "b"} {
		want, wok, _ := db.Client(id)
		got, gok, err := other.Client(id)
		if err != nil || gok != wok || !reflect.DeepEqual(got, want) {
			t.Errorf("client %s restored = %+v (%v), want %+v (%v)", id, got, gok, want, wok)
		}
	}
	if n, ok, err := other.ChangelogNonce(k0); err != nil || !ok || n != snap.Nonce || n != 1 {
		t.Errorf("restored, ChangelogNonce = %d, %v, %v; want the snapshot's, 1", n, ok, err)
	}
	owners, _ := other.Owners()
	if !reflect.DeepEqual(owners, map[string]PositionKey{"b": k0}) {
		t.Errorf("restored owners = %v, want b of partition 0", owners)
	}
	findings, _ := other.Findings()
	if len(findings) != 1 || findings[0].Client != "b" || findings[0].Count != 20 {
		t.Errorf("restored findings = %+v, want b's of count 20", findings)
	}
	if len(snap.Findings) != 1 || len(snap.Clients) != 1 || snap.Clients[0].ID != "b" {
		t.Errorf("snapshot: %d findings, clients %+v; want b's", len(snap.Findings), snap.Clients)
	}
	windows, _ := other.Windows()
	if !reflect.DeepEqual(windows, map[string][]int64{"w\x00b": {20, 21}}) {
		t.Errorf("restored windows = %v, want b's alone", windows)
	}
	if ps, _ := other.Positions("kc"); len(ps) != 1 || ps[0].Offset != 20 {
		t.Errorf("restored positions = %+v, want offset 20", ps)
	}
	// The restored changelog is whole: no seed is shipped from it.
	keepChangelog(t, other)
	if ch, err := other.Changes(k0); err != nil || ch != nil {
		t.Errorf("after a restore, Changes = %+v, %v; want nil", ch, err)
	}
	ost := NewState(other, 100)
	changelogCommit(t, other, ost, k0, 30, "c", "b")
	if ch, err := other.Changes(k0); err != nil || ch == nil || ch.Seed || len(ch.Clients) != 2 || ch.Clients[0].ID != "b" || ch.Clients[1].ID != "c" {
		t.Errorf("after a restore and a commit, Changes = %+v, %v; want b and c", ch, err)
	}
	// b, rewritten by this store in its own numbering, has its usage.
	if got, _, err := other.Client("b"); err != nil || got.Scopes["openid"].Granted.N != 3 || len(got.Scopes) != 1 || got.Seen.N != 3 {
		t.Errorf("b restored and counted again = %+v, %v; want 3 grants of openid", got, err)
	}
	if names := other.scopes.load(); !slices.Equal(names, []string{"zeta", "alpha", "openid"}) {
		t.Errorf("the restoring store numbers %q", names)
	}

	// Partition 1 released: its entries go with it, nothing is shipped.
	rel := NewBatch()
	rel.DropClients["z"] = struct{}{}
	rel.DropPositions = append(rel.DropPositions, k1)
	if err := db.Commit(rel); err != nil {
		t.Fatal(err)
	}
	if ch, err := db.Changes(k1); err != nil || ch != nil {
		t.Errorf("after a release, Changes = %+v, %v; want nil", ch, err)
	}
	if n := bucketLen(t, db, bucketChangelog, partitionKey(1)); n != 0 {
		t.Errorf("%d changelog entries of the released partition left", n)
	}

	// Kept no more, the changelog is forgotten; kept again, it is
	// written whole first.
	if err := db.KeepChangelog(ChangelogOptions{}); err != nil {
		t.Fatal(err)
	}
	changelogCommit(t, db, st, k0, 40, "b")
	if n := bucketLen(t, db, bucketChangelog, k0); n != 0 {
		t.Errorf("kept no more, the changelog has %d entries", n)
	}
	keepChangelog(t, db)
	if ch, err := db.Changes(k0); err != nil || ch == nil || !ch.Seed || ch.Position.Offset != 40 {
		t.Errorf("kept again, Changes = %+v, %v; want a seed at 40", ch, err)
	}

	// A source without a changelog records nothing.
	plain, _ := newTestDB(t)
	pst := NewState(plain, 100)
	changelogCommit(t, plain, pst, k0, 1, "a")
	if n := bucketLen(t, plain, bucketChangelog, k0); n != 0 {
		t.Errorf("a store keeping no changelog holds %d entries", n)
	}
}

// TestDecodeSnapshotRefusesDamage checks that a changelog record cut
// short, or a finding filed under another client, is an error, not a
// restore of part of it.
func TestDecodeSnapshotRefusesDamage(t *testing.T) {
	db, st, k := changelogDB(t)
	changelogCommit(t, db, st, k, 10, "a", "b")
	ch, err := db.Changes(k)
	if err != nil || ch == nil {
		t.Fatal(ch, err)
	}
	part, _ := EncodePartition(ch.Position, ch.Coverage, uint64(len(ch.Clients)))
	a := ch.Clients[0].Value
	for name, c := range map[string]struct {
		part    []byte
		clients map[string][]byte
	}{
		"record cut short":        {part, map[string][]byte{"a": a[:len(a)-3]}},
		"finding of another":      {part, map[string][]byte{"b": a}},
		"partition cut short":     {part[:len(part)-2], map[string][]byte{"a": a}},
		"client id with a 0 byte": {part, map[string][]byte{"a\x00": a}},
	} {
		if _, err := DecodeSnapshot(k, c.part, c.clients); err == nil {
			t.Errorf("%s: DecodeSnapshot gave no error", name)
		}
	}
}

// bucketLen counts the keys of bucket name under k's prefix.
func bucketLen(t *testing.T, db *DB, name []byte, k PositionKey) int {
	t.Helper()
	n := 0
	prefix := appendPositionKey(nil, k)
	err := db.view(func(tx *bolt.Tx) error {
		c := tx.Bucket(name).Cursor()
		for key, _ := c.Seek(prefix); key != nil && bytes.HasPrefix(key, prefix); key, _ = c.Next() {
			n++
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// TestReseed checks that a store kept against its changelog ships its
// whole state next, and deletes the changelog's clients it does not hold.
func TestReseed(t *testing.T) {
	db, _ := newTestDB(t)
	keepChangelog(t, db)
	st := NewState(db, 100)
	k0 := partitionKey(0)
	changelogCommit(t, db, st, k0, 10, "a", "b")
	first, err := db.Changes(k0)
	if err != nil || first == nil {
		t.Fatalf("Changes = %v, %v", first, err)
	}
	if err := db.Shipped(first, 7); err != nil {
		t.Fatal(err)
	}
	if err := db.Reseed(k0, []string{"b", "x", "bad\x00id"}); err != nil {
		t.Fatal(err)
	}
	if _, ok, _ := db.ChangelogNonce(k0); ok {
		t.Error("reseeded, the store still says the changelog holds its state")
	}
	ch, err := db.Changes(k0)
	if err != nil || ch == nil || !ch.Seed {
		t.Fatalf("reseeded, Changes = %+v, %v; want a seed", ch, err)
	}
	got := map[string]bool{}
	for _, c := range ch.Clients {
		got[c.ID] = c.Value != nil
	}
	if want := map[string]bool{"a": true, "b": true, "x": false}; !reflect.DeepEqual(got, want) {
		t.Errorf("reseeded, Changes ships %v (id: has a state); want %v", got, want)
	}
	if err := db.Shipped(ch, 8); err != nil {
		t.Fatal(err)
	}
	if n, ok, _ := db.ChangelogNonce(k0); !ok || n != 8 {
		t.Errorf("shipped again, ChangelogNonce = %d, %v; want 8", n, ok)
	}
	if ch, err := db.Changes(k0); err != nil || ch != nil {
		t.Errorf("shipped again, Changes = %+v, %v; want nil", ch, err)
	}
}

// TestDecodeChangelogRefusesAnothersWindow checks that a client's state
// holding a window of another client is refused for a restore: written,
// that window would outlive the other client's release.
func TestDecodeChangelogRefusesAnothersWindow(t *testing.T) {
	db, st, k := changelogDB(t)
	b := NewBatch()
	st.Client("c").Seen.Add(1, at(time.Second))
	st.Own("c", k)
	b.Windows["w\x00c"] = EncodeWindow([]int64{1, 2})
	b.SetPosition(Position{Source: k.Source, File: k.File, Offset: 1, Line: 1, Path: "kafka:t/0"})
	st.Checkpoint(b)
	if err := db.Commit(b); err != nil {
		t.Fatal(err)
	}
	st.Durable(b.Gen)
	ch, err := db.Changes(k)
	if err != nil || ch == nil || len(ch.Clients) != 1 {
		t.Fatal(ch, err)
	}
	part, _ := EncodePartition(ch.Position, ch.Coverage, 1)
	own := map[string][]byte{"c": ch.Clients[0].Value}
	if s, err := db.DecodeChangelog(k, part, own); err != nil || len(s.Windows["w\x00c"]) != 2 {
		t.Fatalf("DecodeChangelog of c's own window: %v, %v", s, err)
	}
	anothers := map[string][]byte{"c": bytes.Replace(ch.Clients[0].Value, []byte("w\x00c"), []byte("w\x00a"), 1)}
	if _, err := db.DecodeChangelog(k, part, anothers); !errors.Is(err, ErrCorrupt) {
		t.Errorf("DecodeChangelog of a window of a, held by c: %v; want an error of a corrupt changelog", err)
	}
}

// TestChangelogCarriesNotificationGroups checks that a client's
// notification groups travel with it: what a notifier tells is shipped
// (Notified marks the client), a restore brings the groups, and replaces
// those the restoring store had of the client from before; a format 1
// client state, without groups, is still read.
func TestChangelogCarriesNotificationGroups(t *testing.T) {
	db, st, k := changelogDB(t)
	changelogCommit(t, db, st, k, 10, "a")
	ch, err := db.Changes(k)
	if err != nil || ch == nil {
		t.Fatal(ch, err)
	}
	if err := db.Shipped(ch, 1); err != nil {
		t.Fatal(err)
	}
	g := Group{GroupKey: GroupKey{Kind: "broad_request", Client: "a"}, Sent: at(time.Minute), Channel: "#sec",
		Told: []Told{{ID: "broad_request\x00a\x00admin", Severity: "high"}}}
	if _, err := db.Notified(g, 0, nil); err != nil {
		t.Fatal(err)
	}
	told, err := db.Changes(k)
	if err != nil || told == nil || len(told.Clients) != 1 || told.Clients[0].ID != "a" {
		t.Fatalf("after a notification, Changes = %+v, %v; want a", told, err)
	}

	other, _ := newTestDB(t)
	stale := NewBatch()
	stale.Notify[GroupKey{Kind: "unused_scope", Client: "a"}] = at(0)  // told when other held a before
	stale.Notify[GroupKey{Kind: "broad_request", Client: "a"}] = at(0) // version 1, which a notifier may have read
	stale.Notify[GroupKey{Kind: "unused_scope", Client: "b"}] = at(0)  // another client's: stays
	if err := other.Commit(stale); err != nil {
		t.Fatal(err)
	}
	snap := restoreChanges(t, ch, told)
	rb := NewBatch()
	rb.Restore = snap
	rb.SetPosition(snap.Position)
	if err := other.Commit(rb); err != nil {
		t.Fatal(err)
	}
	groups, err := other.Groups()
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, gr := range groups {
		got = append(got, gr.Kind+"/"+gr.Client)
		if gr.GroupKey == g.GroupKey && (gr.Channel != "#sec" || !reflect.DeepEqual(gr.Told, g.Told) || !gr.Sent.Equal(g.Sent) || gr.Version <= 1) {
			t.Errorf("restored group = %+v; want %+v at a version past the one it replaced, 1", gr, g)
		}
	}
	slices.Sort(got)
	if want := []string{"broad_request/a", "unused_scope/b"}; !slices.Equal(got, want) {
		t.Errorf("restored, the groups are %v; want %v", got, want)
	}

	// A notifier that read the group replaced: its write keeps the change
	// that arrived since waiting.
	mark := NewBatch()
	mark.Notify[g.GroupKey] = at(2 * time.Minute)
	if err := other.Commit(mark); err != nil {
		t.Fatal(err)
	}
	if _, err := other.Notified(g, 1, nil); err != nil {
		t.Fatal(err)
	}
	if groups, _ := other.Groups(); !slices.ContainsFunc(groups, func(gr Group) bool { return gr.GroupKey == g.GroupKey && !gr.Changed.IsZero() }) {
		t.Errorf("a notifier's write of version 1 cleared the change after the restore: %+v", groups)
	}

	// The same state in format 1: no groups, the rest as it was.
	r, err := decodeState("a", told.Clients[0].Value)
	if err != nil || len(r.groups) != 1 {
		t.Fatalf("format 2 state: %d groups, %v", len(r.groups), err)
	}
	v1 := append([]byte{1}, appendString(nil, r.record)...)
	for _, set := range [][][2][]byte{r.findings, r.windows} {
		v1 = appendUvarint(v1, uint64(len(set)))
		for _, e := range set {
			v1 = appendString(appendString(v1, e[0]), e[1])
		}
	}
	part, _ := EncodePartition(told.Position, told.Coverage, 2)
	s1, err := DecodeSnapshot(k, part, map[string][]byte{"a": v1})
	if err != nil || len(s1.Clients) != 1 || len(s1.Findings) != 1 || len(s1.Windows) != 1 || len(s1.raw[0].groups) != 0 {
		t.Fatalf("format 1 state: %+v, %v; want a with its finding and window, no groups", s1, err)
	}
	// Restored, it leaves the groups the store has of a: it has none.
	before, _ := other.Groups()
	rb1 := NewBatch()
	rb1.Restore = s1
	rb1.SetPosition(s1.Position)
	if err := other.Commit(rb1); err != nil {
		t.Fatal(err)
	}
	if after, _ := other.Groups(); len(after) != len(before) {
		t.Errorf("a format 1 restore left %d groups of %d", len(after), len(before))
	}
}
