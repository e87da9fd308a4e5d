package ingesttest

import (
	"sync"

	"github.com/scopewatch/scopewatch/ingest"
	"github.com/scopewatch/scopewatch/store"
)

// Positions is an in-memory ingest.PositionStore that keeps, like the
// store's batches, the last record per source and file.
type Positions struct {
	mu sync.Mutex
	m  map[store.PositionKey]store.Position
}

var _ ingest.PositionStore = (*Positions)(nil)

// NewPositions returns an empty store.
func NewPositions() *Positions {
	return &Positions{m: make(map[store.PositionKey]store.Position)}
}

// Commit records the positions of lines, as a consumer does after it has
// counted them.
func (p *Positions) Commit(lines ...ingest.Line) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, l := range lines {
		r := l.Pos.Record()
		p.m[store.PositionKey{Source: r.Source, File: r.File}] = r
	}
}

// Positions returns the records of source.
func (p *Positions) Positions(source string) ([]store.Position, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []store.Position
	for k, r := range p.m {
		if k.Source == source {
			out = append(out, r)
		}
	}
	return out, nil
}
