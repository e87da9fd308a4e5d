package detect

import (
	"math/rand/v2"
	"testing"
)

// TestPlaceTable checks the table against a map through random sets and
// deletions, with keys crowded into few home slots so that probe runs
// wrap around the end and deletions shift entries back.
func TestPlaceTable(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for _, spread := range []uint64{7, 64, 1 << 20} {
		var tb placeTable
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
