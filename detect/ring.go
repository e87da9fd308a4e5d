package detect

import (
	"time"

	"github.com/scopewatch/scopewatch/store"
)

// ring holds the newest n event times. Its buffer grows with the times it
// gets, to n: most windows (a client's refusals, the requests of a network
// new to it) see a few events, never the hundreds a burst is made of.
type ring struct {
	t    []int64 // in arrival order until it holds n, then circular
	n    int
	next int // once full: the oldest time, where the next one goes
}

func newRing(n int) *ring { return &ring{n: max(n, 1)} }

func (r *ring) full() bool { return len(r.t) == r.n }

// push records t, Unix nanoseconds.
func (r *ring) push(t int64) {
	if !r.full() {
		if len(r.t) == cap(r.t) {
			grown := make([]int64, len(r.t), min(r.n, max(4, 2*cap(r.t))))
			copy(grown, r.t)
			r.t = grown
		}
		r.t = append(r.t, t)
		return
	}
	r.t[r.next] = t
	r.next++
	if r.next == r.n {
		r.next = 0
	}
}

// add records t and reports whether the ring is full with every time
// within window of t: n events in the window.
func (r *ring) add(t time.Time, window time.Duration) bool {
	r.push(t.UnixNano())
	if !r.full() {
		return false
	}
	oldest := r.t[r.next]
	return t.UnixNano()-oldest <= int64(window)
}

func (r *ring) newest() time.Time {
	if len(r.t) == 0 {
		return time.Unix(0, 0)
	}
	i := len(r.t) - 1
	if r.full() {
		i = (r.next + r.n - 1) % r.n
	}
	return time.Unix(0, r.t[i])
}

// encode returns the recorded times, oldest first, encoded for the store;
// nil (a deletion) when there are none.
func (r *ring) encode() []byte {
	if len(r.t) == 0 {
		return nil
	}
	return store.EncodeWindow(r.t[r.next:], r.t[:r.next])
}

// restore refills an empty ring with times, oldest first, keeping the
// newest it can hold.
func (r *ring) restore(times []int64) {
	if len(times) > r.n {
		times = times[len(times)-r.n:]
	}
	for _, t := range times {
		r.push(t)
	}
}
