package detect

import (
	"math/bits"
	"math/rand/v2"
)

// placeTable maps the hash of a traveller to its last place: open
// addressing with linear probing, the place held in the slot, so a lookup
// touches one cache line where a map's touches several. A Go map of the
// same entries cost impossible travel half its time in the bench, whose
// every token has a user of its own. Zero is the empty slot's key:
// travelKey never returns it. The hashes are unseeded (they are stored),
// so a key's home slot is drawn from the hash mixed with a seed of the
// table's own: subjects chosen to share slots cannot make probes long.
type placeTable struct {
	slots []placeSlot // length a power of two, or nil
	n     int
	seed  uint64
	shift uint8 // 64 - log2(len(slots))
}

// home returns the slot a key's probe starts at.
func (t *placeTable) home(h uint64) uint64 {
	return ((h ^ t.seed) * 0x9e3779b97f4a7c15) >> t.shift
}

type placeSlot struct {
	h uint64
	p lastPlace
}

// get returns the place stored under h.
func (t *placeTable) get(h uint64) (lastPlace, bool) {
	if t.n == 0 {
		return lastPlace{}, false
	}
	mask := uint64(len(t.slots) - 1)
	for i := t.home(h); ; i = (i + 1) & mask {
		switch t.slots[i].h {
		case h:
			return t.slots[i].p, true
		case 0:
			return lastPlace{}, false
		}
	}
}

// set stores p under h, replacing what was there.
func (t *placeTable) set(h uint64, p lastPlace) {
	if 4*(t.n+1) > 3*len(t.slots) { // at most three quarters full
		t.grow()
	}
	mask := uint64(len(t.slots) - 1)
	for i := t.home(h); ; i = (i + 1) & mask {
		switch t.slots[i].h {
		case h:
			t.slots[i].p = p
			return
		case 0:
			t.slots[i] = placeSlot{h: h, p: p}
			t.n++
			return
		}
	}
}

// del removes h, shifting back the entries of its probe run so that
// every entry stays reachable from its home slot.
func (t *placeTable) del(h uint64) {
	if t.n == 0 {
		return
	}
	mask := uint64(len(t.slots) - 1)
	i := t.home(h)
	for t.slots[i].h != h {
		if t.slots[i].h == 0 {
			return
		}
		i = (i + 1) & mask
	}
	for j := (i + 1) & mask; t.slots[j].h != 0; j = (j + 1) & mask {
		// The entry at j may move into the hole at i if its home slot
		// is not in the cyclic range (i, j].
		if home := t.home(t.slots[j].h); (j-home)&mask >= (j-i)&mask {
			t.slots[i] = t.slots[j]
			i = j
		}
	}
	t.slots[i] = placeSlot{}
	t.n--
}

func (t *placeTable) grow() {
	old := t.slots
	size := max(16, 2*len(old))
	t.slots = make([]placeSlot, size)
	t.shift = uint8(64 - bits.TrailingZeros(uint(size)))
	if t.seed == 0 {
		t.seed = rand.Uint64() | 1
	}
	t.n = 0
	for _, s := range old {
		if s.h != 0 {
			t.set(s.h, s.p)
		}
	}
}
