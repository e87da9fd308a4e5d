package ingest_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/scopewatch/scopewatch/ingest"
	"github.com/scopewatch/scopewatch/ingest/ingesttest"
)

func asReadError(err error, target **ingest.ReadError) bool { return errors.As(err, target) }

// flaky fails its first fails runs, then sends one line and returns nil.
type flaky struct {
	name  string
	fails int
	mu    sync.Mutex
	runs  int
}

func (f *flaky) Name() string { return f.name }

func (f *flaky) Run(ctx context.Context, out chan<- ingest.Line) error {
	f.mu.Lock()
	f.runs++
	run := f.runs
	f.mu.Unlock()
	if run <= f.fails {
		return errors.New("boom")
	}
	select {
	case out <- ingest.Line{Text: []byte(f.name), Pos: ingest.Position{Source: f.name}}:
	case <-ctx.Done():
	}
	return nil
}

// blocking sends nothing and returns when ctx ends.
type blocking struct{}

func (blocking) Name() string { return "blocking" }
func (blocking) Run(ctx context.Context, _ chan<- ingest.Line) error {
	<-ctx.Done()
	return nil
}

func TestSuperviseRestartsAndCloses(t *testing.T) {
	var mu sync.Mutex
	var delays []time.Duration
	opts := ingest.SuperviseOptions{
		MinBackoff: time.Second, MaxBackoff: 4 * time.Second,
		Sleep: func(_ context.Context, d time.Duration) bool {
			mu.Lock()
			delays = append(delays, d)
			mu.Unlock()
			return true
		},
		Now:    func() time.Time { return time.Time{} }, // runs last no time: backoff never resets
		Jitter: func() float64 { return 0.999999 },
	}
	bad := &flaky{name: "bad", fails: 5}
	good := &flaky{name: "good"}
	out := make(chan ingest.Line, 4)
	if err := ingest.Supervise(t.Context(), []ingest.Source{bad, good}, out, opts); err != nil {
		t.Fatalf("Supervise: %v", err)
	}
	var names []string
	for l := range out { // ends only if Supervise closed out
		names = append(names, string(l.Text))
	}
	if len(names) != 2 {
		t.Errorf("lines = %v, want one from each source", names)
	}
	if bad.runs != 6 || good.runs != 1 {
		t.Errorf("runs = bad %d good %d, want 6 and 1", bad.runs, good.runs)
	}
	want := []time.Duration{1, 2, 4, 4, 4}
	if len(delays) != len(want) {
		t.Fatalf("delays = %v, want %d of them", delays, len(want))
	}
	for i, d := range delays {
		if lo, hi := want[i]*time.Second/2, want[i]*time.Second; d < lo || d >= hi {
			t.Errorf("delay %d = %v, want in [%v, %v)", i, d, lo, hi)
		}
	}
}

func TestSuperviseStopsOnContext(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	out := make(chan ingest.Line)
	done := make(chan error, 1)
	go func() {
		done <- ingest.Supervise(ctx, []ingest.Source{blocking{}, &flaky{name: "x", fails: 1 << 30}}, out,
			ingest.SuperviseOptions{MinBackoff: time.Hour})
	}()
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Supervise: %v", err)
		}
	case <-time.After(wait):
		t.Fatal("Supervise did not return after cancel")
	}
	ingesttest.Quiet(t, out, 0) // closed: a receive does not block
	if _, ok := <-out; ok {
		t.Fatal("out not closed")
	}
}
