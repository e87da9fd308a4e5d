package engine

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/scopewatch/scopewatch/detect"
	"github.com/scopewatch/scopewatch/ingest"
	"github.com/scopewatch/scopewatch/rules"
	"github.com/scopewatch/scopewatch/store"
)

// Committer makes a batch durable in one transaction.
type Committer interface {
	Commit(b *store.Batch) error
}

// Options configures an Engine.
type Options struct {
	// Parsers maps each source name to its parser. Each parser is called
	// from its source's parsing goroutine only (parse.go).
	Parsers    map[string]ingest.Parser
	Accountant *detect.Accountant
	Store      Committer
	// MaxEvents and MaxDelay bound a checkpoint: the clients' usage lives
	// in the accountant's State, and a batch takes the clients it made
	// dirty, whole, with the positions of the lines that did so. It is
	// committed MaxDelay after its first line (with the lines read by
	// then), once it holds MaxEvents lines or events, or sooner when the
	// State has so many dirty clients that it cannot evict (memory
	// pressure), whichever comes first. A commit's cost is per client
	// record written, not per event, so a backlog (Backfill, or sources
	// behind) is read in batches of at least MaxEvents lines that also
	// hold linesPerRecord lines for each client they changed (run.full).
	// Defaults: 50,000 and 250ms.
	MaxEvents int
	MaxDelay  time.Duration
	// Backfill says the lines are a backlog read once (a scan), which no
	// one waits to see committed: a checkpoint waits for its size
	// (run.full) or memory pressure, not MaxDelay. Every checkpoint writes each client
	// it dirtied whole, so with many clients one every MaxDelay rewrote
	// every client several times a second (README, Performance).
	Backfill bool
	Metrics  *Metrics
	Logger   *slog.Logger
	// NewTimer makes the batch-delay timer; tests inject one they fire.
	// Default: time.NewTimer.
	NewTimer func(time.Duration) Timer
	// Committed, when set, is called on the committing goroutine after each
	// successful commit with the batch just made durable; it must not keep
	// or modify it. It serves progress reporting and lag metrics.
	Committed func(b *store.Batch)

	// taken, when set, is called on the accounting goroutine after each
	// line; tests wait on it.
	taken func()

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
	// RetryMin and RetryMax bound the backoff between attempts at a
	// failing commit; defaults 250ms and 30s. After waits; tests inject
	// one. Default: time.After.
	RetryMin, RetryMax time.Duration
	After              func(time.Duration) <-chan time.Time

	// Probes, when set, carries liveness probes (systemd's watchdog): the
	// engine commits every line it had taken from its input when the probe
	// came (once those lines are through the parse stage) and closes the
	// probe's channel once that commit and every one before it is durable.
	// A probe that stays open means the engine or the store is stuck.
	Probes <-chan chan<- struct{}

	// Holding, when set, is called on the accounting goroutine as a
	// checkpoint whose client records encode to HoldingBytes or more is
	// taken, and the function it returns is called on the committing
	// goroutine once that checkpoint's commit has ended (committed or
	// not; a committed batch has let go of its encoded records and
	// windows by then, store.Batch.DropEncoded). Between the two the
	// checkpoint is in memory twice over, as its encoded records and as
	// bbolt's pages of them, and is garbage as soon as the commit ends:
	// the daemon has the collector work harder for that span
	// (daemon/gc.go). Two spans may overlap: the next checkpoint is
	// flushed while the last commits. HoldingBytes is the estimated size
	// (store.State.DirtyBytes) from which a checkpoint counts as large;
	// default LargeCheckpoint.
	Holding      func() (released func())
	HoldingBytes int
}

// LargeCheckpoint is the default of Options.HoldingBytes: smaller
// checkpoints hardly move the heap. 1,000 clients of the bench's traffic
// make a checkpoint of 0.93 MB of records, whose span took 8–9 MiB off
// the scan's peak (55.2–56.5 MiB against 64.2–64.5; README, Performance).
const LargeCheckpoint = 256 << 10

// Detection is what the engine needs to raise findings. Every part is
// used from the engine's goroutine only. Coverage is required; with
// Detectors, Findings and Sweeper all nil the engine records coverage and
// raises nothing.
type Detection struct {
	// Place, when set, places the events' addresses on the goroutines
	// that parse the lines (detect.NewPlacer, over the Locator the
	// Detectors have): an event whose line names no country gets the
	// place's, so that usage records where clients come from with or
	// without Detectors, and the Detectors get the place (Placed) instead
	// of looking the address up on the accounting goroutine.
	Place     func(netip.Addr) (detect.Place, bool)
	Detectors *detect.Detectors
	Findings  *detect.Findings
	Coverage  *detect.Coverage
	Sweeper   *detect.Sweeper
	// Clients streams the committed clients for sweeps: the store.
	Clients detect.ClientLister
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
// source's parser, folds the events into the accountant's State and a
// batch together with the line's position, and commits the batch, with
// the State's checkpoint, as one transaction. Each source is
// parsed on a goroutine of its own (parse.go), the accounting runs on one
// goroutine, and the previous batch commits on another, so parsing, CPU
// work and disk latency overlap.
type Engine struct {
	opt Options
}

// New returns an engine; it starts nothing.
func New(opt Options) *Engine {
	if opt.MaxEvents <= 0 {
		opt.MaxEvents = rules.DefaultMaxEvents
	}
	if opt.MaxDelay <= 0 {
		opt.MaxDelay = 250 * time.Millisecond
	}
	if opt.Metrics == nil {
		opt.Metrics = NewMetrics(nil)
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
	if opt.HoldingBytes <= 0 {
		opt.HoldingBytes = LargeCheckpoint
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
// returns after the final commit. Closing in is how a clean shutdown
// drains: the sources stop, the channel's sender closes it, and everything
// read so far is committed. Cancelling ctx says the process is stopping:
// a commit held and retried for a full disk then gives up, and Run
// returns its error (those lines' positions were not saved, so a restart
// reads them again); a cancelled ctx stops nothing else. A commit error
// stops the engine for the same reason.
func (e *Engine) Run(ctx context.Context, in <-chan ingest.Line) error {
	batches := make(chan work, 1)
	free := make(chan *store.Batch, 2)
	free <- store.NewBatch()
	free <- store.NewBatch()
	commitErr := make(chan error, 1)
	done := make(chan struct{})
	go func() {
		defer close(done)
		e.commitLoop(ctx, batches, free, commitErr)
	}()
	stop, stopParse := context.WithCancel(context.WithoutCancel(ctx))
	var placer func(netip.Addr) (detect.Place, bool)
	if d := e.opt.Detection; d != nil {
		placer = d.Place
	}
	ps := startParse(stop, e.opt.Parsers, placer, in)
	r := &run{
		e: e, opt: &e.opt, in: in, parse: ps, batches: batches, free: free, commitErr: commitErr,
		b: <-free, states: make(map[string]*sourceState), det: e.opt.Detection,
		state: e.opt.Accountant.State(),
	}
	r.judging = r.det != nil && r.det.Sweeper != nil
	err := r.consume()
	stopParse() // ended already unless the consuming side gave up
	ps.wait()
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
	batch    *store.Batch
	probe    chan<- struct{}
	released func() // Options.Holding's, for a large checkpoint; else nil
}

// release ends w's span of Options.Holding, if it has one.
func (w work) release() {
	if w.released != nil {
		w.released()
	}
}

// commitLoop is the committing goroutine: it commits each batch in turn
// and hands it back on free (the consuming side empties it), and answers each probe once every
// batch before it is durable. After a commit fails for good it sends the
// error on commitErr and drains batches, committing nothing more, so that
// the consuming side never blocks.
func (e *Engine) commitLoop(ctx context.Context, batches <-chan work, free chan<- *store.Batch, commitErr chan<- error) {
	for w := range batches {
		if w.probe != nil {
			close(w.probe) // every batch before it is durable
			continue
		}
		err := e.commitRetrying(ctx, w.batch)
		if err == nil {
			w.batch.DropEncoded() // garbage once committed: before a span ends, whose collection frees it
		}
		w.release()
		if err != nil {
			commitErr <- err
			for w := range batches {
				w.release()
			}
			return
		}
		free <- w.batch
	}
}

// run is one Run of the engine on its consuming goroutine: the batch being
// filled, the per-source states, the timers, and the channels to the
// committing goroutine.
type run struct {
	e         *Engine
	opt       *Options
	in        <-chan ingest.Line // the lines, for how many wait
	parse     *parseStage
	batches   chan<- work
	free      chan *store.Batch
	commitErr <-chan error

	state *store.State // the clients' usage, checkpointed into the batches
	// evicted, loaded and notKept are the State's figures as last
	// exported.
	evicted, loaded, notKept uint64
	b                        *store.Batch // the batch being filled
	lines                    int          // lines in b
	postponed                int          // times b's delay was over while its lines' sources were behind
	timer                    Timer        // MaxDelay after b's first line; nil while b is empty
	timerC                   <-chan time.Time
	cur                      *sourceState // the state of the source of the last line
	behindSources            int          // sources whose last line taken was read behind (sourceState.behind)
	asks                     []*barrier   // barriers not yet taken by the parse stage
	states                   map[string]*sourceState

	det     *Detection
	judging bool // det sweeps and raises findings
}

// consume takes lines, timers, sweeps, silences and probes until in is
// closed or a commit fails.
func (r *run) consume() error {
	var (
		sweepTimer Timer
		sweepC     <-chan time.Time
		silencesC  <-chan struct{}
	)
	if r.judging {
		silencesC = r.det.SilencesChanged
		if err := r.sweep(); err != nil {
			return err
		}
		sweepTimer = r.opt.NewTimer(r.det.SweepEvery)
		sweepC = sweepTimer.C()
		defer func() { sweepTimer.Stop() }()
	}
	for {
		var (
			askC chan<- *barrier
			ask  *barrier
		)
		if len(r.asks) > 0 {
			askC, ask = r.parse.barriers, r.asks[0]
		}
		select {
		case c, ok := <-r.parse.out:
			if !ok {
				return r.end()
			}
			if more, err := r.drain(c); err != nil || !more {
				return err
			}
		case <-r.timerC:
			r.delayOver()
		case askC <- ask:
			r.asks = r.asks[1:]
		case <-sweepC:
			if err := r.sweep(); err != nil {
				return err
			}
			sweepTimer = r.opt.NewTimer(r.det.SweepEvery)
			sweepC = sweepTimer.C()
		case <-silencesC:
			if err := r.reloadSilences(); err != nil {
				return err
			}
		case probe := <-r.opt.Probes:
			r.asks = append(r.asks, &barrier{probe: probe})
		case err := <-r.commitErr:
			return err
		}
	}
}

// delayOver is the batch's delay running out: the batch commits once the
// lines read before now have come through the parse stage, unless a
// backlog is being read (behind). Then its lines wait on the accounting,
// not on the commit, and every checkpoint rewrites each client it dirtied
// whole: the delay starts again, and the batch commits at its size (full), once
// its delay is over without a backlog, or after maxPostpones delays.
func (r *run) delayOver() {
	r.timer, r.timerC = nil, nil
	if r.behind() && r.postponed < maxPostpones {
		r.postponed++
		r.timer = r.opt.NewTimer(r.opt.MaxDelay)
		r.timerC = r.timer.C()
		return
	}
	r.asks = append(r.asks, &barrier{flush: true})
}

// maxPostpones bounds how many times a batch's delay is extended while a
// backlog is read (run.behind): with the default MaxDelay, a batch of a
// backlog commits within 4.25 s of its first line, or at its size (full).
// At 10,000 clients × 30 scopes, a checkpoint every 250 ms rewrote every
// client four times a second while the live tail caught up, and one
// every 1.25 s (four postponements) left the tail at 0.74 times the
// scan's lines/s, which waits for its size alone.
const maxPostpones = 16

// behind reports whether the sources are reading a backlog: a source's
// last line taken was read far from the end of its file
// (ingest.Position.Behind), or half the sources' queue to the engine or
// more is waiting (which a Kafka source, whose records do not say,
// shows; the queue alone, sampled when the delay ran out, often found a
// tail catching up at 10,000 clients just drained by the parse stage).
func (r *run) behind() bool {
	return r.behindSources > 0 || cap(r.in) > 0 && 2*len(r.in) >= cap(r.in)
}

// sawBehind records whether the line just taken from the current source
// was read behind.
func (r *run) sawBehind(behind bool) {
	if r.cur.behind == behind {
		return
	}
	r.cur.behind = behind
	if behind {
		r.behindSources++
	} else {
		r.behindSources--
	}
}

// drain takes the lines of c and of the chunks already parsed behind it
// in a tight loop (the full select costs more than handling a chunk), at
// most drainMax lines so that the timers and signals are looked at. more
// is false once the input is closed and everything is committed.
func (r *run) drain(c *chunk) (more bool, err error) {
	for n := 0; ; {
		n += len(c.lines) // before takeChunk hands c back
		if err := r.takeChunk(c); err != nil {
			return false, err
		}
		if n >= drainMax {
			return true, nil
		}
		var ok bool
		select {
		case c, ok = <-r.parse.out:
			if !ok {
				return false, r.end()
			}
		default:
			return true, nil
		}
	}
}

// takeChunk takes the lines of c in order and hands c back to the parse
// stage.
func (r *run) takeChunk(c *chunk) error {
	if b := c.barrier; b != nil {
		if b.pending--; b.pending > 0 {
			return nil
		}
		return r.reached(b)
	}
	if r.cur == nil || r.cur.name != c.source {
		r.cur = r.states[c.source]
		if r.cur == nil {
			r.cur = r.e.newSourceState(c.source)
			r.states[c.source] = r.cur
		}
	}
	for i := range c.lines {
		events, places, err := c.lineEvents(i)
		if err := r.take(c.lines[i], events, places, err); err != nil {
			return err
		}
	}
	r.parse.recycle(c)
	return nil
}

// take handles one parsed line and commits the batch once it is full.
func (r *run) take(ln ingest.Line, events []ingest.Event, places []place, parseErr error) error {
	if ln.Release != nil {
		return r.release(ln.Pos, ln.Release)
	}
	if ln.Restore != nil {
		return r.restore(ln.Restore)
	}
	r.cur.handle(ln, events, places, parseErr, r.b, r.opt.Accountant, r.det, r.state)
	r.sawBehind(ln.Pos.Behind)
	if r.lines == 0 && !r.opt.Backfill {
		r.timer = r.opt.NewTimer(r.opt.MaxDelay)
		r.timerC = r.timer.C()
	}
	r.lines++
	if r.opt.taken != nil {
		r.opt.taken()
	}
	if r.full() {
		return r.flush()
	}
	return nil
}

// full reports whether the batch is to be committed now: once the State
// is pressed for memory, and once it holds MaxEvents lines or events,
// unless a backlog is read (a scan, or sources behind). A backlog's
// batch also waits until it holds linesPerRecord lines for each client it
// changed: every checkpoint writes those clients whole, so at 10,000
// clients a checkpoint every 50,000 lines wrote a record for every five
// lines, and took a third of the scan's time.
func (r *run) full() bool {
	if r.state.Pressed() {
		return true
	}
	n := max(r.lines, r.b.Events)
	if n < r.opt.MaxEvents {
		return false
	}
	if !r.opt.Backfill && !r.behind() {
		return true
	}
	return n >= linesPerRecord*r.state.Dirty()
}

// linesPerRecord is how many lines a backlog's checkpoint holds at
// least for each client record it writes (run.full).
const linesPerRecord = 25

// release lets go of the partition at pos (ingest.Release): what came
// before commits, then the partition's clients leave memory and the
// store, with their findings and windows, together with its position, in
// one transaction.
func (r *run) release(pos ingest.Position, rel *ingest.Release) error {
	err := r.flush()
	if err == nil {
		key := store.PositionKey{Source: pos.Source, File: pos.File}
		ids := r.dropOwned(key)
		r.b.DropPositions = append(r.b.DropPositions, key)
		if err = r.commitIdle(); err == nil {
			r.opt.Metrics.Released.Add(float64(len(ids)))
		}
	}
	rel.Done <- err
	return err
}

// dropOwned deletes, from memory and in the next batch, the clients of
// the partition at key, with their findings and windows, and returns
// their ids.
func (r *run) dropOwned(key store.PositionKey) []string {
	ids := r.state.Owned(key)
	for _, id := range ids {
		r.state.Forget(id)
		r.b.DropClients[id] = struct{}{}
		if r.det != nil && r.det.Detectors != nil {
			r.det.Detectors.Forget(id)
		}
	}
	if r.det != nil && r.det.Findings != nil {
		r.det.Findings.DropClients(ids)
	}
	return ids
}

// restore takes on a partition's state read from its changelog
// (ingest.Restore): what came before commits, with whatever this
// instance still held of the partition deleted, then the snapshot's
// clients are written into the store with the partition's position and
// the detectors take them on, in one transaction.
func (r *run) restore(rs *ingest.Restore) error {
	s := rs.Snapshot
	err := r.flush()
	if err == nil && len(r.dropOwned(s.Key)) > 0 {
		err = r.commitIdle()
	}
	if err == nil {
		r.b.Restore = s
		r.b.SetPosition(s.Position)
		known := r.opt.Accountant.Known()
		for _, c := range s.Clients {
			r.state.Adopt(c.ID, s.Key)
			if r.det != nil && r.det.Detectors != nil {
				r.det.Detectors.Load(c) // and into known
			} else {
				known.Load(c)
			}
		}
		if r.det != nil {
			if r.det.Detectors != nil {
				var now time.Time
				if r.det.DataClock == nil && r.det.Now != nil {
					now = r.det.Now() // the daemon drops windows that ended; a scan reads no partition
				}
				r.det.Detectors.LoadWindows(s.Windows, now)
			}
			if r.det.Findings != nil {
				r.det.Findings.Adopt(s.Findings)
			}
			if r.det.Coverage != nil {
				r.det.Coverage.Merge(s.Key.Source, s.Coverage)
			}
		}
		err = r.commitIdle()
	}
	rs.Done <- err
	return err
}

// stopTimer stops the batch-delay timer.
func (r *run) stopTimer() {
	if r.timer != nil {
		r.timer.Stop()
		r.timer, r.timerC = nil, nil
	}
}

// flush moves what the sources and the detection hold into the batch,
// hands the batch to the committing goroutine, and takes an empty one.
func (r *run) flush() error {
	r.stopTimer()
	var released func()
	if r.opt.Holding != nil && r.state.DirtyBytes() >= r.opt.HoldingBytes {
		released = r.opt.Holding()
	}
	sent := false
	defer func() {
		if !sent && released != nil {
			released()
		}
	}()
	for _, st := range r.states {
		st.flush(r.b)
	}
	if r.det != nil {
		if r.det.Findings != nil {
			r.det.Findings.Flush(r.b)
		}
		if r.det.Sweeper != nil {
			r.det.Sweeper.Flush(r.b) // the clients it pruned
			for id := range r.b.DropClients {
				r.state.Forget(id)
			}
		}
		if r.det.Detectors != nil {
			r.det.Detectors.FlushWindows(r.b) // with the lines that filled them
		}
		r.det.Coverage.Flush(r.b)
	}
	if err := r.state.Err(); err != nil {
		return err // a client's record could not be read back: its events would be lost
	}
	// The batch in flight commits before this one's records are encoded:
	// a checkpoint is held encoded, and again in bbolt's pages, until it
	// commits, and encoding the next one meanwhile would hold two (with
	// 10,000 clients, 30 MiB each). Nothing is lost by it: this goroutine
	// waited for that commit after sending anyway.
	var next *store.Batch
	select {
	case next = <-r.free:
		r.committed(next)
	case err := <-r.commitErr:
		return err
	}
	r.state.Checkpoint(r.b)
	if r.lines == 0 && r.b.Empty() {
		r.free <- next
		return nil
	}
	if err := r.send(work{batch: r.b, released: released}); err != nil {
		return err
	}
	sent = true
	r.b, r.lines, r.postponed = next, 0, 0
	return nil
}

// committed takes back b, committed (or never sent), empties it, and
// evicts the clients that are durable now if the State holds too many.
func (r *run) committed(b *store.Batch) {
	r.state.Durable(b.Gen)
	b.Reset()
	r.state.Evict()
	m := r.opt.Metrics
	evicted, loaded := r.state.Stats()
	m.Evicted.Add(float64(evicted - r.evicted))
	m.Loaded.Add(float64(loaded - r.loaded))
	r.evicted, r.loaded = evicted, loaded
	notKept := r.state.NotKept()
	m.ScopesNotKept.Add(float64(notKept - r.notKept))
	r.notKept = notKept
	m.ClientsInMemory.Set(float64(r.state.Len()))
}

// send hands w to the committing goroutine.
func (r *run) send(w work) error {
	select {
	case r.batches <- w:
		return nil
	case err := <-r.commitErr:
		return err
	}
}

// idle waits until no batch is being committed: exactly one may be
// outstanding, and a sweep needs none.
func (r *run) idle() error {
	select {
	case b := <-r.free:
		r.committed(b)
		r.free <- b
		return nil
	case err := <-r.commitErr:
		return err
	}
}

// sweep commits what was read, waits for it to be durable (the sweeper
// reads clients from the store), judges, and commits the findings that
// changed and the clients it pruned, the latter in chunks as it goes.
func (r *run) sweep() error {
	if err := r.commitIdle(); err != nil {
		return err
	}
	if err := r.det.Sweeper.SweepCommitting(r.det.Now(), r.det.Clients, r.commitIdle); err != nil {
		return err
	}
	return r.flush()
}

// commitIdle commits what the run holds and waits until it is durable.
func (r *run) commitIdle() error {
	if err := r.flush(); err != nil {
		return err
	}
	return r.idle()
}

// end commits everything once in is closed, judging a last time.
func (r *run) end() error {
	var err error
	if r.judging {
		err = r.sweep()
	} else {
		err = r.flush()
	}
	// Probes the parse stage ended before taking: everything is read and
	// committed.
	for _, b := range r.asks {
		if b.probe != nil && err == nil {
			err = r.answer(b.probe)
		}
	}
	r.asks = nil
	return err
}

// reloadSilences applies the stored silences anew after one was added or
// expired, and commits the findings they change.
func (r *run) reloadSilences() error {
	silences, err := r.det.LoadSilences()
	if err != nil {
		r.opt.Logger.Warn("silences not reloaded", "err", err)
		return nil
	}
	r.det.Findings.SetSilences(silences)
	return r.flush()
}

// reached does what b was asked for, now that every line read before it
// has been taken.
func (r *run) reached(b *barrier) error {
	if b.probe != nil {
		return r.answer(b.probe)
	}
	if b.flush && r.timer == nil {
		return r.flush() // unless a new batch began since: its own timer runs
	}
	return nil
}

// answer commits what the engine holds and has probe closed once that
// commit and every one before it is durable.
func (r *run) answer(probe chan<- struct{}) error {
	if err := r.flush(); err != nil {
		return err
	}
	return r.send(work{probe: probe})
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
	e.opt.Metrics.BatchRecords.Observe(float64(len(b.Records)))
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
	lines     uint64
	held      uint64 // pieces of a line not yet ended, counted with their end
	malformed uint64
	ignored   uint64
	// last holds the position of the newest line of each file read in this
	// batch; a source can interleave files (a rotated file being drained
	// beside the live one), and each file's progress must be saved.
	last []ingest.Position
	m    sourceMetrics
	cov  *detect.SourceCoverage // this source's coverage, when detecting
	// watch is set until the source yields its first event.
	watch *noEvents
	// behind is set while the source's last line taken was read behind
	// (run.behind).
	behind bool
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
	st := &sourceState{name: name}
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

// handle counts one parsed line, with its events and parse outcome, and
// folds the events into b. It never fails: a malformed line is counted and
// skipped.
func (st *sourceState) handle(ln ingest.Line, events []ingest.Event, places []place, err error, b *store.Batch, acc *detect.Accountant, det *Detection, state *store.State) {
	if ln.Pos.AfterLoss && det != nil {
		det.Coverage.Break(st.name) // the lost lines are a gap in what was observed
	}
	if errors.Is(err, errNoParser) {
		st.lines++
		st.mark(ln.Pos)
		st.malformed++
		st.m.malformed.WithLabelValues(st.name, "no_parser").Inc()
		return
	}
	skip, pe := ingest.Outcome(err)
	if skip == ingest.SkipPartial {
		// A piece of a line the container runtime split. Its position is
		// saved only with the piece that ends the line, so a restart in
		// between reads the whole line again, and it is counted then.
		st.held++
		st.m.ignore(skip)
		return
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
			return // malformed whole
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
		return
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
				if i < len(places) && places[i].ok {
					det.Detectors.Placed(ev.IP, places[i].p)
				}
				det.Detectors.Enrich(ev)
			}
		}
		switch acc.Apply(ev, b) {
		case detect.Unattributed:
			if ev.Kind == ingest.KindUse {
				st.m.unattributed.Inc()
			}
		case detect.Unmapped:
			st.m.unmapped.Inc()
		case detect.BadClient:
			st.m.malformed.WithLabelValues(st.name, "bad_client").Inc()
		case detect.Unknown:
			if k := int(ev.Kind); k < len(st.m.unknown) {
				st.m.unknown[k].Inc()
			}
		}
		if ln.Pos.Partition && ev.Client != "" {
			state.Own(ev.Client, store.PositionKey{Source: ln.Pos.Source, File: ln.Pos.File})
		}
		if det != nil {
			if det.DataClock != nil {
				det.DataClock.Observe(ev.Time) // a finding this event raises opens as of it
			}
			if det.Detectors != nil {
				det.Detectors.Observe(ev)
			}
			if st.cov == nil {
				st.cov = det.Coverage.Source(st.name)
			}
			st.cov.Observe(ev.Time)
		}
	}
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
