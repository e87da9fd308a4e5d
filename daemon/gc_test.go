package daemon

import (
	"context"
	"slices"
	"strconv"
	"sync"
	"testing"
)

// TestCheckpointGC checks the collector's percent across overlapping
// checkpoints: tightened at the first, restored after the last, when one
// collection comes due; a collector that is off, or already tighter, is
// left alone.
func TestCheckpointGC(t *testing.T) {
	run := func(gogc int) []string {
		var log []string
		percent := gogc
		g := newCheckpointGC(func(p int) int {
			old := percent
			percent = p
			log = append(log, "set", strconv.Itoa(p))
			return old
		}, func() {})
		if g == nil {
			return append(log, "none")
		}
		due := func() {
			select {
			case <-g.due:
				log = append(log, "due")
			default:
			}
		}
		r1 := g.hold()
		r2 := g.hold() // the next checkpoint, flushed while the first commits
		r1()
		due()
		r3 := g.hold()
		r2()
		due()
		r3()
		due()
		g.hold()() // a later one, alone
		due()
		if percent != gogc {
			log = append(log, "left at", strconv.Itoa(percent))
		}
		return log
	}
	tests := []struct {
		gogc int
		want []string
	}{
		// The first two sets read the percent.
		{100, []string{"set", "25", "set", "100", "set", "25", "set", "100", "due", "set", "25", "set", "100", "due"}},
		{-1, []string{"set", "25", "set", "-1", "none"}}, // GOGC=off
		{20, []string{"set", "25", "set", "20", "none"}}, // tighter already
	}
	for _, tt := range tests {
		if got := run(tt.gogc); !slices.Equal(got, tt.want) {
			t.Errorf("GOGC=%d: got %q, want %q", tt.gogc, got, tt.want)
		}
	}
}

// TestCheckpointGCCollector checks that the collector goroutine runs a
// collection once one comes due, and returns when its context ends.
func TestCheckpointGCCollector(t *testing.T) {
	collected := make(chan struct{}, 4)
	g := newCheckpointGC(func(int) int { return 100 }, func() { collected <- struct{}{} })
	ctx, cancel := context.WithCancel(t.Context())
	var wg sync.WaitGroup
	wg.Go(func() { g.collector(ctx) })
	g.hold()()
	<-collected
	g.hold()()
	<-collected
	cancel()
	wg.Wait()
}
