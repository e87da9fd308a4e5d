package detect

import (
	"math/bits"
	"math/rand/v2"
)

// travelShard holds one shard of the travellers' last places: the entries
// in a ring, oldest first (a full table forgets a shard's oldest), and an
// index of the ring by hash.
//
// The index is open addressing with linear probing over 4-byte slots,
// each the ring position of an entry plus one (0 is the empty slot) under
// a tag: the top 15 bits of the entry's mixed hash, the bits its home slot
// is taken from. A probe reads the ring only for a slot whose tag
// matches, and in an index of up to 1<<15 slots an entry that leaves finds
// the homes of the slots after it from their tags alone.
//
// An entry is held once, in the ring: 32 bytes, and about 8 more of
// index, where a table of entries beside a queue of their keys took 72 (a
// Go map of them had cost impossible travel half its time in the bench,
// whose every token has a user of its own). Zero is no hash: travelKey
// never returns it. The hashes are unseeded (they are stored), so a key's
// home slot is drawn from the hash mixed with a seed of the shard's own:
// subjects chosen to share slots cannot make probes long.
type travelShard struct {
	ring  []placeEntry // its length is the capacity; entry i is ring[(head+i)%len(ring)]
	head  int
	n     int
	index []uint32 // length a power of two, at least 4/3 of the ring's
	seed  uint64
	shift uint8 // 64 - log2(len(index))
}

type placeEntry struct {
	h uint64
	p lastPlace
}

// A slot of the index: the position plus one in its low posBits, the tag
// above. A shard holds at most maxTravellers entries, and its ring no
// more than that, so a position fits.
const (
	posBits = 17
	posMask = 1<<posBits - 1
	tagBits = 32 - posBits
)

// mix returns h mixed with the shard's seed: its top bits are the key's
// home slot, and its tag.
func (sh *travelShard) mix(h uint64) uint64 { return (h ^ sh.seed) * 0x9e3779b97f4a7c15 }

func slotTag(m uint64) uint32 { return uint32(m>>(64-tagBits)) << posBits }

// home returns the index slot a key's probe starts at.
func (sh *travelShard) home(h uint64) uint64 { return sh.mix(h) >> sh.shift }

// slotHome returns the home slot of the entry whose index slot holds v:
// its tag's top bits while the index has no more slots than tags, else
// its hash's.
func (sh *travelShard) slotHome(v uint32) uint64 {
	if sh.shift >= 64-tagBits {
		return uint64(v>>posBits) >> (sh.shift - (64 - tagBits))
	}
	return sh.home(sh.ring[v&posMask-1].h)
}

// find returns the index slot holding h, or the empty slot where it
// would go, and whether h is there.
func (sh *travelShard) find(h uint64) (uint64, bool) {
	mask := uint64(len(sh.index) - 1)
	m := sh.mix(h)
	tag := slotTag(m)
	for i := m >> sh.shift; ; i = (i + 1) & mask {
		v := sh.index[i]
		if v == 0 {
			return i, false
		}
		if v&^posMask == tag && sh.ring[v&posMask-1].h == h {
			return i, true
		}
	}
}

// get returns the place stored under h.
func (sh *travelShard) get(h uint64) (lastPlace, bool) {
	if sh.n == 0 {
		return lastPlace{}, false
	}
	if i, ok := sh.find(h); ok {
		return sh.ring[sh.index[i]&posMask-1].p, true
	}
	return lastPlace{}, false
}

// update replaces the place of h, which the shard holds; its age stays.
func (sh *travelShard) update(h uint64, p lastPlace) {
	if i, ok := sh.find(h); ok {
		sh.ring[sh.index[i]&posMask-1].p = p
	}
}

// at returns the shard's entry j, oldest first.
func (sh *travelShard) at(j int) *placeEntry {
	return &sh.ring[(sh.head+j)%len(sh.ring)]
}

// add stores h, which the shard does not hold, as its newest entry.
func (sh *travelShard) add(h uint64, p lastPlace) {
	if sh.n == len(sh.ring) {
		sh.grow()
	}
	pos := (sh.head + sh.n) % len(sh.ring)
	sh.ring[pos] = placeEntry{h: h, p: p}
	sh.n++
	sh.link(h, pos)
}

// replaceOldest forgets the shard's oldest entry for h, which it does not
// hold; false if the shard is empty.
func (sh *travelShard) replaceOldest(h uint64, p lastPlace) bool {
	if !sh.dropOldest() {
		return false
	}
	sh.add(h, p) // into the room just made: the ring does not grow
	return true
}

// dropOldest forgets the shard's oldest entry; false if it is empty.
func (sh *travelShard) dropOldest() bool {
	if sh.n == 0 {
		return false
	}
	sh.unlink(sh.ring[sh.head].h)
	sh.ring[sh.head] = placeEntry{}
	sh.head = (sh.head + 1) % len(sh.ring)
	sh.n--
	return true
}

// link indexes h at ring position pos.
func (sh *travelShard) link(h uint64, pos int) {
	i, _ := sh.find(h)
	sh.index[i] = slotTag(sh.mix(h)) | uint32(pos+1)
}

// unlink removes h from the index, shifting back the slots of its probe
// run so that every entry stays reachable from its home slot.
func (sh *travelShard) unlink(h uint64) {
	i, ok := sh.find(h)
	if !ok {
		return
	}
	mask := uint64(len(sh.index) - 1)
	for j := (i + 1) & mask; sh.index[j] != 0; j = (j + 1) & mask {
		// The slot at j may move into the hole at i if its home slot is
		// not in the cyclic range (i, j].
		if home := sh.slotHome(sh.index[j]); (j-home)&mask >= (j-i)&mask {
			sh.index[i] = sh.index[j]
			i = j
		}
	}
	sh.index[i] = 0
}

// grow moves the entries, oldest first, into a ring half as large again,
// and indexes them anew.
func (sh *travelShard) grow() {
	size := min(max(16, len(sh.ring)+len(sh.ring)/2), maxTravellers)
	ring := make([]placeEntry, size)
	for j := range sh.n {
		ring[j] = *sh.at(j)
	}
	sh.ring, sh.head = ring, 0
	slots := 1 << bits.Len(uint(size+size/3))
	sh.index = make([]uint32, slots)
	sh.shift = uint8(64 - bits.TrailingZeros(uint(slots)))
	if sh.seed == 0 {
		sh.seed = rand.Uint64() | 1
	}
	for j := range sh.n {
		sh.link(ring[j].h, j)
	}
}
