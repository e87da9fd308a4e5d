package ingest_test

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/scopewatch/scopewatch/ingest"
)

// TestScanReusesBlocks reads a file of many blocks while the consumer
// holds the last 50,000 lines (2.3 blocks' worth) and hands each back (Done) only after
// checking its text again: no text changes while it is held, and the
// blocks go round, so far fewer are made than the file spans.
func TestScanReusesBlocks(t *testing.T) {
	const lines, held = 1_000_000, 50_000 // 12 MB, 46 blocks of 256 KiB; held: 600 KB, 2.3 blocks
	path := filepath.Join(t.TempDir(), "app.log")
	if err := os.WriteFile(path, numbered(1, lines, "\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	out := make(chan ingest.Line, 256)
	errc := make(chan error, 1)
	go func() {
		errc <- ingest.NewScan(ingest.ScanOptions{Name: "s", Paths: []string{path}}).Run(t.Context(), out)
		close(out)
	}()
	check := func(ln ingest.Line, when string) {
		if want := fmt.Sprintf("line %06d", ln.Pos.Line); string(ln.Text) != want {
			t.Fatalf("line %d %s: text %q, want %q", ln.Pos.Line, when, ln.Text, want)
		}
	}
	var (
		ring   [held]ingest.Line
		n      int
		blocks = map[*ingest.Block]bool{}
	)
	for ln := range out {
		check(ln, "as read")
		if ln.Block == nil {
			t.Fatalf("line %d has no block", ln.Pos.Line)
		}
		blocks[ln.Block] = true
		if old := ring[n%held]; old.Block != nil {
			check(old, fmt.Sprintf("when done, %d lines later", held))
			old.Block.Done(1)
		}
		ring[n%held] = ln
		n++
	}
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	if n != lines {
		t.Fatalf("read %d lines, want %d", n, lines)
	}
	for _, ln := range ring {
		check(ln, "at the end")
	}
	// The blocks in use at once: the four the held lines lie in, the
	// channel's and the one being read into.
	spanned := (lines*len("line 000000\n") + 256<<10 - 1) / (256 << 10)
	if len(blocks) > 6 {
		t.Errorf("%d blocks made for a file of %d, want at most 6: not reused", len(blocks), spanned)
	}
	t.Logf("%d blocks made for a file of %d", len(blocks), spanned)
}

// TestBlockDoneRefusesNone checks that Done(0), which would otherwise
// hand back the block a reader is still reading into, panics.
func TestBlockDoneRefusesNone(t *testing.T) {
	path := filepath.Join(t.TempDir(), "app.log")
	if err := os.WriteFile(path, numbered(1, 3, "\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	got := runScan(t, ingest.ScanOptions{Name: "s", Paths: []string{path}})
	if len(got) != 3 || got[0].Block == nil {
		t.Fatalf("got %d lines, the first with block %p; want 3 with one", len(got), got[0].Block)
	}
	defer func() {
		if recover() == nil {
			t.Error("Done(0) did not panic")
		}
	}()
	got[0].Block.Done(0)
}
