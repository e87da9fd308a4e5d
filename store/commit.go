package store

import (
	"bytes"
	"fmt"
	"slices"
	"strings"

	bolt "go.etcd.io/bbolt"
)

// Commit applies everything in b in one bbolt transaction: the clients in
// b.DropClients are deleted, then each client delta is merged into the
// stored client (counts add, first times take the earliest, last times the
// latest; the address and country sets keep the
// MaxIPs and MaxCountries most recently seen), each source delta is added
// to the stored statistics, and each position replaces the stored one for
// its file. When Commit returns nil, all of it is on disk; otherwise none
// of it is. An empty batch commits nothing and starts no transaction.
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
	err := db.update(func(tx *bolt.Tx) error {
		if err := dropClients(tx.Bucket(bucketClients), b.DropClients); err != nil {
			return err
		}
		if err := e.clients(tx.Bucket(bucketClients), b.Clients); err != nil {
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
		if db.beforeCommit != nil {
			return db.beforeCommit(tx)
		}
		return nil
	})
	e.done()
	if err != nil {
		return failed(err, fmt.Sprintf("commit batch to %s", db.path))
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
	arena  []byte
	key    []byte
	ids    []string
	scopes []storedScope
	deltas []scopeDelta
	ips    []seenEntry
	ccs    []seenEntry
}

// storedScope is one scope of a stored client record: its name and the
// encoded usage, both aliasing the record.
type storedScope struct {
	name, raw []byte
}

// scopeDelta is one scope of a client delta.
type scopeDelta struct {
	name string
	u    *ScopeUsage
}

// seenEntry is one address or country while a client is merged. Entries
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
	// Drop references into the closed transaction's memory and the batch.
	clear(e.ids[:cap(e.ids)])
	clear(e.scopes[:cap(e.scopes)])
	clear(e.deltas[:cap(e.deltas)])
	clear(e.ips[:cap(e.ips)])
	clear(e.ccs[:cap(e.ccs)])
}

// put stores the arena bytes from start on under the current key.
func (e *encoder) put(b *bolt.Bucket, start int) error {
	end := len(e.arena)
	return b.Put(e.key, e.arena[start:end:end])
}

func (e *encoder) clients(cb *bolt.Bucket, deltas map[string]*ClientDelta) error {
	// Visiting clients in key order keeps the B+tree path of consecutive
	// clients in cache and inserts into each node in order.
	e.ids = e.ids[:0]
	for id, d := range deltas {
		if d != nil {
			e.ids = append(e.ids, id)
		}
	}
	slices.Sort(e.ids)
	// One cursor serves every lookup: Bucket.Get would allocate a new one
	// per client. Seek starts from the root, so Puts in between are safe.
	cur := cb.Cursor()
	for _, id := range e.ids {
		if err := e.client(cb, cur, id, deltas[id]); err != nil {
			return fmt.Errorf("client %q: %w", id, err)
		}
	}
	return nil
}

// validClientID reports whether id can be a key of the clients bucket.
func validClientID(id string) bool {
	return id != "" && strings.IndexByte(id, 0) < 0
}

// client merges d into the stored record of client id (if any) and writes
// the result: one Get and at most one Put.
func (e *encoder) client(cb *bolt.Bucket, cur *bolt.Cursor, id string, d *ClientDelta) error {
	if !validClientID(id) {
		return fmt.Errorf("client id is empty or contains a 0 byte: %w", ErrInvalid)
	}
	e.deltas = e.deltas[:0]
	for name, u := range d.Scopes {
		if u == nil {
			continue
		}
		if name == "" {
			return fmt.Errorf("empty scope name: %w", ErrInvalid)
		}
		e.deltas = append(e.deltas, scopeDelta{name: name, u: u})
	}
	e.key = append(e.key[:0], id...)
	k, v := cur.Seek(e.key)
	if !bytes.Equal(k, e.key) {
		v = nil
	}
	if v != nil && d.Seen.N == 0 && d.Issued.N == 0 && len(e.deltas) == 0 && len(d.IPs) == 0 && len(d.Countries) == 0 {
		return nil // nothing to change
	}

	var seen, issued Counter
	e.scopes, e.ips, e.ccs = e.scopes[:0], e.ips[:0], e.ccs[:0]
	if v != nil {
		dec := decoder{b: v}
		seen, issued = dec.clientHead()
		e.scopes = readScopes(&dec, e.scopes)
		e.ips = readSeenSet(&dec, e.ips)
		e.ccs = readSeenSet(&dec, e.ccs)
		if err := dec.end("client"); err != nil {
			return err
		}
	}
	seen.Merge(d.Seen)
	issued.Merge(d.Issued)
	var err error
	if e.ips, err = e.mergeSeen(e.ips, d.IPs, MaxIPs); err != nil {
		return fmt.Errorf("addresses: %w", err)
	}
	if e.ccs, err = e.mergeSeen(e.ccs, d.Countries, MaxCountries); err != nil {
		return fmt.Errorf("countries: %w", err)
	}

	start := len(e.arena)
	e.arena = append(e.arena, formatClient)
	e.arena = appendCounter(e.arena, &seen)
	e.arena = appendCounter(e.arena, &issued)
	if e.arena, err = mergeScopes(e.arena, e.scopes, e.deltas); err != nil {
		return err
	}
	e.arena = appendSeenSet(e.arena, e.ips)
	e.arena = appendSeenSet(e.arena, e.ccs)
	return e.put(cb, start)
}

func readScopes(d *decoder, dst []storedScope) []storedScope {
	n := d.count(4)
	var prev []byte
	for i := 0; i < n && d.err == nil; i++ {
		name := d.name(prev, i == 0)
		dst = append(dst, storedScope{name: name, raw: d.scopeUsageRaw()})
		prev = name
	}
	return dst
}

// mergeScopes appends the union of the stored scopes (sorted by name) and
// the delta's, in name order, merging the usage of scopes in both. deltas
// is sorted in place.
func mergeScopes(b []byte, stored []storedScope, deltas []scopeDelta) ([]byte, error) {
	slices.SortFunc(deltas, func(x, y scopeDelta) int { return strings.Compare(x.name, y.name) })
	n := len(stored) + len(deltas)
	for i, j := 0, 0; i < len(stored) && j < len(deltas); {
		switch c := compareName(stored[i].name, deltas[j].name); {
		case c < 0:
			i++
		case c > 0:
			j++
		default:
			n--
			i++
			j++
		}
	}
	b = appendUvarint(b, uint64(n))
	i, j := 0, 0
	for i < len(stored) || j < len(deltas) {
		c := -1
		switch {
		case i == len(stored):
			c = 1
		case j < len(deltas):
			c = compareName(stored[i].name, deltas[j].name)
		}
		switch {
		case c < 0:
			b = appendString(b, stored[i].name)
			b = append(b, stored[i].raw...)
			i++
		case c > 0:
			b = appendString(b, deltas[j].name)
			b = appendScopeUsage(b, deltas[j].u)
			j++
		default:
			d := decoder{b: stored[i].raw}
			u := d.scopeUsage()
			if err := d.end("scope usage"); err != nil {
				return b, fmt.Errorf("scope %q: %w", deltas[j].name, err)
			}
			u.Merge(*deltas[j].u)
			b = appendString(b, deltas[j].name)
			b = appendScopeUsage(b, &u)
			i++
			j++
		}
	}
	return b, nil
}

// compareName compares a stored name with a batch one, like
// strings.Compare but without converting b to a string.
func compareName(b []byte, s string) int {
	switch {
	case string(b) == s:
		return 0
	case string(b) < s:
		return -1
	}
	return 1
}

func readSeenSet(d *decoder, dst []seenEntry) []seenEntry {
	n := d.count(2)
	var prev []byte
	for i := 0; i < n && d.err == nil; i++ {
		name := d.name(prev, i == 0)
		raw := d.counterRaw()
		dst = append(dst, seenEntry{name: name, raw: raw})
		prev = name
	}
	return dst
}

// mergeSeen folds delta into the stored entries (sorted by name), drops
// the least recently seen beyond max and leaves the entries sorted by
// name. Names of new entries are copied into the arena.
func (e *encoder) mergeSeen(entries []seenEntry, delta map[string]*Counter, max int) ([]seenEntry, error) {
	stored := len(entries)
	for k, c := range delta {
		if c == nil {
			continue
		}
		i, found := slices.BinarySearchFunc(entries[:stored], k, func(s seenEntry, k string) int {
			return compareName(s.name, k)
		})
		if !found {
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
	if len(entries) == stored {
		return entries, nil
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
	slices.SortFunc(entries, func(x, y seenEntry) int { return bytes.Compare(x.name, y.name) })
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

func appendSeenSet(b []byte, entries []seenEntry) []byte {
	b = appendUvarint(b, uint64(len(entries)))
	for i := range entries {
		s := &entries[i]
		b = appendString(b, s.name)
		if s.raw != nil {
			b = append(b, s.raw...)
			continue
		}
		b = appendCounter(b, &s.c)
	}
	return b
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
