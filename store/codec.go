package store

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"time"
)

// Record encodings. Every value starts with a format byte so that a later
// schema can change one record kind without rewriting the others. Integers
// are varints. A time t is a zigzag varint s followed, unless s is 0, by a
// varint f:
//
//	s = 0      the zero time.Time
//	s = n+1    Unix seconds n >= 0 (so the epoch itself stays distinct)
//	s = n      Unix seconds n < 0
//	f = 2m     m milliseconds past the second (the usual log precision)
//	f = 2n+1   n nanoseconds past the second
//
// A Counter is N, followed by First and Last only when N > 0.
//
//	client    6 t(Base) rcounter(Seen) rcounter(Issued) s {Number rcounter(Requested) rcounter(Granted) rcounter(Used)}×s
//	            n {daddr rcounter}×n m {string rcounter}×m
//	source    1 Lines Malformed Ignored Unattributed counter(Events)
//	position  1 HeadLen HeadHash(8, little-endian) Offset Line string(Path) Size t(ModTime)
//
// A string is its length then its bytes. A client record holds everything
// known about one client: its scopes, then its addresses (at most MaxIPs),
// then its countries (at most MaxCountries), each list sorted by its
// strings' bytes with none twice, so equal clients encode to equal bytes.
// A scope is named by its Number in the store's scope names (bucket
// "scopes", scopenames.go), and the scopes are sorted by those names.
// An addr is a string of the address's 4 bytes (IPv4) or 16 (IPv6), or of
// its 16 bytes followed by its zone; the list sorts addresses by those
// bytes. A daddr is one uvarint u, then bytes when u is odd:
//
//	u = 2d     an IPv4 address, d more than the list's previous IPv4
//	           address as a 32-bit number (than 0 for its first)
//	u = 2n+1   followed by the n bytes of an addr of another kind
//
// A client's addresses are mostly near one another (its networks), so an
// IPv4 one takes 1 to 3 bytes where an addr takes 5: 75 bytes a record
// against 319 on the bench's 10,000 clients.
//
// An rcounter is N, then, when N > 0, Last relative to the record's Base
// and First relative to Last. A relative time is one uvarint u:
//
//	u = 0      the zero time.Time
//	u = 4z+1   the reference plus d milliseconds, z the zigzag encoding of d
//	u = 4z+3   the reference plus d nanoseconds
//	u = 2      followed by the time t, absolute (the reference is the zero
//	           time, or too far)
//
// The times of a client are near one another, so a relative time takes 3
// to 5 bytes where an absolute one takes 7.
//
// Keys of the clients bucket are client ids; one client is one key, so a
// commit reads and writes each client it touches once. Keys of the
// positions bucket are the source name, a 0 byte, then device and inode as
// 8-byte big-endian integers.
//
// Format 5 in the clients bucket is format 6 with each address an addr
// (schema 9). Format 4 is format 5 with each scope's name spelled out as
// a string (schema 8); a changelog carries its client records in format
// 4, which need no store's names to read. Format 3 is
// format 4 with absolute times (plain counters, no Base) and addresses
// spelled as text (schema 7 and earlier); format 2 is format 3 without the
// Issued counter (schema 3 and earlier). All four are read as they are,
// and rewritten as format 6 by the next commit that touches the client.
//
// Format 1 in the clients bucket belonged to an unreleased layout with one
// key per client summary ("id" and a 0 byte) and one per scope ("id", 0,
// scope); such files are refused when opened (see checkClientLayout).
const (
	formatV1       = 1 // sources and positions
	formatClientV2 = 2 // one record per client, without Issued (schema 3)
	formatClientV3 = 3 // one record per client, times absolute, addresses as text (schema 7)
	formatClientV4 = 4 // one record per client, scopes by name (schema 8; changelogs)
	formatClientV5 = 5 // one record per client, scopes by number, addresses as bytes (schema 9)
	formatClient   = 6 // one record per client, scopes by number, addresses as differences
)

func appendUvarint(b []byte, v uint64) []byte { return binary.AppendUvarint(b, v) }

func appendVarint(b []byte, v int64) []byte { return binary.AppendVarint(b, v) }

func appendString[S ~string | ~[]byte](b []byte, s S) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

// appendTime appends t's encoding: seconds and a sub-second part, so that
// every time.Time round-trips and the common millisecond-precision log
// times take 7 bytes.
func appendTime(b []byte, t time.Time) []byte {
	if t.IsZero() {
		return append(b, 0)
	}
	sec := t.Unix()
	if sec >= 0 {
		sec++ // 0 is the zero time; Unix() never reaches MaxInt64
	}
	b = binary.AppendVarint(b, sec)
	ns := uint64(t.Nanosecond())
	if ns%1e6 == 0 {
		return binary.AppendUvarint(b, ns/1e6<<1)
	}
	return binary.AppendUvarint(b, ns<<1|1)
}

func appendCounter(b []byte, c *Counter) []byte {
	b = binary.AppendUvarint(b, c.N)
	if c.N == 0 {
		return b
	}
	return appendTime(appendTime(b, c.First), c.Last)
}

func appendSource(b []byte, s *Source) []byte {
	b = append(b, formatV1)
	b = appendUvarint(b, s.Lines)
	b = appendUvarint(b, s.Malformed)
	b = appendUvarint(b, s.Ignored)
	b = appendUvarint(b, s.Unattributed)
	return appendCounter(b, &s.Events)
}

func appendPositionKey(b []byte, k PositionKey) []byte {
	b = append(b, k.Source...)
	b = append(b, 0)
	b = binary.BigEndian.AppendUint64(b, k.File.Dev)
	return binary.BigEndian.AppendUint64(b, k.File.Ino)
}

// decodePositionKey reads a key appendPositionKey wrote; false when b is
// not one.
func decodePositionKey(b []byte) (PositionKey, bool) {
	n := len(b) - 17
	if n < 0 || b[n] != 0 {
		return PositionKey{}, false
	}
	return PositionKey{Source: string(b[:n]), File: FileID{
		Dev: binary.BigEndian.Uint64(b[n+1:]), Ino: binary.BigEndian.Uint64(b[n+9:]),
	}}, true
}

func appendPosition(b []byte, p *Position) []byte {
	b = append(b, formatV1)
	b = appendUvarint(b, uint64(p.HeadLen))
	b = binary.LittleEndian.AppendUint64(b, p.HeadHash)
	b = appendVarint(b, p.Offset)
	b = appendVarint(b, p.Line)
	b = appendString(b, p.Path)
	b = appendVarint(b, p.Size)
	return appendTime(b, p.ModTime)
}

// decoder reads a record; the first problem sticks in err and later reads
// return zero values.
type decoder struct {
	b   []byte
	err error
	// relative says that the record is a client record of format 4 or
	// later, whose counters are relative to base and whose addresses are
	// bytes.
	relative bool
	base     time.Time
	// numbered says that the record names its scopes by number (format 5
	// and 6): the numbers index names, the store's scope names.
	numbered bool
	names    []string
	// daddrs says that the record's addresses are daddrs (format 6).
	daddrs bool
}

func (d *decoder) fail(what string) {
	if d.err == nil {
		d.err = fmt.Errorf("truncated or malformed %s: %w", what, ErrCorrupt)
	}
	d.b = nil
}

// format consumes the leading format byte, which must be want.
func (d *decoder) format(want byte) {
	if len(d.b) == 0 {
		d.fail("format byte")
		return
	}
	if d.b[0] != want {
		if d.err == nil {
			d.err = fmt.Errorf("record format %d, want %d: %w", d.b[0], want, ErrCorrupt)
		}
		d.b = nil
		return
	}
	d.b = d.b[1:]
}

// clientHead consumes the format byte of a client record (format 2 to 6),
// its Base, and the counters before its scopes: Seen, and Issued (zero in
// format 2).
func (d *decoder) clientHead() (seen, issued Counter) {
	switch {
	case len(d.b) > 0 && d.b[0] == formatClientV2:
		d.format(formatClientV2)
		return d.counter(), Counter{}
	case len(d.b) > 0 && d.b[0] == formatClientV3:
		d.format(formatClientV3)
	case len(d.b) > 0 && d.b[0] == formatClientV4:
		d.format(formatClientV4)
		d.base = d.time()
		d.relative = true
	case len(d.b) > 0 && d.b[0] == formatClientV5:
		d.format(formatClientV5)
		d.base = d.time()
		d.relative, d.numbered = true, true
	default:
		d.format(formatClient)
		d.base = d.time()
		d.relative, d.numbered, d.daddrs = true, true, true
	}
	seen = d.counter()
	return seen, d.counter()
}

func (d *decoder) uvarint() uint64 {
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.fail("unsigned integer")
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) varint() int64 {
	v, n := binary.Varint(d.b)
	if n <= 0 {
		d.fail("integer")
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) fixed64() uint64 {
	if len(d.b) < 8 {
		d.fail("fixed integer")
		return 0
	}
	v := binary.LittleEndian.Uint64(d.b)
	d.b = d.b[8:]
	return v
}

// bytes returns a length-prefixed byte string, aliasing the record.
func (d *decoder) bytes() []byte {
	n := d.uvarint()
	if d.err != nil {
		return nil
	}
	if n > uint64(len(d.b)) {
		d.fail("string")
		return nil
	}
	s := d.b[:n:n]
	d.b = d.b[n:]
	return s
}

func (d *decoder) time() time.Time {
	sec := d.varint()
	if sec == 0 {
		return time.Time{}
	}
	if sec > 0 {
		sec--
	}
	f := d.uvarint()
	ns := f >> 1
	if f&1 == 0 {
		ns *= 1e6
	}
	if ns >= 1e9 {
		d.fail("time")
		return time.Time{}
	}
	return time.Unix(sec, int64(ns)).UTC()
}

func (d *decoder) counter() Counter {
	c := Counter{N: d.uvarint()}
	if c.N == 0 {
		return c
	}
	if d.relative {
		c.Last = d.relativeTime(d.base)
		c.First = d.relativeTime(c.Last)
		return c
	}
	c.First = d.time()
	c.Last = d.time()
	return c
}

// relativeTime reads a time relative to ref (format 4).
func (d *decoder) relativeTime(ref time.Time) time.Time {
	u := d.uvarint()
	switch {
	case d.err != nil || u == 0:
		return time.Time{}
	case u == 2:
		return d.time()
	case u&1 == 0 || ref.IsZero():
		d.fail("relative time")
		return time.Time{}
	}
	z := int64(u>>3) ^ -int64(u>>2&1) // the zigzag-decoded offset
	if u&2 == 0 {
		return time.Unix(ref.Unix()+z/1e3, int64(ref.Nanosecond())+z%1e3*1e6).UTC()
	}
	return time.Unix(ref.Unix()+z/1e9, int64(ref.Nanosecond())+z%1e9).UTC()
}

// appendRelative appends the packed instant v relative to ref, both as a
// Tally holds them (0 the zero time): in milliseconds when the two differ
// by whole ones, else in nanoseconds when within 68 years, else absolute.
func appendRelative(b []byte, v, ref uint64) []byte {
	if v == 0 {
		return append(b, 0)
	}
	if ref != 0 {
		sec, nsec := splitInstant(v)
		rsec, rnsec := splitInstant(ref)
		ds, dns := sec-rsec, int64(nsec)-int64(rnsec)
		if dns%1e6 == 0 {
			return appendUvarint(b, zigzag(ds*1e3+dns/1e6)<<2|1)
		}
		if ds > -1<<31 && ds < 1<<31 {
			return appendUvarint(b, zigzag(ds*1e9+dns)<<2|3)
		}
	}
	return appendInstant(append(b, 2), v)
}

// zigzag maps signed integers to unsigned ones, small magnitudes to small
// values, as binary.AppendVarint does.
func zigzag(v int64) uint64 { return uint64(v<<1) ^ uint64(v>>63) }

func (d *decoder) end(what string) error {
	if d.err == nil && len(d.b) != 0 {
		d.err = fmt.Errorf("%d trailing bytes after %s: %w", len(d.b), what, ErrCorrupt)
	}
	return d.err
}

// scope reads the next scope of a client record, its name (aliasing the
// record or the store's names, after prev unless first; not to be
// changed) and its usage; ok is false once the record is found malformed.
func (d *decoder) scope(prev []byte, first bool) (name []byte, u ScopeUsage, ok bool) {
	if d.numbered {
		name = d.scopeName(prev, first)
	} else if name = d.name(prev, first); d.err == nil && len(name) == 0 {
		// No commit writes one (Commit), and the store cannot number it.
		d.fail("scope name (empty)")
	}
	u = d.scopeUsage()
	return name, u, d.err == nil
}

// scopeName reads a scope's Number and returns the bytes of its name,
// which must sort after prev unless first.
func (d *decoder) scopeName(prev []byte, first bool) []byte {
	n := d.uvarint()
	if d.err != nil {
		return nil
	}
	if n >= uint64(len(d.names)) {
		d.fail(fmt.Sprintf("scope number %d (the store names %d scopes)", n, len(d.names)))
		return nil
	}
	s := nameBytes(d.names[n])
	if len(s) == 0 {
		d.fail(fmt.Sprintf("scope number %d, which the store does not name", n))
		return nil
	}
	if !first && string(s) <= string(prev) {
		d.fail("name order")
		return nil
	}
	return s
}

func (d *decoder) scopeUsage() ScopeUsage {
	return ScopeUsage{Requested: d.counter(), Granted: d.counter(), Used: d.counter()}
}

// name returns the next name of a list sorted by name: unless first, it
// must be greater than prev.
func (d *decoder) name(prev []byte, first bool) []byte {
	s := d.bytes()
	if d.err == nil && !first && string(s) <= string(prev) {
		d.fail("name order")
		return nil
	}
	return s
}

// count reads the length of a list whose entries take at least min bytes.
func (d *decoder) count(min int) int {
	n := d.uvarint()
	if n > uint64(len(d.b)/min) {
		d.fail("list length")
		return 0
	}
	return int(n)
}

func decodeSource(name string, v []byte) (Source, error) {
	d := decoder{b: v}
	d.format(formatV1)
	s := Source{
		Name:         name,
		Lines:        d.uvarint(),
		Malformed:    d.uvarint(),
		Ignored:      d.uvarint(),
		Unattributed: d.uvarint(),
		Events:       d.counter(),
	}
	return s, d.end("source statistics")
}

func decodePosition(k, v []byte) (Position, error) {
	key, ok := decodePositionKey(k)
	if !ok {
		return Position{}, fmt.Errorf("position key %q: %w", k, ErrCorrupt)
	}
	d := decoder{b: v}
	d.format(formatV1)
	p := Position{
		Source:   key.Source,
		File:     key.File,
		HeadLen:  int(d.uvarint()),
		HeadHash: d.fixed64(),
		Offset:   d.varint(),
		Line:     d.varint(),
		Path:     string(d.bytes()),
		Size:     d.varint(),
		ModTime:  d.time(),
	}
	return p, d.end("position")
}

// decodeClient copies a client record out of the transaction's memory;
// names are the store's scope names as the transaction sees them
// (scopeNames.load), nil where only a record of format 4 or older may be
// (a changelog's).
func decodeClient(names []string, id string, v []byte) (Client, error) {
	d := decoder{b: v, names: names}
	c, err := decodeUsage(&d, id)
	if err != nil {
		return Client{}, err
	}
	c.IPs = decodeSeenSet(&d, d.relative)
	c.Countries = decodeSeenSet(&d, false)
	if err := d.end("client"); err != nil {
		return Client{}, err
	}
	return c, nil
}

// decodeUsage decodes the part of a client record before its addresses:
// its counters and scopes.
func decodeUsage(d *decoder, id string) (Client, error) {
	c := Client{ID: id}
	c.Seen, c.Issued = d.clientHead()
	if n := d.count(4); n > 0 {
		c.Scopes = make(map[string]ScopeUsage, n)
		var prev []byte
		for i := range n {
			k, u, ok := d.scope(prev, i == 0)
			if !ok {
				break
			}
			c.Scopes[string(k)] = u
			prev = k
		}
	}
	if d.err != nil {
		return Client{}, d.err
	}
	return c, nil
}

// usageWalk decodes the usage of every client of a walk
// (ForEachClientUsage) into ClientUsage values that it fills again for
// later clients, and holds one string of each scope name for the walk
// (the names repeat from client to client). At 10,000 clients of 30
// scopes, a sweep that walked into Client values, each with its map of
// scopes, allocated 113 MB; with the walk's values, 7.4 MB
// (BenchmarkSweepMany/all_used).
type usageWalk struct {
	names map[string]string
}

// decode decodes the usage of record v of client id into c, reusing c's
// Scopes; names are the store's scope names (decodeClient).
func (w *usageWalk) decode(c *ClientUsage, names []string, id string, v []byte) error {
	d := decoder{b: v, names: names}
	c.ID = id
	c.Seen, c.Issued = d.clientHead()
	clear(c.Scopes) // no name outlives its client in the slice's spare room
	c.Scopes = c.Scopes[:0]
	n := d.count(4)
	var prev []byte
	for i := range n {
		k, u, ok := d.scope(prev, i == 0)
		if !ok {
			break
		}
		c.Scopes = append(c.Scopes, NamedScope{Name: w.name(k), ScopeUsage: u})
		prev = k
	}
	return d.err
}

// name returns k as the walk's string of it.
func (w *usageWalk) name(k []byte) string {
	if s, ok := w.names[string(k)]; ok {
		return s
	}
	if w.names == nil {
		w.names = make(map[string]string)
	}
	s := string(k)
	w.names[s] = s
	return s
}

// decodeSeenSet decodes a list of names with their counters; with addrs,
// each name is an addr and is keyed by the address's text.
func decodeSeenSet(d *decoder, addrs bool) map[string]Counter {
	n := d.count(2)
	if d.err != nil || n == 0 {
		return nil
	}
	m := make(map[string]Counter, n)
	var prev []byte
	var list addrList
	for i := range n {
		var k []byte
		if addrs && d.daddrs {
			k = list.next(d, prev, i == 0)
		} else {
			k = d.name(prev, i == 0)
		}
		c := d.counter()
		if d.err != nil {
			return nil
		}
		prev = k
		if !addrs {
			m[string(k)] = c
			continue
		}
		addr, ok := decodeAddr(k)
		if !ok {
			d.fail("address")
			return nil
		}
		m[addr.String()] = c
	}
	return m
}

// addrList reads the daddrs of a client record (format 6) as the bytes
// of their addrs.
type addrList struct {
	last4 uint64     // the list's previous IPv4 address
	seen4 bool       // whether there was one
	buf   [2][4]byte // the bytes of the last two IPv4 addresses: the previous one stays valid
	i     int
}

// next reads the next daddr and returns its addr's bytes, which must
// sort after prev unless first.
func (l *addrList) next(d *decoder, prev []byte, first bool) []byte {
	u := d.uvarint()
	if d.err != nil {
		return nil
	}
	var k []byte
	if u&1 == 1 {
		n := u >> 1
		if n < 16 || n > uint64(len(d.b)) { // IPv4 is an even u, never bytes
			d.fail("address")
			return nil
		}
		k = d.b[:n:n]
		d.b = d.b[n:]
	} else {
		v := l.last4 + u>>1
		if v > 0xffffffff || (l.seen4 && u == 0) {
			d.fail("address")
			return nil
		}
		l.last4, l.seen4 = v, true
		l.i ^= 1
		k = l.buf[l.i][:]
		binary.BigEndian.PutUint32(k, uint32(v))
	}
	if !first && string(k) <= string(prev) {
		d.fail("name order")
		return nil
	}
	return k
}

// appendDaddr appends a's daddr in a list whose previous IPv4 address
// was *last4 (0 before the first), which it updates.
func appendDaddr(b []byte, a netip.Addr, last4 *uint32) []byte {
	if a.Is4() {
		a4 := a.As4()
		v := binary.BigEndian.Uint32(a4[:])
		b = appendUvarint(b, uint64(v-*last4)<<1)
		*last4 = v
		return b
	}
	v, zone := a.As16(), a.Zone()
	b = appendUvarint(b, uint64(len(v)+len(zone))<<1|1)
	return append(append(b, v[:]...), zone...)
}

// appendAddr appends a's addr: its 4 or 16 bytes, then its zone.
func appendAddr(b []byte, a netip.Addr) []byte {
	if a.Is4() {
		v := a.As4()
		return append(append(b, 4), v[:]...)
	}
	v, zone := a.As16(), a.Zone()
	b = appendUvarint(b, uint64(len(v)+len(zone)))
	return append(append(b, v[:]...), zone...)
}

// decodeAddr reads the bytes of an addr.
func decodeAddr(k []byte) (netip.Addr, bool) {
	switch {
	case len(k) == 4:
		return netip.AddrFrom4([4]byte(k)), true
	case len(k) >= 16:
		a := netip.AddrFrom16([16]byte(k[:16]))
		if len(k) > 16 {
			a = a.WithZone(string(k[16:]))
		}
		return a, true
	}
	return netip.Addr{}, false
}
