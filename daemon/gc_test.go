package daemon

import (
	"slices"
	"strconv"
	"testing"
)

// TestCheckpointGC checks the collector's percent across overlapping
// checkpoints: tightened at the first, restored and collected once after
// the last; a collector that is off, or already tighter, is left alone.
func TestCheckpointGC(t *testing.T) {
	run := func(gogc int, steps func(hold func() func())) []string {
		var log []string
		percent := gogc
		g := newCheckpointGC(func(p int) int {
			old := percent
			percent = p
			log = append(log, "set", strconv.Itoa(p))
			return old
		}, func() { log = append(log, "collect") })
		if g == nil {
			log = append(log, "none")
		} else {
			steps(g.hold)
		}
		if percent != gogc {
			log = append(log, "left at", strconv.Itoa(percent))
		}
		return log
	}
	overlapping := func(hold func() func()) {
		r1 := hold()
		r2 := hold() // the next checkpoint, flushed while the first commits
		r1()
		r3 := hold()
		r2()
		r3()
		hold()() // a later one, alone
	}
	tests := []struct {
		gogc int
		want []string
	}{
		// The first two sets read the percent.
		{100, []string{"set", "25", "set", "100", "set", "25", "set", "100", "collect", "set", "25", "set", "100", "collect"}},
		{-1, []string{"set", "25", "set", "-1", "none"}}, // GOGC=off
		{20, []string{"set", "25", "set", "20", "none"}}, // tighter already
	}
	for _, tt := range tests {
		if got := run(tt.gogc, overlapping); !slices.Equal(got, tt.want) {
			t.Errorf("GOGC=%d: got %q, want %q", tt.gogc, got, tt.want)
		}
	}
}
