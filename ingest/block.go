package ingest

import (
	"fmt"
	"sync"
	"sync/atomic"
)

// Block is a block of bytes read from a file, in which the texts of the
// lines a Source sends lie (Line.Block). A file is read through a few
// blocks that go round: a block is read into again once its reader has
// moved on to another and every line sent from it is Done. Without that
// reuse each byte read is a fresh allocation (a 256 KiB block each 300 or
// so lines), and the collector runs for the blocks alone.
//
// Done is optional: a line never Done keeps its block from reuse, and the
// collector frees the block once nothing refers to it.
type Block struct {
	b []byte
	// refs is the number of lines sent from b, added once its reader
	// moves on (retire), less those Done: b goes back to its reader's
	// spares when it reaches zero, which it cannot do before retire (it
	// only decreases until then).
	refs atomic.Int64
	pool *blocks // nil for a block of an odd size, left to the collector
}

// Done tells b that n of the lines sent from it (Line.Block == b) are no
// longer read: their texts, and everything sliced from them, must not be
// used after the call. A consumer calls it at most once for each line (a
// line Done twice lets the block be read into while another of its lines
// is in use), from any goroutine; one that keeps a text copies it first.
// It panics when n is not positive.
func (b *Block) Done(n int) {
	if n <= 0 {
		panic(fmt.Sprintf("ingest: Block.Done(%d)", n))
	}
	if b.refs.Add(-int64(n)) == 0 {
		b.reuse()
	}
}

// retire records that sent lines were sent from b and that its reader
// reads into another block from now on.
func (b *Block) retire(sent int64) {
	if b.refs.Add(sent) == 0 {
		b.reuse()
	}
}

// reuse hands b, none of whose lines is in use, back to its reader's
// spares; a block of an odd size has none and is left to the collector.
func (b *Block) reuse() {
	if b.pool != nil {
		b.pool.put(b)
	}
}

// maxSpareBlocks is the most blocks a reader keeps for reuse: enough for
// the lines in flight between a file and the accounting at line rate (a
// few thousand lines: a block holds 300 to 3,000), and at most 2 MiB kept
// by a reader while it lives.
const maxSpareBlocks = 8

// blocks hands out the blocks of one reader: a block whose lines are all
// done, or a new one.
type blocks struct {
	size  int
	mu    sync.Mutex
	spare []*Block
}

// get returns a block of size bytes: a spare one when size is the usual
// size and there is one.
func (bs *blocks) get(size int) *Block {
	if size != bs.size {
		return &Block{b: make([]byte, size)}
	}
	bs.mu.Lock()
	if n := len(bs.spare); n > 0 {
		b := bs.spare[n-1]
		bs.spare[n-1] = nil
		bs.spare = bs.spare[:n-1]
		bs.mu.Unlock()
		return b
	}
	bs.mu.Unlock()
	return &Block{b: make([]byte, size), pool: bs}
}

// put keeps b for reuse, unless enough are kept.
func (bs *blocks) put(b *Block) {
	bs.mu.Lock()
	if len(bs.spare) < maxSpareBlocks {
		bs.spare = append(bs.spare, b)
	}
	bs.mu.Unlock()
}
