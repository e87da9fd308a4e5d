package detect

import (
	"math/rand/v2"
	"slices"
	"testing"
)

// TestTravelShard checks a shard against a model (a map and a queue of
// its keys) through random adds, updates, replacements of the oldest and
// drops, with few keys in play so that the index stays small, probe runs
// wrap around its end, unlinking shifts slots back and the ring wraps.
func TestTravelShard(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for _, spread := range []uint64{7, 64, 1 << 20} {
		sh := travelShard{seed: 0x5eed}
		want := map[uint64]lastPlace{}
		var order []uint64
		for step := range 20000 {
			h := 1 + r.Uint64N(spread)*1024 + r.Uint64N(3) // many keys share their low bits
			p := lastPlace{t: int64(step)}
			_, held := want[h]
			switch op := r.IntN(4); {
			case held && op < 2:
				sh.update(h, p)
				want[h] = p
			case !held && op < 2:
				sh.add(h, p)
				want[h] = p
				order = append(order, h)
			case !held && op == 2:
				if sh.replaceOldest(h, p) != (len(order) > 0) {
					t.Fatalf("spread %d step %d: replaceOldest of %d entries", spread, step, len(order))
				}
				if len(order) > 0 {
					delete(want, order[0])
					want[h] = p
					order = append(order[1:], h)
				}
			case op == 3:
				if sh.dropOldest() != (len(order) > 0) {
					t.Fatalf("spread %d step %d: dropOldest of %d entries", spread, step, len(order))
				}
				if len(order) > 0 {
					delete(want, order[0])
					order = order[1:]
				}
			}
			if sh.n != len(want) {
				t.Fatalf("spread %d step %d: %d entries, want %d", spread, step, sh.n, len(want))
			}
			if len(sh.index) <= 1024 && sh.linked() != sh.n {
				t.Fatalf("spread %d step %d: %d slots of the index in use for %d entries", spread, step, sh.linked(), sh.n)
			}
		}
		for h, p := range want {
			if got, ok := sh.get(h); !ok || got != p {
				t.Fatalf("spread %d: get(%d) = %v %v, want %v", spread, h, got, ok, p)
			}
		}
		var got []uint64
		for j := range sh.n {
			got = append(got, sh.at(j).h)
		}
		if !slices.Equal(got, order) {
			t.Fatalf("spread %d: entries oldest first %v, want %v", spread, got, order)
		}
		if sh.linked() != sh.n {
			t.Fatalf("spread %d: %d slots of the index in use for %d entries", spread, sh.linked(), sh.n)
		}
	}
}

// TestTravelShardChosenKeys stores keys that agree in their low 32 bits,
// as subjects chosen to collide would: the seeded home slots keep every
// probe short.
func TestTravelShardChosenKeys(t *testing.T) {
	sh := travelShard{seed: 0x5eed}
	for i := range uint64(2000) {
		sh.add(i<<32|0xbeef, lastPlace{t: int64(i)})
	}
	longest := 0
	mask := uint64(len(sh.index) - 1)
	for i := range uint64(2000) {
		h := i<<32 | 0xbeef
		n := 1
		for j := sh.home(h); sh.ring[sh.index[j]&posMask-1].h != h; j = (j + 1) & mask {
			n++
		}
		longest = max(longest, n)
	}
	if longest > 32 {
		t.Errorf("a probe of %d slots among %d entries in %d slots", longest, sh.n, len(sh.index))
	}
}

// linked counts the index's slots in use.
func (sh *travelShard) linked() int {
	n := 0
	for _, v := range sh.index {
		if v != 0 {
			n++
		}
	}
	return n
}

// TestTravelShardLargeIndex fills one shard past the index size whose
// tags hold the home slot (1<<tagBits slots), where unlinking reads the
// homes from the ring, then replaces and drops every entry it holds.
func TestTravelShardLargeIndex(t *testing.T) {
	sh := travelShard{seed: 0x5eed}
	key := func(i int) uint64 { return uint64(i)*0x9e3779b97f4a7c15 | 1 }
	const n = 40000
	for i := range n {
		sh.add(key(i), lastPlace{t: int64(i)})
	}
	if len(sh.index) <= 1<<tagBits {
		t.Fatalf("an index of %d slots for %d entries: not past the tags' reach", len(sh.index), n)
	}
	for i := range n / 2 {
		if !sh.replaceOldest(key(n+i), lastPlace{t: int64(n + i)}) || !sh.dropOldest() {
			t.Fatalf("step %d: nothing to replace or drop", i)
		}
	}
	for i := range n + n/2 {
		p, ok := sh.get(key(i))
		if want := i >= n; ok != want || (ok && p.t != int64(i)) {
			t.Fatalf("get(key(%d)) = %v %v, want held %v", i, p, ok, want)
		}
	}
	if sh.linked() != sh.n || sh.n != n/2 {
		t.Fatalf("%d slots in use for %d entries, want %d", sh.linked(), sh.n, n/2)
	}
}
