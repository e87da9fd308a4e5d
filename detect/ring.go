package detect

import (
	"time"

	"github.com/scopewatch/scopewatch/store"
)

// ring holds the newest n event times.
type ring struct {
	t    []int64
	next int
	full bool
}

func newRing(n int) *ring { return &ring{t: make([]int64, n)} }

// add records t and reports whether the ring is full with every time
// within window of t: n events in the window.
func (r *ring) add(t time.Time, window time.Duration) bool {
	r.t[r.next] = t.UnixNano()
	r.next++
	if r.next == len(r.t) {
		r.next, r.full = 0, true
	}
	if !r.full {
		return false
	}
	oldest := r.t[r.next]
	return t.UnixNano()-oldest <= int64(window)
}

func (r *ring) newest() time.Time {
	i := r.next - 1
	if i < 0 {
		i = len(r.t) - 1
	}
	return time.Unix(0, r.t[i])
}

// encode returns the recorded times, oldest first, encoded for the store;
// nil (a deletion) when there are none.
func (r *ring) encode() []byte {
	if !r.full && r.next == 0 {
		return nil
	}
	if !r.full {
		return store.EncodeWindow(r.t[:r.next])
	}
	return store.EncodeWindow(r.t[r.next:], r.t[:r.next])
}

// restore refills an empty ring with times, oldest first, keeping the
// newest it can hold.
func (r *ring) restore(times []int64) {
	if len(times) > len(r.t) {
		times = times[len(times)-len(r.t):]
	}
	for _, t := range times {
		r.t[r.next] = t
		r.next++
		if r.next == len(r.t) {
			r.next, r.full = 0, true
		}
	}
}
