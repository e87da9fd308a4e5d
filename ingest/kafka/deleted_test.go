package kafka

import (
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/scopewatch/scopewatch/ingest"
	"github.com/scopewatch/scopewatch/rules"
	"github.com/scopewatch/scopewatch/store"
)

// topicWatch is a Source of the test under way, with what it hands on,
// its metrics, and the cluster's admin requests.
type topicWatch struct {
	t   *testing.T
	c   *kfake.Cluster
	m   *Metrics
	db  *store.DB
	out <-chan ingest.Line
}

// newTopicWatch starts a Source of topics whose watcher checks them at
// start and then on each tick, or every 20 ms with none.
func newTopicWatch(t *testing.T, c *kfake.Cluster, tick <-chan time.Time, topics ...string) *topicWatch {
	db, err := store.Open(filepath.Join(t.TempDir(), "s.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	w := &topicWatch{t: t, c: c, m: NewMetrics(nil), db: db}
	w.out = start(t, New(Options{
		Name: "kc", Metrics: w.m, CheckEvery: 20 * time.Millisecond, CheckTick: tick, Positions: db,
		Config: rules.Kafka{Brokers: c.ListenAddrs(), Topics: topics, Group: "scopewatch"},
		Extra:  []kgo.Opt{kgo.SessionTimeout(6 * time.Second), kgo.RebalanceTimeout(6 * time.Second)},
	}))
	return w
}

// receive takes n lines, saves their positions as the engine would, and
// returns them by position path.
func (w *topicWatch) receive(n int) map[string][]string {
	w.t.Helper()
	got := map[string][]string{}
	b := store.NewBatch()
	for range n {
		select {
		case ln := <-w.out:
			got[ln.Pos.Path] = append(got[ln.Pos.Path], string(ln.Text))
			b.SetPosition(ln.Pos.Record())
		case <-time.After(30 * time.Second):
			w.t.Fatalf("after %v, no line came", got)
		}
	}
	if err := w.db.Commit(b); err != nil {
		w.t.Fatal(err)
	}
	return got
}

func (w *topicWatch) missing(topic string) float64 {
	return testutil.ToFloat64(w.m.TopicMissing.WithLabelValues("kc", topic))
}

// waitFor polls the source's metrics until ok holds.
func (w *topicWatch) waitFor(what string, ok func() bool) {
	w.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !ok() {
		if time.Now().After(deadline) {
			w.t.Fatalf("%s: not within 30s (topic_missing errors %v)", what, testutil.ToFloat64(w.m.Errors.WithLabelValues("kc", "topic_missing")))
		}
		time.Sleep(10 * time.Millisecond) // polling the watcher's metrics
	}
}

func (w *topicWatch) admin(req kmsg.Request) {
	w.t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(w.c.ListenAddrs()...))
	if err != nil {
		w.t.Fatal(err)
	}
	defer cl.Close()
	if _, err := cl.Request(w.t.Context(), req); err != nil {
		w.t.Fatal(err)
	}
}

func (w *topicWatch) create(topic string, partitions int32) {
	req := kmsg.NewPtrCreateTopicsRequest()
	ct := kmsg.NewCreateTopicsRequestTopic()
	ct.Topic, ct.NumPartitions, ct.ReplicationFactor = topic, partitions, 1
	req.Topics = append(req.Topics, ct)
	w.admin(req)
}

func (w *topicWatch) delete(topic string) {
	req := kmsg.NewPtrDeleteTopicsRequest()
	dt := kmsg.NewDeleteTopicsRequestTopic()
	dt.Topic = kmsg.StringPtr(topic)
	req.Topics, req.TopicNames = append(req.Topics, dt), []string{topic}
	w.admin(req)
}

// TestDeletedTopic: of a source's two topics, one is deleted while it is
// read. The other's lines go on coming; the deleted one is counted and
// shown missing until it is created again, and then read from its start,
// though the offsets saved for the deleted one are past its first records.
func TestDeletedTopic(t *testing.T) {
	c := kfake.MustCluster(kfake.NumBrokers(1), kfake.SeedTopics(2, "logs", "gone"))
	defer c.Close()
	produce(t, c, "logs", 2, 5)
	produce(t, c, "gone", 2, 5)
	w := newTopicWatch(t, c, nil, "logs", "gone")
	w.receive(20) // offsets 5 saved for each partition
	w.waitFor("both topics checked", func() bool { return testutil.CollectAndCount(w.m.TopicMissing) == 2 })

	w.delete("gone")
	w.waitFor("the deleted topic shown missing", func() bool { return w.missing("gone") == 1 })
	if w.missing("logs") != 0 || testutil.ToFloat64(w.m.Errors.WithLabelValues("kc", "topic_missing")) != 1 {
		t.Errorf("missing logs %v, errors %v; want 0 and 1", w.missing("logs"), testutil.ToFloat64(w.m.Errors.WithLabelValues("kc", "topic_missing")))
	}
	produce(t, c, "logs", 2, 5)
	if got := w.receive(10); len(got["kafka:logs/0"]) != 5 || len(got["kafka:logs/1"]) != 5 {
		t.Errorf("after the deletion, the other topic gave %v, want 5 lines of each partition", got)
	}

	w.create("gone", 2)
	w.waitFor("the topic created again shown present", func() bool { return w.missing("gone") == 0 })
	// Eight records a partition: three past the saved offsets, five
	// below them. All come, once, in order, the last of each partition
	// last.
	produce(t, c, "gone", 2, 8)
	got := w.receive(16)
	for p := range 2 {
		var want []string
		for i := range 8 {
			want = append(want, fmt.Sprintf("p%d-%d", p, i))
		}
		if path := PositionPath("gone", int32(p)); fmt.Sprint(got[path]) != fmt.Sprint(want) {
			t.Errorf("the topic created again gave %v on %s, want %v", got[path], path, want)
		}
	}
}

// TestTopicMissingAtStart: a topic that does not exist yet is shown
// missing; once created, its records are read once each: the client finds
// it on its own, and the watcher must not take it for one created again.
func TestTopicMissingAtStart(t *testing.T) {
	c := kfake.MustCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, "logs"))
	defer c.Close()
	tick := make(chan time.Time)
	w := newTopicWatch(t, c, tick, "logs", "late")
	w.waitFor("the topic not yet created shown missing", func() bool { return w.missing("late") == 1 })
	w.create("late", 1)
	produce(t, c, "late", 1, 3)
	if got := w.receive(3); fmt.Sprint(got["kafka:late/0"]) != "[p0-0 p0-1 p0-2]" {
		t.Errorf("the topic created late gave %v", got)
	}
	tick <- time.Now() // the watcher sees it once the client reads it
	w.waitFor("the topic created late shown present", func() bool { return w.missing("late") == 0 })
	// The watcher has seen it: a re-read would come before this record.
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...), kgo.DefaultProduceTopic("late"))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	if err := cl.ProduceSync(t.Context(), &kgo.Record{Value: []byte("last")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	if got := w.receive(1); fmt.Sprint(got["kafka:late/0"]) != "[last]" {
		t.Errorf("after the records of the topic created late came %v, want its next one", got)
	}
}
