package detect

import (
	"slices"
	"time"

	"github.com/scopewatch/scopewatch/ingest"
	"github.com/scopewatch/scopewatch/rules"
	"github.com/scopewatch/scopewatch/store"
)

// Coverage records, per source, the stretches of event time its log was
// observed for. Events closer together than the gap extend a stretch; a
// longer silence, or lines known to be lost, start a new one. Only what
// was read counts: a daemon that was down while the logs kept every line
// leaves no gap, one that missed rotated-away files does. It is used from
// the engine's goroutine only.
type Coverage struct {
	gap     time.Duration
	sources map[string]*SourceCoverage
}

// SourceCoverage is one source's coverage, for the engine's hot path: it
// spares a lookup per event.
type SourceCoverage struct {
	gap    time.Duration
	spans  []store.Span
	broken bool // lines were lost: the next event starts a new span
	dirty  bool
}

// NewCoverage returns coverage seeded with the stored spans.
func NewCoverage(stored map[string][]store.Span, gap time.Duration) *Coverage {
	c := &Coverage{gap: gap, sources: make(map[string]*SourceCoverage, len(stored))}
	for name, spans := range stored {
		c.sources[name] = &SourceCoverage{gap: gap, spans: slices.Clone(spans)}
	}
	return c
}

// Source returns the coverage of the source name.
func (c *Coverage) Source(name string) *SourceCoverage {
	sc := c.sources[name]
	if sc == nil {
		sc = &SourceCoverage{gap: c.gap}
		c.sources[name] = sc
	}
	return sc
}

// Observe records an event of source at t.
func (c *Coverage) Observe(source string, t time.Time) { c.Source(source).Observe(t) }

// Break records that lines of source were lost at this point of its log.
func (c *Coverage) Break(source string) { c.Source(source).broken = true }

// Observe records an event at t.
func (sc *SourceCoverage) Observe(t time.Time) {
	gap := sc.gap
	if t.IsZero() {
		return
	}
	n := len(sc.spans)
	if n > 0 {
		last := &sc.spans[n-1]
		switch {
		case !t.Before(last.Start) && !t.After(last.End):
			return // within: nothing changes
		case !sc.broken && !t.Before(last.Start) && t.Sub(last.End) <= gap:
			last.End = t
			sc.dirty = true
			return
		case t.Before(last.Start):
			sc.insert(t, gap) // an older file read late (a backfill)
			return
		}
	}
	sc.broken = false
	sc.spans = append(sc.spans, store.Span{Start: t, End: t})
	sc.bound()
	sc.dirty = true
}

// bound joins the two oldest spans while there are more than MaxSpans:
// old gaps are forgotten first.
func (sc *SourceCoverage) bound() {
	for len(sc.spans) > store.MaxSpans {
		sc.spans[1].Start = sc.spans[0].Start
		sc.spans = slices.Delete(sc.spans, 0, 1)
	}
}

// insert adds an event older than the newest span and merges spans that
// now touch.
func (sc *SourceCoverage) insert(t time.Time, gap time.Duration) {
	i, _ := slices.BinarySearchFunc(sc.spans, t, func(s store.Span, t time.Time) int { return s.Start.Compare(t) })
	sc.spans = slices.Insert(sc.spans, i, store.Span{Start: t, End: t})
	out := sc.spans[:1]
	for _, s := range sc.spans[1:] {
		last := &out[len(out)-1]
		if s.Start.Sub(last.End) <= gap {
			if s.End.After(last.End) {
				last.End = s.End
			}
			continue
		}
		out = append(out, s)
	}
	sc.spans = out
	sc.bound()
	sc.dirty = true
}

// Merge adds spans, another instance's coverage of source (a partition
// restored from its changelog), to source's: the union, spans as near as
// the gap joined.
func (c *Coverage) Merge(source string, spans []store.Span) {
	if len(spans) == 0 {
		return
	}
	sc := c.Source(source)
	all := append(slices.Clone(sc.spans), spans...)
	slices.SortFunc(all, func(a, b store.Span) int { return a.Start.Compare(b.Start) })
	out := all[:1]
	for _, s := range all[1:] {
		last := &out[len(out)-1]
		if s.Start.Sub(last.End) <= sc.gap {
			if s.End.After(last.End) {
				last.End = s.End
			}
			continue
		}
		out = append(out, s)
	}
	if !slices.Equal(out, sc.spans) {
		sc.spans = out
		sc.bound()
		sc.dirty = true
	}
}

// Newest returns the time of the newest event of source, zero when none
// was seen.
func (c *Coverage) Newest(source string) time.Time {
	sc := c.sources[source]
	if sc == nil || len(sc.spans) == 0 {
		return time.Time{}
	}
	return sc.spans[len(sc.spans)-1].End
}

// All returns the spans of every source; the caller must not modify them.
func (c *Coverage) All() map[string][]store.Span {
	out := make(map[string][]store.Span, len(c.sources))
	for name, sc := range c.sources {
		out[name] = sc.spans
	}
	return out
}

// Spans returns a copy of the spans of source.
func (c *Coverage) Spans(source string) []store.Span {
	if sc := c.sources[source]; sc != nil {
		return slices.Clone(sc.spans)
	}
	return nil
}

// Flush copies the spans changed since the last flush into b.
func (c *Coverage) Flush(b *store.Batch) {
	for name, sc := range c.sources {
		if sc.dirty {
			b.Coverage[name] = slices.Clone(sc.spans)
			sc.dirty = false
		}
	}
}

// Covered returns how much of [from, to] every one of sources was observed
// for: the intersection of their spans. A source whose newest event is at
// most gap before to counts as observed up to to (it is quiet, not gone).
// No sources, or a source never seen, cover nothing.
func Covered(spans map[string][]store.Span, sources []string, from, to time.Time, gap time.Duration) time.Duration {
	if len(sources) == 0 || !to.After(from) {
		return 0
	}
	common := []store.Span{{Start: from, End: to}}
	for _, name := range sources {
		ss := slices.Clone(spans[name])
		if n := len(ss); n > 0 && !ss[n-1].End.Before(to.Add(-gap)) && ss[n-1].End.Before(to) {
			ss[n-1].End = to
		}
		common = intersect(common, ss)
	}
	var total time.Duration
	for _, s := range common {
		total += s.End.Sub(s.Start)
	}
	return total
}

// intersect returns the stretches both sorted, disjoint lists cover.
func intersect(a, b []store.Span) []store.Span {
	var out []store.Span
	for i, j := 0, 0; i < len(a) && j < len(b); {
		start, end := a[i].Start, a[i].End
		if b[j].Start.After(start) {
			start = b[j].Start
		}
		if b[j].End.Before(end) {
			end = b[j].End
		}
		if end.After(start) {
			out = append(out, store.Span{Start: start, End: end})
		}
		if a[i].End.Before(b[j].End) {
			i++
		} else {
			j++
		}
	}
	return out
}

// CoverageFigures say how much of the unused-scope window was observed by
// the sources that could show a scope's use.
type CoverageFigures struct {
	Window   time.Duration
	Identity time.Duration // by the sources showing grants: identity scopes are used when issued
	Use      time.Duration // by the sources showing API calls: every other scope
	// StaleSources are sources whose newest event is older than the
	// staleness limit; the scopes that depend on them fall short of
	// coverage, and the report names them.
	StaleSources []string
}

// For returns the coverage that applies to scope s.
func (f *CoverageFigures) For(identity bool) time.Duration {
	if identity {
		return f.Identity
	}
	return f.Use
}

// CoverageOf computes the coverage figures of cfg's sources for the window
// ending at now, from their stored spans.
func CoverageOf(cfg *rules.Config, spans map[string][]store.Span, now time.Time) *CoverageFigures {
	window := time.Duration(cfg.Detect.UnusedScope.Window)
	gap := time.Duration(cfg.Detect.UnusedScope.CoverageGap)
	var grants, uses []string
	f := &CoverageFigures{Window: window}
	for _, s := range cfg.Sources {
		g, u := ingest.Shows(s)
		if g {
			grants = append(grants, s.Name)
		}
		if u {
			uses = append(uses, s.Name)
		}
		ss := spans[s.Name]
		if n := len(ss); n > 0 && now.Sub(ss[n-1].End) > time.Duration(cfg.Detect.UnusedScope.StaleAfter) {
			f.StaleSources = append(f.StaleSources, s.Name)
		}
	}
	from := now.Add(-window)
	f.Identity = Covered(spans, grants, from, now, gap)
	f.Use = Covered(spans, uses, from, now, gap)
	return f
}
