package store

import (
	"bytes"
	"cmp"
	"encoding/binary"
	"math"
	"math/bits"
	"net/netip"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/scopewatch/scopewatch/internal/failpoint"
)

// State is the authoritative usage of the clients, held in memory: events
// change it at memory speed, and a checkpoint writes the clients they made
// dirty, whole, into a batch (Checkpoint), which commits them in one
// transaction with the positions they came from. A client's record in the
// store is therefore always the state as of a committed checkpoint, and a
// crash replays from there.
//
// A client is read from the store when an event first names it. Memory is
// bounded: beyond MaxClients residents, the least recently active clients
// whose state is durable are evicted (Evict) and read back when an event
// names them again. A State is used from one goroutine.
type State struct {
	db      *DB // where evicted and not yet loaded clients are read from
	max     int
	clients map[string]*ClientState
	dirty   []*ClientState
	// dirtyBytes estimates the encoded size of the dirty clients as they
	// became dirty: what the next checkpoint will hold in memory.
	dirtyBytes int
	record     []byte            // where Checkpoint encodes a record before copying it into the batch
	ids        map[string]uint32 // scope name → id
	names      []string          // id → scope name
	tick       uint64            // advanced at each Client call, for eviction order
	gen        uint64            // generation of the last checkpoint taken
	durable    uint64            // newest checkpoint generation known to be committed
	evicted    uint64            // clients evicted since the State was made
	loads      uint64            // clients loaded back on demand
	notKept    uint64            // scopes asked for that CountAsked did not keep
	err        error

	// The partition each client belongs to (Own), for every client with
	// one, held or not: an index into ownerKeys, plus one. Loaded from
	// the store on first use.
	owners       map[string]uint32
	ownerKeys    []PositionKey
	ownersLoaded bool
	ownerChanged []*ClientState // since the last checkpoint
}

// NewState returns an empty State that loads the clients it does not hold
// from db (nil: every client starts empty) and holds at most maxClients
// of them once their state is durable (<= 0: no bound). A client takes
// about 1 KiB with a few scopes and addresses, and up to 4.5 KiB with 30
// scopes and a full set of addresses (BenchmarkStateMemory).
func NewState(db *DB, maxClients int) *State {
	if maxClients <= 0 {
		maxClients = math.MaxInt / 2
	}
	s := &State{db: db, max: maxClients, clients: make(map[string]*ClientState), ids: make(map[string]uint32)}
	if db != nil {
		// The store's numbering, which its records use (bucketScopes).
		s.names = slices.Clone(db.scopes.load())
		for id, name := range s.names {
			s.ids[name] = uint32(id)
		}
	}
	return s
}

// ClientState is one client's usage in memory: the counters of its
// record, its scopes by id, and its bounded address and country sets. Get
// one for changing with State.Client.
type ClientState struct {
	Seen   Tally // events attributed to the client
	Issued Tally // tokens the IdP issued to it

	state     *State
	id        string
	scopeIDs  []uint32      // the scopes' ids, sorted by scope name: scanned to find one
	scopeHas  []uint8       // of each of scopeIDs, the ScopeKinds of its counters in tallies
	tallies   []Tally       // the scopes' counters: those of scopeIDs[0] in kind order, then of the next
	ips       []Tally       // the address set's counters, sorted by address (compareIP)
	ipKeys    []uint32      // ipKey of each of ips, in the same order: scanned to find one
	ipLongs   []*netip.Addr // of each of ips, the address unless it is IPv4; nil while all are
	countries []nameTally   // sorted by country code
	tick      uint64        // State.tick at the last Client call
	owner     uint32        // the partition it belongs to (State.owners)
	wrote     uint64        // generation of the checkpoint that last wrote it
	size      int           // bytes of the record the last checkpoint wrote; 0 before
	dirty     bool
}

// A client's address set is three slices in step, sorted by the bytes
// the record spells each address as (appendAddr): by address, IPv4 as a
// number. ips holds the counters, ipKeys the keys, and ipLongs, made only
// once the set holds an address that is not IPv4, those addresses: an
// IPv4 address is its key. 28 bytes an address of a set of IPv4 ones.

// ipID is an address as a set holds it: its ipKey, and the address
// itself unless it is IPv4.
type ipID struct {
	key  uint32
	long *netip.Addr
}

func newIPID(addr netip.Addr) ipID {
	id := ipID{key: ipKey(addr)}
	if !addr.Is4() {
		id.long = new(netip.Addr) // not &addr, which would move addr to the heap on every call
		*id.long = addr
	}
	return id
}

// holdLongs makes c.ipLongs, for a set about to hold an address that is
// not IPv4.
func (c *ClientState) holdLongs() {
	if c.ipLongs == nil {
		c.ipLongs = make([]*netip.Addr, len(c.ips), cap(c.ips))
	}
}

// ip returns the identity of the address at index i of c's set.
func (c *ClientState) ip(i int) ipID {
	id := ipID{key: c.ipKeys[i]}
	if c.ipLongs != nil {
		id.long = c.ipLongs[i]
	}
	return id
}

// addr returns the address id stands for.
func (id ipID) addr() netip.Addr {
	if id.long != nil {
		return *id.long
	}
	var v [4]byte
	binary.BigEndian.PutUint32(v[:], id.key)
	return netip.AddrFrom4(v)
}

// is reports whether id stands for addr, whose ipKey is k.
func (id ipID) is(addr netip.Addr, k uint32) bool {
	if id.key != k {
		return false
	}
	if id.long != nil {
		return *id.long == addr
	}
	return addr.Is4()
}

// compareIP orders addresses as the record's bytes of them sort
// (appendAddr without its length): by the address's 4 or 16 bytes, then
// by zone.
func compareIP(a, b ipID) int {
	if a.long == nil && b.long == nil {
		return cmp.Compare(a.key, b.key)
	}
	x, y := a.addr(), b.addr()
	var xb, yb [16]byte
	if c := bytes.Compare(addrBytes(&xb, x), addrBytes(&yb, y)); c != 0 {
		return c
	}
	return strings.Compare(x.Zone(), y.Zone())
}

// addrBytes returns a's 4 bytes (IPv4) or 16, in buf.
func addrBytes(buf *[16]byte, a netip.Addr) []byte {
	if a.Is4() {
		v := a.As4()
		return append(buf[:0], v[:]...)
	}
	*buf = a.As16()
	return buf[:]
}

type nameTally struct {
	name string
	t    Tally
	code uint16 // a two-letter name packed (shortCode): told apart without reading the name
}

// shortCode packs a two-byte name, the ISO code a country is given as;
// 0 for any other.
func shortCode(s string) uint16 {
	if len(s) != 2 {
		return 0
	}
	return uint16(s[0]) | uint16(s[1])<<8
}

// ScopeKinds selects counters of a scope's usage.
type ScopeKinds uint8

// The counters of a scope's usage, to be combined: a grant of an identity
// scope counts it granted and used.
const (
	ScopeRequested ScopeKinds = 1 << iota
	ScopeGranted
	ScopeUsed
)

// Tally is a Counter packed for memory: a count with the instants of its
// first and last increment, 24 bytes against a Counter's 56. It holds
// instants from 1678 to 2262, the years a Unix time in nanoseconds spans
// and the only ones an event can carry (ingest.ParseLine); an instant
// outside them, which only a record or a Counter can bring, is held as
// the nearest one within.
type Tally struct {
	N           uint64
	first, last uint64 // packed instants (packInstant): 0 is the zero time
}

// Add records n occurrences at t, as Counter.Add does.
func (c *Tally) Add(n uint64, t time.Time) {
	if n == 0 {
		return
	}
	c.N += n
	v := packInstant(t)
	if c.first == 0 || v < c.first {
		c.first = v
	}
	if v > c.last {
		c.last = v
	}
}

// First returns the time of the first increment.
func (c *Tally) First() time.Time { return unpackInstant(c.first) }

// Last returns the time of the last increment.
func (c *Tally) Last() time.Time { return unpackInstant(c.last) }

// Counter returns c as a Counter.
func (c *Tally) Counter() Counter {
	if c.N == 0 {
		return Counter{}
	}
	return Counter{N: c.N, First: c.First(), Last: c.Last()}
}

// tallyOf packs c.
func tallyOf(c Counter) Tally {
	if c.N == 0 {
		return Tally{}
	}
	t := Tally{N: c.N}
	if !c.First.IsZero() {
		t.first = packInstant(c.First)
	}
	if !c.Last.IsZero() {
		t.last = packInstant(c.Last)
	}
	return t
}

// The instants a Tally holds: Unix nanoseconds from MinInt64+1 (late in
// 1677) to MaxInt64 (in 2262). MinInt64 itself stands for the zero time.
const (
	minUnixSec = math.MinInt64 / 1_000_000_000 // whole seconds of the earliest instant, rounded towards zero
	maxUnixSec = math.MaxInt64 / 1_000_000_000
	minNsec    = math.MinInt64%1_000_000_000 + 1_000_000_000 // of MinInt64 itself, a second before minUnixSec
	maxNsec    = math.MaxInt64 % 1_000_000_000               // of the latest instant
)

// packInstant packs t as a Tally holds it: its Unix time in nanoseconds,
// offset so that the order of instants is that of the numbers and 0 is
// free for the zero time. Instants out of range are moved to its ends.
func packInstant(t time.Time) uint64 {
	if t.IsZero() {
		return 0
	}
	sec, nsec := t.Unix(), int64(t.Nanosecond())
	var ns int64
	switch {
	case sec < minUnixSec-1 || (sec == minUnixSec-1 && nsec <= minNsec):
		ns = math.MinInt64 + 1
	case sec == minUnixSec-1:
		ns = (sec+1)*1e9 + (nsec - 1e9) // sec*1e9 alone would overflow
	case sec > maxUnixSec || (sec == maxUnixSec && nsec > maxNsec):
		ns = math.MaxInt64
	default:
		ns = sec*1e9 + nsec
	}
	return uint64(ns) ^ 1<<63
}

func unpackInstant(v uint64) time.Time {
	if v == 0 {
		return time.Time{}
	}
	return time.Unix(0, int64(v^1<<63)).UTC()
}

// splitInstant returns the packed instant v as seconds and nanoseconds
// since the Unix epoch (nsec in [0, 1e9)).
func splitInstant(v uint64) (sec int64, nsec uint32) {
	ns := int64(v ^ 1<<63)
	sec, rem := ns/1e9, ns%1e9
	if rem < 0 {
		sec, rem = sec-1, rem+1e9
	}
	return sec, uint32(rem)
}

// lastBefore orders tallies for eviction from a bounded set: the earlier
// last increment first.
func (c *Tally) lastBefore(o *Tally) bool { return c.last < o.last }

func (c *Tally) lastEqual(o *Tally) bool { return c.last == o.last }

// Client returns the state of client id for changing: it is loaded from
// the store if the State does not hold it, and is written by the next
// checkpoint. The pointer is valid until the next Evict or Forget.
//
// A client whose stored record cannot be read gets a state of its own
// that no checkpoint writes, and the error is kept for Err: the events
// are not lost silently, the engine stops on it.
func (s *State) Client(id string) *ClientState {
	s.tick++
	c := s.clients[id]
	if c == nil {
		c = s.load(id)
	}
	c.tick = s.tick
	if !c.dirty {
		c.dirty = true
		s.dirty = append(s.dirty, c)
		s.dirtyBytes += c.sizeEstimate()
	}
	return c
}

// sizeEstimate is about the size of c's encoded record: the size of the
// last one written (an event adds an entry or two at most), or a guess
// from its entries.
func (c *ClientState) sizeEstimate() int {
	if c.size > 0 {
		return c.size + 64
	}
	return 32 + 24*len(c.scopeIDs) + 12*len(c.ips) + 14*len(c.countries)
}

// load reads client id from the store, or starts it empty.
func (s *State) load(id string) *ClientState {
	c := &ClientState{state: s, id: strings.Clone(id)}
	if s.loadOwners() {
		c.owner = s.owners[id]
	}
	if s.db != nil {
		stored, ok, err := s.db.Client(id)
		if err != nil {
			if s.err == nil {
				s.err = err // names the store and, when damaged, says what to do
			}
			return &ClientState{state: s, id: c.id, dirty: true} // written by no checkpoint
		}
		if ok {
			s.fill(c, stored)
			s.loads++
		}
	}
	s.clients[c.id] = c
	return c
}

// fill sets c from a stored record.
func (s *State) fill(c *ClientState, stored Client) {
	c.Seen, c.Issued = tallyOf(stored.Seen), tallyOf(stored.Issued)
	c.scopeIDs = make([]uint32, 0, len(stored.Scopes))
	for name := range stored.Scopes {
		c.scopeIDs = append(c.scopeIDs, s.ScopeNumber(name))
	}
	slices.SortFunc(c.scopeIDs, func(x, y uint32) int { return strings.Compare(s.names[x], s.names[y]) })
	c.scopeHas = make([]uint8, len(c.scopeIDs))
	var n uint64
	for _, u := range stored.Scopes {
		n += min(u.Requested.N, 1) + min(u.Granted.N, 1) + min(u.Used.N, 1)
	}
	c.tallies = make([]Tally, 0, int(n))
	for i, id := range c.scopeIDs {
		u := stored.Scopes[s.names[id]]
		for k, counter := range [...]Counter{u.Requested, u.Granted, u.Used} {
			if counter.N > 0 {
				c.scopeHas[i] |= 1 << k
				c.tallies = append(c.tallies, tallyOf(counter))
			}
		}
	}
	type sighted struct {
		id ipID
		t  Tally
	}
	ips := make([]sighted, 0, len(stored.IPs))
	for text, n := range stored.IPs {
		addr, err := netip.ParseAddr(text)
		if err != nil {
			continue // not written by this version: dropped with the next checkpoint
		}
		ips = append(ips, sighted{newIPID(addr), tallyOf(n)})
	}
	slices.SortFunc(ips, func(x, y sighted) int { return compareIP(x.id, y.id) })
	c.ips = make([]Tally, len(ips))
	c.ipKeys = make([]uint32, len(ips))
	for i, e := range ips {
		c.ips[i], c.ipKeys[i] = e.t, e.id.key
		if e.id.long != nil {
			c.holdLongs()
			c.ipLongs[i] = e.id.long
		}
	}
	for cc, n := range stored.Countries {
		c.countries = append(c.countries, nameTally{name: cc, t: tallyOf(n), code: shortCode(cc)})
	}
	slices.SortFunc(c.countries, func(x, y nameTally) int { return strings.Compare(x.name, y.name) })
}

// NoScope is the number of no scope (CountScope).
const NoScope = ^uint32(0)

// ScopeNumber returns the number of scope name in the state, numbering a
// name on first sight: the number CountScope returns.
func (s *State) ScopeNumber(name string) uint32 {
	if id, ok := s.ids[name]; ok {
		return id
	}
	id := uint32(len(s.names))
	name = strings.Clone(name)
	s.names = append(s.names, name)
	s.ids[name] = id
	return id
}

// CountScope adds n occurrences at t to the counters kinds of scope name
// in c, adding the scope on first use, and returns the scope's number in
// the state (NoScope when n is 0, which counts nothing): one per distinct
// name, the same for every client, dense from 0 and never reused. A client
// holds only the counters its scopes have: most scopes of most clients are
// granted and used, or asked for, not all three.
func (c *ClientState) CountScope(name string, kinds ScopeKinds, n uint64, t time.Time) uint32 {
	if n == 0 {
		return NoScope
	}
	id := c.state.ScopeNumber(name)
	c.CountScopeNumber(id, kinds, n, t)
	return id
}

// CountAsked is CountScope for a scope asked for that the same event
// does not grant (a refused request, or one granted less): such names are
// the requester's to invent, so a client keeps at most MaxAskedOnly
// scopes it was only ever asked for. Past the bound, a scope new to the
// client is not kept, and not numbered: CountAsked returns NoScope and
// counts it (NotKept). A scope the client holds is counted as CountScope
// counts it.
func (c *ClientState) CountAsked(name string, n uint64, t time.Time) uint32 {
	if n == 0 {
		return NoScope
	}
	s := c.state
	id, ok := s.ids[name]
	if (!ok || !slices.Contains(c.scopeIDs, id)) && c.askedOnly() >= MaxAskedOnly {
		s.notKept++
		return NoScope
	}
	return c.CountScope(name, ScopeRequested, n, t)
}

// askedOnly returns how many of c's scopes have only been asked for.
func (c *ClientState) askedOnly() int {
	n := 0
	for _, has := range c.scopeHas {
		if ScopeKinds(has) == ScopeRequested {
			n++
		}
	}
	return n
}

// CountScopeNumber is CountScope for the scope the state numbered id
// (ScopeNumber), for a caller that needs the number before it counts.
func (c *ClientState) CountScopeNumber(id uint32, kinds ScopeKinds, n uint64, t time.Time) {
	if n == 0 {
		return
	}
	i := c.scope(id)
	off := c.talliesBefore(i)
	has := ScopeKinds(c.scopeHas[i])
	for k := ScopeRequested; k <= ScopeUsed; k <<= 1 {
		if kinds&k != 0 {
			if has&k == 0 {
				c.tallies = insertGrowing(c.tallies, off, Tally{}, math.MaxInt)
				has |= k
			}
			c.tallies[off].Add(n, t)
		}
		if has&k != 0 {
			off++
		}
	}
	c.scopeHas[i] = uint8(has)
}

// scope returns the index in c of the scope the state numbered id, adding
// it on first use.
func (c *ClientState) scope(id uint32) int {
	if i := slices.Index(c.scopeIDs, id); i >= 0 {
		return i
	}
	s := c.state
	name := s.names[id]
	i, _ := slices.BinarySearchFunc(c.scopeIDs, name, func(e uint32, name string) int {
		return strings.Compare(s.names[e], name)
	})
	c.scopeIDs = insertGrowing(c.scopeIDs, i, id, math.MaxInt)
	c.scopeHas = insertGrowing(c.scopeHas, i, 0, math.MaxInt)
	return i
}

// talliesBefore returns how many counters the scopes before index i
// hold: the offset of scope i's first in tallies. Each scope's ScopeKinds
// has at most three bits, so the bits of eight of them are counted at
// once.
func (c *ClientState) talliesBefore(i int) int {
	has := c.scopeHas[:i]
	n := 0
	for len(has) >= 8 {
		n += bits.OnesCount64(binary.LittleEndian.Uint64(has))
		has = has[8:]
	}
	for _, h := range has {
		n += bits.OnesCount8(h)
	}
	return n
}

// SawIP records a sighting of addr at t, keeping the MaxIPs most recently
// seen addresses.
func (c *ClientState) SawIP(addr netip.Addr, t time.Time) {
	k := ipKey(addr)
	for i, ki := range c.ipKeys {
		if ki == k && c.ip(i).is(addr, k) {
			c.ips[i].Add(1, t)
			return
		}
	}
	id := newIPID(addr)
	var n Tally
	n.Add(1, t)
	if len(c.ips) >= MaxIPs {
		// The least recently seen goes, the new one included; among equal
		// times the greater address, as the store's merge of older
		// versions chose (lessRecentIP). The set is in address order, so
		// that is the last of the entries seen least recently, and the
		// scan reads the times alone. Choosing before inserting keeps the
		// set at its capacity.
		drop, last := 0, c.ips[0].last
		for j := 1; j < len(c.ips); j++ {
			if l := c.ips[j].last; l <= last {
				drop, last = j, l
			}
		}
		if lessRecentIP(&n, id, &c.ips[drop], c.ip(drop)) {
			return // older than everything kept: gone at once
		}
		if id.long != nil {
			c.holdLongs()
		}
		// The new address takes the dropped one's place in the order:
		// only the entries between the two move.
		i := sort.Search(len(c.ips), func(j int) bool { return compareIP(c.ip(j), id) >= 0 })
		if i > drop {
			i--
			copy(c.ips[drop:i], c.ips[drop+1:i+1])
			copy(c.ipKeys[drop:i], c.ipKeys[drop+1:i+1])
			if c.ipLongs != nil {
				copy(c.ipLongs[drop:i], c.ipLongs[drop+1:i+1])
			}
		} else {
			copy(c.ips[i+1:drop+1], c.ips[i:drop])
			copy(c.ipKeys[i+1:drop+1], c.ipKeys[i:drop])
			if c.ipLongs != nil {
				copy(c.ipLongs[i+1:drop+1], c.ipLongs[i:drop])
			}
		}
		c.ips[i], c.ipKeys[i] = n, k
		if c.ipLongs != nil {
			c.ipLongs[i] = id.long
		}
		return
	}
	i := sort.Search(len(c.ips), func(j int) bool { return compareIP(c.ip(j), id) >= 0 })
	if id.long != nil {
		c.holdLongs()
	}
	c.ips = insertGrowing(c.ips, i, n, MaxIPs)
	c.ipKeys = insertGrowing(c.ipKeys, i, k, MaxIPs)
	if c.ipLongs != nil {
		c.ipLongs = insertGrowing(c.ipLongs, i, id.long, MaxIPs)
	}
}

// insertGrowing inserts v at index i of s, as slices.Insert does, but
// grows a full s by about an eighth, never beyond limit elements, where
// append would double it. A client's sets grow one entry at a time and
// then stay about their size: doubled, a set of 33 addresses held room
// for 64. The few more copies happen only while a set grows.
func insertGrowing[S ~[]E, E any](s S, i int, v E, limit int) S {
	if len(s) == cap(s) {
		n := min(len(s)+len(s)/8+4, max(limit, len(s)+1))
		grown := make(S, len(s), n)
		copy(grown, s)
		s = grown
	}
	return slices.Insert(s, i, v)
}

// ipKey folds an address into 32 bits for a quick scan: an IPv4 address
// is its number, which is all a set holds of it, and a match on another
// is confirmed on the address.
func ipKey(a netip.Addr) uint32 {
	if a.Is4() {
		v := a.As4()
		return binary.BigEndian.Uint32(v[:])
	}
	b := a.As16()
	h := (binary.BigEndian.Uint64(b[:8]) ^ binary.BigEndian.Uint64(b[8:])*0x9e3779b97f4a7c15) * 0x9e3779b97f4a7c15
	return uint32(h >> 32)
}

// lessRecentIP orders addresses for eviction, a seen as ta says and b as
// tb: the earlier last sighting first, and among equal times the greater
// address.
func lessRecentIP(ta *Tally, a ipID, tb *Tally, b ipID) bool {
	return ta.lastBefore(tb) || (ta.lastEqual(tb) && compareIP(a, b) > 0)
}

// SawCountry records a sighting of an ISO country code at t, keeping the
// MaxCountries most recently seen.
func (c *ClientState) SawCountry(cc string, t time.Time) {
	code := shortCode(cc)
	for i := range c.countries {
		if e := &c.countries[i]; e.code == code && (code != 0 || e.name == cc) {
			e.t.Add(1, t)
			return
		}
	}
	i, _ := slices.BinarySearchFunc(c.countries, cc, func(e nameTally, cc string) int { return strings.Compare(e.name, cc) })
	c.countries = insertGrowing(c.countries, i, nameTally{name: strings.Clone(cc), code: code}, MaxCountries+1)
	c.countries[i].t.Add(1, t)
	if len(c.countries) > MaxCountries {
		drop := 0
		for j := 1; j < len(c.countries); j++ {
			a, b := &c.countries[j], &c.countries[drop]
			if a.t.lastBefore(&b.t) || (a.t.lastEqual(&b.t) && a.name > b.name) {
				drop = j
			}
		}
		c.countries = slices.Delete(c.countries, drop, drop+1)
	}
}

// Forget drops client id from memory and from the next checkpoint: its
// record is being deleted (pruned).
func (s *State) Forget(id string) {
	delete(s.owners, id) // the store's entry goes with the record, held or not
	c := s.clients[id]
	if c == nil {
		return
	}
	delete(s.clients, id)
	if c.dirty {
		c.dirty = false
		s.dirty = slices.DeleteFunc(s.dirty, func(d *ClientState) bool { return d == c })
		s.dirtyBytes -= min(c.sizeEstimate(), s.dirtyBytes)
	}
	if c.owner != 0 {
		s.ownerChanged = slices.DeleteFunc(s.ownerChanged, func(d *ClientState) bool { return d == c })
	}
}

// loadOwners reads the clients' partitions from the store once; it
// reports false, keeping the error for Err, when they cannot be read.
func (s *State) loadOwners() bool {
	if s.ownersLoaded {
		return s.owners != nil
	}
	s.ownersLoaded = true
	stored := map[string]PositionKey{}
	if s.db != nil {
		var err error
		if stored, err = s.db.Owners(); err != nil {
			if s.err == nil {
				s.err = err
			}
			return false
		}
	}
	s.owners = make(map[string]uint32, len(stored))
	for id, k := range stored {
		s.owners[id] = s.ownerIndex(k)
	}
	return true
}

// ownerIndex returns the index of partition k in ownerKeys, plus one,
// adding it on first use.
func (s *State) ownerIndex(k PositionKey) uint32 {
	for i := len(s.ownerKeys) - 1; i >= 0; i-- {
		if s.ownerKeys[i] == k {
			return uint32(i + 1)
		}
	}
	s.ownerKeys = append(s.ownerKeys, k)
	return uint32(len(s.ownerKeys))
}

// Own records that the events of client id come from the partition at k,
// so that the client leaves with it (Owned). A client the State does not
// hold has no record, and is passed over.
func (s *State) Own(id string, k PositionKey) {
	c := s.clients[id]
	if c == nil || !s.loadOwners() {
		return
	}
	idx := c.owner
	if idx == 0 || s.ownerKeys[idx-1] != k {
		idx = s.ownerIndex(k)
	}
	if c.owner == idx {
		return
	}
	if c.owner == 0 || !slices.Contains(s.ownerChanged, c) {
		s.ownerChanged = append(s.ownerChanged, c)
	}
	c.owner = idx
	s.owners[c.id] = idx
}

// Adopt records that client id, restored into the store from the
// changelog of the partition at k, belongs to it: the State reads its
// record from the store when an event names it.
func (s *State) Adopt(id string, k PositionKey) {
	if s.loadOwners() {
		s.owners[id] = s.ownerIndex(k)
	}
}

// Owned returns the clients whose events came from the partition at k,
// held or not.
func (s *State) Owned(k PositionKey) []string {
	if !s.loadOwners() {
		return nil
	}
	var out []string
	for id, idx := range s.owners {
		if s.ownerKeys[idx-1] == k {
			out = append(out, id)
		}
	}
	slices.Sort(out)
	return out
}

// Dirty returns how many clients changed since the last checkpoint.
func (s *State) Dirty() int { return len(s.dirty) }

// Len returns how many clients are held in memory.
func (s *State) Len() int { return len(s.clients) }

// Pressed reports whether a checkpoint should be taken now, before its
// time: the clients changed since the last one would encode to more than
// CheckpointBytes (a checkpoint is encoded in memory, and bbolt copies it
// into pages: both grow with it), or the State holds a quarter more clients
// than MaxClients (the changed ones cannot be evicted until a checkpoint
// holding them is durable).
func (s *State) Pressed() bool {
	return s.dirtyBytes >= CheckpointBytes || len(s.clients) >= s.max+s.max/4
}

// CheckpointBytes bounds the encoded client records of one checkpoint, and
// so the memory a commit takes: about three times it at peak, the records
// being held encoded and again in bbolt's pages until the commit ends,
// while the next checkpoint fills. Every client a checkpoint holds is
// written whole, so the bound also sets how often a busy client is
// rewritten: at 10,000 clients × 30 scopes, 8 MiB meant a record written
// for nearly every line, and 32 MiB halves the scan's time for about 110
// MiB more at peak (README, Performance).
const CheckpointBytes = 32 << 20

// arenaChunk is the size of the chunks a checkpoint's records are encoded
// into. A record never spans two, so the chunks hold the checkpoint's
// bytes with little room to spare, and none is copied as the checkpoint
// grows; one arena reserved for the whole checkpoint from the clients'
// estimated sizes held a quarter more than the records (about 6 MiB with
// 10,000 clients × 30 scopes), as a single allocation.
const arenaChunk = 1 << 20

// DirtyBytes estimates the encoded size of the clients the next
// checkpoint will write, what it will hold in memory, from their entries
// now: a client new since the last checkpoint counts its size by now, not
// its empty size when it became dirty (dirtyBytes).
func (s *State) DirtyBytes() int {
	n := 0
	for _, c := range s.dirty {
		n += c.sizeEstimate()
	}
	return n
}

// Stats returns the evictions and loads on demand since the State was made.
func (s *State) Stats() (evicted, loaded uint64) { return s.evicted, s.loads }

// NotKept returns how many times CountAsked did not keep a scope since
// the State was made.
func (s *State) NotKept() uint64 { return s.notKept }

// Err returns the first error loading a client from the store.
func (s *State) Err() error { return s.err }

// Checkpoint encodes every dirty client into b, whole, and marks them
// clean as of the checkpoint's generation, which b carries (b.Gen): once b
// is committed, pass that generation to Durable.
func (s *State) Checkpoint(b *Batch) {
	for _, c := range s.ownerChanged {
		b.Owners[c.id] = s.ownerKeys[c.owner-1]
	}
	clear(s.ownerChanged)
	s.ownerChanged = s.ownerChanged[:0]
	if len(s.dirty) == 0 {
		return
	}
	s.gen++
	b.Gen = s.gen
	b.ScopeNames = s.names
	for _, c := range s.dirty {
		// Encoded apart, then copied: a record that outgrew its estimate
		// in the chunk would move the whole chunk, and the records
		// already taken from it would keep the old one alive.
		s.record = s.appendRecord(s.record[:0], c)
		if cap(b.arena)-len(b.arena) < len(s.record) {
			b.arena = make([]byte, 0, max(len(s.record), min(arenaChunk, s.dirtyBytes+s.dirtyBytes/8)))
		}
		start := len(b.arena)
		b.arena = append(b.arena, s.record...)
		end := len(b.arena)
		b.Records = append(b.Records, Record{ID: c.id, Value: b.arena[start:end:end]})
		c.size = end - start
		c.dirty = false
		c.wrote = s.gen
	}
	clear(s.dirty)
	s.dirty = s.dirty[:0]
	s.dirtyBytes = 0
	if cap(s.record) > maxRetainedRecord {
		s.record = nil
	}
}

// maxRetainedRecord bounds the buffer a State keeps between checkpoints
// to encode a record in: a client of thousands of scopes leaves none.
const maxRetainedRecord = 64 << 10

// appendRecord appends c's client record (format 6), its scopes by
// number. Its Base is the last event attributed to the client, which the
// other last times are near.
func (s *State) appendRecord(b []byte, c *ClientState) []byte {
	base := &c.Seen
	b = append(b, formatClient)
	b = appendInstant(b, base.last)
	b = appendTally(b, &c.Seen, base)
	b = appendTally(b, &c.Issued, base)
	b = appendUvarint(b, uint64(len(c.scopeIDs)))
	off := 0
	for i, id := range c.scopeIDs {
		b = appendUvarint(b, uint64(id))
		for k := range 3 {
			t := &Tally{} // a counter the scope does not have: zero
			if c.scopeHas[i]&(1<<k) != 0 {
				t = &c.tallies[off]
				off++
			}
			b = appendTally(b, t, base)
		}
	}
	b = appendUvarint(b, uint64(len(c.ips)))
	var last4 uint32
	for i := range c.ips {
		b = appendDaddr(b, c.ip(i).addr(), &last4)
		b = appendTally(b, &c.ips[i], base)
	}
	b = appendUvarint(b, uint64(len(c.countries)))
	for i := range c.countries {
		e := &c.countries[i]
		b = appendString(b, e.name)
		b = appendTally(b, &e.t, base)
	}
	return b
}

// appendTally appends t as an rcounter of a record whose Base is base's
// last instant.
func appendTally(b []byte, t, base *Tally) []byte {
	b = appendUvarint(b, t.N)
	if t.N == 0 {
		return b
	}
	b = appendRelative(b, t.last, base.last)
	return appendRelative(b, t.first, t.last)
}

// appendInstant appends a Tally's packed instant as appendTime appends
// the time.Time it stands for.
func appendInstant(b []byte, v uint64) []byte {
	if v == 0 {
		return append(b, 0)
	}
	unix, nsec := splitInstant(v)
	if unix >= 0 {
		unix++
	}
	b = appendVarint(b, unix)
	if nsec%1e6 == 0 {
		return appendUvarint(b, uint64(nsec/1e6)<<1)
	}
	return appendUvarint(b, uint64(nsec)<<1|1)
}

// Durable says that the checkpoint of generation gen, and every one
// before it, is committed: the clients it wrote may be evicted.
func (s *State) Durable(gen uint64) {
	if gen > s.durable {
		s.durable = gen
	}
}

// Evict drops the least recently active clients whose state is durable
// until at most nine tenths of MaxClients are held, and returns how many
// it dropped. Clients changed since the last durable checkpoint stay.
func (s *State) Evict() int {
	if len(s.clients) <= s.max {
		return 0
	}
	keep := s.max - s.max/10
	var cold []*ClientState
	for _, c := range s.clients {
		if !c.dirty && c.wrote <= s.durable {
			cold = append(cold, c)
		}
	}
	slices.SortFunc(cold, func(x, y *ClientState) int {
		switch {
		case x.tick < y.tick:
			return -1
		case x.tick > y.tick:
			return 1
		}
		return 0
	})
	n := 0
	for _, c := range cold {
		if len(s.clients) <= keep {
			break
		}
		delete(s.clients, c.id)
		if n++; n == 1 {
			failpoint.Hit("evict") // some clients evicted, the others not yet
		}
	}
	s.evicted += uint64(n)
	return n
}

// Record is one client record a checkpoint writes whole.
type Record struct {
	ID    string
	Value []byte // encoded, in the batch's arena
}
