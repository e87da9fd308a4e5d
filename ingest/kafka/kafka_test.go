package kafka

import (
	"bytes"
	"context"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/scopewatch/scopewatch/ingest"
	"github.com/scopewatch/scopewatch/rules"
	"github.com/scopewatch/scopewatch/store"
)

// produce writes n records to each partition of topic, values
// "p<partition>-<i>".
func produce(t *testing.T, c *kfake.Cluster, topic string, partitions, n int) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...), kgo.DefaultProduceTopic(topic),
		kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	var recs []*kgo.Record
	for p := range partitions {
		for i := range n {
			recs = append(recs, &kgo.Record{Partition: int32(p), Value: fmt.Appendf(nil, "p%d-%d\n", p, i)})
		}
	}
	if err := cl.ProduceSync(t.Context(), recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
}

// start runs src until the test ends, and returns the lines it hands on.
func start(t *testing.T, src *Source) <-chan ingest.Line {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	out := make(chan ingest.Line)
	var wg sync.WaitGroup
	wg.Go(func() { src.Run(ctx, out) })
	t.Cleanup(func() {
		cancel()
		wg.Wait()
	})
	return lines(ctx, out)
}

// lines passes on the lines of in, answering a partition's release as the
// engine does once it has committed (the tests that look at releases are
// the daemon's).
func lines(ctx context.Context, in <-chan ingest.Line) <-chan ingest.Line {
	out := make(chan ingest.Line)
	go func() {
		for {
			select {
			case ln := <-in:
				if ln.Release != nil {
					ln.Release.Done <- nil
					continue
				}
				select {
				case out <- ln:
				case <-ctx.Done():
					return
				}
			case <-ctx.Done():
				return
			}
		}
	}()
	return out
}

// run runs a Source until it handed on want lines, and returns them.
func run(t *testing.T, c *kfake.Cluster, db ingest.PositionStore, want int) []ingest.Line {
	t.Helper()
	src := New(Options{
		Name: "kc", Positions: db, MaxLineSize: 64,
		Config: rules.Kafka{Brokers: c.ListenAddrs(), Topics: []string{"logs"}, Group: "scopewatch", InstanceID: "a"},
		Extra:  []kgo.Opt{kgo.SessionTimeout(6 * time.Second), kgo.RebalanceTimeout(6 * time.Second)},
	})
	ctx, cancel := context.WithCancel(t.Context())
	out := make(chan ingest.Line)
	var wg sync.WaitGroup
	var runErr error
	wg.Go(func() { runErr = src.Run(ctx, out) })
	var got []ingest.Line
	timeout := time.After(30 * time.Second)
	taken := lines(ctx, out)
	for len(got) < want {
		select {
		case ln := <-taken:
			ln.Text = append([]byte(nil), ln.Text...)
			got = append(got, ln)
		case <-timeout:
			t.Fatalf("%d lines after 30s, want %d", len(got), want)
		}
	}
	cancel()
	go func() {
		for range out {
		}
	}()
	wg.Wait()
	close(out)
	if runErr != nil {
		t.Fatal(runErr)
	}
	return got
}

// TestResumesFromStore reads part of four partitions, saves the positions
// of the lines read as the engine would, and starts again: exactly the
// records after the saved positions come, once each.
func TestResumesFromStore(t *testing.T) {
	c := kfake.MustCluster(kfake.NumBrokers(1), kfake.SeedTopics(4, "logs"))
	defer c.Close()
	produce(t, c, "logs", 4, 50)
	db, err := store.Open(filepath.Join(t.TempDir(), "s.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()

	first := run(t, c, db, 70)
	b := store.NewBatch()
	seen := map[string]bool{}
	for _, ln := range first {
		b.SetPosition(ln.Pos.Record()) // a later line of a partition replaces an earlier one
		seen[string(ln.Text)] = true
		if !strings.HasPrefix(ln.Pos.Path, "kafka:logs/") || ln.Pos.File != FileID("logs", partitionOf(t, ln)) {
			t.Fatalf("line %q at %+v", ln.Text, ln.Pos)
		}
	}
	b.Source("kc").Lines = uint64(len(first))
	if err := db.Commit(b); err != nil {
		t.Fatal(err)
	}

	rest := run(t, c, db, 200-len(first))
	for _, ln := range rest {
		if seen[string(ln.Text)] {
			t.Fatalf("%q handed on again after its position was saved", ln.Text)
		}
		seen[string(ln.Text)] = true
	}
	if len(seen) != 200 {
		t.Fatalf("%d distinct records, want 200", len(seen))
	}
}

func partitionOf(t *testing.T, ln ingest.Line) int32 {
	var p, i int
	if _, err := fmt.Sscanf(string(ln.Text), "p%d-%d", &p, &i); err != nil {
		t.Fatalf("line %q: %v", ln.Text, err)
	}
	return int32(p)
}

// TestOversizedAndEmptyRecords: a value over max_line_bytes is a too_long
// line at its offset, an empty one a line of its own; neither is lost.
func TestOversizedAndEmptyRecords(t *testing.T) {
	c := kfake.MustCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, "logs"))
	defer c.Close()
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...), kgo.DefaultProduceTopic("logs"))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	if err := cl.ProduceSync(t.Context(),
		&kgo.Record{Value: []byte(strings.Repeat("x", 100))},
		&kgo.Record{Value: nil},
		&kgo.Record{Value: []byte("ok\n")},
	).FirstErr(); err != nil {
		t.Fatal(err)
	}
	got := run(t, c, nil, 3)
	if n, limit, long := ingest.TooLong(got[0]); !long || n != 100 || limit != 64 || got[0].Pos.Offset != 1 {
		t.Errorf("oversized record: %q at %+v", got[0].Text, got[0].Pos)
	}
	if string(got[1].Text) != " " || got[1].Pos.Offset != 2 {
		t.Errorf("empty record: %q at %+v", got[1].Text, got[1].Pos)
	}
	if string(got[2].Text) != "ok" || got[2].Pos.Offset != 3 {
		t.Errorf("record: %q at %+v", got[2].Text, got[2].Pos)
	}
}

// TestUnreachableBroker: a source whose brokers do not answer counts it
// and keeps trying; it returns only when stopped.
func TestUnreachableBroker(t *testing.T) {
	m := NewMetrics(nil)
	src := New(Options{
		Name: "kc", Metrics: m,
		Config: rules.Kafka{Brokers: []string{"127.0.0.1:1"}, Topics: []string{"logs"}, Group: "scopewatch"},
	})
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- src.Run(ctx, make(chan ingest.Line)) }()
	deadline := time.Now().Add(30 * time.Second)
	for testutil.ToFloat64(m.Errors.WithLabelValues("kc", "unreachable")) < 2 {
		select {
		case err := <-done:
			t.Fatalf("Run returned %v while the broker was unreachable", err)
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatal("an unreachable broker was not counted")
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run after stop = %v", err)
	}
}

// TestRecordLargerThanFetchBounds: a record larger than a fetch's bounds
// still comes whole, then the next: the bounds limit memory, not lines.
func TestRecordLargerThanFetchBounds(t *testing.T) {
	const size = fetchMaxBytes + fetchMaxBytes/2
	c := kfake.MustCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, "logs"),
		kfake.BrokerConfigs(map[string]string{"message.max.bytes": strconv.Itoa(2 * size)}))
	defer c.Close()
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...), kgo.DefaultProduceTopic("logs"), kgo.ProducerBatchMaxBytes(2*size))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	if err := cl.ProduceSync(t.Context(), &kgo.Record{Value: bytes.Repeat([]byte("y"), size)}, &kgo.Record{Value: []byte("after")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	out := start(t, New(Options{
		Name: "kc", MaxLineSize: 2 * size,
		Config: rules.Kafka{Brokers: c.ListenAddrs(), Topics: []string{"logs"}, Group: "scopewatch"},
		Extra:  []kgo.Opt{kgo.SessionTimeout(6 * time.Second), kgo.RebalanceTimeout(6 * time.Second)},
	}))
	for _, want := range []int{size, len("after")} {
		select {
		case ln := <-out:
			if len(ln.Text) != want {
				t.Errorf("a line of %d bytes, want %d", len(ln.Text), want)
			}
		case <-time.After(30 * time.Second):
			t.Fatalf("no line of %d bytes after 30s", want)
		}
	}
}
