package detect

import (
	"math/rand/v2"
	"testing"
)

// TestPlaceTable checks the table against a map through random sets and
// deletions, with few keys in play so that the table stays small, probe
// runs wrap around its end and deletions shift entries back.
func TestPlaceTable(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for _, spread := range []uint64{7, 64, 1 << 20} {
		tb := placeTable{seed: 0x5eed}
		want := map[uint64]lastPlace{}
		for step := range 20000 {
			h := 1 + r.Uint64N(spread)*1024 + r.Uint64N(3) // many keys share their low bits
			switch r.IntN(3) {
			case 0, 1:
				p := lastPlace{t: int64(step)}
				tb.set(h, p)
				want[h] = p
			case 2:
				tb.del(h)
				delete(want, h)
			}
			if tb.n != len(want) {
				t.Fatalf("spread %d step %d: %d entries, want %d", spread, step, tb.n, len(want))
			}
		}
		for h, p := range want {
			if got, ok := tb.get(h); !ok || got != p {
				t.Fatalf("spread %d: get(%d) = %v %v, want %v", spread, h, got, ok, p)
			}
		}
		for _, s := range tb.slots {
			if _, ok := want[s.h]; s.h != 0 && !ok {
				t.Fatalf("spread %d: %d still held after its deletion", spread, s.h)
			}
		}
	}
}

// TestPlaceTableChosenKeys stores keys that agree in their low 32 bits,
// as subjects chosen to collide would: the seeded home slots keep every
// probe short.
func TestPlaceTableChosenKeys(t *testing.T) {
	tb := placeTable{seed: 0x5eed}
	for i := range uint64(2000) {
		tb.set(i<<32|0xbeef, lastPlace{t: int64(i)})
	}
	longest := 0
	for i := range uint64(2000) {
		h := i<<32 | 0xbeef
		n := 1
		for j := tb.home(h); tb.slots[j].h != h; j = (j + 1) & uint64(len(tb.slots)-1) {
			n++
		}
		longest = max(longest, n)
	}
	if longest > 32 {
		t.Errorf("a probe of %d slots among %d entries in %d slots", longest, tb.n, len(tb.slots))
	}
}
