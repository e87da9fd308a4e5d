package store

import (
	"bytes"
	"errors"
	"math"
	"slices"
	"testing"
)

// TestWindows commits windows with a batch, reads them back after a
// reopen, and deletes one with an empty window.
func TestWindows(t *testing.T) {
	db, path := newTestDB(t)
	b := NewBatch()
	lab := []int64{1_700_000_000_000_000_000, 1_700_000_001_000_000_000, 1_700_000_001_000_000_500}
	b.Windows["probe\x00c\x00lab"] = EncodeWindow(lab)
	b.Windows["probe\x00a\x00203.0.113.9"] = EncodeWindow([]int64{-5, 7})
	if err := db.Commit(b); err != nil {
		t.Fatal(err)
	}
	db.Close()
	db = openTest(t, path, Options{})
	got, err := db.Windows()
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || !slices.Equal(got["probe\x00c\x00lab"], lab) || !slices.Equal(got["probe\x00a\x00203.0.113.9"], []int64{-5, 7}) {
		t.Fatalf("windows = %v, want what was committed", got)
	}
	b = NewBatch()
	b.Windows["probe\x00c\x00lab"] = nil
	if err := db.Commit(b); err != nil {
		t.Fatal(err)
	}
	if got, _ := db.Windows(); len(got) != 1 {
		t.Errorf("after deleting one: %v", got)
	}
}

func TestDecodeWindowRefusesDamage(t *testing.T) {
	good := EncodeWindow([]int64{10, 20, 30})
	for _, v := range [][]byte{nil, {2, 1, 2}, good[:len(good)-1], append(good, 0), {windowFormat, 0xff, 0xff, 0xff, 0xff, 0x0f}} {
		if _, err := DecodeWindow(v); !errors.Is(err, ErrCorrupt) {
			t.Errorf("DecodeWindow(%x) = %v, want ErrCorrupt", v, err)
		}
	}
}

// TestEncodeWindow decodes what EncodeWindow encoded, for increments of
// every varint length, negative ones and the extremes, given whole or in
// parts split anywhere, and checks that the record is allocated at its
// size.
func TestEncodeWindow(t *testing.T) {
	cases := [][]int64{nil, {0}, {1}, {-1}, {math.MinInt64, math.MaxInt64}, {math.MaxInt64, math.MinInt64}}
	var grow []int64
	for i := range 64 {
		grow = append(grow, 1<<i, -(1 << i), 1<<i-1)
	}
	cases = append(cases, grow, make([]int64, 300))
	for _, times := range cases {
		whole := EncodeWindow(times)
		if len(whole) != cap(whole) {
			t.Errorf("EncodeWindow(%v): %d bytes in a buffer of %d", times, len(whole), cap(whole))
		}
		back, err := DecodeWindow(whole)
		if err != nil || !slices.Equal(back, times) {
			t.Fatalf("DecodeWindow(EncodeWindow(%v)) = %v, %v", times, back, err)
		}
		for cut := range len(times) + 1 {
			if parts := EncodeWindow(times[:cut], nil, times[cut:]); !bytes.Equal(parts, whole) {
				t.Fatalf("EncodeWindow of %v cut at %d = %x, want %x", times, cut, parts, whole)
			}
		}
	}
}
