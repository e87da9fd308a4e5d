package ingest

import (
	"bytes"
	"fmt"
	"time"

	"github.com/scopewatch/scopewatch/rules"
	"github.com/scopewatch/scopewatch/store"
)

// This file is the wrapper layer: the one home of everything that
// deployments put around a log line before a format's parser sees it. A
// container runtime, a compose front end, syslog or the journal each add a
// header (and sometimes a time and a stream) in front of the line the
// program wrote; the layer takes them off, for every format alike, and
// hands the inner line on with the outermost time it found.
//
// The wrappers, as their public documentation describes them:
//
//   - docker: the json-file logging driver, one object per line,
//     {"log":"<line>\n","stream":"stdout","time":"<RFC 3339 nano>"};
//   - docker logs -t (and kubectl logs --timestamps): "<RFC 3339 nano>
//     <line>", taken off only when the line behind the time starts as a
//     log line does (a digit, '{', '<', or a bracketed time), so that a
//     format whose own lines start with an ISO time keeps it;
//   - cri: the Kubernetes CRI log file of containerd and CRI-O,
//     "<RFC 3339 nano> <stdout|stderr> <F|P> <line>", where P marks a piece
//     of a line split by the runtime, joined up to the piece marked F;
//   - compose: docker compose logs, "<service> | <line>" with the service
//     padded and possibly coloured, "-t" adding an RFC 3339 time after the
//     bar, and log viewers exporting a local time before the service;
//   - syslog: RFC 3164 ("<PRI>Mmm dd hh:mm:ss host tag: msg", the <PRI>
//     optional, as in /var/log files), RFC 5424 ("<PRI>1 TIMESTAMP HOST APP
//     PROCID MSGID SD MSG") and rsyslog's RFC 3339 file format
//     ("TIMESTAMP host tag: msg");
//   - eventbridge: the envelope Amazon EventBridge puts around partner
//     events (Auth0 and Okta log streams), {"version":"0","id":…,
//     "detail-type":…,"source":…,"time":…,"detail":{<record>}}, as a
//     rule that targets CloudWatch Logs or S3 writes it;
//   - journald: journalctl's text outputs, short (as RFC 3164),
//     short-precise (with microseconds), short-iso, short-iso-precise,
//     short-full ("Thu 2024-03-14 09:00:01 CET host tag: msg") and
//     short-unix ("1710403201.123456 host tag: msg"), and its json output,
//     one object per line with MESSAGE and __REALTIME_TIMESTAMP.
//
// A source's `wrapper` setting is "auto" (the default: each line is looked
// at, cheaply, for every wrapper, and up to maxWrapDepth are taken off, a
// syslog line inside docker's json-file for example), one wrapper, which
// every line must then carry outermost (layers inside it are still found),
// or "none".
//
// Times: the outermost wrapper that carries a time gives the line's
// wrapper time. A parser uses it when the line itself has no time, and to
// date a time-only prefix (see timeOfDay.date). A time written without a
// zone is read in the source's timezone (UTC by default); a journald
// short-full zone abbreviation other than UTC or GMT is too, since
// abbreviations are ambiguous.

// Wrapper names, as written in a source's wrapper setting.
const (
	WrapAuto        = "auto"
	WrapNone        = "none"
	WrapDocker      = "docker"
	WrapCRI         = "cri"
	WrapCompose     = "compose"
	WrapSyslog      = "syslog"
	WrapJournald    = "journald"
	WrapEventBridge = "eventbridge"
)

// Wrappers lists the values of a source's wrapper setting.
func Wrappers() []string {
	return []string{WrapAuto, WrapNone, WrapDocker, WrapCRI, WrapCompose, WrapSyslog, WrapJournald, WrapEventBridge}
}

// ReasonBadWrapper marks a line without the wrapper its source's wrapper
// setting names.
const ReasonBadWrapper = "bad_wrapper"

// maxWrapDepth bounds the wrappers taken off one line.
const maxWrapDepth = 4

// dockerSplit is the size at which Docker's json-file driver splits a
// line into entries; a shorter entry without a newline is a line that
// ended without one, not a piece.
const dockerSplit = 16 << 10

// maxPartial bounds a line joined from CRI or Docker pieces; what is beyond it is
// dropped and the line reported too_long.
const maxPartial = 1 << 20

// wrapTime is what the wrappers around a line said of its time.
type wrapTime struct {
	t   time.Time
	ok  bool // t is set
	bad bool // a wrapper had a time that did not parse, and none did
}

// merge keeps the outermost good time: o is the time of a wrapper inside
// the ones already seen.
func (w *wrapTime) merge(o wrapTime) {
	if w.ok {
		return
	}
	if o.ok {
		*w = o
	} else if o.bad {
		w.bad = true
	}
}

// wrappedParser is a parser for lines inside wrappers: a format's parser
// that can use the time the wrappers gave. Parsers without it get the
// inner line through Parse.
type wrappedParser interface {
	parseWrapped(line []byte, pos Position, wt wrapTime, dst []Event) ([]Event, error)
}

// unwrapping is the Parser every source gets: the wrapper layer in front of
// its format's parser. It keeps the pieces of a CRI line being joined, so
// like every parser it is for one goroutine.
type unwrapping struct {
	name    string
	mode    string
	inner   Parser
	wrapped wrappedParser // inner, when it takes the wrapper time
	loc     *time.Location
	now     func() time.Time // for the year of RFC 3164 times
	scan    jsonScanner      // docker and journald json objects
	slot    wrapSlots
	buf     []byte // unescaped inner lines of the current line
	// partial holds the CRI pieces (P) of a line not yet ended, read from
	// file partialFile; partialTime is the time of the first piece.
	partial     []byte
	partialFile store.FileID
	partialTime wrapTime
	partialLong bool
	ship        *shipper // made for the first line that may be a shipper's event
	shipMisses  int      // lines in a row that shipped found no envelope in
	shipPause   int      // lines shipped passes over before it looks again
	ansi        []byte   // a coloured line without its colours
}

// wrapSlots are the capture slots of the wrapper objects' keys.
type wrapSlots struct {
	log, stream, time, message, realtime int
	detailType, detail                   int
}

// newUnwrapping puts the wrapper layer of src in front of inner.
func newUnwrapping(src rules.Source, inner Parser) (Parser, error) {
	mode := src.Wrapper
	if mode == "" {
		mode = WrapAuto
	}
	known := false
	for _, w := range Wrappers() {
		known = known || w == mode
	}
	if !known {
		return nil, fmt.Errorf("source %s: unknown wrapper %q (want one of %v)", src.Name, mode, Wrappers())
	}
	loc, err := loadZone(src)
	if err != nil {
		return nil, err
	}
	p := newJSONPaths()
	s := wrapSlots{
		log:      p.add("log"),
		stream:   p.add("stream"),
		time:     p.add("time"),
		message:  p.add("MESSAGE"),
		realtime: p.add("__REALTIME_TIMESTAMP"),
		// time is the envelope's too.
		detailType: p.add("detail-type"),
		detail:     p.add("detail"),
	}
	u := &unwrapping{name: src.Name, mode: mode, inner: inner, loc: loc, now: time.Now, scan: newJSONScanner(p), slot: s}
	u.wrapped, _ = inner.(wrappedParser)
	return u, nil
}

var utf8BOM = []byte("\xef\xbb\xbf")

// trimBOM removes the byte order marks at the start of s, and the blanks
// after each: a line may carry more than one (a file that was re-encoded
// or concatenated, a wrapper's message that repeats the BOM of the
// record it holds), and no format's parser reads one.
func trimBOM(s []byte) []byte {
	for bytes.HasPrefix(s, utf8BOM) {
		s = trimLeftSpace(s[len(utf8BOM):])
	}
	return s
}

// Parse implements Parser.
func (u *unwrapping) Parse(line []byte, pos Position, dst []Event) ([]Event, error) {
	u.buf = u.buf[:0]
	s := trimBOM(line)
	if len(trimSpace(s)) == 0 {
		return dst, SkipBlank
	}
	for len(s) > 0 && (s[len(s)-1] == '\n' || s[len(s)-1] == '\r') {
		s = s[:len(s)-1] // but a CRI piece keeps its trailing spaces
	}
	var wt wrapTime
	if u.mode == WrapAuto && !mayWrap(s) {
		// Most lines of most deployments: nothing to take off.
		if len(u.partial) > 0 && pos.File == u.partialFile {
			u.partial = u.partial[:0] // CRI pieces whose end never came
		}
		if u.wrapped != nil {
			return u.wrapped.parseWrapped(s, pos, wt, dst)
		}
		return u.inner.Parse(s, pos, dst)
	}
	if u.mode != WrapNone {
		first, pieced := u.mode, false
		// CRI first: its pieces are joined raw, before any other wrapper
		// inside them can be seen.
		var r []byte
		var t wrapTime
		var piece byte
		if first == WrapAuto || first == WrapCRI {
			var ok bool
			if r, t, piece, ok = u.cri(s); ok {
				pieced = true
			} else if first == WrapCRI {
				return dst, lineError(pos, u.name, "", ReasonBadWrapper,
					"line has no cri wrapper (the source's wrapper setting); set wrapper: auto to detect it")
			}
		}
		// Docker's json-file splits a line of over 16 KiB into entries whose
		// log lacks the newline; the entry with it ends the line.
		if !pieced && (first == WrapAuto || first == WrapDocker) && string(firstJSONKey(s)) == "log" {
			var ok bool
			if r, t, ok = u.jsonWrapper(s, WrapDocker); ok {
				pieced, piece = true, 'F'
				if len(r) >= dockerSplit && r[len(r)-1] != '\n' {
					piece = 'P'
				}
			}
		}
		if pieced {
			first = WrapAuto
			if piece == 'P' || (len(u.partial) > 0 && pos.File == u.partialFile) {
				var skip bool
				var err error
				if s, wt, skip, err = u.join(r, t, piece, pos); err != nil {
					return dst, err
				} else if skip {
					return dst, SkipPartial
				}
			} else {
				s, wt = r, t // a whole line: nothing to join
			}
		}
		if !pieced && len(u.partial) > 0 && pos.File == u.partialFile {
			u.partial = u.partial[:0] // pieces whose end never came
		}
		var err error
		if s, wt, err = u.unwrap(trimSpace(s), first, wt, pos); err != nil {
			return dst, err
		}
		s = trimSpace(trimBOM(s))
		if len(s) == 0 {
			return dst, SkipBlank
		}
	}
	s = u.uncolour(s)
	evs, err := u.parseInner(s, pos, wt, dst)
	if err != nil && len(evs) == len(dst) && u.mode == WrapAuto && len(s) > 0 && s[0] == '{' {
		return u.shipped(s, pos, wt, dst, evs, err)
	}
	return evs, err
}

// After shipMissesBeforePause JSON lines in a row that read as nothing
// and are no shipper's event, the next shipPauseLines such lines are not
// looked at: a source's lines all have an envelope or none do.
const (
	shipMissesBeforePause = 16
	shipPauseLines        = 4096
)

// parseInner hands the unwrapped line to the format's parser.
func (u *unwrapping) parseInner(s []byte, pos Position, wt wrapTime, dst []Event) ([]Event, error) {
	if u.wrapped != nil {
		return u.wrapped.parseWrapped(s, pos, wt, dst)
	}
	return u.inner.Parse(s, pos, dst)
}

// shipped reads s, a JSON line the format's parser read as nothing (evs,
// err), as a log shipper's event (shipper.go): the outcome is the line it
// carries when that holds events, else evs and err.
func (u *unwrapping) shipped(s []byte, pos Position, wt wrapTime, dst, evs []Event, err error) ([]Event, error) {
	if u.shipPause > 0 {
		u.shipPause--
		return evs, err
	}
	if u.ship == nil {
		u.ship = newShipper()
	}
	line, t, ok := u.ship.open(s, u.loc)
	if !ok {
		// A log of an application's own JSON records (Keycloak's other
		// loggers, which have a "message") would pay a second scan of
		// each: after a run of lines that are no envelope, none is
		// looked for during a pause.
		if u.shipMisses++; u.shipMisses >= shipMissesBeforePause {
			u.shipMisses, u.shipPause = 0, shipPauseLines
		}
		return evs, err
	}
	u.shipMisses = 0
	wt.merge(t)
	line, wt, uerr := u.unwrap(trimSpace(trimBOM(line)), WrapAuto, wt, pos)
	if uerr != nil {
		return evs, err
	}
	if line = u.uncolour(trimSpace(trimBOM(line))); len(line) == 0 {
		return evs, err
	}
	if inner, ierr := u.parseInner(line, pos, wt, dst); len(inner) > len(dst) {
		return inner, ierr
	}
	return evs, err
}

// mayWrap tells, from its first bytes, whether s can start with a wrapper
// at all: a JSON object (docker, journald, EventBridge), a syslog
// priority, a leading time (CRI, compose, rsyslog, journald), a month,
// weekday or service name (syslog, journald, compose) or a colour code.
// It is the cheap test that spares the lines of most deployments (an
// address, a bracketed time) every wrapper's own.
func mayWrap(s []byte) bool {
	s = trimLeftSpace(s)
	if len(s) == 0 {
		return false
	}
	switch c := s[0]; {
	case c == '{', c == '<', c == 0x1b:
		return true
	case c >= '0' && c <= '9':
		if len(s) < 20 {
			return false
		}
		switch s[10] {
		case 'T':
			return true
		case ' ': // only compose behind a viewer's time: its bar comes early
			return bytes.IndexByte(s[:min(len(s), composeBarWithin)], '|') >= 0
		case '.':
			_, epoch := atoiN(s, 10)
			return epoch
		}
		return false
	case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z':
		return true
	}
	return false
}

// join adds a CRI piece to the line being joined. It returns the whole line
// at the piece that ends it (F), and skip for the pieces before.
func (u *unwrapping) join(s []byte, wt wrapTime, piece byte, pos Position) (line []byte, t wrapTime, skip bool, err error) {
	if len(u.partial) > 0 && pos.File != u.partialFile {
		u.partial = u.partial[:0] // a piece of another file: that line never ended
	}
	if len(u.partial) == 0 {
		u.partialFile, u.partialTime, u.partialLong = pos.File, wt, false
	}
	if len(u.partial)+len(s) > maxPartial {
		s = s[:max(0, maxPartial-len(u.partial))]
		u.partialLong = true
	}
	u.partial = append(u.partial, s...)
	if piece == 'P' {
		return nil, wt, true, nil
	}
	line, t = u.partial, u.partialTime
	long := u.partialLong
	u.partial = u.partial[:0]
	if long {
		return nil, t, false, lineError(pos, u.name, "", ReasonTooLong, fmt.Sprintf("line joined from CRI pieces is longer than %d bytes", maxPartial))
	}
	// The joined line lives in u.partial, which the next piece reuses only
	// after this line is parsed.
	return line, t, false, nil
}

// unwrap takes the wrappers off s: the outermost must be first's, unless
// first is auto; wt holds what was already taken off.
func (u *unwrapping) unwrap(s []byte, first string, wt wrapTime, pos Position) ([]byte, wrapTime, error) {
	for depth := range maxWrapDepth {
		if len(s) == 0 {
			break
		}
		mode := WrapAuto
		if depth == 0 {
			mode = first
		}
		r, t, ok := u.unwrapOne(s, mode)
		if !ok {
			if depth == 0 && mode != WrapAuto {
				return nil, wt, lineError(pos, u.name, "", ReasonBadWrapper,
					fmt.Sprintf("line has no %s wrapper (the source's wrapper setting); set wrapper: auto to detect it", mode))
			}
			break
		}
		wt.merge(t)
		s = trimSpace(r)
	}
	return s, wt, nil
}

// unwrapOne takes one wrapper off s: the one mode names, or any for auto.
// ok is false when s has none. CRI found inside another wrapper is taken
// off whole: pieces are joined only at the outside, where the runtime
// writes them.
func (u *unwrapping) unwrapOne(s []byte, mode string) (rest []byte, wt wrapTime, ok bool) {
	try := func(w string) bool { return mode == WrapAuto || mode == w }
	c := s[0]
	switch {
	case c == '{':
		if try(WrapDocker) || try(WrapJournald) || try(WrapEventBridge) {
			if r, t, ok := u.jsonWrapper(s, mode); ok {
				return r, t, true
			}
		}
		return nil, wt, false
	case c == '<':
		if try(WrapSyslog) || try(WrapJournald) {
			return u.syslogPRI(s)
		}
		return nil, wt, false
	case c >= '0' && c <= '9':
		// What follows a wrapper's leading time tells them apart: 'T' an
		// RFC 3339 time, ' ' a date and a time, '.' an epoch's fraction.
		if len(s) < 20 {
			return nil, wt, false
		}
		switch s[10] {
		case 'T':
			if try(WrapCRI) {
				if r, t, _, ok := u.cri(s); ok {
					return r, t, true
				}
			}
			if try(WrapSyslog) || try(WrapJournald) {
				if r, t, ok := u.isoSyslog(s); ok {
					return r, t, true
				}
			}
			if try(WrapCompose) {
				if r, t, ok := u.composeAfterTime(s); ok {
					return r, t, true
				}
			}
			if try(WrapDocker) {
				return u.dockerLogsT(s)
			}
		case ' ':
			if try(WrapCompose) {
				return u.composeAfterTime(s)
			}
		case '.':
			if _, digits := atoiN(s, 10); digits && try(WrapJournald) { // an epoch, not an address
				return u.unixSyslog(s)
			}
		}
		return nil, wt, false
	}
	if try(WrapSyslog) || try(WrapJournald) {
		if _, isMonth := monthAbbr(s); isMonth {
			if r, t, ok := u.rfc3164(s, false); ok {
				return r, t, true
			}
		}
		if r, t, ok := u.shortFull(s); ok {
			return r, t, true
		}
	}
	if try(WrapCompose) {
		return u.compose(s)
	}
	return nil, wt, false
}

// jsonWrapper reads docker's json-file object or journalctl's json output.
func (u *unwrapping) jsonWrapper(s []byte, mode string) (rest []byte, wt wrapTime, ok bool) {
	key := firstJSONKey(s)
	docker := string(key) == "log" && (mode == WrapAuto || mode == WrapDocker)
	journal := (string(key) == "__CURSOR" || string(key) == "__REALTIME_TIMESTAMP" || string(key) == "MESSAGE") &&
		(mode == WrapAuto || mode == WrapJournald)
	bridge := isEnvelopeKey(key) && (mode == WrapAuto || mode == WrapEventBridge) &&
		bytes.Contains(s, []byte(`"detail-type"`))
	if !docker && !journal && !bridge {
		return nil, wt, false
	}
	if k, err := u.scan.scan(s); err != nil || k != jsonObject {
		return nil, wt, false
	}
	v, sl := u.scan.vals, &u.slot
	if bridge {
		if v[sl.detailType].kind != jsonString || v[sl.detail].kind != jsonObject {
			return nil, wt, false
		}
		if tv := v[sl.time]; tv.kind == jsonString {
			wt.t, wt.ok = parseISOTime(u.str(tv), u.loc)
			wt.bad = !wt.ok
		}
		return v[sl.detail].raw, wt, true
	}
	if docker {
		if v[sl.log].kind != jsonString || (!v[sl.stream].present() && v[sl.time].kind != jsonString) {
			return nil, wt, false
		}
		rest = u.str(v[sl.log])
		if tv := v[sl.time]; tv.kind == jsonString {
			wt.t, wt.ok = parseISOTime(u.str(tv), u.loc)
			wt.bad = !wt.ok
		}
		return rest, wt, true
	}
	switch m := v[sl.message]; m.kind {
	case jsonString:
		rest = u.str(m)
	case jsonArray:
		// journalctl writes a message holding control characters (colour
		// codes) or invalid UTF-8 as an array of its bytes.
		if rest, ok = u.byteArray(m.raw); !ok {
			return nil, wt, false
		}
	default:
		return nil, wt, false
	}
	if rt := v[sl.realtime]; rt.present() {
		raw := rt.raw
		if rt.kind == jsonString {
			raw = u.str(rt)
		}
		wt.t, wt.ok = parseEpoch(raw, int64(time.Microsecond))
		wt.bad = !wt.ok
	}
	return rest, wt, true
}

// byteArray decodes a JSON array of numbers from 0 to 255 into u.buf.
func (u *unwrapping) byteArray(raw []byte) (b []byte, ok bool) {
	start, ok := len(u.buf), true
	arrayElems(raw, func(v jsonValue) bool {
		n, digits := atoiN(v.raw, len(v.raw))
		if v.kind != jsonNumber || len(v.raw) == 0 || len(v.raw) > 3 || !digits || n > 255 {
			ok = false
			return false
		}
		u.buf = append(u.buf, byte(n))
		return true
	})
	return u.buf[start:], ok
}

// isEnvelopeKey reports whether key can open an EventBridge envelope:
// "version" as EventBridge writes it, or a key of its own that a tool
// re-serialising the event may put first. Keys that other records start
// with too (time, id, source) are left out, so that those records are not
// scanned twice.
func isEnvelopeKey(key []byte) bool {
	switch string(key) {
	case "version", "detail-type", "detail", "account", "region", "resources":
		return true
	}
	return false
}

// firstJSONKey returns the first key of the object s starts, unescaped
// only when it has no escapes (a key with escapes is no wrapper's).
func firstJSONKey(s []byte) []byte {
	i := 1
	for i < len(s) && (s[i] == ' ' || s[i] == '\t') {
		i++
	}
	if i >= len(s) || s[i] != '"' {
		return nil
	}
	j := bytes.IndexByte(s[i+1:], '"')
	if j < 0 {
		return nil
	}
	return s[i+1 : i+1+j]
}

// str returns the text of a captured JSON string, unescaped into u.buf
// when it has escapes (idpText's rules: the callers check the kind).
func (u *unwrapping) str(v jsonValue) []byte {
	b, _ := idpText(&u.buf, v)
	return b
}

// cri reads "<RFC 3339 nano> <stdout|stderr> <F|P> <line>".
func (u *unwrapping) cri(s []byte) (rest []byte, wt wrapTime, piece byte, ok bool) {
	if len(s) < 20 || s[4] != '-' || s[10] != 'T' {
		return nil, wt, 0, false
	}
	sp := bytes.IndexByte(s, ' ')
	if sp < 0 {
		return nil, wt, 0, false
	}
	r := s[sp+1:]
	if !bytes.HasPrefix(r, []byte("stdout ")) && !bytes.HasPrefix(r, []byte("stderr ")) {
		return nil, wt, 0, false
	}
	r = r[7:]
	if len(r) < 1 || (r[0] != 'F' && r[0] != 'P') || (len(r) > 1 && r[1] != ' ') {
		return nil, wt, 0, false
	}
	piece = r[0]
	if len(r) > 1 {
		r = r[2:]
	} else {
		r = nil
	}
	wt.t, wt.ok = parseISOTime(s[:sp], u.loc)
	wt.bad = !wt.ok
	return r, wt, piece, true
}

// dockerLogsT reads "<RFC 3339 time with a zone> <line>", as docker logs
// -t and kubectl logs --timestamps print, when the line behind starts as
// a log line does: with a digit (its own time), '{', '<', or '[' and a
// digit (a bracketed time, as Envoy's).
func (u *unwrapping) dockerLogsT(s []byte) (rest []byte, wt wrapTime, ok bool) {
	if len(s) < 21 || s[4] != '-' || s[10] != 'T' {
		return nil, wt, false
	}
	sp := bytes.IndexByte(s, ' ')
	if sp < 20 || sp+1 >= len(s) {
		return nil, wt, false
	}
	ts, r := s[:sp], s[sp+1:]
	if c := ts[len(ts)-1]; c != 'Z' && c != 'z' && bytes.LastIndexAny(ts[19:], "+-") < 0 {
		return nil, wt, false // no zone: a program's own local time, not the runtime's
	}
	switch c := r[0]; {
	case c >= '0' && c <= '9', c == '{', c == '<':
	case c == '[' && len(r) > 1 && r[1] >= '0' && r[1] <= '9':
	default:
		return nil, wt, false
	}
	t, good := parseISOTime(ts, u.loc)
	if !good {
		return nil, wt, false
	}
	return r, wrapTime{t: t, ok: true}, true
}

// syslogPRI reads a line that starts with a syslog priority: RFC 5424, or
// RFC 3164 as sent over the wire.
func (u *unwrapping) syslogPRI(s []byte) (rest []byte, wt wrapTime, ok bool) {
	i := 1
	for i < len(s) && i < 5 && s[i] >= '0' && s[i] <= '9' {
		i++
	}
	if i == 1 || i >= len(s) || s[i] != '>' {
		return nil, wt, false
	}
	i++
	if i+1 < len(s) && s[i] == '1' && s[i+1] == ' ' {
		return u.rfc5424(s[i+2:])
	}
	return u.rfc3164(s[i:], true)
}

func (u *unwrapping) rfc5424(s []byte) (rest []byte, wt wrapTime, ok bool) {
	ts, r := nextField(s)
	_, r = nextField(r) // host
	_, r = nextField(r) // app
	_, r = nextField(r) // procid
	_, r = nextField(r) // msgid
	// structured data: "-" or one or more [id k="v" ...] elements
	switch {
	case len(r) > 0 && r[0] == '-':
		r = r[1:]
	case len(r) > 0 && r[0] == '[':
		i := 0
		for i < len(r) && r[i] == '[' {
			inQuote := false
			for i++; i < len(r); i++ {
				c := r[i]
				if c == '\\' && inQuote {
					i++
					continue
				}
				if c == '"' {
					inQuote = !inQuote
				} else if c == ']' && !inQuote {
					i++
					break
				}
			}
		}
		r = r[min(i, len(r)):] // an escape may end the line
	default:
		return nil, wt, false
	}
	r = trimBOM(trimLeftSpace(r))
	if len(ts) == 1 && ts[0] == '-' {
		return r, wt, true
	}
	wt.t, wt.ok = parseISOTime(ts, u.loc)
	wt.bad = !wt.ok
	return r, wt, true
}

// rfc3164 reads "Mmm dd hh:mm:ss[.ffffff] host tag: msg"; the fraction is
// journald's short-precise. pri says a <PRI> came before, as in what a
// sender writes, where the host may be left out.
func (u *unwrapping) rfc3164(s []byte, pri bool) (rest []byte, wt wrapTime, ok bool) {
	if len(s) < 16 || s[3] != ' ' || s[6] != ' ' || s[9] != ':' || s[12] != ':' {
		return nil, wt, false
	}
	end, ns := 15, 0
	if s[15] == '.' {
		f, n := parseFraction(s[16:])
		if n == 0 {
			return nil, wt, false
		}
		ns, end = f, 16+n
	}
	if end >= len(s) || s[end] != ' ' {
		return nil, wt, false
	}
	r, ok := hostTag(s[end+1:])
	if !ok {
		// nginx's syslog with nohostname: "<190>Mar 14 09:15:27 nginx:
		// msg", as sent, not as a syslog daemon writes it down (with its
		// host): without the priority, "host: msg" is no header.
		if !pri {
			return nil, wt, false
		}
		if r, ok = tagOnly(s[end+1:]); !ok {
			return nil, wt, false
		}
	}
	wt.t, wt.ok = parseSyslogTime(s[:15], u.loc, u.now())
	wt.bad = !wt.ok
	if wt.ok {
		wt.t = wt.t.Add(time.Duration(ns))
	}
	return r, wt, true
}

// isoSyslog reads rsyslog's RFC 3339 file format and journald's short-iso
// outputs: "TIMESTAMP host tag: msg".
func (u *unwrapping) isoSyslog(s []byte) (rest []byte, wt wrapTime, ok bool) {
	if len(s) < 20 || s[4] != '-' || s[10] != 'T' {
		return nil, wt, false
	}
	ts, r := nextField(s)
	r, ok = hostTag(r)
	if !ok {
		return nil, wt, false
	}
	wt.t, wt.ok = parseISOTime(ts, u.loc)
	wt.bad = !wt.ok
	return r, wt, true
}

// unixSyslog reads journald's short-unix: "1710403201.123456 host tag: msg".
func (u *unwrapping) unixSyslog(s []byte) (rest []byte, wt wrapTime, ok bool) {
	ts, r := nextField(s)
	if len(ts) < 10 || bytes.IndexByte(ts, '.') < 0 {
		return nil, wt, false
	}
	t, good := parseEpoch(ts, int64(time.Second))
	if !good {
		return nil, wt, false
	}
	r, ok = hostTag(r)
	if !ok {
		return nil, wt, false
	}
	return r, wrapTime{t: t, ok: true}, true
}

// shortFull reads journald's short-full: "Thu 2024-03-14 09:00:01 CET host
// tag: msg".
func (u *unwrapping) shortFull(s []byte) (rest []byte, wt wrapTime, ok bool) {
	if len(s) < 28 || s[3] != ' ' || s[8] != '-' || s[14] != ' ' || !isWeekday(s[:3]) {
		return nil, wt, false
	}
	date, r := nextField(s[4:])
	clock, r := nextField(r)
	zone, r := nextField(r)
	r, ok = hostTag(r)
	if !ok || len(date) != 10 || len(clock) < 8 {
		return nil, wt, false
	}
	var ts [48]byte
	b := append(append(append(ts[:0], date...), ' '), clock...)
	loc := u.loc
	if string(zone) == "UTC" || string(zone) == "GMT" {
		loc = time.UTC
	} else if _, n, zok := parseZone(zone); zok && n == len(zone) {
		b = append(b, zone...)
	}
	wt.t, wt.ok = parseISOTime(b, loc)
	wt.bad = !wt.ok
	return r, wt, true
}

func isWeekday(b []byte) bool {
	switch string(b) {
	case "Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun":
		return true
	}
	return false
}

// hostTag takes "host tag: " off s; the tag (an app name, with a [pid] or
// not) must end in a colon.
func hostTag(s []byte) (rest []byte, ok bool) {
	host, r := nextField(s)
	if len(host) == 0 {
		return nil, false
	}
	if len(r) > 0 && r[0] == ':' { // "host: msg", a tag-less line
		return nil, false
	}
	tag, r := nextField(r)
	if len(tag) < 2 || tag[len(tag)-1] != ':' || !isTagStart(tag[0]) {
		return nil, false
	}
	return r, true
}

// tagOnly reads "tag: msg" or "tag[pid]: msg", a header without its
// host (nginx's syslog nohostname parameter).
func tagOnly(s []byte) (rest []byte, ok bool) {
	tag, r := nextField(s)
	if len(tag) < 2 || tag[len(tag)-1] != ':' || !isTagStart(tag[0]) || len(r) == 0 {
		return nil, false
	}
	for _, c := range tag[:len(tag)-1] {
		if !isTagStart(c) && c != '[' && c != ']' {
			return nil, false
		}
	}
	return r, true
}

func isTagStart(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-' || c == '.' || c == '/'
}

// compose reads docker compose's "<service> | [<RFC 3339 time> ]<line>",
// the service name padded and possibly coloured.
func (u *unwrapping) compose(s []byte) (rest []byte, wt wrapTime, ok bool) {
	r, ok := stripCompose(s)
	if !ok {
		return nil, wt, false
	}
	// docker compose logs -t: the time the runtime received the line.
	if len(r) > 20 && r[4] == '-' && r[10] == 'T' {
		ts, after := nextField(r)
		if t, good := parseISOTime(ts, u.loc); good {
			return after, wrapTime{t: t, ok: true}, true
		}
	}
	return r, wt, true
}

// composeAfterTime reads a compose line behind a time, as log viewers
// export it: "2024-03-14 10:00:01.234  keycloak-1  | <line>", the time
// written in the viewer's zone (read in the source's timezone) or with its
// own zone.
func (u *unwrapping) composeAfterTime(s []byte) (rest []byte, wt wrapTime, ok bool) {
	if len(s) < 20 || s[4] != '-' || s[7] != '-' {
		return nil, wt, false
	}
	// The bar follows the time (at most 35 bytes) and a service name (a
	// DNS label of at most 63, a replica suffix, padding): a line without
	// one that early is no compose line, and is not parsed further.
	if bytes.IndexByte(s[:min(len(s), composeBarWithin)], '|') < 0 {
		return nil, wt, false
	}
	var ts []byte
	switch s[10] {
	case 'T':
		ts, rest = nextField(s)
	case ' ':
		date, r := nextField(s)
		clock, r2 := nextField(r)
		ts, rest = s[:len(date)+1+len(clock)], r2
	default:
		return nil, wt, false
	}
	r, t, ok := u.compose(rest)
	if !ok {
		return nil, wt, false
	}
	wt.t, wt.ok = parseISOTime(ts, u.loc)
	wt.bad = !wt.ok
	wt.merge(t)
	return r, wt, true
}

// composeBarWithin bounds where a compose prefix behind a time has its bar.
const composeBarWithin = 160

// stripCompose removes a docker compose prefix "name  | ", with or without
// ANSI colours around the name and bar.
func stripCompose(s []byte) ([]byte, bool) {
	s = skipANSI(s)
	i := 0
	for i < len(s) && isNameChar(s[i]) {
		i++
	}
	j := i
	for j < len(s) && s[j] == ' ' {
		j++
	}
	if i == 0 || j == i {
		return nil, false
	}
	r := skipANSI(s[j:])
	if len(r) == 0 || r[0] != '|' {
		return nil, false
	}
	r = skipANSI(r[1:])
	if len(r) > 0 && r[0] == ' ' {
		r = r[1:]
	}
	return skipANSI(r), true
}

// uncolour returns a line of a coloured console (Keycloak's
// --log-console-color, Spring's ANSI output), one that starts with an
// escape, without its escape sequences, wherever they are in it; any
// other line as it is.
func (u *unwrapping) uncolour(s []byte) []byte {
	if len(s) == 0 || s[0] != 0x1b {
		return s
	}
	return u.stripSGR(s)
}

// stripSGR returns s without its ANSI escape sequences, in u.ansi: CSI
// ones (ESC '[' parameters final byte: colours, mostly), a character set
// designation (ESC '(' or ')' and a byte, as tput sgr0 writes), and any
// other ESC with the byte after it.
func (u *unwrapping) stripSGR(s []byte) []byte {
	u.ansi = u.ansi[:0]
	for {
		i := bytes.IndexByte(s, 0x1b)
		if i < 0 {
			break
		}
		u.ansi = append(u.ansi, s[:i]...)
		r := s[i:]
		switch {
		case len(r) < 2:
			r = nil
		case r[1] == '[':
			if r = skipANSI(r); len(r) >= 2 && r[0] == 0x1b && r[1] == '[' {
				r = nil // a sequence without its final byte: the rest of the line
			}
		case r[1] == '(' || r[1] == ')':
			r = r[min(3, len(r)):]
		default:
			r = r[2:]
		}
		s = r
	}
	u.ansi = append(u.ansi, s...)
	return u.ansi
}

// skipANSI skips ANSI CSI colour sequences at the start of s.
func skipANSI(s []byte) []byte {
	for len(s) > 1 && s[0] == 0x1b && s[1] == '[' {
		i := 2
		for i < len(s) && (s[i] < 0x40 || s[i] > 0x7e) {
			i++
		}
		if i >= len(s) {
			return s
		}
		s = s[i+1:]
	}
	return s
}

func isNameChar(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.'
}

// timeOfDay is a wall-clock time without a date.
type timeOfDay struct{ h, m, s, ns int }

// parseTimeOfDay reads a time-only prefix, hh:mm:ss with an optional
// fraction after ',' or '.' (WildFly's default %d{HH:mm:ss,SSS}). The whole
// of b must be consumed.
func parseTimeOfDay(b []byte) (timeOfDay, bool) {
	if len(b) < 8 || b[2] != ':' || b[5] != ':' {
		return timeOfDay{}, false
	}
	h, ok1 := atoiN(b, 2)
	m, ok2 := atoiN(b[3:], 2)
	s, ok3 := atoiN(b[6:], 2)
	if !(ok1 && ok2 && ok3) || h > 23 || m > 59 || s > 59 {
		return timeOfDay{}, false
	}
	ns := 0
	if len(b) > 8 {
		if b[8] != ',' && b[8] != '.' {
			return timeOfDay{}, false
		}
		f, n := parseFraction(b[9:])
		if n == 0 || 9+n != len(b) {
			return timeOfDay{}, false
		}
		ns = f
	}
	return timeOfDay{h, m, s, ns}, true
}

// date dates a time of day written in loc by the wrapper time w: of the
// day before w's date (in loc), that date and the day after, the one that
// puts the time closest to w. A line is written just before its wrapper
// stamps it, so this is right across midnight in either direction as long
// as the two clocks are within twelve hours of each other.
func (c timeOfDay) date(w time.Time, loc *time.Location) time.Time {
	y, m, d := w.In(loc).Date()
	var best time.Time
	var bestDiff time.Duration
	for i, dd := range [3]int{0, -1, 1} {
		t := time.Date(y, m, d+dd, c.h, c.m, c.s, c.ns, loc)
		diff := t.Sub(w)
		if diff < 0 {
			diff = -diff
		}
		if i == 0 || diff < bestDiff {
			best, bestDiff = t, diff
		}
	}
	return best
}
