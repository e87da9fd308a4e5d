package store

import (
	"path/filepath"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

// TestNotifyMarksCommitWithFindings checks that a batch's group marks land
// in the same transaction as its findings, keep the earliest change, and
// count versions.
func TestNotifyMarksCommitWithFindings(t *testing.T) {
	db := openTest(t, filepath.Join(t.TempDir(), "s.db"), Options{})
	t0 := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	k := FindingKey{Kind: "broad_request", Client: "lab-portal", Subject: "patient/*.read"}
	g := Of(k)
	b := NewBatch()
	b.Findings[k] = Finding{FindingKey: k, Severity: SeverityWarning, State: StateOpen}
	b.Notify[g] = t0.Add(time.Minute)
	if err := db.Commit(b); err != nil {
		t.Fatal(err)
	}
	b.Reset()
	b.Notify[g] = t0 // an earlier change, committed later
	if err := db.Commit(b); err != nil {
		t.Fatal(err)
	}
	gs, err := db.Groups()
	if err != nil || len(gs) != 1 {
		t.Fatalf("Groups() = %+v, %v", gs, err)
	}
	if gs[0].GroupKey != g || !gs[0].Changed.Equal(t0) || gs[0].Version != 2 {
		t.Errorf("group = %+v, want %v changed %v version 2", gs[0], g, t0)
	}
	fs, err := db.GroupFindings(g)
	if err != nil || len(fs) != 1 || fs[0].Subject != k.Subject {
		t.Errorf("GroupFindings = %+v, %v", fs, err)
	}
	if fs, _ := db.GroupFindings(GroupKey{Kind: "broad_request", Client: "lab"}); len(fs) != 0 {
		t.Errorf("GroupFindings of a client whose id prefixes another's = %+v, want none", fs)
	}

	// A notifier that read version 1 must not clear the change of version 2.
	sent := Group{GroupKey: g, Sent: t0.Add(time.Hour), Channel: "#sec", Told: []Told{{ID: k.ID(), Severity: SeverityWarning}}}
	msgs, err := db.Notified(sent, 1, []Message{{Channel: "#sec", Text: "one"}})
	if err != nil || len(msgs) != 1 || msgs[0].Seq == 0 {
		t.Fatalf("Notified = %+v, %v", msgs, err)
	}
	gs, _ = db.Groups()
	if gs[0].Changed.IsZero() || gs[0].Channel != "#sec" || len(gs[0].Told) != 1 {
		t.Errorf("after a stale Notified the group = %+v, want the change kept and the send recorded", gs[0])
	}
	if _, err := db.Notified(sent, 2, nil); err != nil {
		t.Fatal(err)
	}
	gs, _ = db.Groups()
	if !gs[0].Changed.IsZero() {
		t.Errorf("after Notified at the current version Changed = %v, want zero", gs[0].Changed)
	}
	// Nothing told and nothing waiting: the group record goes.
	if _, err := db.Notified(Group{GroupKey: g}, 2, nil); err != nil {
		t.Fatal(err)
	}
	if gs, _ := db.Groups(); len(gs) != 0 {
		t.Errorf("Groups() after the last finding was told resolved = %+v, want none", gs)
	}
}

// TestOutboxOrderDeliveryAndDeadLetters checks that messages keep their
// queue order across a reopen, that a delivered one goes and a buried one
// moves to the dead letters.
func TestOutboxOrderDeliveryAndDeadLetters(t *testing.T) {
	path := filepath.Join(t.TempDir(), "s.db")
	db := openTest(t, path, Options{})
	t0 := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	var in []Message
	for _, text := range []string{"a", "b", "c", "d"} {
		in = append(in, Message{Channel: "#sec", Text: text, Queued: t0})
	}
	if _, err := db.Queue(in[:2]...); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Queue(in[2:]...); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Queue(Message{Text: "nowhere"}); err == nil {
		t.Error("Queue of a message without a channel succeeded")
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	db = openTest(t, path, Options{})
	all, err := db.Outbox(0, 0)
	if err != nil || len(all) != 4 {
		t.Fatalf("Outbox = %+v, %v", all, err)
	}
	for i, m := range all {
		if m.Text != in[i].Text || (i > 0 && m.Seq <= all[i-1].Seq) {
			t.Errorf("outbox[%d] = %q seq %d, want %q in rising order", i, m.Text, m.Seq, in[i].Text)
		}
	}
	if err := db.Delivered(all[0].Seq); err != nil {
		t.Fatal(err)
	}
	if err := db.Bury(all[1], "channel_not_found", t0); err != nil {
		t.Fatal(err)
	}
	rest, _ := db.Outbox(0, 0)
	if len(rest) != 2 || rest[0].Text != "c" {
		t.Errorf("outbox after delivering a and burying b = %+v", rest)
	}
	if page, _ := db.Outbox(rest[0].Seq, 1); len(page) != 1 || page[0].Text != "d" {
		t.Errorf("Outbox(after c, 1) = %+v, want d", page)
	}
	dl, err := db.DeadLetters()
	if err != nil || len(dl) != 1 || dl[0].Text != "b" || dl[0].Error != "channel_not_found" {
		t.Errorf("DeadLetters = %+v, %v", dl, err)
	}
}

// TestMigrateFromSchema2 opens a version 2 file with an open and a
// resolved finding and checks that the open one's group is marked to be
// told, once.
func TestMigrateFromSchema2(t *testing.T) {
	path := filepath.Join(t.TempDir(), "s.db")
	t0 := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	db := openTest(t, path, Options{})
	open := FindingKey{Kind: "unfamiliar_geo", Client: "lab-portal", Subject: "KP"}
	gone := FindingKey{Kind: "broad_request", Client: "lab-portal", Subject: "*"}
	b := NewBatch()
	b.Findings[open] = Finding{FindingKey: open, State: StateOpen, Opened: t0}
	b.Findings[gone] = Finding{FindingKey: gone, State: StateResolved, Opened: t0}
	if err := db.Commit(b); err != nil {
		t.Fatal(err)
	}
	err := db.bolt.Update(func(tx *bolt.Tx) error {
		for _, name := range [][]byte{bucketGroups, bucketOutbox, bucketDeadLetter} {
			if err := tx.DeleteBucket(name); err != nil {
				return err
			}
		}
		return tx.Bucket(bucketMeta).Put(keySchema, appendUvarint(nil, 2))
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	db = openTest(t, path, Options{})
	if v, _ := db.SchemaVersion(); v != SchemaVersion {
		t.Errorf("SchemaVersion() after migration = %d, want %d", v, SchemaVersion)
	}
	gs, err := db.Groups()
	if err != nil || len(gs) != 1 || gs[0].GroupKey != Of(open) || !gs[0].Changed.Equal(t0) {
		t.Errorf("Groups() after migration = %+v, %v; want only %v changed at %v", gs, err, Of(open), t0)
	}
	if m, err := db.Outbox(0, 0); err != nil || len(m) != 0 {
		t.Errorf("Outbox after migration = %+v, %v", m, err)
	}
}
