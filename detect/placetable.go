package detect

// placeTable maps the hash of a traveller to its last place: open
// addressing with linear probing, the place held in the slot, so a lookup
// touches one cache line where a map's touches several. A Go map of the
// same entries cost impossible travel half its time in the bench, whose
// every token has a user of its own. Zero is the empty slot's key:
// travelKey never returns it.
type placeTable struct {
	slots []placeSlot // length a power of two, or nil
	n     int
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
	for i := h & mask; ; i = (i + 1) & mask {
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
	if 2*(t.n+1) > len(t.slots) {
		t.grow()
	}
	mask := uint64(len(t.slots) - 1)
	for i := h & mask; ; i = (i + 1) & mask {
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
	i := h & mask
	for t.slots[i].h != h {
		if t.slots[i].h == 0 {
			return
		}
		i = (i + 1) & mask
	}
	for j := (i + 1) & mask; t.slots[j].h != 0; j = (j + 1) & mask {
		// The entry at j may move into the hole at i if its home slot
		// is not in the cyclic range (i, j].
		if home := t.slots[j].h & mask; (j-home)&mask >= (j-i)&mask {
			t.slots[i] = t.slots[j]
			i = j
		}
	}
	t.slots[i] = placeSlot{}
	t.n--
}

func (t *placeTable) grow() {
	old := t.slots
	t.slots = make([]placeSlot, max(16, 2*len(old)))
	t.n = 0
	for _, s := range old {
		if s.h != 0 {
			t.set(s.h, s.p)
		}
	}
}
