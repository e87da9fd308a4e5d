package kafka

import (
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/scopewatch/scopewatch/rules"
)

// TestDeletedTopic: of a source's two topics, one is deleted while it is
// read. The other's lines go on coming; the deleted one is counted and
// shown missing until it is created again, and then read from its start.
func TestDeletedTopic(t *testing.T) {
	c := kfake.MustCluster(kfake.NumBrokers(1), kfake.SeedTopics(2, "logs", "gone"))
	defer c.Close()
	produce(t, c, "logs", 2, 5)
	produce(t, c, "gone", 2, 5)
	m := NewMetrics(nil)
	src := New(Options{
		Name: "kc", Metrics: m, CheckEvery: 20 * time.Millisecond,
		Config: rules.Kafka{Brokers: c.ListenAddrs(), Topics: []string{"logs", "gone"}, Group: "scopewatch"},
		Extra:  []kgo.Opt{kgo.SessionTimeout(6 * time.Second), kgo.RebalanceTimeout(6 * time.Second)},
	})
	out := start(t, src)
	receive := func(n int) map[string]int {
		t.Helper()
		got := map[string]int{}
		for range n {
			select {
			case ln := <-out:
				got[ln.Pos.Path]++
			case <-time.After(30 * time.Second):
				t.Fatalf("after %v, no line came", got)
			}
		}
		return got
	}
	receive(20)
	missing := func(topic string) float64 { return testutil.ToFloat64(m.TopicMissing.WithLabelValues("kc", topic)) }
	waitMetric := func(what string, ok func() bool) {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for !ok() {
			if time.Now().After(deadline) {
				t.Fatalf("%s: missing logs %v gone %v, errors %v", what, missing("logs"), missing("gone"),
					testutil.ToFloat64(m.Errors.WithLabelValues("kc", "topic_missing")))
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	waitMetric("both topics checked", func() bool { return testutil.CollectAndCount(m.TopicMissing) == 2 })

	admin := func(req kmsg.Request) {
		t.Helper()
		cl, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...))
		if err != nil {
			t.Fatal(err)
		}
		defer cl.Close()
		if _, err := cl.Request(t.Context(), req); err != nil {
			t.Fatal(err)
		}
	}
	del := kmsg.NewPtrDeleteTopicsRequest()
	dt := kmsg.NewDeleteTopicsRequestTopic()
	dt.Topic = kmsg.StringPtr("gone")
	del.Topics, del.TopicNames = append(del.Topics, dt), []string{"gone"}
	admin(del)

	waitMetric("the deleted topic is shown missing", func() bool { return missing("gone") == 1 })
	if missing("logs") != 0 || testutil.ToFloat64(m.Errors.WithLabelValues("kc", "topic_missing")) != 1 {
		t.Errorf("missing logs %v, errors %v; want 0 and 1", missing("logs"), testutil.ToFloat64(m.Errors.WithLabelValues("kc", "topic_missing")))
	}
	produce(t, c, "logs", 2, 5)
	if got := receive(10); got["kafka:logs/0"] != 5 || got["kafka:logs/1"] != 5 {
		t.Errorf("after the deletion, the other topic gave %v, want 5 lines of each partition", got)
	}

	create := kmsg.NewPtrCreateTopicsRequest()
	ct := kmsg.NewCreateTopicsRequestTopic()
	ct.Topic, ct.NumPartitions, ct.ReplicationFactor = "gone", 2, 1
	create.Topics = append(create.Topics, ct)
	admin(create)
	waitMetric("the topic created again is shown present", func() bool { return missing("gone") == 0 })
	// Its records are read from its start, though their offsets are
	// below those read before the deletion.
	produce(t, c, "gone", 2, 2)
	if got := receive(4); got["kafka:gone/0"] != 2 || got["kafka:gone/1"] != 2 {
		t.Errorf("the topic created again gave %v, want 2 lines of each partition", got)
	}
}
