package ingest

import (
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/scopewatch/scopewatch/rules"
)

// Reasons for malformed lines beyond the shared ones in event.go.
const (
	// ReasonBadSyntax marks a Keycloak key=value message that cannot be
	// split into pairs (an unterminated quote, a missing separator).
	ReasonBadSyntax = "bad_syntax"
	// ReasonNoType marks a Keycloak event without an event type.
	ReasonNoType = "no_type"
)

// NewParser returns the parser for src.Format ("keycloak", "okta", "json",
// "nginx", ...) behind the wrapper layer that src.Wrapper selects (see
// wrap.go): a UTF-8 byte order mark, blank lines and the wrappers of
// container runtimes, compose, syslog and the journal are dealt with there,
// once for every format. The parser keeps reusable buffers and
// bounded intern tables, so it must be used by one goroutine at a time;
// create one per source. The strings of the events it returns are shared
// between events, and so are their Requested and Granted slices (whose
// len equals their cap, so appending copies): treat them as read-only.
func NewParser(src rules.Source) (Parser, error) {
	p, err := newFormatParser(src)
	if err != nil {
		return nil, err
	}
	return newUnwrapping(src, p)
}

// newFormatParser returns the parser of src's format alone, for lines
// already out of their wrappers.
func newFormatParser(src rules.Source) (Parser, error) {
	if src.Format == "" {
		return nil, fmt.Errorf("source %s: no format", src.Name)
	}
	f, ok := lookupFormat(src.Format)
	if !ok {
		return nil, fmt.Errorf("source %s: unknown format %q; known formats: %s", src.Name, src.Format, strings.Join(Formats{}.Names(), ", "))
	}
	return f.parser(src)
}

// loadZone resolves a source's time zone name; "" means UTC.
func loadZone(src rules.Source) (*time.Location, error) {
	if src.TimeZone == "" {
		return time.UTC, nil
	}
	loc, err := time.LoadLocation(src.TimeZone)
	if err != nil {
		return nil, fmt.Errorf("source %s: timezone %q: %w", src.Name, src.TimeZone, err)
	}
	return loc, nil
}

// lineError builds the *ParseError for a line at pos.
func lineError(pos Position, source, field, reason, msg string) error {
	if pos.Source != "" {
		source = pos.Source
	}
	var err error
	if msg != "" {
		err = errors.New(msg)
	}
	return &ParseError{Source: source, Line: pos.Line, Offset: pos.Offset, Field: field, Reason: reason, Err: err}
}

// wrapLineError is lineError around an existing error.
func wrapLineError(pos Position, source, field, reason string, err error) error {
	if pos.Source != "" {
		source = pos.Source
	}
	return &ParseError{Source: source, Line: pos.Line, Offset: pos.Offset, Field: field, Reason: reason, Err: err}
}

// atoiN parses exactly the n decimal digits at the start of b.
func atoiN(b []byte, n int) (int, bool) {
	if len(b) < n {
		return 0, false
	}
	v := 0
	for _, c := range b[:n] {
		if c < '0' || c > '9' {
			return 0, false
		}
		v = v*10 + int(c-'0')
	}
	return v, true
}

func validClock(y, mo, d, h, mi, s int) bool {
	if mo < 1 || mo > 12 || d < 1 || h > 23 || mi > 59 || s > 59 {
		return false
	}
	return d <= daysIn(time.Month(mo), y)
}

func daysIn(m time.Month, y int) int {
	switch m {
	case time.February:
		if y%4 == 0 && (y%100 != 0 || y%400 == 0) {
			return 29
		}
		return 28
	case time.April, time.June, time.September, time.November:
		return 30
	}
	return 31
}

// parseFraction reads the digits at the start of b as a fraction of a
// second. Digits beyond nanoseconds are accepted and dropped.
func parseFraction(b []byte) (ns, n int) {
	scale := 100000000
	for n < len(b) && b[n] >= '0' && b[n] <= '9' {
		ns += int(b[n]-'0') * scale
		scale /= 10
		n++
	}
	return ns, n
}

// parseZone reads Z, ±hh:mm, ±hhmm or ±hh and returns the offset east of
// UTC in seconds and the bytes consumed.
func parseZone(b []byte) (off, n int, ok bool) {
	if len(b) == 0 {
		return 0, 0, false
	}
	if b[0] == 'Z' || b[0] == 'z' {
		return 0, 1, true
	}
	if b[0] != '+' && b[0] != '-' {
		return 0, 0, false
	}
	h, ok := atoiN(b[1:], 2)
	if !ok || h > 23 {
		return 0, 0, false
	}
	n, m := 3, 0
	switch {
	case len(b) >= 6 && b[3] == ':':
		if m, ok = atoiN(b[4:], 2); !ok {
			return 0, 0, false
		}
		n = 6
	case len(b) >= 5 && b[3] >= '0' && b[3] <= '9':
		if m, ok = atoiN(b[3:], 2); !ok {
			return 0, 0, false
		}
		n = 5
	}
	if m > 59 {
		return 0, 0, false
	}
	off = h*3600 + m*60
	if b[0] == '-' {
		off = -off
	}
	return off, n, true
}

// parseISOTime parses an ISO-8601 date and time: YYYY-MM-DD, 'T' or a
// space, hh:mm:ss, an optional fraction after '.' or ',' (any number of
// digits) and an optional zone. Without a zone the time is read in loc.
// The whole of b must be consumed.
func parseISOTime(b []byte, loc *time.Location) (time.Time, bool) {
	if len(b) < 19 || b[4] != '-' || b[7] != '-' || b[13] != ':' || b[16] != ':' {
		return time.Time{}, false
	}
	if c := b[10]; c != 'T' && c != 't' && c != ' ' {
		return time.Time{}, false
	}
	y, ok1 := atoiN(b, 4)
	mo, ok2 := atoiN(b[5:], 2)
	d, ok3 := atoiN(b[8:], 2)
	h, ok4 := atoiN(b[11:], 2)
	mi, ok5 := atoiN(b[14:], 2)
	s, ok6 := atoiN(b[17:], 2)
	if !(ok1 && ok2 && ok3 && ok4 && ok5 && ok6) || !validClock(y, mo, d, h, mi, s) {
		return time.Time{}, false
	}
	i, ns := 19, 0
	if i < len(b) && (b[i] == '.' || b[i] == ',') {
		f, n := parseFraction(b[i+1:])
		if n == 0 {
			return time.Time{}, false
		}
		ns = f
		i += 1 + n
	}
	if i == len(b) {
		return time.Date(y, time.Month(mo), d, h, mi, s, ns, loc), true
	}
	off, n, ok := parseZone(b[i:])
	if !ok || i+n != len(b) {
		return time.Time{}, false
	}
	t := time.Date(y, time.Month(mo), d, h, mi, s, ns, time.UTC)
	return t.Add(-time.Duration(off) * time.Second), true
}

// monthAbbr maps a three-letter English month abbreviation to its number.
func monthAbbr(b []byte) (int, bool) {
	if len(b) < 3 {
		return 0, false
	}
	switch string(b[:3]) {
	case "Jan":
		return 1, true
	case "Feb":
		return 2, true
	case "Mar":
		return 3, true
	case "Apr":
		return 4, true
	case "May":
		return 5, true
	case "Jun":
		return 6, true
	case "Jul":
		return 7, true
	case "Aug":
		return 8, true
	case "Sep":
		return 9, true
	case "Oct":
		return 10, true
	case "Nov":
		return 11, true
	case "Dec":
		return 12, true
	}
	return 0, false
}

// parseNginxTime parses nginx's $time_local, 02/Jan/2006:15:04:05 -0700.
func parseNginxTime(b []byte) (time.Time, bool) {
	if len(b) != 26 || b[2] != '/' || b[6] != '/' || b[11] != ':' || b[14] != ':' || b[17] != ':' || b[20] != ' ' {
		return time.Time{}, false
	}
	d, ok1 := atoiN(b, 2)
	mo, ok2 := monthAbbr(b[3:])
	y, ok3 := atoiN(b[7:], 4)
	h, ok4 := atoiN(b[12:], 2)
	mi, ok5 := atoiN(b[15:], 2)
	s, ok6 := atoiN(b[18:], 2)
	if !(ok1 && ok2 && ok3 && ok4 && ok5 && ok6) || !validClock(y, mo, d, h, mi, s) {
		return time.Time{}, false
	}
	off, n, ok := parseZone(b[21:])
	if !ok || n != 5 {
		return time.Time{}, false
	}
	t := time.Date(y, time.Month(mo), d, h, mi, s, 0, time.UTC)
	return t.Add(-time.Duration(off) * time.Second), true
}

// parseSyslogTime parses the RFC 3164 timestamp "Oct 22 21:01:45" (the day
// may be space-padded). It carries no year: the year is the one that puts
// the time closest to now, not more than a month ahead of it.
func parseSyslogTime(b []byte, loc *time.Location, now time.Time) (time.Time, bool) {
	if len(b) != 15 || b[3] != ' ' || b[6] != ' ' || b[9] != ':' || b[12] != ':' {
		return time.Time{}, false
	}
	mo, ok1 := monthAbbr(b)
	day := b[4:6]
	if day[0] == ' ' {
		day = []byte{'0', day[1]}
	}
	d, ok2 := atoiN(day, 2)
	h, ok3 := atoiN(b[7:], 2)
	mi, ok4 := atoiN(b[10:], 2)
	s, ok5 := atoiN(b[13:], 2)
	if !(ok1 && ok2 && ok3 && ok4 && ok5) {
		return time.Time{}, false
	}
	now = now.In(loc)
	y := now.Year()
	if !validClock(y, mo, d, h, mi, s) && !validClock(y-1, mo, d, h, mi, s) {
		return time.Time{}, false
	}
	t := time.Date(y, time.Month(mo), d, h, mi, s, 0, loc)
	if t.Sub(now) > 31*24*time.Hour || !validClock(y, mo, d, h, mi, s) {
		t = time.Date(y-1, time.Month(mo), d, h, mi, s, 0, loc)
	}
	return t, true
}

// parseEpoch parses a decimal number of units (seconds, milliseconds, ...,
// given as nanoseconds per unit) since the Unix epoch. A fraction is
// allowed; an exponent is handled through strconv.
func parseEpoch(b []byte, unit int64) (time.Time, bool) {
	if len(b) == 0 {
		return time.Time{}, false
	}
	neg := b[0] == '-'
	i := 0
	if neg {
		i++
	}
	var whole int64
	start := i
	for ; i < len(b) && b[i] >= '0' && b[i] <= '9'; i++ {
		if whole > (1<<63-1)/10/unit {
			return time.Time{}, false
		}
		whole = whole*10 + int64(b[i]-'0')
	}
	if i == start {
		return time.Time{}, false
	}
	var frac int64 // nanoseconds
	if i < len(b) && b[i] == '.' {
		i++
		fstart := i
		scale := unit / 10
		for ; i < len(b) && b[i] >= '0' && b[i] <= '9'; i++ {
			frac += int64(b[i]-'0') * scale
			scale /= 10
		}
		if i == fstart {
			return time.Time{}, false
		}
	}
	if i < len(b) {
		if b[i] != 'e' && b[i] != 'E' {
			return time.Time{}, false
		}
		f, err := strconv.ParseFloat(string(b), 64)
		if err != nil || f*float64(unit) > 9e18 || f*float64(unit) < -9e18 {
			return time.Time{}, false
		}
		return time.Unix(0, int64(f*float64(unit))).UTC(), true
	}
	ns := whole*unit + frac
	if ns < 0 {
		return time.Time{}, false
	}
	if neg {
		ns = -ns
	}
	return time.Unix(0, ns).UTC(), true
}

// parseIP parses an IPv4 or IPv6 address. IPv4 takes a path that does not
// allocate; IPv4-mapped IPv6 addresses are unmapped.
func parseIP(b []byte) (netip.Addr, bool) {
	if a, ok := parseIPv4(b); ok {
		return a, true
	}
	for _, c := range b {
		if c == ':' {
			a, err := netip.ParseAddr(string(b))
			if err != nil {
				return netip.Addr{}, false
			}
			return a.Unmap(), true
		}
	}
	return netip.Addr{}, false
}

func parseIPv4(b []byte) (netip.Addr, bool) {
	var a [4]byte
	part, i := 0, 0
	for part < 4 {
		start, v := i, 0
		for i < len(b) && b[i] >= '0' && b[i] <= '9' && i-start < 3 {
			v = v*10 + int(b[i]-'0')
			i++
		}
		n := i - start
		if n == 0 || v > 255 || (n > 1 && b[start] == '0') {
			return netip.Addr{}, false
		}
		a[part] = byte(v)
		part++
		if part < 4 {
			if i >= len(b) || b[i] != '.' {
				return netip.Addr{}, false
			}
			i++
		}
	}
	if i != len(b) {
		return netip.Addr{}, false
	}
	return netip.AddrFrom4(a), true
}
