package detect

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/scopewatch/scopewatch/ingest"
	"github.com/scopewatch/scopewatch/rules"
	"github.com/scopewatch/scopewatch/store"
)

// Findings holds every finding in memory, applies silences, and records
// each change into the batch being built, so that a finding commits in the
// same transaction as the events that raised it. It is used from the
// engine's goroutine only.
type Findings struct {
	all     map[store.FindingKey]*store.Finding
	dirty   map[store.FindingKey]struct{}
	dropped map[store.FindingKey]struct{}
	// told marks the notification groups with a change worth telling.
	told     map[store.GroupKey]time.Time
	silences []store.Silence
	now      func() time.Time
	m        *FindingMetrics
}

// NewFindings returns a tracker holding existing (as read from the store)
// and silences (the configured ones together with the stored ones). now is
// the clock that dates state changes and decides which silences are
// active. m may be nil.
func NewFindings(existing []store.Finding, silences []store.Silence, now func() time.Time, m *FindingMetrics) *Findings {
	if m == nil {
		m = NewFindingMetrics(nil)
	}
	fs := &Findings{
		all:      make(map[store.FindingKey]*store.Finding, len(existing)),
		dirty:    make(map[store.FindingKey]struct{}),
		dropped:  make(map[store.FindingKey]struct{}),
		told:     make(map[store.GroupKey]time.Time),
		silences: silences,
		now:      now,
		m:        m,
	}
	for i := range existing {
		f := existing[i].Clone()
		fs.all[f.FindingKey] = &f
		if f.State != store.StateResolved {
			m.Open.WithLabelValues(f.Kind, f.Severity).Inc()
		}
	}
	return fs
}

// Adopt takes the findings of clients restored from a partition's
// changelog, as they are stored: they replace any held under their keys.
func (fs *Findings) Adopt(findings []store.Finding) {
	for i := range findings {
		f := findings[i].Clone()
		if old := fs.all[f.FindingKey]; old != nil && old.State != store.StateResolved {
			fs.m.Open.WithLabelValues(old.Kind, old.Severity).Dec()
		}
		fs.all[f.FindingKey] = &f
		delete(fs.dirty, f.FindingKey)
		delete(fs.dropped, f.FindingKey)
		if f.State != store.StateResolved {
			fs.m.Open.WithLabelValues(f.Kind, f.Severity).Inc()
		}
	}
}

// Get returns the finding with key k, or nil.
func (fs *Findings) Get(k store.FindingKey) *store.Finding { return fs.all[k] }

// Each calls fn for every finding; fn must not raise or drop findings.
func (fs *Findings) Each(fn func(*store.Finding)) {
	for _, f := range fs.all {
		fn(f)
	}
}

// Raise records one sighting of the condition k at event time t, seen on
// the line at pos (zero when raised by a sweep), and returns the finding
// for the caller to fill in its summary and evidence. A new finding opens
// (or is silenced), a resolved one reopens, an open one counts. The
// severity of a standing finding rises with a graver sighting and never
// falls.
func (fs *Findings) Raise(k store.FindingKey, severity string, t time.Time, pos ingest.Position) *store.Finding {
	f := fs.all[k]
	now := fs.now()
	if f == nil {
		f = &store.Finding{FindingKey: k, Severity: severity, First: t, Last: t}
		fs.all[k] = f
		delete(fs.dropped, k)
		fs.setState(f, store.StateOpen, now)
		openedAt(f, t)
		fs.m.Raised.WithLabelValues(k.Kind, severity).Inc()
	} else {
		if f.State == store.StateResolved {
			f.Resolved = time.Time{}
			fs.setState(f, store.StateOpen, now)
			openedAt(f, t)
			fs.m.Raised.WithLabelValues(k.Kind, severity).Inc()
		}
		if store.SeverityRank(severity) > store.SeverityRank(f.Severity) {
			fs.m.Open.WithLabelValues(k.Kind, f.Severity).Dec()
			fs.m.Open.WithLabelValues(k.Kind, severity).Inc()
			f.Severity = severity
			fs.mark(k, now)
		}
		if t.Before(f.First) {
			f.First = t
		}
		if t.After(f.Last) {
			f.Last = t
		}
	}
	f.Count++
	if pos.Source != "" {
		f.Evidence.AddLine(store.LineRef{Source: pos.Source, Path: pos.Path, Line: pos.Line, Offset: pos.Offset})
	}
	fs.dirty[k] = struct{}{}
	return f
}

// openedAt dates a finding that has just opened by the event that opened
// it, t, rather than by the clock, which in a scan is the newest event of
// any reader; never later than the clock.
func openedAt(f *store.Finding, t time.Time) {
	if !t.IsZero() && t.Before(f.Opened) {
		f.Opened = t
	}
}

// Hold records that a condition found by a sweep holds at t. A new or
// resolved finding is raised (fresh is true) for the caller to fill in; a
// standing one is returned with its severity set, and the caller calls
// Touch if it changes it further, so that an unchanged finding is not
// rewritten every sweep.
func (fs *Findings) Hold(k store.FindingKey, severity string, t time.Time) (f *store.Finding, fresh bool) {
	f = fs.all[k]
	if f == nil || f.State == store.StateResolved {
		return fs.Raise(k, severity, t, ingest.Position{}), true
	}
	if f.Severity != severity {
		// A sweep's condition can change its nature (broader than used,
		// then not used at all): the severity follows it.
		fs.m.Open.WithLabelValues(k.Kind, f.Severity).Dec()
		fs.m.Open.WithLabelValues(k.Kind, severity).Inc()
		f.Severity = severity
		fs.dirty[k] = struct{}{}
		fs.mark(k, fs.now())
	}
	return f, false
}

// Touch marks the finding k changed, to be written with the next batch.
func (fs *Findings) Touch(k store.FindingKey) {
	if fs.all[k] != nil {
		fs.dirty[k] = struct{}{}
	}
}

// Resolve marks the finding k resolved, if it stands.
func (fs *Findings) Resolve(k store.FindingKey) {
	f := fs.all[k]
	if f == nil || f.State == store.StateResolved {
		return
	}
	now := fs.now()
	f.Resolved = now
	fs.setState(f, store.StateResolved, now)
	fs.m.Resolved.WithLabelValues(k.Kind).Inc()
	fs.dirty[k] = struct{}{}
}

// setState moves f to state, or to silenced when a silence matches an
// open finding, keeping the open gauge right.
func (fs *Findings) setState(f *store.Finding, state string, now time.Time) {
	was := f.State
	f.Silence = ""
	if state == store.StateOpen {
		if s := store.SilenceFor(fs.silences, f.FindingKey, now); s != nil {
			state, f.Silence = store.StateSilenced, s.ID
		}
	}
	standing := func(s string) bool { return s == store.StateOpen || s == store.StateSilenced }
	switch {
	case standing(state) && !standing(was):
		fs.m.Open.WithLabelValues(f.Kind, f.Severity).Inc()
		f.Opened = now
	case !standing(state) && standing(was):
		fs.m.Open.WithLabelValues(f.Kind, f.Severity).Dec()
	}
	if state != was {
		f.State, f.Changed = state, now
		fs.mark(f.FindingKey, now)
	}
}

// mark records a change of k worth telling in its notification group.
func (fs *Findings) mark(k store.FindingKey, now time.Time) {
	g := store.Of(k)
	if t, ok := fs.told[g]; !ok || now.Before(t) {
		fs.told[g] = now
	}
}

// SetSilences replaces the silences and re-applies them to every standing
// finding: newly matched ones are silenced, those whose silence ended or
// was removed open again.
func (fs *Findings) SetSilences(silences []store.Silence) {
	fs.silences = silences
	fs.ApplySilences()
}

// ApplySilences re-applies the silences as of now: run after a silence
// may have expired.
func (fs *Findings) ApplySilences() {
	now := fs.now()
	for k, f := range fs.all {
		if f.State == store.StateResolved {
			continue
		}
		before, id := f.State, f.Silence
		fs.setState(f, store.StateOpen, now)
		if f.State != before || f.Silence != id {
			fs.dirty[k] = struct{}{}
		}
	}
}

// Prune forgets findings resolved before cutoff, deleting them from the
// store with the next batch.
func (fs *Findings) Prune(cutoff time.Time) {
	for k, f := range fs.all {
		if f.State == store.StateResolved && f.Resolved.Before(cutoff) {
			delete(fs.all, k)
			delete(fs.dirty, k)
			fs.dropped[k] = struct{}{}
		}
	}
}

// DropClients forgets the findings about the clients ids, deleting them
// from the store with the next batch: the clients' state has left this
// instance.
func (fs *Findings) DropClients(ids []string) {
	if len(ids) == 0 {
		return
	}
	drop := make(map[string]struct{}, len(ids))
	for _, id := range ids {
		drop[id] = struct{}{}
	}
	for k, f := range fs.all {
		if _, ok := drop[k.Client]; !ok || k.Client == "" {
			continue
		}
		if f.State != store.StateResolved {
			fs.m.Open.WithLabelValues(f.Kind, f.Severity).Dec()
		}
		delete(fs.all, k)
		delete(fs.dirty, k)
		fs.dropped[k] = struct{}{}
	}
}

// Flush copies every finding changed since the last flush into b.
func (fs *Findings) Flush(b *store.Batch) {
	for k := range fs.dirty {
		b.Findings[k] = fs.all[k].Clone()
	}
	for k := range fs.dropped {
		b.DropFindings[k] = struct{}{}
	}
	for g, t := range fs.told {
		b.Notify[g] = t
	}
	clear(fs.dirty)
	clear(fs.dropped)
	clear(fs.told)
}

// Pending reports whether changes wait for a flush.
func (fs *Findings) Pending() bool {
	return len(fs.dirty) > 0 || len(fs.dropped) > 0 || len(fs.told) > 0
}

// FindingMetrics count findings by kind and severity: bounded labels, never
// a client, scope or address.
type FindingMetrics struct {
	Open     *prometheus.GaugeVec   // kind, severity: open or silenced findings
	Raised   *prometheus.CounterVec // kind, severity: findings opened or reopened
	Resolved *prometheus.CounterVec // kind
}

// NewFindingMetrics creates the finding metrics and registers them with
// reg when it is not nil.
func NewFindingMetrics(reg prometheus.Registerer) *FindingMetrics {
	m := &FindingMetrics{
		Open: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "scopewatch_findings_open", Help: "Findings whose condition holds (open or silenced), by kind and severity.",
		}, []string{"kind", "severity"}),
		Raised: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "scopewatch_findings_raised_total", Help: "Findings opened or reopened, by kind and severity.",
		}, []string{"kind", "severity"}),
		Resolved: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "scopewatch_findings_resolved_total", Help: "Findings resolved because their condition cleared, by kind.",
		}, []string{"kind"}),
	}
	// Every kind and severity at zero, so that a dashboard shows "0 open"
	// on a fresh install rather than no data.
	for _, k := range rules.FindingKinds() {
		for _, sev := range []string{store.SeverityInfo, store.SeverityWarning, store.SeverityHigh} {
			m.Open.WithLabelValues(k, sev)
			m.Raised.WithLabelValues(k, sev)
		}
		m.Resolved.WithLabelValues(k)
	}
	if reg != nil {
		reg.MustRegister(m.Open, m.Raised, m.Resolved)
	}
	return m
}
