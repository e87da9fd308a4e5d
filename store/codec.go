package store

import (
	"encoding/binary"
	"fmt"
	"time"
)

// Record encodings. Every value starts with a format byte so that a later
// schema can change one record kind without rewriting the others. Integers
// are varints. A time is a zigzag varint s followed, unless s is 0, by a
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
//	scope usage  1 counter(Requested) counter(Granted) counter(Used)
//	summary      1 counter(Seen) n {string counter}×n m {string counter}×m
//	source       1 Lines Malformed Ignored Unattributed counter(Events)
//	position     1 HeadLen HeadHash(8, little-endian) Offset Line string(Path) Size t(ModTime)
//
// A string is its length then its bytes.
//
// Keys of the clients bucket are the client id and a 0 byte for the
// client's summary, followed by the scope name for each scope's usage, so
// one client's records are adjacent and come summary first. Keys of the
// positions bucket are the source name, a 0 byte, then device and inode as
// 8-byte big-endian integers.
const formatV1 = 1

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

func appendScopeUsage(b []byte, u *ScopeUsage) []byte {
	b = append(b, formatV1)
	b = appendCounter(b, &u.Requested)
	b = appendCounter(b, &u.Granted)
	return appendCounter(b, &u.Used)
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
}

func (d *decoder) fail(what string) {
	if d.err == nil {
		d.err = fmt.Errorf("truncated or malformed %s: %w", what, ErrCorrupt)
	}
	d.b = nil
}

func (d *decoder) format() {
	if len(d.b) == 0 {
		d.fail("format byte")
		return
	}
	if d.b[0] != formatV1 {
		if d.err == nil {
			d.err = fmt.Errorf("unknown record format %d: %w", d.b[0], ErrCorrupt)
		}
		d.b = nil
		return
	}
	d.b = d.b[1:]
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

func (d *decoder) skipTime() {
	if d.varint() != 0 {
		d.uvarint()
	}
}

func (d *decoder) counter() Counter {
	c := Counter{N: d.uvarint()}
	if c.N > 0 {
		c.First = d.time()
		c.Last = d.time()
	}
	return c
}

// counterRaw returns the encoded bytes of the next counter without
// decoding its times.
func (d *decoder) counterRaw() []byte {
	start := d.b
	if d.uvarint() > 0 {
		d.skipTime()
		d.skipTime()
	}
	if d.err != nil {
		return nil
	}
	return start[:len(start)-len(d.b)]
}

func (d *decoder) end(what string) error {
	if d.err == nil && len(d.b) != 0 {
		d.err = fmt.Errorf("%d trailing bytes after %s: %w", len(d.b), what, ErrCorrupt)
	}
	return d.err
}

func decodeScopeUsage(v []byte) (ScopeUsage, error) {
	d := decoder{b: v}
	d.format()
	u := ScopeUsage{Requested: d.counter(), Granted: d.counter(), Used: d.counter()}
	return u, d.end("scope usage")
}

func decodeSource(name string, v []byte) (Source, error) {
	d := decoder{b: v}
	d.format()
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
	if len(k) < 17 || k[len(k)-17] != 0 {
		return Position{}, fmt.Errorf("position key %q: %w", k, ErrCorrupt)
	}
	src := k[:len(k)-17]
	d := decoder{b: v}
	d.format()
	p := Position{
		Source: string(src),
		File: FileID{
			Dev: binary.BigEndian.Uint64(k[len(k)-16:]),
			Ino: binary.BigEndian.Uint64(k[len(k)-8:]),
		},
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

// decodeSummary fills c's Seen, IPs and Countries from a summary record.
func decodeSummary(c *Client, v []byte) error {
	d := decoder{b: v}
	d.format()
	c.Seen = d.counter()
	c.IPs = decodeSeenSet(&d)
	c.Countries = decodeSeenSet(&d)
	return d.end("client summary")
}

func decodeSeenSet(d *decoder) map[string]Counter {
	n := d.uvarint()
	if d.err != nil || n == 0 {
		return nil
	}
	if n > uint64(len(d.b)) { // each entry takes at least two bytes
		d.fail("set size")
		return nil
	}
	m := make(map[string]Counter, n)
	for range n {
		k := d.bytes()
		c := d.counter()
		if d.err != nil {
			return nil
		}
		m[string(k)] = c
	}
	return m
}
