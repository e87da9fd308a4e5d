package kafka

import (
	"context"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/scopewatch/scopewatch/ingest"
	"github.com/scopewatch/scopewatch/rules"
	"github.com/scopewatch/scopewatch/store"
)

// changelogCluster returns a Kafka of topics logs and state, of two
// partitions each, closed when t ends, and a context that ends within a
// minute.
func changelogCluster(t *testing.T) (*kfake.Cluster, context.Context) {
	t.Helper()
	c := kfake.MustCluster(kfake.NumBrokers(1), kfake.SeedTopics(2, "logs"), kfake.SeedTopics(2, "state"))
	t.Cleanup(c.Close)
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	t.Cleanup(cancel)
	return c, ctx
}

// shipClaimed claims partition p's changelog for src, lets it be
// written, and writes what it lacks.
func shipClaimed(ctx context.Context, t *testing.T, src *Source, p tp) {
	t.Helper()
	if err := src.changelog.claim(ctx, p); err != nil {
		t.Fatal(err)
	}
	src.changelog.markReady(p)
	src.changelog.ship(ctx, p)
}

// changelogSource returns a source of topic logs with the changelog
// state, on a store of its own, ready for its changelog's methods (Run
// sets the same fields).
func changelogSource(t *testing.T, c *kfake.Cluster, name string) (*Source, *store.DB) {
	t.Helper()
	db, err := store.Open(filepath.Join(t.TempDir(), name+".db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	if err := db.KeepChangelog(store.ChangelogOptions{Sources: []string{"kc"}}); err != nil {
		t.Fatal(err)
	}
	src := New(Options{Name: "kc", Positions: db, Changelog: db,
		Config: rules.Kafka{Brokers: c.ListenAddrs(), Topics: []string{"logs"}, Group: "g", Changelog: "state"}})
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	t.Cleanup(src.changelog.close)
	src.cl, src.runCtx = cl, t.Context()
	return src, db
}

// commitClient commits client id's use at offset of partition 0 of logs.
func commitClient(t *testing.T, db *store.DB, st *store.State, id string, offset int64) {
	t.Helper()
	k := store.PositionKey{Source: "kc", File: FileID("logs", 0)}
	c := st.Client(id)
	c.Seen.Add(1, time.Date(2026, 5, 1, 0, 0, int(offset), 0, time.UTC))
	st.Own(id, k)
	b := store.NewBatch()
	b.SetPosition(store.Position{Source: "kc", File: k.File, Offset: offset, Line: offset, Path: PositionPath("logs", 0)})
	st.Checkpoint(b)
	if err := db.Commit(b); err != nil {
		t.Fatal(err)
	}
	st.Durable(b.Gen)
}

// changelogState fails t unless by reads partition p's changelog at
// offset want, holding clients.
func changelogState(ctx context.Context, t *testing.T, by *Source, p tp, what string, want int64, clients ...string) {
	t.Helper()
	part, got, err := by.changelog.read(ctx, p)
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	if part == nil {
		t.Fatalf("%s: the changelog holds nothing of the partition; want offset %d with %v", what, want, clients)
	}
	snap, err := store.DecodeSnapshot(store.PositionKey{Source: "kc", File: FileID(p.topic, p.partition)}, part, got)
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	var ids []string
	for _, c := range snap.Clients {
		ids = append(ids, c.ID)
	}
	if snap.Position.Offset != want || !slices.Equal(ids, clients) {
		t.Fatalf("%s: the changelog stands at %d with clients %v; want %d with %v", what, snap.Position.Offset, ids, want, clients)
	}
}

// TestChangelogFencesFormerOwner checks the handover of a partition's
// changelog: the former owner, not knowing yet that it lost the
// partition, can write no more of it, nor take it back by itself; the
// new owner writes it; and an instance that claims it after its owner
// died while writing reads past the transaction left open, the state of
// the last one committed. Given the partition back, the former owner
// sees that another wrote the changelog since.
func TestChangelogFencesFormerOwner(t *testing.T) {
	c, ctx := changelogCluster(t)
	p := tp{"logs", 0}

	a, adb := changelogSource(t, c, "a")
	ast := store.NewState(adb, 100)
	commitClient(t, adb, ast, "x", 10)
	shipClaimed(ctx, t, a, p)
	commitClient(t, adb, ast, "y", 20) // not written yet

	b, bdb := changelogSource(t, c, "b")
	if err := b.changelog.claim(ctx, p); err != nil {
		t.Fatal(err)
	}
	b.changelog.markReady(p)
	state := func(by *Source, what string, want int64, clients ...string) {
		t.Helper()
		changelogState(ctx, t, by, p, what, want, clients...)
	}
	state(b, "claimed by b", 10, "x")

	// a goes on writing: refused, it lets the partition go.
	a.changelog.ship(ctx, p)
	if n := len(a.changelog.writable()); n != 0 {
		t.Errorf("a still writes %d changelogs after b claimed its partition", n)
	}
	a.changelog.ship(ctx, p) // no producer: nothing, b not fenced
	state(b, "after a tried to write", 10, "x")
	if n := b.changelog.writable(); len(n) != 1 {
		t.Fatalf("b writes %d changelogs, want 1", len(n))
	}
	// b, the owner, writes it (here without having restored x: a
	// compacted topic keeps x's newest value beside b's z).
	bst := store.NewState(bdb, 100)
	commitClient(t, bdb, bst, "z", 30)
	b.changelog.ship(ctx, p)
	state(b, "written by b", 30, "x", "z")
	// Given the partition back, a must not resume it from its store: b
	// wrote the changelog since. b, given it again, may.
	for _, c := range []struct {
		name   string
		src    *Source
		offset int64
		want   bool
	}{{"a", a, 20, true}, {"b", b, 30, false}} {
		if restore, err := c.src.changelog.check(ctx, p, c.offset); err != nil || restore != c.want {
			t.Errorf("%s: restore = %v, %v; want %v", c.name, restore, err, c.want)
		}
	}

	// b then starts another transaction and dies in it: c, claiming
	// the partition, reads past it, as of b's last commit.
	commitClient(t, bdb, bst, "w", 40)
	b.changelog.mu.Lock()
	half := b.changelog.producers[p]
	b.changelog.mu.Unlock()
	if err := half.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	if err := half.ProduceSync(ctx, &kgo.Record{Topic: "state", Partition: 0, Key: changelogKey("logs", "w"), Value: []byte("half")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	cs, _ := changelogSource(t, c, "c")
	if err := cs.changelog.claim(ctx, p); err != nil {
		t.Fatal(err)
	}
	state(cs, "claimed by c", 30, "x", "z")
}

// TestChangelogWritesOnlyWhenReady checks that a partition claimed but
// not restored or checked yet is not written: its store holds a former
// state, or none.
func TestChangelogWritesOnlyWhenReady(t *testing.T) {
	c, ctx := changelogCluster(t)
	p := tp{"logs", 0}
	a, adb := changelogSource(t, c, "a")
	commitClient(t, adb, store.NewState(adb, 100), "x", 10)
	if err := a.changelog.claim(ctx, p); err != nil {
		t.Fatal(err)
	}
	if n := len(a.changelog.writable()); n != 0 {
		t.Errorf("claimed, %d changelogs writable; want none until ready", n)
	}
	a.changelog.ship(ctx, p) // the periodic write, or a revocation's
	if part, _, err := a.changelog.read(ctx, p); err != nil || part != nil {
		t.Fatalf("claimed, not ready: the changelog holds %q (%v); want nothing", part, err)
	}
	a.changelog.markReady(p)
	a.changelog.ship(ctx, p)
	changelogState(ctx, t, a, p, "ready", 10, "x")
	// Claimed again (given back after a failed session), it waits again.
	if err := a.changelog.claim(ctx, p); err != nil {
		t.Fatal(err)
	}
	if n := len(a.changelog.writable()); n != 0 {
		t.Errorf("claimed again, %d changelogs writable; want none until ready", n)
	}
}

// TestChangelogCheckWithoutNonce checks a store that holds a partition
// but never wrote its changelog (kept since, or kept again) against a
// changelog another instance wrote: the state further along wins, and
// when it is the store's, the changelog gets it whole, the clients it
// held that the store does not deleted.
func TestChangelogCheckWithoutNonce(t *testing.T) {
	c, ctx := changelogCluster(t)
	p := tp{"logs", 0}

	b, bdb := changelogSource(t, c, "b")
	bst := store.NewState(bdb, 100)
	commitClient(t, bdb, bst, "x", 4)
	commitClient(t, bdb, bst, "y", 5)
	shipClaimed(ctx, t, b, p)
	changelogState(ctx, t, b, p, "written by b", 5, "x", "y")

	a, adb := changelogSource(t, c, "a")
	ast := store.NewState(adb, 100)
	commitClient(t, adb, ast, "x", 9)
	commitClient(t, adb, ast, "z", 10)
	if err := a.changelog.claim(ctx, p); err != nil {
		t.Fatal(err)
	}
	// Behind the changelog, a would restore it.
	if restore, err := a.changelog.check(ctx, p, 4); err != nil || !restore {
		t.Errorf("a at 4 against the changelog at 5: restore = %v, %v; want true", restore, err)
	}
	if restore, err := a.changelog.check(ctx, p, 10); err != nil || restore {
		t.Fatalf("a at 10 against the changelog at 5: restore = %v, %v; want false", restore, err)
	}
	a.changelog.markReady(p)
	a.changelog.ship(ctx, p)
	changelogState(ctx, t, a, p, "written by a", 10, "x", "z")
	if restore, err := a.changelog.check(ctx, p, 10); err != nil || restore {
		t.Errorf("a, having written the changelog: restore = %v, %v; want false", restore, err)
	}
}

// TestChangelogReadsPastCompactedEnd checks a changelog whose last
// records before its end were removed by compaction (an aborted
// transaction, then its marker): the offsets up to the end hold nothing
// any more, and the read ends there instead of waiting for them.
func TestChangelogReadsPastCompactedEnd(t *testing.T) {
	c, ctx := changelogCluster(t)
	p := tp{"logs", 0}
	a, adb := changelogSource(t, c, "a")
	commitClient(t, adb, store.NewState(adb, 100), "x", 10)
	shipClaimed(ctx, t, a, p)
	ends, err := listOffsets(ctx, a.client(), []tp{{"state", 0}}, -1)
	if err != nil {
		t.Fatal(err)
	}
	// The broker's log ends 3 offsets past its last record, as a cleaned
	// log does.
	gone := ends[tp{"state", 0}] + 3
	c.ControlKey(int16(kmsg.ListOffsets), func(kreq kmsg.Request) (kmsg.Response, error, bool) {
		req := kreq.(*kmsg.ListOffsetsRequest)
		if len(req.Topics) != 1 || req.Topics[0].Topic != "state" || len(req.Topics[0].Partitions) != 1 || req.Topics[0].Partitions[0].Timestamp != -1 {
			return nil, nil, false
		}
		c.KeepControl()
		resp := req.ResponseKind().(*kmsg.ListOffsetsResponse)
		rt := kmsg.NewListOffsetsResponseTopic()
		rt.Topic = "state"
		rp := kmsg.NewListOffsetsResponseTopicPartition()
		rp.Partition, rp.Offset = req.Topics[0].Partitions[0].Partition, gone
		rt.Partitions = append(rt.Partitions, rp)
		resp.Topics = append(resp.Topics, rt)
		return resp, nil, true
	})
	// Its leader answers a fetch past the last record with nothing, and
	// its last stable offset at that end.
	c.ControlKey(int16(kmsg.Fetch), func(kreq kmsg.Request) (kmsg.Response, error, bool) {
		req := kreq.(*kmsg.FetchRequest)
		if len(req.Topics) != 1 || len(req.Topics[0].Partitions) != 1 || req.Topics[0].Partitions[0].FetchOffset < ends[tp{"state", 0}] {
			return nil, nil, false
		}
		c.KeepControl()
		resp := req.ResponseKind().(*kmsg.FetchResponse)
		rt := kmsg.NewFetchResponseTopic()
		rt.Topic, rt.TopicID = req.Topics[0].Topic, req.Topics[0].TopicID
		rp := kmsg.NewFetchResponseTopicPartition()
		rp.Partition, rp.HighWatermark, rp.LastStableOffset = req.Topics[0].Partitions[0].Partition, gone, gone
		rt.Partitions = append(rt.Partitions, rp)
		resp.Topics = append(resp.Topics, rt)
		return resp, nil, true
	})
	rctx, rcancel := context.WithTimeout(ctx, 20*time.Second)
	defer rcancel()
	changelogState(rctx, t, a, p, "read to an end past the last record", 10, "x")
	part, err := a.changelog.latest(rctx, p)
	if err != nil || part == nil {
		t.Fatalf("the newest partition record: %q, %v; want the one written", part, err)
	}
}

// TestChangelogClosed checks that a claim still running when the source
// stops builds no producer: none would close it.
func TestChangelogClosed(t *testing.T) {
	c, _ := changelogCluster(t)
	a, _ := changelogSource(t, c, "a")
	a.changelog.close()
	if err := a.changelog.produceTo(t.Context(), tp{"logs", 0}); err == nil {
		t.Error("a producer built after close; want an error")
	}
	if n := len(a.changelog.producers); n != 0 {
		t.Errorf("%d producers after close; want none", n)
	}
}

// TestChangelogFencesIdleOwner checks a former owner that had nothing to
// write while it held the partition: its first write, after another
// instance claimed the partition, is refused too, and does not fence the
// new owner.
func TestChangelogFencesIdleOwner(t *testing.T) {
	c, ctx := changelogCluster(t)
	p := tp{"logs", 0}
	a, adb := changelogSource(t, c, "a")
	if err := a.changelog.claim(ctx, p); err != nil {
		t.Fatal(err)
	}
	a.changelog.markReady(p)
	a.changelog.ship(ctx, p) // nothing to write

	b, bdb := changelogSource(t, c, "b")
	commitClient(t, bdb, store.NewState(bdb, 100), "y", 5)
	shipClaimed(ctx, t, b, p)
	changelogState(ctx, t, b, p, "claimed and written by b", 5, "y")

	commitClient(t, adb, store.NewState(adb, 100), "x", 10)
	a.changelog.ship(ctx, p)
	if n := len(a.changelog.writable()); n != 0 {
		t.Errorf("a still writes %d changelogs after b claimed its partition", n)
	}
	changelogState(ctx, t, b, p, "after a tried to write", 5, "y")
	commitClient(t, bdb, store.NewState(bdb, 100), "z", 7)
	b.changelog.ship(ctx, p)
	changelogState(ctx, t, b, p, "written by b again", 7, "y", "z")
}

// TestChangelogRestoreBookkeeping checks what a restore of a held
// partition leaves of the source's own records: a partition counted as
// rebuilding counts once while restored and not after; and a restore
// the engine took before a rebalance cut the wait short leaves no offset
// handed on, so that the next session resumes from the store's.
func TestChangelogRestoreBookkeeping(t *testing.T) {
	c, ctx := changelogCluster(t)
	p := tp{"logs", 0}
	b, bdb := changelogSource(t, c, "b")
	commitClient(t, bdb, store.NewState(bdb, 100), "y", 5)
	shipClaimed(ctx, t, b, p)

	a, _ := changelogSource(t, c, "a")
	out := make(chan ingest.Line)
	a.out = out
	a.mu.Lock()
	a.restoring[p] = 100 // rebuilding from its start when the session ended
	a.opt.Metrics.restoring.Add(1)
	a.sent[p] = 4
	a.mu.Unlock()
	go func() {
		ln := <-out
		ln.Restore.Done <- nil // taken and committed
	}()
	if st := a.startChangelog(ctx, p, 4, true, false); !st.restored || st.offset != 5 {
		t.Fatalf("held at 4 with the changelog at 5: %+v; want restored from 5", st)
	}
	if n := a.opt.Metrics.PartitionsRestoring(); n != 0 {
		t.Errorf("restored, %d partitions count as restoring; want 0", n)
	}

	a.mu.Lock()
	a.sent[p] = 4
	a.mu.Unlock()
	a.changelog.forget(p)
	cut, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		<-out // taken; the session ends before the commit is told
		cancel()
	}()
	if st := a.startChangelog(cut, p, 4, true, false); st.restored {
		t.Fatalf("cut short: %+v; want not restored", st)
	}
	a.mu.Lock()
	sent, ok := a.sent[p]
	a.mu.Unlock()
	if ok {
		t.Errorf("after a restore the engine took, offset %d counts as handed on; want none, the store's position rules", sent)
	}
}
