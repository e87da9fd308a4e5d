package ingest

import (
	"bytes"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/scopewatch/scopewatch/rules"
)

// This file explains lines that yield nothing: it counts their outcomes,
// keeps a few of them, and tries the other formats (and the wrapper layer)
// on those few to say what would read them. None of it runs per line on
// the hot path: a Tally is fed only while a source has yielded no event,
// and the other parsers run once, on the sample.

// Bounds of the sample a Tally keeps.
const (
	sampleLines   = 20       // lines kept
	sampleLineMax = 16 << 10 // longer lines are counted but not kept
)

// Tally counts what lines came to and keeps the first few that yielded no
// event. Its memory is bounded: at most sampleLines lines of at most
// sampleLineMax bytes. The zero value is ready to use.
type Tally struct {
	Lines    int64 // lines added
	Yielding int64 // lines that yielded at least one event
	Events   int64 // events they yielded
	// Ignored and Malformed count the lines without an event by reason
	// (a page of records with some malformed counts once, by the reason
	// of its first).
	Ignored   map[Skip]int64
	Malformed map[string]int64
	sample    [][]byte
}

// Add counts one line: the number of events it yielded and its outcome as
// Outcome sorted it.
func (t *Tally) Add(ln Line, events int, skip Skip, pe *ParseError) {
	t.Lines++
	if events > 0 {
		t.Yielding++
		t.Events += int64(events)
		return
	}
	switch {
	case pe != nil:
		if t.Malformed == nil {
			t.Malformed = make(map[string]int64)
		}
		reason := pe.Reason
		if reason == "" {
			reason = ReasonBadFormat
		}
		t.Malformed[reason]++
	default:
		if skip == "" {
			skip = SkipOtherEvent
		}
		if t.Ignored == nil {
			t.Ignored = make(map[Skip]int64)
		}
		t.Ignored[skip]++
	}
	if len(t.sample) < sampleLines && len(ln.Text) <= sampleLineMax && skip != SkipBlank {
		if _, _, long := TooLong(ln); !long {
			t.sample = append(t.sample, bytes.Clone(ln.Text))
		}
	}
}

// Sample returns the lines kept: the first lines without an event that
// are neither blank nor too long, at most sampleLines.
func (t *Tally) Sample() [][]byte { return t.sample }

// MalformedLines returns how many lines were malformed.
func (t *Tally) MalformedLines() int64 { return sum(t.Malformed) }

// IgnoredLines returns how many lines were ignored.
func (t *Tally) IgnoredLines() int64 { return sum(t.Ignored) }

func sum[K comparable](m map[K]int64) int64 {
	var n int64
	for _, v := range m {
		n += v
	}
	return n
}

// topReason returns the reason with the largest count (the first by name
// among equals) and its count.
func topReason[K ~string](m map[K]int64) (K, int64) {
	var top K
	var n int64
	for _, k := range slices.Sorted(maps.Keys(m)) {
		if m[k] > n {
			top, n = k, m[k]
		}
	}
	return top, n
}

// Counts renders counts by reason or kind as "a 3, b 1", sorted by key;
// "none" when there are none.
func Counts[K ~string, V int | int64](m map[K]V) string {
	keys := slices.Sorted(maps.Keys(m))
	if len(keys) == 0 {
		return "none"
	}
	parts := make([]string, 0, len(keys))
	for _, k := range keys {
		parts = append(parts, string(k)+" "+strconv.FormatInt(int64(m[k]), 10))
	}
	return strings.Join(parts, ", ")
}

// Diagnose names the likely cause of lines of src that yield no event,
// chosen from what was seen: mostly malformed lines are the wrong format
// (with the format or wrapper that reads them, when one does); ignored
// lines that another format or the wrapper layer reads say so; a log
// whose lines are mostly other loggers' or other events' gets its
// format's advice, when it has some (Keycloak's success events). It returns "" when lines did yield events or nothing was seen.
func (t *Tally) Diagnose(src rules.Source) string {
	if t.Yielding > 0 || t.Lines == 0 {
		return ""
	}
	mal, ign := t.MalformedLines(), t.IgnoredLines()
	hint := Suggest(src, t.sample)
	if mal > 0 && mal >= ign {
		top, _ := topReason(t.Malformed)
		msg := fmt.Sprintf("wrong format? %d of %d lines are malformed for format %s (%s)", mal, t.Lines, src.Format, Counts(t.Malformed))
		if top == ReasonBadJSON {
			if start, ok := notJSON(t.sample); ok {
				msg += fmt.Sprintf(": the lines are not JSON (one starts %q): is this a text log?", start)
			}
		}
		if hint == "" {
			return msg + "; no other format reads them"
		}
		return msg + "; " + hint
	}
	if hint != "" { // another format or wrapper reads them: that says more
		return hint
	}
	// Another logger's lines, events that grant nothing and failed logins
	// without a client: what a log shows whose successes are not written
	// (Keycloak's, at INFO).
	quiet := t.Ignored[SkipOtherLogger] + t.Ignored[SkipOtherEvent] + t.Ignored[SkipNoClient]
	if f, ok := lookupFormat(src.Format); ok && f.ignoredHint != "" && 2*quiet > ign {
		return f.ignoredHint
	}
	return fmt.Sprintf("every line is ignored (%s)", Counts(t.Ignored))
}

// notJSON reports whether most sampled lines do not start as JSON does,
// with the start of one of them.
func notJSON(sample [][]byte) (start string, ok bool) {
	n := 0
	for _, l := range sample {
		s := bytes.TrimLeft(trimBOM(l), " \t")
		if len(s) > 0 && s[0] != '{' && s[0] != '[' {
			n++
			if start == "" {
				start = clipText(s, 24)
			}
		}
	}
	return start, n > 0 && 2*n > len(sample)
}

// Explain returns what to add to the message of a line that pe made
// malformed when the message alone misleads: a JSON format's syntax error
// on a line that is no JSON at all. "" when there is nothing to add.
func Explain(pe *ParseError, line []byte) string {
	if pe == nil || pe.Reason != ReasonBadJSON {
		return ""
	}
	s := bytes.TrimLeft(trimBOM(line), " \t")
	if len(s) == 0 || s[0] == '{' || s[0] == '[' {
		return ""
	}
	return "the line is not JSON: is this a text log?"
}

func clipText(b []byte, n int) string {
	if len(b) > n {
		return string(b[:n]) + "…"
	}
	return string(b)
}

// Suggest tries other ways to read lines that src's parser does not turn
// into events, and says which works: the same format with the wrapper
// layer finding the wrapper itself (when src names one, or none), another
// format, or the format behind a prefix that no wrapper takes off. It
// returns "" when none yields an event from any of the lines.
//
// Formats are tried with their defaults and src's wrapper (then the
// wrapper layer's auto, if src names a wrapper), time zone and client
// field. A format that reads only what a fields mapping names (json) is
// not tried: without a mapping it reads nothing, and with a guessed one
// it would read any JSON.
func Suggest(src rules.Source, lines [][]byte) string {
	if len(lines) == 0 {
		return ""
	}
	if src.Wrapper != "" && src.Wrapper != WrapAuto {
		alt := src
		alt.Wrapper = WrapAuto
		if n := yielding(alt, lines); n > 0 {
			return fmt.Sprintf("unknown wrapper: %d of %d sampled lines parse as %s once the wrapper layer takes their %s off, "+
				"which wrapper: %s leaves on: set wrapper: auto", n, len(lines), src.Format, wrapperOf(lines), src.Wrapper)
		}
	}
	var best rules.Source
	bestN := 0
	for _, f := range suggestible(src) {
		alt := sourceAs(src, f)
		n := yielding(alt, lines)
		if n == 0 && alt.Wrapper != "" && alt.Wrapper != WrapAuto {
			alt.Wrapper = WrapAuto
			n = yielding(alt, lines)
		}
		if n > bestN {
			best, bestN = alt, n
		}
	}
	if bestN > 0 {
		set := "format: " + best.Format
		if best.Wrapper != src.Wrapper {
			set += " and wrapper: " + best.Wrapper
		}
		return fmt.Sprintf("these lines parse as %s (%d of %d sampled lines yield events): set %s", best.Format, bestN, len(lines), set)
	}
	// A prefix the wrapper layer does not know, in front of JSON.
	var inner [][]byte
	prefix := ""
	for _, l := range lines {
		if i := bytes.IndexByte(l, '{'); i > 0 {
			inner = append(inner, l[i:])
			if prefix == "" {
				prefix = clipText(l[:i], 40)
			}
		}
	}
	if len(inner) == 0 {
		return ""
	}
	try := []rules.Source{src}
	for _, f := range suggestible(src) {
		try = append(try, sourceAs(src, f))
	}
	for _, alt := range try {
		if n := yielding(alt, inner); n > 0 {
			return fmt.Sprintf("unknown wrapper: %d of %d sampled lines carry a prefix (%q) before what format %s reads, "+
				"which no wrapper takes off: write the lines without it, or strip it before scopewatch reads them", n, len(lines), prefix, alt.Format)
		}
	}
	return ""
}

// sourceAs returns a source of format f with src's name, wrapper, time
// zone and client field, and the format's defaults otherwise.
func sourceAs(src rules.Source, f string) rules.Source {
	alt := rules.Source{Name: src.Name, Format: f, Wrapper: src.Wrapper, TimeZone: src.TimeZone, Location: src.Location}
	alt.Fields.Client = src.Fields.Client
	return alt
}

// yielding returns how many of lines the parser of src turns into events;
// 0 when src has no parser.
func yielding(src rules.Source, lines [][]byte) int {
	p, err := NewParser(src)
	if err != nil {
		return 0
	}
	n := 0
	var evs []Event
	for i, l := range lines {
		evs, err = p.Parse(l, Position{Source: src.Name, Line: int64(i + 1)}, evs[:0])
		if err == nil && len(evs) > 0 {
			n++
		}
	}
	return n
}

// wrapperOf names the wrapper the lines look wrapped in, by their start.
func wrapperOf(lines [][]byte) string {
	for _, l := range lines {
		s := bytes.TrimLeft(l, " \t")
		switch {
		case bytes.HasPrefix(s, []byte(`{"log":`)):
			return "docker json-file wrapper"
		case bytes.HasPrefix(s, []byte(`{"__CURSOR"`)) || bytes.HasPrefix(s, []byte(`{"MESSAGE"`)):
			return "journald json wrapper"
		case bytes.HasPrefix(s, []byte("<")):
			return "syslog header"
		case len(s) > 30 && s[4] == '-' && s[10] == 'T' && (bytes.Contains(s[:40], []byte(" stdout ")) || bytes.Contains(s[:40], []byte(" stderr "))):
			return "CRI header"
		case bytes.Contains(s[:min(len(s), 60)], []byte(" | ")):
			return "compose prefix"
		}
	}
	return "wrapper"
}
