package store

import (
	"bytes"
	"fmt"
	"strings"

	bolt "go.etcd.io/bbolt"
)

// Commit applies everything in b in one bbolt transaction: each client
// delta is merged into the stored client (counts add, first times take the
// earliest, last times the latest; the address and country sets keep the
// MaxIPs and MaxCountries most recently seen), each source delta is added
// to the stored statistics, and each position replaces the stored one for
// its file. When Commit returns nil, all of it is on disk; otherwise none
// of it is. An empty batch commits nothing and starts no transaction.
//
// Client ids, scope names and source names must not be empty, source names
// must not contain a 0 byte, and times must lie between the years 1678 and
// 2262; a batch breaking these rules fails with ErrInvalid.
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
	err := db.bolt.Update(func(tx *bolt.Tx) error {
		if err := e.clients(tx.Bucket(bucketClients), b.Clients); err != nil {
			return err
		}
		if err := e.sources(tx.Bucket(bucketSources), b.Sources); err != nil {
			return err
		}
		if err := e.positions(tx.Bucket(bucketPositions), b.Positions); err != nil {
			return err
		}
		if db.beforeCommit != nil {
			return db.beforeCommit(tx)
		}
		return nil
	})
	e.done()
	if err != nil {
		return fmt.Errorf("commit batch to %s: %w", db.path, err)
	}
	return nil
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
	ips   []seenEntry
	ccs   []seenEntry
}

// seenEntry is one address or country while a summary is merged. Entries
// the batch does not touch keep their stored bytes in raw and are copied
// without decoding.
type seenEntry struct {
	name    []byte
	raw     []byte // encoded counter, valid while unchanged
	c       Counter
	decoded bool
}

// maxRetainedArena bounds the buffer kept between commits, so that one
// unusually large batch does not pin its memory for the process lifetime.
const maxRetainedArena = 16 << 20

func (e *encoder) reset() {
	e.arena = e.arena[:0]
}

func (e *encoder) done() {
	if cap(e.arena) > maxRetainedArena {
		e.arena = nil
	}
	clear(e.ips[:cap(e.ips)])
	clear(e.ccs[:cap(e.ccs)])
}

// put stores the arena bytes from start on under the current key.
func (e *encoder) put(b *bolt.Bucket, start int) error {
	end := len(e.arena)
	return b.Put(e.key, e.arena[start:end:end])
}

func (e *encoder) clients(parent *bolt.Bucket, deltas map[string]*ClientDelta) error {
	for id, d := range deltas {
		if d == nil {
			continue
		}
		if err := e.client(parent, id, d); err != nil {
			return fmt.Errorf("client %q: %w", id, err)
		}
	}
	return nil
}

func (e *encoder) client(parent *bolt.Bucket, id string, d *ClientDelta) error {
	if id == "" {
		return fmt.Errorf("empty client id: %w", ErrInvalid)
	}
	e.key = append(e.key[:0], id...)
	cb := parent.Bucket(e.key)
	if cb == nil {
		var err error
		if cb, err = parent.CreateBucket(e.key); err != nil {
			return err
		}
	}
	if d.Seen.N > 0 || len(d.IPs) > 0 || len(d.Countries) > 0 {
		if err := e.summary(cb, d); err != nil {
			return err
		}
	}
	for name, u := range d.Scopes {
		if u == nil {
			continue
		}
		if name == "" || name == summaryKey {
			return fmt.Errorf("scope name %q: %w", name, ErrInvalid)
		}
		e.key = append(e.key[:0], name...)
		var cur ScopeUsage
		if v := cb.Get(e.key); v != nil {
			var err error
			if cur, err = decodeScopeUsage(v); err != nil {
				return fmt.Errorf("scope %q: %w", name, err)
			}
		}
		cur.Merge(*u)
		start := len(e.arena)
		var err error
		if e.arena, err = appendScopeUsage(e.arena, &cur); err != nil {
			return fmt.Errorf("scope %q: %w", name, err)
		}
		if err := e.put(cb, start); err != nil {
			return fmt.Errorf("scope %q: %w", name, err)
		}
	}
	return nil
}

// summary merges the Seen counter and the bounded address and country sets.
func (e *encoder) summary(cb *bolt.Bucket, d *ClientDelta) error {
	e.key = append(e.key[:0], summaryKey...)
	var seen Counter
	e.ips, e.ccs = e.ips[:0], e.ccs[:0]
	if v := cb.Get(e.key); v != nil {
		dec := decoder{b: v}
		dec.format()
		seen = dec.counter()
		e.ips = readSeenSet(&dec, e.ips)
		e.ccs = readSeenSet(&dec, e.ccs)
		if err := dec.end("client summary"); err != nil {
			return err
		}
	}
	seen.Merge(d.Seen)
	var err error
	if e.ips, err = e.mergeSeen(e.ips, d.IPs, MaxIPs); err != nil {
		return fmt.Errorf("addresses: %w", err)
	}
	if e.ccs, err = e.mergeSeen(e.ccs, d.Countries, MaxCountries); err != nil {
		return fmt.Errorf("countries: %w", err)
	}
	start := len(e.arena)
	e.arena = append(e.arena, formatV1)
	if e.arena, err = appendCounter(e.arena, &seen); err != nil {
		return err
	}
	if e.arena, err = appendSeenSet(e.arena, e.ips); err != nil {
		return fmt.Errorf("addresses: %w", err)
	}
	if e.arena, err = appendSeenSet(e.arena, e.ccs); err != nil {
		return fmt.Errorf("countries: %w", err)
	}
	return e.put(cb, start)
}

func readSeenSet(d *decoder, dst []seenEntry) []seenEntry {
	n := d.uvarint()
	if n > uint64(len(d.b)) {
		d.fail("set size")
	}
	for i := uint64(0); i < n && d.err == nil; i++ {
		name := d.bytes()
		raw := d.counterRaw()
		dst = append(dst, seenEntry{name: name, raw: raw})
	}
	return dst
}

// mergeSeen folds delta into the stored entries and drops the least
// recently seen beyond max. Names of new entries are copied into the arena.
func (e *encoder) mergeSeen(entries []seenEntry, delta map[string]*Counter, max int) ([]seenEntry, error) {
	stored := len(entries)
	for k, c := range delta {
		if c == nil {
			continue
		}
		i := 0
		for i < stored && string(entries[i].name) != k {
			i++
		}
		if i == stored {
			start := len(e.arena)
			e.arena = append(e.arena, k...)
			entries = append(entries, seenEntry{name: e.arena[start:len(e.arena):len(e.arena)], c: *c, decoded: true})
			continue
		}
		if err := entries[i].decode(); err != nil {
			return entries, err
		}
		entries[i].c.Merge(*c)
		entries[i].raw = nil
	}
	for len(entries) > max {
		evict := 0
		for i := range entries {
			if err := entries[i].decode(); err != nil {
				return entries, err
			}
			if lessRecent(&entries[i], &entries[evict]) {
				evict = i
			}
		}
		last := len(entries) - 1
		entries[evict] = entries[last]
		entries = entries[:last]
	}
	return entries, nil
}

// lessRecent orders entries for eviction: earlier Last first, and among
// equal times the greater name, so the choice does not depend on order.
func lessRecent(a, b *seenEntry) bool {
	if !a.c.Last.Equal(b.c.Last) {
		return a.c.Last.Before(b.c.Last)
	}
	return bytes.Compare(a.name, b.name) > 0
}

func (s *seenEntry) decode() error {
	if s.decoded {
		return nil
	}
	d := decoder{b: s.raw}
	s.c = d.counter()
	s.decoded = true
	return d.end("counter")
}

func appendSeenSet(b []byte, entries []seenEntry) ([]byte, error) {
	b = appendUvarint(b, uint64(len(entries)))
	for i := range entries {
		s := &entries[i]
		b = appendString(b, s.name)
		if s.raw != nil {
			b = append(b, s.raw...)
			continue
		}
		var err error
		if b, err = appendCounter(b, &s.c); err != nil {
			return b, fmt.Errorf("%q: %w", s.name, err)
		}
	}
	return b, nil
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
		var err error
		if e.arena, err = appendSource(e.arena, &s); err != nil {
			return fmt.Errorf("source %q: %w", name, err)
		}
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
		var err error
		if e.arena, err = appendPosition(e.arena, &p); err != nil {
			return fmt.Errorf("position of %s: %w", p.Path, err)
		}
		if err := e.put(pb, start); err != nil {
			return fmt.Errorf("position of %s: %w", p.Path, err)
		}
	}
	return nil
}
