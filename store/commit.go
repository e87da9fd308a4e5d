package store

import (
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/scopewatch/scopewatch/internal/failpoint"
)

// Commit applies everything in b in one bbolt transaction: the clients in
// b.DropClients are deleted, then each record of b.Records (a State's
// checkpoint) replaces its client's, with the scope names of
// b.ScopeNames the store lacks, each source delta is added to the
// stored statistics, and each position replaces the stored one for its
// file; the positions of b.DropPositions are deleted, and b.Owners
// recorded. When Commit returns nil, all of it is on disk; otherwise none of
// it is. b.Restore, a partition's state read from its changelog, is
// written after the deletions and before the records. An empty batch
// commits nothing and starts no transaction.
//
// Client ids, scope names and source names must be non-empty, and client
// ids and source names must not contain a 0 byte; a batch breaking these
// rules fails with ErrInvalid.
func (db *DB) Commit(b *Batch) error {
	if b == nil || b.Empty() {
		return nil
	}
	if db.readOnly {
		return fmt.Errorf("commit batch to %s: %w", db.path, ErrReadOnly)
	}
	db.mu.Lock()
	defer db.mu.Unlock()
	e := &db.enc
	e.reset()
	if recordBytes(b.Records) >= releaseBytes {
		defer db.releaseDuring()()
	}
	err := db.update(func(tx *bolt.Tx) error {
		if db.changelog != nil {
			if err := markChanges(tx, b, db.changelog); err != nil {
				return err
			}
		}
		if err := dropClients(tx.Bucket(bucketClients), tx.Bucket(bucketOwners), b.DropClients); err != nil {
			return err
		}
		if b.Restore != nil {
			if err := restore(tx, b.Restore); err != nil {
				return err
			}
		}
		if b.ScopeNames != nil {
			if err := db.scopes.extend(tx, b.ScopeNames); err != nil {
				return err
			}
		}
		if err := e.records(tx.Bucket(bucketClients), b.Records); err != nil {
			return err
		}
		if err := e.sources(tx.Bucket(bucketSources), b.Sources); err != nil {
			return err
		}
		if err := e.positions(tx.Bucket(bucketPositions), b.Positions); err != nil {
			return err
		}
		if err := writeFindings(tx, b); err != nil {
			return err
		}
		if err := markGroups(tx, b.Notify); err != nil {
			return err
		}
		if err := putWindows(tx, b.Windows); err != nil {
			return err
		}
		if err := writeOwners(tx, b); err != nil {
			return err
		}
		if len(b.Records) > 0 {
			failpoint.Hit("checkpoint") // everything is written, nothing committed
		}
		if db.beforeCommit != nil {
			return db.beforeCommit(tx)
		}
		return nil
	})
	e.done()
	if err != nil {
		return failed(err, fmt.Sprintf("commit batch to %s", db.path))
	}
	db.scopes.committed(b.ScopeNames)
	if len(b.Records) > 0 {
		db.releaseAll() // the pages the checkpoint read: its leaves, the branches above them
	}
	return nil
}

// releaseAll releases every mapped page of the file (releaseMapped) in a
// read transaction, which holds the map in place against a remap by a
// commit. A failure only leaves the pages resident.
func (db *DB) releaseAll() {
	_ = db.bolt.View(func(tx *bolt.Tx) error { releaseMapped(tx); return nil })
}

// encoder holds Commit's reusable buffers.
//
// bbolt's Bucket.Put keeps a reference to the value (it copies only the
// key) until the transaction ends, so values are appended to arena and
// never overwritten during a transaction; when append moves the arena, the
// slices already handed to bbolt keep the old array alive. The arena is
// rewound for the next transaction.
type encoder struct {
	arena []byte
	key   []byte
	order []int // of the batch's records, by client id
}

// maxRetainedArena bounds an arena kept between commits (the encoder's,
// and a batch's records'): a larger one is let go, rather than held idle
// until the next large commit.
const maxRetainedArena = 1 << 20

func (e *encoder) reset() {
	e.arena = e.arena[:0]
}

func (e *encoder) done() {
	if cap(e.arena) > maxRetainedArena {
		e.arena = nil
	}
}

// put stores the arena bytes from start on under the current key.
func (e *encoder) put(b *bolt.Bucket, start int) error {
	end := len(e.arena)
	return b.Put(e.key, e.arena[start:end:end])
}

// releaseDuring releases the mapped pages of the file every
// releaseInterval until the function it returns is called, which waits for
// the releases to end. A large checkpoint's commit reads the header of
// every page it frees (each leaf it rewrote) through the map, inside
// bbolt, where records cannot release them: about 45 MiB of the file at
// 10,000 clients × 30 scopes.
func (db *DB) releaseDuring() (stop func()) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		t := time.NewTicker(releaseInterval)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				db.releaseAll()
			}
		}
	})
	return func() {
		close(done)
		wg.Wait()
	}
}

// releaseInterval is how often releaseDuring releases the mapped pages:
// a commit maps a few MiB of them in that time.
const releaseInterval = 10 * time.Millisecond

// releaseBytes is how many bytes of records a checkpoint puts between two
// releases of the mapped pages their leaves were read from (releaseMapped),
// and the size from which a commit also releases them while bbolt writes
// (releaseDuring): about as many bytes of leaves, where a checkpoint of
// every client mapped the whole file before its commit. Counted in
// records (every 1,024), a checkpoint of 1,000 clients of 6 KiB released
// nothing before its commit: 6 MiB of the file resident inside its
// transaction (TestCommitReleasesMappedPages).
const releaseBytes = 1 << 20

// recordBytes returns the size of the records' values.
func recordBytes(records []Record) int {
	n := 0
	for i := range records {
		n += len(records[i].Value)
	}
	return n
}

// records writes each record whole, in client id order: visiting
// clients in key order keeps the B+tree path of consecutive clients in
// cache and inserts into each node in order. The values stay in the
// batch's arena, which bbolt references until the transaction ends.
func (e *encoder) records(cb *bolt.Bucket, records []Record) error {
	cb.FillPercent = clientsFill
	e.order = e.order[:0]
	for i := range records {
		if !validClientID(records[i].ID) {
			return fmt.Errorf("client id %q is empty or contains a 0 byte: %w", records[i].ID, ErrInvalid)
		}
		e.order = append(e.order, i)
	}
	slices.SortFunc(e.order, func(x, y int) int { return strings.Compare(records[x].ID, records[y].ID) })
	put := 0 // bytes put since the last release
	for _, i := range e.order {
		r := &records[i]
		e.key = append(e.key[:0], r.ID...)
		if err := cb.Put(e.key, r.Value); err != nil {
			return fmt.Errorf("client %q: %w", r.ID, err)
		}
		if put += len(r.ID) + len(r.Value); put >= releaseBytes {
			put = 0
			// The nodes bbolt made of those leaves keep their unchanged
			// entries in the map: read again, they fault back in.
			releaseMapped(cb.Tx())
		}
	}
	return nil
}

// clientsFill is how full bbolt packs the leaves of the clients bucket
// that a commit splits. At its default of half a page, a leaf of records
// over 1 KiB takes two of them (bbolt's least), whatever their size, and
// a checkpoint holds every leaf it rewrites as a page of its own: with
// records of 1.3 KB (10,000 clients × 30 scopes) a leaf filled 2.6 KB of
// its 4 KiB. Filled up, it holds three (44.2 MB for the bench's store
// against 51.0, peak RSS of its scan 134–136 MiB against 139–140); a
// leaf of four that grows past its page spans two, as at half: with 1,000
// clients of 0.9 KB records the store takes 14.8 MB against 12.2, for the
// same peak.
const clientsFill = 1.0

// validClientID reports whether id can be a key of the clients bucket.
func validClientID(id string) bool {
	return id != "" && strings.IndexByte(id, 0) < 0
}

func (e *encoder) sources(sb *bolt.Bucket, deltas map[string]*SourceDelta) error {
	for name, d := range deltas {
		if d == nil {
			continue
		}
		if name == "" {
			return fmt.Errorf("empty source name: %w", ErrInvalid)
		}
		e.key = append(e.key[:0], name...)
		var s Source
		if v := sb.Get(e.key); v != nil {
			var err error
			if s, err = decodeSource(name, v); err != nil {
				return fmt.Errorf("source %q: %w", name, err)
			}
		}
		s.Lines += d.Lines
		s.Malformed += d.Malformed
		s.Ignored += d.Ignored
		s.Unattributed += d.Unattributed
		s.Events.Merge(d.Events)
		start := len(e.arena)
		e.arena = appendSource(e.arena, &s)
		if err := e.put(sb, start); err != nil {
			return fmt.Errorf("source %q: %w", name, err)
		}
	}
	return nil
}

func (e *encoder) positions(pb *bolt.Bucket, positions map[PositionKey]Position) error {
	for k, p := range positions {
		if strings.IndexByte(k.Source, 0) >= 0 {
			return fmt.Errorf("position source %q contains a 0 byte: %w", k.Source, ErrInvalid)
		}
		e.key = appendPositionKey(e.key[:0], k)
		start := len(e.arena)
		e.arena = appendPosition(e.arena, &p)
		if err := e.put(pb, start); err != nil {
			return fmt.Errorf("position of %s: %w", p.Path, err)
		}
	}
	return nil
}
