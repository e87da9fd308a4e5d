package store

import (
	"slices"
	"strings"
	"time"
)

// FileID identifies a file by device and inode, independent of its path.
type FileID struct {
	Dev uint64
	Ino uint64
}

// Position records how far one file of one source has been consumed.
// Offset is the byte offset just after the last line whose effects were
// committed; Line is that line's number within the file (1-based).
// HeadLen and HeadHash fingerprint the first bytes of the file so that a
// reused inode is not mistaken for the file it replaced.
type Position struct {
	Source   string
	File     FileID
	HeadLen  int    // number of leading bytes hashed, at most HeadMax
	HeadHash uint64 // FNV-1a 64 of the first HeadLen bytes
	Offset   int64
	Line     int64
	Path     string    // path the file was last read under, for people
	Size     int64     // file size when the position was taken
	ModTime  time.Time // file modification time when the position was taken
}

// HeadMax is the number of leading bytes hashed into a file fingerprint.
const HeadMax = 1024

// Counter is a count with the times of its first and last increment.
type Counter struct {
	N     uint64
	First time.Time
	Last  time.Time
}

// Add records n occurrences at t.
func (c *Counter) Add(n uint64, t time.Time) {
	if n == 0 {
		return
	}
	c.N += n
	if c.First.IsZero() || t.Before(c.First) {
		c.First = t
	}
	if t.After(c.Last) {
		c.Last = t
	}
}

// Merge folds o into c.
func (c *Counter) Merge(o Counter) {
	if o.N == 0 {
		return
	}
	c.N += o.N
	if c.First.IsZero() || (!o.First.IsZero() && o.First.Before(c.First)) {
		c.First = o.First
	}
	if o.Last.After(c.Last) {
		c.Last = o.Last
	}
}

// ScopeUsage is what is known about one scope of one client.
type ScopeUsage struct {
	Requested Counter // asked for in a token request
	Granted   Counter // present in an issued token
	Used      Counter // exercised by an API call (or issued, for identity scopes)
}

// Merge folds o into u.
func (u *ScopeUsage) Merge(o ScopeUsage) {
	u.Requested.Merge(o.Requested)
	u.Granted.Merge(o.Granted)
	u.Used.Merge(o.Used)
}

// SourceDelta is the change one batch makes to one source's statistics.
type SourceDelta struct {
	Lines        uint64  // lines read
	Malformed    uint64  // lines that failed to parse
	Ignored      uint64  // well-formed lines that carry no event of interest
	Unattributed uint64  // use events without a client id
	Events       Counter // events, with the first and last event time
}

// Batch holds the aggregate effect of a run of events together with the
// source positions that produced them. It is committed in one transaction,
// so either all of it is durable or none of it is.
type Batch struct {
	Events int // events folded into the batch (for sizing decisions)
	// Records are the client records of a State's checkpoint, written
	// whole; Gen is that checkpoint's generation (State.Checkpoint).
	Records []Record
	Gen     uint64
	// ScopeNames is the State's numbering of scope names, which its
	// records use: the store's own first, then those the commit adds to
	// it (bucketScopes).
	ScopeNames []string
	arena      []byte // the chunk of Records' values being filled (State.Checkpoint)
	Sources    map[string]*SourceDelta
	Positions  map[PositionKey]Position
	// Findings are the findings the batch's events created or changed,
	// stored whole; DropFindings are deleted (resolved ones past their
	// retention).
	Findings     map[FindingKey]Finding
	DropFindings map[FindingKey]struct{}
	// Coverage replaces the observed spans of each source it names.
	Coverage map[string][]Span
	// DropClients are client records to delete (pruned: unseen past
	// their retention, or never qualified for a record), before the
	// batch's records are written.
	DropClients map[string]struct{}
	// Notify marks the notification groups whose findings changed in a
	// way worth telling (opened, reopened, graver, resolved), with the
	// time of the change.
	Notify map[GroupKey]time.Time
	// Windows replaces the detectors' time windows it names, each
	// encoded by EncodeWindow (Unix nanoseconds, oldest first); an empty
	// one is deleted.
	Windows map[string][]byte
	// Owners records the partition each client named belongs to now;
	// DropPositions are positions to delete (partitions released).
	Owners        map[string]PositionKey
	DropPositions []PositionKey
	// Restore, when set, is a partition's state read from its changelog,
	// to write into the store.
	Restore *Snapshot
}

// PositionKey identifies one file of one source.
type PositionKey struct {
	Source string
	File   FileID
}

// NewBatch returns an empty batch.
func NewBatch() *Batch {
	return &Batch{
		Sources:      make(map[string]*SourceDelta),
		Positions:    make(map[PositionKey]Position),
		Findings:     make(map[FindingKey]Finding),
		DropFindings: make(map[FindingKey]struct{}),
		Coverage:     make(map[string][]Span),
		Notify:       make(map[GroupKey]time.Time),
		DropClients:  make(map[string]struct{}),
		Windows:      make(map[string][]byte),
		Owners:       make(map[string]PositionKey),
	}
}

// Reset empties b for reuse, keeping its maps' storage.
func (b *Batch) Reset() {
	b.Events = 0
	b.DropEncoded()
	b.Gen = 0
	clear(b.Sources)
	clear(b.Positions)
	clear(b.Findings)
	clear(b.DropFindings)
	clear(b.Coverage)
	clear(b.Notify)
	clear(b.DropClients)
	clear(b.Owners)
	b.DropPositions = b.DropPositions[:0]
	b.Restore = nil
}

// DropEncoded lets go of the client records and the detector windows b
// holds encoded, keeping the rest: what a large checkpoint's commit leaves
// behind, garbage once it is committed, before the batch is emptied
// (Reset).
func (b *Batch) DropEncoded() {
	clear(b.Records) // no reference to a client id outlives the batch
	b.Records = b.Records[:0]
	b.ScopeNames = nil
	if cap(b.arena) > maxRetainedArena {
		// A large checkpoint's records: the batch waits for the next one
		// empty, and an arena kept would hold its size for nothing until
		// then (two batches take turns: with 10,000 clients, 27 MiB each).
		b.arena = nil
	}
	b.arena = b.arena[:0]
	clear(b.Windows)
}

// Empty reports whether committing b would change nothing.
func (b *Batch) Empty() bool {
	return len(b.Records) == 0 && len(b.Sources) == 0 && len(b.Positions) == 0 &&
		len(b.Findings) == 0 && len(b.DropFindings) == 0 && len(b.Coverage) == 0 && len(b.Notify) == 0 &&
		len(b.DropClients) == 0 && len(b.Windows) == 0 && len(b.Owners) == 0 && len(b.DropPositions) == 0 &&
		b.Restore == nil
}

// Source returns the statistics delta for source name, creating it on first use.
func (b *Batch) Source(name string) *SourceDelta {
	s := b.Sources[name]
	if s == nil {
		s = new(SourceDelta)
		b.Sources[name] = s
	}
	return s
}

// SetPosition records p as the position to commit for its file; a later
// call for the same file replaces an earlier one.
func (b *Batch) SetPosition(p Position) {
	b.Positions[PositionKey{Source: p.Source, File: p.File}] = p
}

// Client is the stored record of one OAuth client.
type Client struct {
	ID        string
	Seen      Counter
	Issued    Counter // tokens issued to it; zero in records of schema 3
	Scopes    map[string]ScopeUsage
	IPs       map[string]Counter // bounded: the MaxIPs most recently seen
	Countries map[string]Counter // bounded: the MaxCountries most recently seen
}

// ClientUsage is a client's counters and scopes without its addresses and
// countries, as a walk of every client for the sweeps reads them
// (ForEachClientUsage): the scopes in a slice sorted by name, which the
// walk fills again for a later client, rather than a map of their own.
type ClientUsage struct {
	ID     string
	Seen   Counter
	Issued Counter
	Scopes []NamedScope // sorted by Name, none twice
}

// NamedScope is the usage of the scope Name.
type NamedScope struct {
	Name string
	ScopeUsage
}

// Holds reports whether the client has a usage record of scope name.
func (c *ClientUsage) Holds(name string) bool {
	_, ok := slices.BinarySearchFunc(c.Scopes, name, func(e NamedScope, name string) int { return strings.Compare(e.Name, name) })
	return ok
}

// Usage returns c's counters and scopes as a ClientUsage of its own.
func (c *Client) Usage() ClientUsage {
	u := ClientUsage{ID: c.ID, Seen: c.Seen, Issued: c.Issued}
	if len(c.Scopes) > 0 {
		u.Scopes = make([]NamedScope, 0, len(c.Scopes))
		for name, su := range c.Scopes {
			u.Scopes = append(u.Scopes, NamedScope{name, su})
		}
		slices.SortFunc(u.Scopes, func(a, b NamedScope) int { return strings.Compare(a.Name, b.Name) })
	}
	return u
}

// Source is the stored statistics of one configured source.
type Source struct {
	Name         string
	Lines        uint64
	Malformed    uint64
	Ignored      uint64
	Unattributed uint64
	Events       Counter
}

// Bounds on the per-client sets of addresses and countries kept in the
// store; beyond them the least recently seen entry is dropped.
const (
	MaxIPs       = 64
	MaxCountries = 32
)

// MaxAskedOnly bounds the scopes a client keeps that it was only ever
// asked for, never granted nor used (ClientState.CountAsked): anyone can
// ask for a scope by any name, and each would otherwise stay in the
// client's record, and in the store's numbering, for good.
const MaxAskedOnly = 32
