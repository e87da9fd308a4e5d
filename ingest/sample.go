package ingest

import (
	"bytes"
	"errors"
	"fmt"
	"io"

	"github.com/scopewatch/scopewatch/rules"
)

// SampleLine is one line of a sample shown to a person: a malformed one
// with its error, or an ignored one with its reason.
type SampleLine struct {
	Line   Line
	Reason string // the parse error (with what would explain it) or the skip reason
}

// SampleReport is what parsing a sample file with a source's format and
// wrapper showed: the tally of its lines and the first few of each kind.
type SampleReport struct {
	Path   string
	Source rules.Source
	Tally  Tally
	Events int
	ByKind map[string]int // events by kind
	// The first lines of each outcome, up to the number asked for.
	Malformed, Ignored []SampleLine
	Examples           []Event

	failing [][]byte // a few malformed lines, for what would read them
}

// Sample parses every line of the file at path as src reads it: ingest's
// line reader, src's max_line_bytes, gzip told by its magic bytes, and the
// parser p built for src. It keeps the first show lines of each outcome.
func Sample(src rules.Source, p Parser, path string, show int) (*SampleReport, error) {
	lr, closeFile, err := OpenLines(path, src.Name, src.MaxLineBytes)
	if err != nil {
		return nil, err
	}
	defer closeFile()
	r := &SampleReport{Path: path, Source: src, ByKind: map[string]int{}}
	var evs []Event
	for {
		ln, err := lr.Next()
		if err == io.EOF {
			return r, nil
		}
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", path, err)
		}
		evs, err = ParseLine(p, ln, evs[:0])
		skip, pe := Outcome(err)
		r.Tally.Add(ln, len(evs), skip, pe)
		switch {
		case pe != nil && len(evs) == 0:
			if len(r.Malformed) < show {
				msg := err.Error()
				if x := Explain(pe, ln.Text); x != "" {
					msg += " (" + x + ")"
				}
				r.Malformed = append(r.Malformed, SampleLine{Line: cloneLine(ln), Reason: msg})
			}
			if _, _, long := TooLong(ln); !long && len(r.failing) < 20 {
				r.failing = append(r.failing, bytes.Clone(ln.Text))
			}
			continue
		case len(evs) == 0:
			if skip == "" {
				skip = SkipOtherEvent
			}
			if len(r.Ignored) < show {
				r.Ignored = append(r.Ignored, SampleLine{Line: cloneLine(ln), Reason: string(skip)})
			}
			continue
		}
		for _, ev := range evs {
			r.Events++
			r.ByKind[ev.Kind.String()]++
			if len(r.Examples) < show {
				r.Examples = append(r.Examples, ev)
			}
		}
	}
}

// cloneLine keeps ln past the reader's next call, which reuses its buffer.
func cloneLine(ln Line) Line {
	ln.Text = bytes.Clone(ln.Text)
	return ln
}

// Err is the verdict on the sample: nil when every line parsed or was
// ignored for a reason and some yielded an event; otherwise why not, and
// what would read the lines when another format or wrapper does.
func (r *SampleReport) Err() error {
	t, src := &r.Tally, r.Source
	lines, malformed := t.Lines, t.MalformedLines()
	switch {
	case r.Events == 0 && lines > 0:
		return fmt.Errorf("no line of %s yields an event for source %s: %s", r.Path, src.Name, t.Diagnose(src))
	case malformed > 0:
		msg := fmt.Sprintf("%d of %d lines of %s are malformed for format %s of source %s", malformed, lines, r.Path, src.Format, src.Name)
		if n := t.Malformed[ReasonTooLong]; n > 0 {
			limit := src.MaxLineBytes
			if limit <= 0 {
				limit = DefaultMaxLineSize
			}
			msg += fmt.Sprintf("; %d are longer than max_line_bytes (%d): raise it if they hold events", n, limit)
		}
		if hint := Suggest(src, r.failing); hint != "" {
			msg += "; " + hint
		}
		return errors.New(msg)
	case r.Events == 0:
		return fmt.Errorf("%s holds no line", r.Path)
	}
	return nil
}
