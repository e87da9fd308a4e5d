package detect

import (
	"slices"
	"testing"
	"time"

	"github.com/scopewatch/scopewatch/store"
)

// TestRing adds times one by one to rings of several sizes and checks,
// after each, what a window of that many events reports, the newest time,
// the encoding (the newest n, oldest first), a ring restored from it, and
// that the buffer never outgrows n.
func TestRing(t *testing.T) {
	for _, n := range []int{1, 2, 5, 201} {
		r := newRing(n)
		var all []int64
		for i := range 3*n + 2 {
			at := int64(1_000 + 10*i)
			all = append(all, at)
			full := r.add(time.Unix(0, at), time.Duration(10*(n-1)))
			if want := len(all) >= n; full != want {
				t.Fatalf("n %d, time %d: add reports %v, want %v", n, i, full, want)
			}
			if got := r.newest().UnixNano(); got != at {
				t.Fatalf("n %d, time %d: newest %d, want %d", n, i, got, at)
			}
			want := all[max(0, len(all)-n):]
			times, err := store.DecodeWindow(r.encode())
			if err != nil || !slices.Equal(times, want) {
				t.Fatalf("n %d, time %d: encoded %v (%v), want %v", n, i, times, err, want)
			}
			back := newRing(n)
			back.restore(all)
			if b, _ := store.DecodeWindow(back.encode()); !slices.Equal(b, want) {
				t.Fatalf("n %d, time %d: restored %v, want %v", n, i, b, want)
			}
			if cap(r.t) > n {
				t.Fatalf("n %d: a buffer of %d times", n, cap(r.t))
			}
		}
		// A window one nanosecond shorter than the n newest span.
		if r.add(time.Unix(0, all[len(all)-1]+10), time.Duration(10*(n-1))-1) {
			t.Errorf("n %d: a window shorter than the events' span reports them in it", n)
		}
	}
	if r := newRing(3); r.encode() != nil {
		t.Error("an empty ring encodes as a window, not a deletion")
	}
}
