package engine

import (
	"log/slog"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/scopewatch/scopewatch/ingest"
	"github.com/scopewatch/scopewatch/rules"
)

// DefaultNoEventsAfter is how many lines a source may read without an
// event before the engine says so.
const DefaultNoEventsAfter = 10000

// noEvents watches a source that has yielded no event since the engine
// started: once it has read after lines without one, it logs one warning
// naming the likely cause and sets scopewatch_source_no_events to 1; the
// first event sets it back to 0 and ends the watch. Until then it counts
// the lines' outcomes and keeps a few (ingest.Tally, bounded), which is
// the only cost it adds per line, and only while nothing is yielded.
type noEvents struct {
	after  int64
	src    rules.Source
	tally  ingest.Tally
	warned bool
	gauge  prometheus.Gauge
	log    *slog.Logger
}

func (e *Engine) newNoEvents(name string) *noEvents {
	src := rules.Source{Name: name}
	for _, s := range e.opt.Sources {
		if s.Name == name {
			src = s
		}
	}
	return &noEvents{
		after: int64(e.opt.NoEventsAfter), src: src,
		gauge: e.opt.Metrics.NoEvents.WithLabelValues(name), log: e.opt.Logger,
	}
}

// watchLine records a line of the source and what it came to.
func (st *sourceState) watchLine(ln ingest.Line, events int, skip ingest.Skip, pe *ingest.ParseError) {
	w := st.watch
	if events > 0 {
		if w.warned {
			w.gauge.Set(0)
			w.log.Info("source yields events again", "source", st.name)
		}
		st.watch = nil
		return
	}
	if w.warned {
		return
	}
	w.tally.Add(ln, events, skip, pe)
	if w.tally.Lines < w.after {
		return
	}
	w.warned = true
	w.gauge.Set(1)
	t := &w.tally
	w.log.Warn("source has read lines but yielded no event", "source", st.name, "lines", t.Lines,
		"ignored", ingest.Counts(t.Ignored), "malformed", ingest.Counts(t.Malformed),
		"likely_cause", t.Diagnose(w.src))
	w.tally = ingest.Tally{Lines: t.Lines} // the sample is no longer needed
}
