package detect

import (
	"time"

	"github.com/scopewatch/scopewatch/store"
)

// Forgetter drops what it holds of a client pruned from the store.
type Forgetter interface {
	Forget(id string)
}

// PruneChunk is how many pruned clients a sweep that may commit holds
// before it commits them: a store full of clients to prune (ids sprayed
// into a version that stored every id) is cleaned in transactions of
// bounded size, without holding the ids.
const PruneChunk = 4096

// Sweep judges everything as of now, and prunes the clients that are
// not registered and were either never issued a token (records written
// before unknown clients were kept apart) or not seen for
// detect.client_retention. clients must reflect every event the
// detectors have observed (the engine commits its batch first). The
// pruned clients go to the store with the next Flush.
func (s *Sweeper) Sweep(now time.Time, clients ClientLister) error {
	return s.SweepCommitting(now, clients, nil)
}

// SweepCommitting sweeps as Sweep does, calling commit (which flushes
// the sweeper and the findings into a batch and commits it) each time
// PruneChunk clients are pruned; commit nil holds them all until the
// next Flush.
func (s *Sweeper) SweepCommitting(now time.Time, clients ClientLister, commit func() error) error {
	s.commit = commit
	defer func() { s.commit = nil }()
	return s.sweep(now, clients)
}

// prune reports whether client c is to be dropped, and holds it to be.
func (s *Sweeper) prune(c *store.ClientUsage, now time.Time) bool {
	cfg := s.opt.Config
	if _, ok := cfg.Rules.Registered(c.ID); ok {
		return false
	}
	retention := time.Duration(cfg.Detect.ClientRetention)
	if issuedUsage(c) && (retention <= 0 || now.Sub(c.Seen.Last) <= retention) {
		return false
	}
	s.drops = append(s.drops, c.ID)
	return true
}

// commitDrops commits the pruned clients once a chunk is held.
func (s *Sweeper) commitDrops() error {
	if s.commit == nil || len(s.drops) < PruneChunk {
		return nil
	}
	return s.commit()
}

// Flush moves the pruned clients into b, to be deleted in its
// transaction, and makes the detectors forget them.
func (s *Sweeper) Flush(b *store.Batch) {
	for _, id := range s.drops {
		b.DropClients[id] = struct{}{}
		if s.opt.Forget != nil {
			s.opt.Forget.Forget(id)
		}
	}
	clear(s.drops)
	s.drops = s.drops[:0]
}
