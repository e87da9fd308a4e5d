package detect

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/scopewatch/scopewatch/ingest"
	"github.com/scopewatch/scopewatch/rules"
	"github.com/scopewatch/scopewatch/store"
)

// Committer makes a batch durable in one transaction.
type Committer interface {
	Commit(b *store.Batch) error
}

// EngineOptions configures an Engine.
type EngineOptions struct {
	// Parsers maps each source name to its parser. Parsers are called from
	// the engine's goroutine only.
	Parsers    map[string]ingest.Parser
	Accountant *Accountant
	Store      Committer
	// MaxEvents and MaxDelay bound a batch: it is committed when it holds
	// MaxEvents lines or events, or MaxDelay after its first line,
	// whichever comes first. Defaults: 1000 and 250ms.
	MaxEvents int
	MaxDelay  time.Duration
	// CatchUpEvents is how far a batch may grow past MaxEvents while the
	// engine is behind (lines are queued on its input): a commit's
	// cost is per client record it touches, not per event, so catching up
	// on a backlog or a backfill in bigger transactions is several times
	// faster. A batch that touches MaxEvents distinct clients is committed
	// all the same: with many clients a big batch rewrites most records
	// and holds them all in memory until it commits. MaxDelay still
	// closes every batch. Default 10 × MaxEvents.
	CatchUpEvents int
	Metrics       *EngineMetrics
	Logger        *slog.Logger
	// NewTimer makes the batch-delay timer; tests inject one they fire.
	// Default: time.NewTimer.
	NewTimer func(time.Duration) Timer
	// Committed, when set, is called on the committing goroutine after each
	// successful commit with the batch just made durable; it must not keep
	// or modify it. It serves progress reporting and lag metrics.
	Committed func(b *store.Batch)

	// Detection, when set, raises findings from the events and from time
	// passing; nil only counts usage.
	Detection *Detection

	// NoEventsAfter is how many lines a source may read since the engine
	// started without yielding an event before the engine logs one
	// warning naming the likely cause and sets
	// scopewatch_source_no_events; default DefaultNoEventsAfter.
	NoEventsAfter int
	// Sources are the configured sources, whose settings (format,
	// wrapper) that warning weighs.
	Sources []rules.Source

	// CommitFailing, when set, is called from the committing goroutine
	// when commits start failing with an error worth retrying (a full
	// disk, an I/O error), with that error, and with nil once a commit
	// goes through again. The engine holds the batch meanwhile, retrying
	// it with backoff, and reads no further than the batches it holds.
	CommitFailing func(err error)
	// Stop, when set, is closed when the process stops: a commit being
	// retried then gives up. Its lines' positions were not saved, so a
	// restart reads them again.
	Stop <-chan struct{}
	// RetryMin and RetryMax bound the backoff between attempts at a
	// failing commit; defaults 250ms and 30s. After waits; tests inject
	// one. Default: time.After.
	RetryMin, RetryMax time.Duration
	After              func(time.Duration) <-chan time.Time

	// Probes, when set, carries liveness probes (systemd's watchdog): the
	// engine commits the batch it holds and closes each probe's channel
	// once that commit and every one before it is durable. A probe that
	// stays open means the engine or the store is stuck.
	Probes <-chan chan<- struct{}
}

// Detection is what the engine needs to raise findings. Every part is
// used from the engine's goroutine only. Coverage is required; with
// Detectors, Findings and Sweeper all nil the engine records coverage and
// raises nothing.
type Detection struct {
	Detectors *Detectors
	Findings  *Findings
	Coverage  *Coverage
	Sweeper   *Sweeper
	// Clients streams the committed clients for sweeps: the store.
	Clients ClientLister
	// SweepEvery is the time between sweeps; the first runs at start and
	// the last when the input ends. Default 1h.
	SweepEvery time.Duration
	// Now is the clock of sweeps; in a scan it is a DataClock's.
	Now func() time.Time
	// DataClock, when set, is advanced to each event's time.
	DataClock *DataClock
	// Pseudonymise, when set, replaces each event's subject first.
	Pseudonymise func(subject string) string
	// SilencesChanged signals that the stored silences changed;
	// LoadSilences reads them (with the configured ones).
	SilencesChanged <-chan struct{}
	LoadSilences    func() ([]store.Silence, error)
}

// DataClock is a clock that reads the newest event time seen: a scan of
// old logs judges as of the end of its data, not of today.
type DataClock struct{ t time.Time }

// Observe advances the clock to t if t is newer.
func (c *DataClock) Observe(t time.Time) {
	if t.After(c.t) {
		c.t = t
	}
}

// Now returns the newest event time observed.
func (c *DataClock) Now() time.Time { return c.t }

// Timer is the part of *time.Timer the engine uses.
type Timer interface {
	C() <-chan time.Time
	Stop() bool
}

type realTimer struct{ *time.Timer }

func (t realTimer) C() <-chan time.Time { return t.Timer.C }

// Engine turns lines into committed usage: it parses each line with its
// source's parser, folds the events into a batch together with the line's
// position, and commits the batch as one transaction. Parsing and
// accounting run on one goroutine while the previous batch commits on
// another, so disk latency overlaps with CPU work.
type Engine struct {
	opt EngineOptions
	// idle waits until no batch is being committed.
	idle func() error
}

// NewEngine returns an engine; it starts nothing.
func NewEngine(opt EngineOptions) *Engine {
	if opt.MaxEvents <= 0 {
		opt.MaxEvents = 1000
	}
	if opt.MaxDelay <= 0 {
		opt.MaxDelay = 250 * time.Millisecond
	}
	if opt.CatchUpEvents < opt.MaxEvents {
		opt.CatchUpEvents = 10 * opt.MaxEvents
	}
	if opt.Metrics == nil {
		opt.Metrics = NewEngineMetrics(nil)
	}
	if opt.Logger == nil {
		opt.Logger = slog.New(slog.DiscardHandler)
	}
	if opt.NoEventsAfter <= 0 {
		opt.NoEventsAfter = DefaultNoEventsAfter
	}
	if opt.NewTimer == nil {
		opt.NewTimer = func(d time.Duration) Timer { return realTimer{time.NewTimer(d)} }
	}
	if opt.RetryMin <= 0 {
		opt.RetryMin = 250 * time.Millisecond
	}
	if opt.RetryMax < opt.RetryMin {
		opt.RetryMax = max(30*time.Second, opt.RetryMin)
	}
	if opt.After == nil {
		opt.After = time.After
	}
	if d := opt.Detection; d != nil {
		if d.SweepEvery <= 0 {
			d.SweepEvery = time.Hour
		}
		if d.Now == nil {
			d.Now = time.Now
		}
	}
	return &Engine{opt: opt}
}

// Run consumes in until it is closed, committing every line's effects, and
// returns after the final commit. Closing in (not cancelling ctx) is how a
// clean shutdown drains: the sources stop, the channel's sender closes it,
// and everything read so far is committed. ctx only aborts a run whose
// store has failed. A commit error stops the engine: the positions of
// uncommitted lines were not saved, so a restart reads them again.
func (e *Engine) Run(ctx context.Context, in <-chan ingest.Line) error {
	batches := make(chan work, 1)
	free := make(chan *store.Batch, 2)
	free <- store.NewBatch()
	free <- store.NewBatch()
	commitErr := make(chan error, 1)
	done := make(chan struct{})
	if e.opt.Detection != nil {
		// Exactly one batch may be outstanding; a sweep needs none.
		e.idle = func() error {
			select {
			case b := <-free:
				free <- b
				return nil
			case err := <-commitErr:
				return err
			case <-ctx.Done():
				return ctx.Err()
			}
		}
	}
	go func() {
		defer close(done)
		for w := range batches {
			if w.probe != nil {
				close(w.probe) // every batch before it is durable
				continue
			}
			if err := e.commitRetrying(ctx, w.batch); err != nil {
				commitErr <- err
				// Keep draining so the producer never blocks; nothing
				// more is committed nor answered.
				for range batches {
				}
				return
			}
			w.batch.Reset()
			free <- w.batch
		}
	}()

	err := e.consume(ctx, in, batches, free, commitErr)
	close(batches)
	<-done
	if err == nil {
		select {
		case err = <-commitErr:
		default:
		}
	}
	return err
}

// work is what the engine hands its committing goroutine: a batch to
// commit, or a liveness probe to answer once everything before it is
// committed.
type work struct {
	batch *store.Batch
	probe chan<- struct{}
}

func (e *Engine) consume(ctx context.Context, in <-chan ingest.Line, batches chan<- work, free chan *store.Batch, commitErr <-chan error) error {
	var (
		b      = <-free
		lines  int
		timer  Timer
		timerC <-chan time.Time
		events []ingest.Event
		cur    *sourceState
		states = make(map[string]*sourceState)
	)
	stopTimer := func() {
		if timer != nil {
			timer.Stop()
			timer, timerC = nil, nil
		}
	}
	det := e.opt.Detection
	judging := det != nil && det.Sweeper != nil
	var (
		sweepTimer Timer
		sweepC     <-chan time.Time
		silencesC  <-chan struct{}
	)
	flush := func() error {
		stopTimer()
		for _, st := range states {
			st.flush(b)
		}
		if det != nil {
			if det.Findings != nil {
				det.Findings.Flush(b)
			}
			if det.Sweeper != nil {
				det.Sweeper.Flush(b) // the clients it pruned
			}
			det.Coverage.Flush(b)
		}
		if lines == 0 && b.Empty() {
			return nil
		}
		select {
		case batches <- work{batch: b}:
		case err := <-commitErr:
			return err
		case <-ctx.Done():
			return ctx.Err()
		}
		select {
		case b = <-free:
		case err := <-commitErr:
			return err
		case <-ctx.Done():
			return ctx.Err()
		}
		lines = 0
		return nil
	}
	// sweep commits what was read, waits for it to be durable (the
	// sweeper reads clients from the store), judges, and commits the
	// findings that changed and the clients it pruned, the latter in
	// chunks as it goes.
	sweep := func() error {
		commit := func() error {
			if err := flush(); err != nil {
				return err
			}
			return e.idle()
		}
		if err := commit(); err != nil {
			return err
		}
		if err := det.Sweeper.SweepCommitting(det.Now(), det.Clients, commit); err != nil {
			return err
		}
		return flush()
	}
	if judging {
		silencesC = det.SilencesChanged
		if err := sweep(); err != nil {
			return err
		}
		sweepTimer = e.opt.NewTimer(det.SweepEvery)
		sweepC = sweepTimer.C()
		defer func() { sweepTimer.Stop() }()
	}
	end := func() error {
		if judging {
			return sweep()
		}
		return flush()
	}
	// take handles one line and commits the batch once it is full: at
	// MaxEvents while the engine keeps up, and up to CatchUpEvents while
	// lines are queued, unless the batch already touches MaxEvents
	// clients (a commit's cost and memory are per client record).
	take := func(ln ingest.Line) error {
		if cur == nil || cur.name != ln.Pos.Source {
			cur = states[ln.Pos.Source]
			if cur == nil {
				cur = e.newSourceState(ln.Pos.Source)
				states[ln.Pos.Source] = cur
			}
		}
		events = cur.handle(ln, b, events[:0], e.opt.Accountant, det)
		if lines == 0 {
			timer = e.opt.NewTimer(e.opt.MaxDelay)
			timerC = timer.C()
		}
		lines++
		if size := max(lines, b.Events); size >= e.opt.MaxEvents {
			behind := len(in) > 0
			if !behind || size >= e.opt.CatchUpEvents || len(b.Clients) >= e.opt.MaxEvents {
				return flush()
			}
		}
		return nil
	}
	for {
		select {
		case ln, ok := <-in:
			// Lines already queued are taken in a tight loop: the full
			// select costs more than handling a line. The timers wait at
			// most drainMax lines.
		drain:
			for n := 0; ; n++ {
				if !ok {
					return end()
				}
				if err := take(ln); err != nil {
					return err
				}
				if n == drainMax {
					break
				}
				select {
				case ln, ok = <-in:
				default:
					break drain
				}
			}
		case <-timerC:
			timer, timerC = nil, nil
			if err := flush(); err != nil {
				return err
			}
		case <-sweepC:
			if err := sweep(); err != nil {
				return err
			}
			sweepTimer = e.opt.NewTimer(det.SweepEvery)
			sweepC = sweepTimer.C()
		case <-silencesC:
			silences, err := det.LoadSilences()
			if err != nil {
				e.opt.Logger.Warn("silences not reloaded", "err", err)
				continue
			}
			det.Findings.SetSilences(silences)
			if err := flush(); err != nil {
				return err
			}
		case probe := <-e.opt.Probes:
			if err := flush(); err != nil {
				return err
			}
			select {
			case batches <- work{probe: probe}:
			case err := <-commitErr:
				return err
			case <-ctx.Done():
				return ctx.Err()
			}
		case err := <-commitErr:
			return err
		}
	}
}

// commitRetrying commits b, retrying with backoff while the error is one
// that time can mend (a full disk, an I/O error): the store rolls a failed
// transaction back, so the same batch commits whole or not at all.
func (e *Engine) commitRetrying(ctx context.Context, b *store.Batch) error {
	delay := e.opt.RetryMin
	for attempt := 0; ; attempt++ {
		err := e.commit(b)
		if err == nil {
			if attempt > 0 {
				e.opt.Metrics.CommitFailing.Set(0)
				e.opt.Logger.Info("store commits again; the held lines are committed", "attempts", attempt+1)
				if e.opt.CommitFailing != nil {
					e.opt.CommitFailing(nil)
				}
			}
			return nil
		}
		if !retryable(err) {
			return err
		}
		if attempt == 0 {
			e.opt.Metrics.CommitFailing.Set(1)
			e.opt.Logger.Warn("store commit failed; holding the batch and retrying until it goes through (is the disk full?)", "err", err)
			if e.opt.CommitFailing != nil {
				e.opt.CommitFailing(err)
			}
		}
		select {
		case <-e.opt.After(delay):
		case <-e.opt.Stop:
			return fmt.Errorf("stopped while retrying: %w", err)
		case <-ctx.Done():
			return fmt.Errorf("stopped while retrying: %w", err)
		}
		delay = min(2*delay, e.opt.RetryMax)
	}
}

// retryable reports whether a commit error may clear with time: the file
// system is full (or over quota), failed an I/O, or was remounted
// read-only. A batch the store refuses, a closed or damaged store, is not.
func retryable(err error) bool {
	for _, errno := range [...]syscall.Errno{syscall.ENOSPC, syscall.EDQUOT, syscall.EIO, syscall.EROFS, syscall.EAGAIN, syscall.EINTR} {
		if errors.Is(err, errno) {
			return true
		}
	}
	return false
}

func (e *Engine) commit(b *store.Batch) error {
	start := time.Now()
	if err := e.opt.Store.Commit(b); err != nil {
		e.opt.Metrics.CommitErrors.Inc()
		return fmt.Errorf("commit batch of %d events: %w", b.Events, err)
	}
	e.opt.Metrics.CommitDuration.Observe(time.Since(start).Seconds())
	e.opt.Metrics.BatchEvents.Observe(float64(b.Events))
	for name, d := range b.Sources {
		e.opt.Metrics.LinesCommitted.WithLabelValues(name).Add(float64(d.Lines))
		e.opt.Metrics.Newest.Saw(name, d.Events.Last)
	}
	if e.opt.Committed != nil {
		e.opt.Committed(b)
	}
	return nil
}

// drainMax bounds the lines taken from the input without looking at the
// timers and signals.
const drainMax = 256

// sourceState caches the per-source pieces the hot path needs, so a line
// costs no map lookups beyond its source switch, and keeps the source's
// counts until the batch is flushed.
type sourceState struct {
	name      string
	parser    ingest.Parser
	lines     uint64
	held      uint64 // pieces of a line not yet ended, counted with their end
	malformed uint64
	ignored   uint64
	// last holds the position of the newest line of each file read in this
	// batch; a source can interleave files (a rotated file being drained
	// beside the live one), and each file's progress must be saved.
	last []ingest.Position
	m    sourceMetrics
	cov  *sourceCoverage // this source's coverage, when detecting
	gap  time.Duration
	// watch is set until the source yields its first event.
	watch *noEvents
}

type sourceMetrics struct {
	parsed       prometheus.Counter
	ignored      map[ingest.Skip]prometheus.Counter
	byKind       [numKinds]prometheus.Counter
	unknown      [numKinds]prometheus.Counter
	unattributed prometheus.Counter
	unmapped     prometheus.Counter
	malformed    *prometheus.CounterVec
	ignoredVec   *prometheus.CounterVec
	dropped      *prometheus.CounterVec
	source       string
}

// drop counts the fields an event dropped.
func (m *sourceMetrics) drop(f ingest.Fields) {
	for i, name := range ingest.FieldNames() {
		if f&(1<<i) != 0 {
			m.dropped.WithLabelValues(m.source, name).Inc()
		}
	}
}

// ignore counts a line ignored for reason.
func (m *sourceMetrics) ignore(reason ingest.Skip) {
	c, ok := m.ignored[reason]
	if !ok { // a reason outside the closed set: still counted, never lost
		c = m.ignoredVec.WithLabelValues(m.source, string(reason))
	}
	c.Inc()
}

func (e *Engine) newSourceState(name string) *sourceState {
	m := e.opt.Metrics
	st := &sourceState{name: name, parser: e.opt.Parsers[name]}
	st.m.parsed = m.LinesParsed.WithLabelValues(name)
	st.m.ignored = make(map[ingest.Skip]prometheus.Counter, len(ingest.SkipReasons()))
	for _, r := range ingest.SkipReasons() {
		st.m.ignored[r] = m.LinesIgnored.WithLabelValues(name, string(r))
	}
	st.m.ignoredVec = m.LinesIgnored
	st.m.dropped = m.FieldsDropped
	st.m.unattributed = m.Unattributed.WithLabelValues(name)
	st.m.unmapped = m.Unmapped.WithLabelValues(name)
	for k := range st.m.byKind {
		st.m.byKind[k] = m.Events.WithLabelValues(name, ingest.Kind(k).String())
		st.m.unknown[k] = m.UnknownClients.WithLabelValues(name, ingest.Kind(k).String())
	}
	st.m.malformed = m.Malformed
	st.m.source = name
	st.watch = e.newNoEvents(name)
	return st
}

// handle parses one line and folds its events into b. It never fails:
// a malformed line is counted and skipped.
func (st *sourceState) handle(ln ingest.Line, b *store.Batch, events []ingest.Event, acc *Accountant, det *Detection) []ingest.Event {
	if ln.Pos.AfterLoss && det != nil {
		det.Coverage.Break(st.name) // the lost lines are a gap in what was observed
	}
	if st.parser == nil {
		st.lines++
		st.mark(ln.Pos)
		st.malformed++
		st.m.malformed.WithLabelValues(st.name, "no_parser").Inc()
		return events
	}
	events, err := ingest.ParseLine(st.parser, ln, events)
	skip, pe := ingest.Outcome(err)
	if skip == ingest.SkipPartial {
		// A piece of a line the container runtime split. Its position is
		// saved only with the piece that ends the line, so a restart in
		// between reads the whole line again, and it is counted then.
		st.held++
		st.m.ignore(skip)
		return events[:0]
	}
	st.lines += 1 + st.held
	st.held = 0
	st.mark(ln.Pos)
	if st.watch != nil {
		st.watchLine(ln, len(events), skip, pe)
	}
	if pe != nil {
		n := pe.Count()
		st.malformed += uint64(n)
		reason := pe.Reason
		if reason == "" {
			reason = ingest.ReasonBadFormat
		}
		st.m.malformed.WithLabelValues(st.name, reason).Add(float64(n))
		if pe.Records == 0 {
			return events[:0] // malformed whole
		}
		// A page of records, some malformed: the others count.
	} else {
		st.m.parsed.Inc()
	}
	if skip != "" || len(events) == 0 {
		if pe == nil {
			if skip == "" {
				skip = ingest.SkipOtherEvent
			}
			st.ignored++
			st.m.ignore(skip)
		}
		return events[:0]
	}
	for i := range events {
		ev := &events[i]
		if k := int(ev.Kind); k < len(st.m.byKind) {
			st.m.byKind[k].Inc()
		}
		if ev.Dropped != 0 {
			st.m.drop(ev.Dropped)
		}
		if det != nil {
			if det.Pseudonymise != nil && ev.Subject != "" {
				ev.Subject = det.Pseudonymise(ev.Subject)
			}
			if det.Detectors != nil {
				det.Detectors.Enrich(ev)
			}
		}
		switch acc.Apply(ev, b) {
		case Unattributed:
			if ev.Kind == ingest.KindUse {
				st.m.unattributed.Inc()
			}
		case Unmapped:
			st.m.unmapped.Inc()
		case BadClient:
			st.m.malformed.WithLabelValues(st.name, "bad_client").Inc()
		case Unknown:
			if k := int(ev.Kind); k < len(st.m.unknown) {
				st.m.unknown[k].Inc()
			}
		}
		if det != nil {
			if det.DataClock != nil {
				det.DataClock.Observe(ev.Time) // a finding this event raises opens as of it
			}
			if det.Detectors != nil {
				det.Detectors.Observe(ev)
			}
			if st.cov == nil {
				st.cov = det.Coverage.source(st.name)
				st.gap = det.Coverage.gap
			}
			st.cov.observe(ev.Time, st.gap)
		}
	}
	return events
}

// mark remembers pos as the newest position of its file.
func (st *sourceState) mark(pos ingest.Position) {
	if pos.File == (store.FileID{}) {
		return // not a file (standard input): nothing to resume
	}
	for i := len(st.last) - 1; i >= 0; i-- {
		if st.last[i].File == pos.File {
			st.last[i] = pos
			return
		}
	}
	st.last = append(st.last, pos)
}

// flush moves the source's pending counts and last positions into b.
func (st *sourceState) flush(b *store.Batch) {
	if st.lines == 0 {
		return
	}
	d := b.Source(st.name)
	d.Lines += st.lines
	d.Malformed += st.malformed
	d.Ignored += st.ignored
	for _, p := range st.last {
		b.SetPosition(p.Record())
	}
	st.lines, st.malformed, st.ignored = 0, 0, 0
	st.last = st.last[:0]
}
