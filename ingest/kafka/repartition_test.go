package kafka

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/scopewatch/scopewatch/ingest"
	"github.com/scopewatch/scopewatch/rules"
)

// clientParser reads the lines of produce ("p<partition>-<i>") as events
// of client "c<i mod 7>", and any other line as malformed. The events are
// dated: ingest.ParseLine drops an event without a time (year 1) as
// malformed, and the stage then produces its record without a key.
type clientParser struct{}

func (clientParser) Parse(line []byte, pos ingest.Position, dst []ingest.Event) ([]ingest.Event, error) {
	var p, i int
	if _, err := fmt.Sscanf(string(line), "p%d-%d", &p, &i); err != nil {
		return dst, &ingest.ParseError{Source: pos.Source, Reason: "bad_format", Err: errors.New("not p<n>-<n>")}
	}
	return append(dst, ingest.Event{Client: fmt.Sprintf("c%d", i%7), Time: time.Unix(1_700_000_000+int64(i), 0)}), nil
}

// TestRepartitionExactlyOnce: the raw topic's records, unkeyed, reach the
// repartition topic keyed by client, and the source hands each on once,
// the lines of one client from one partition, though the first commit of
// the stage's transactions fails after its records were written.
func TestRepartitionExactlyOnce(t *testing.T) {
	c := kfake.MustCluster(kfake.NumBrokers(1), kfake.SeedTopics(3, "raw"), kfake.SeedTopics(4, "by-client"))
	defer c.Close()
	const perPartition = 100
	produce(t, c, "raw", 3, perPartition)
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...), kgo.DefaultProduceTopic("raw"))
	if err != nil {
		t.Fatal(err)
	}
	if err := cl.ProduceSync(t.Context(), &kgo.Record{Value: []byte("poison")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	cl.Close()
	want := 3*perPartition + 1

	var failed atomic.Bool
	c.ControlKey(kmsg.EndTxn.Int16(), func(req kmsg.Request) (kmsg.Response, error, bool) {
		r := req.(*kmsg.EndTxnRequest)
		if !r.Commit || failed.Swap(true) {
			return nil, nil, false
		}
		c.KeepControl()
		resp := r.ResponseKind().(*kmsg.EndTxnResponse)
		resp.ErrorCode = kerr.InvalidTxnState.Code
		return resp, nil, true
	})

	m := NewMetrics(nil)
	src := New(Options{
		Name: "kc", Metrics: m, Parser: clientParser{}, MaxLineSize: 64,
		Config: rules.Kafka{
			Brokers: c.ListenAddrs(), Topics: []string{"raw"}, Group: "scopewatch", InstanceID: "a",
			Repartition: &rules.KafkaRepartition{Topic: "by-client", Group: "scopewatch-repartition"},
		},
		Extra: []kgo.Opt{kgo.SessionTimeout(6 * time.Second), kgo.RebalanceTimeout(6 * time.Second)},
	})
	out := start(t, src)
	seen := map[string]int{}
	handed := map[string]string{} // line → where it was read
	partitionOf := map[string]string{}
	for len(seen) < want {
		select {
		case ln := <-out:
			text := string(ln.Text)
			seen[text]++
			if seen[text] > 1 {
				t.Fatalf("%q handed on twice", text)
			}
			handed[text] = fmt.Sprintf("%s@%d", ln.Pos.Path, ln.Pos.Offset)
			var p, i int
			if _, err := fmt.Sscanf(text, "p%d-%d", &p, &i); err != nil {
				continue
			}
			client := fmt.Sprintf("c%d", i%7)
			if was, ok := partitionOf[client]; ok && was != ln.Pos.Path {
				t.Errorf("client %s came from %s and from %s", client, was, ln.Pos.Path)
			}
			partitionOf[client] = ln.Pos.Path
		case <-time.After(30 * time.Second):
			t.Fatalf("%d of %d lines after 30s; commit failed once: %v", len(seen), want, failed.Load())
		}
	}
	if !failed.Load() {
		t.Fatal("no transaction commit failed: the test did not test the abort")
	}
	// The failed commit came after its records were written: their
	// aborted copies are in the topic, before the committed ones. What
	// was handed on must be the committed ones, as a consumer of its own
	// reads them.
	committed := committedRecords(t, c, "by-client", want)
	for text, at := range handed {
		if committed[text] != at {
			t.Errorf("%q handed on from %s; committed at %s", text, at, committed[text])
		}
	}
}

// committedRecords reads the n committed records of topic, and returns
// where each value is, as a Source's position names it. A record of a
// line of produce must carry its client as key: one without lands on any
// partition, and the lines of a client could then share one by chance.
func committedRecords(t *testing.T, c *kfake.Cluster, topic string, n int) map[string]string {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...), kgo.ConsumeTopics(topic),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	out := map[string]string{}
	for len(out) < n {
		f := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("%d of %d committed records of %s read", len(out), n, topic)
		}
		f.EachRecord(func(r *kgo.Record) {
			text := strings.TrimSuffix(string(r.Value), "\n")
			out[text] = fmt.Sprintf("%s@%d", PositionPath(r.Topic, r.Partition), r.Offset+1)
			var p, i int
			if _, err := fmt.Sscanf(text, "p%d-%d", &p, &i); err == nil && string(r.Key) != fmt.Sprintf("c%d", i%7) {
				t.Errorf("%q produced with key %q, want its client c%d", text, r.Key, i%7)
			}
		})
	}
	return out
}

// TestRepartitionTopicMissing: while the repartition topic does not
// exist, the stage's records fail and its transactions are aborted, so
// its raw offsets are not committed; once the topic is created, every raw
// record comes, once; one too long to go on comes as a too_long line.
func TestRepartitionTopicMissing(t *testing.T) {
	c := kfake.MustCluster(kfake.NumBrokers(1), kfake.SeedTopics(2, "raw"))
	defer c.Close()
	produce(t, c, "raw", 2, 10)
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...), kgo.DefaultProduceTopic("raw"),
		kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	if err := cl.ProduceSync(t.Context(), &kgo.Record{Partition: 1, Value: []byte(strings.Repeat("x", 100) + "\n")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	m := NewMetrics(nil)
	w := &topicWatch{t: t, c: c, m: m}
	out := start(t, New(Options{
		Name: "kc", Metrics: m, Parser: clientParser{}, MaxLineSize: 64,
		Config: rules.Kafka{
			Brokers: c.ListenAddrs(), Topics: []string{"raw"}, Group: "scopewatch", InstanceID: "a",
			Repartition: &rules.KafkaRepartition{Topic: "by-client", Group: "scopewatch-repartition"},
		},
		Extra: []kgo.Opt{kgo.SessionTimeout(6 * time.Second), kgo.RebalanceTimeout(6 * time.Second),
			kgo.RecordDeliveryTimeout(time.Second)},
	}))
	w.waitFor("a failed transaction", func() bool { return testutil.ToFloat64(m.Errors.WithLabelValues("kc", "transaction")) >= 1 })
	w.create("by-client", 3)
	seen := map[string]int{}
	for n := 0; n < 21; n++ {
		select {
		case ln := <-out:
			if n, limit, long := ingest.TooLong(ln); long {
				if n != 100 || limit != 64 {
					t.Errorf("too long line of %d bytes over %d, want 100 over 64", n, limit)
				}
				seen["too long"]++
				continue
			}
			seen[string(ln.Text)]++
		case <-time.After(30 * time.Second):
			t.Fatalf("%d of 21 lines after 30s", len(seen))
		}
	}
	for text, n := range seen {
		if n != 1 {
			t.Errorf("%q came %d times", text, n)
		}
	}
	if len(seen) != 21 {
		t.Errorf("%d distinct lines, want 21: %v", len(seen), seen)
	}
}

// TestRepartitionRawTopicRecreated: a raw topic deleted and created again
// while the stage reads it: the stage's session, which would go on asking
// for the deleted topic, is built again, and the new topic's records come.
func TestRepartitionRawTopicRecreated(t *testing.T) {
	c := kfake.MustCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, "raw"), kfake.SeedTopics(2, "by-client"))
	defer c.Close()
	produce(t, c, "raw", 1, 5)
	m := NewMetrics(nil)
	w := &topicWatch{t: t, c: c, m: m}
	out := start(t, New(Options{
		Name: "kc", Metrics: m, Parser: clientParser{}, CheckEvery: 20 * time.Millisecond,
		Config: rules.Kafka{
			Brokers: c.ListenAddrs(), Topics: []string{"raw"}, Group: "scopewatch", InstanceID: "a",
			Repartition: &rules.KafkaRepartition{Topic: "by-client", Group: "scopewatch-repartition"},
		},
		Extra: []kgo.Opt{kgo.SessionTimeout(6 * time.Second), kgo.RebalanceTimeout(6 * time.Second)},
	}))
	take := func(n int) []string {
		t.Helper()
		var got []string
		for range n {
			select {
			case ln := <-out:
				got = append(got, string(ln.Text))
			case <-time.After(30 * time.Second):
				t.Fatalf("after %v, no line came", got)
			}
		}
		slices.Sort(got)
		return got
	}
	take(5)
	w.waitFor("the raw topic checked", func() bool { return testutil.CollectAndCount(m.TopicMissing) == 2 })
	w.delete("raw")
	w.waitFor("the raw topic shown missing", func() bool { return w.missing("raw") == 1 })
	w.create("raw", 1)
	w.waitFor("the raw topic shown present", func() bool { return w.missing("raw") == 0 })
	produce(t, c, "raw", 1, 3)
	if got := fmt.Sprint(take(3)); got != "[p0-0 p0-1 p0-2]" {
		t.Errorf("the raw topic created again gave %s", got)
	}
}
