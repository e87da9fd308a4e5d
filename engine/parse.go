package engine

import (
	"context"
	"errors"
	"net/netip"
	"sync"

	"github.com/scopewatch/scopewatch/detect"
	"github.com/scopewatch/scopewatch/ingest"
)

// The parse stage runs the parsers off the accounting goroutine: a
// dispatcher takes the engine's input and hands each source's lines, in
// runs, to that source's own parsing goroutine, which sends them on as
// chunks. Lines keep their order within a source; the accounting sees the
// sources' chunks in the order they were parsed, and stays on one
// goroutine. With a placer (Detection.Place), the parsing goroutine also
// places each event's address (GeoIP) and hands the place on beside the
// event, filling in the event's country when its line names none.
//
// A barrier asked by the accounting (a batch's delay is over, a liveness
// probe) is taken by the dispatcher between two lines and follows the
// lines read before it through every source's parser: once it has come
// out of all of them, each of those lines has been handed to the
// accounting, which then commits them.

// chunkLines is the most lines a chunk holds; fewer when the input has no
// more queued, so that a quiet source's line is not held back.
const chunkLines = 256

// parsedAhead is the most chunks parsed and waiting for the accounting.
// Their texts keep their read blocks alive: at the bench's 780-byte lines a
// chunk holds most of a 256 KiB block, and 8 waiting chunks peaked 2 MiB
// higher than 4 with no gain in speed (the accounting, not the parse, is
// the slower side; a checkpoint that stalls it fills either in
// milliseconds).
const parsedAhead = 4

// errNoParser is the outcome of a line of a source without a parser.
var errNoParser = errors.New("no parser for the source")

// chunk is a run of consecutive lines of one source with their parse
// outcomes, or one copy of a barrier. The events of line i are
// events[ends[i-1]:ends[i]].
type chunk struct {
	source string
	lines  []ingest.Line
	errs   []error // per line: nil, an ingest.Skip, a *ingest.ParseError or errNoParser
	ends   []int
	events []ingest.Event
	// places holds the place of each event's address, found by the
	// stage's placer; nil without one.
	places  []place
	barrier *barrier // set on a barrier's copy, which holds no lines
}

// place is where an event's address is, found off the accounting
// goroutine; ok is false when the detectors do not place the address.
type place struct {
	p  detect.Place
	ok bool
}

// lineEvents returns the events, their places (nil without a placer) and
// the parse outcome of line i.
func (c *chunk) lineEvents(i int) ([]ingest.Event, []place, error) {
	from := 0
	if i > 0 {
		from = c.ends[i-1]
	}
	var places []place
	if c.places != nil {
		places = c.places[from:c.ends[i]:c.ends[i]]
	}
	return c.events[from:c.ends[i]:c.ends[i]], places, c.errs[i]
}

func (c *chunk) reset() {
	clear(c.lines) // drop the lines' texts
	clear(c.errs)
	clear(c.events)
	clear(c.places)
	c.lines, c.errs, c.ends, c.events = c.lines[:0], c.errs[:0], c.ends[:0], c.events[:0]
	if c.places != nil {
		c.places = c.places[:0]
	}
}

// barrier is what the accounting does once every line read before it is
// in its hands: commit the batch (flush), and answer a probe once that is
// durable (probe).
type barrier struct {
	pending int // copies still to come out of the stage; set by the dispatcher
	flush   bool
	probe   chan<- struct{}
}

// item is what the dispatcher hands a source's parser: a run of lines or
// a barrier.
type item struct {
	lines   []ingest.Line
	barrier *barrier
}

// parseStage is the running parse stage of one Run.
type parseStage struct {
	parsers map[string]ingest.Parser
	// placer places the events' addresses (Detection.Place); nil
	// without one.
	placer   func(netip.Addr) (detect.Place, bool)
	in       <-chan ingest.Line
	barriers chan *barrier      // asked by the accounting
	out      chan *chunk        // closed once every line of in is parsed
	free     chan *chunk        // chunks handed back by the accounting
	spare    chan []ingest.Line // emptied runs of lines, for reuse
	stop     context.Context
	wg       sync.WaitGroup
}

// startParse starts the stage on in. It ends once in is closed and every
// line is parsed, or when stop ends (the accounting gave up: what is in
// flight is dropped, and a restart reads it again).
func startParse(stop context.Context, parsers map[string]ingest.Parser, placer func(netip.Addr) (detect.Place, bool), in <-chan ingest.Line) *parseStage {
	ps := &parseStage{
		parsers: parsers, placer: placer, in: in, stop: stop,
		barriers: make(chan *barrier),
		out:      make(chan *chunk, parsedAhead),
		free:     make(chan *chunk, 16),
		spare:    make(chan []ingest.Line, 16),
	}
	ps.wg.Go(ps.dispatch)
	return ps
}

// wait returns once every goroutine of the stage has ended.
func (ps *parseStage) wait() { ps.wg.Wait() }

// recycle hands c and its lines back for reuse once the accounting is
// done with them.
func (ps *parseStage) recycle(c *chunk) {
	if c.barrier != nil {
		return
	}
	doneTexts(c.lines)
	c.reset()
	select {
	case ps.spare <- c.lines:
	default: // enough spare runs
	}
	c.lines = nil
	select {
	case ps.free <- c:
	default: // enough spare chunks
	}
}

// doneTexts hands the blocks the lines' texts lie in back to their
// readers (ingest.Block), once for each run of lines of one block.
func doneTexts(lines []ingest.Line) {
	var (
		b *ingest.Block
		n int
	)
	for i := range lines {
		if lb := lines[i].Block; lb != b {
			if n > 0 {
				b.Done(n)
			}
			b, n = lb, 0
		}
		if b != nil {
			n++
		}
	}
	if n > 0 {
		b.Done(n)
	}
}

// sourceParser is one source's parsing goroutine as the dispatcher sees it.
type sourceParser struct {
	name    string
	in      chan item
	pending []ingest.Line // lines taken for it, not yet handed on
}

// dispatcher is the state of the dispatching goroutine.
type dispatcher struct {
	*parseStage
	srcs    map[string]*sourceParser
	order   []*sourceParser // srcs in the order they appeared
	running sync.WaitGroup  // the parsing goroutines
}

// dispatch takes lines from in and hands each source's run of lines to
// its parser once chunkLines are pending or in has none queued, and
// passes barriers on.
func (ps *parseStage) dispatch() {
	d := &dispatcher{parseStage: ps, srcs: map[string]*sourceParser{}}
	defer func() {
		for _, sp := range d.order {
			close(sp.in)
		}
		d.running.Wait()
		close(ps.out)
	}()
	for {
		var (
			ln ingest.Line
			ok bool
			b  *barrier
		)
		select {
		case ln, ok = <-ps.in:
		case b = <-ps.barriers:
		default:
			// Nothing queued: hand on every pending run, then wait.
			if !d.handOnAll() {
				return
			}
			select {
			case ln, ok = <-ps.in:
			case b = <-ps.barriers:
			case <-ps.stop.Done():
				return
			}
		}
		switch {
		case b != nil:
			if !d.pass(b) {
				return
			}
		case !ok:
			d.handOnAll()
			return
		default:
			if !d.take(ln) {
				return
			}
		}
	}
}

// take adds ln to its source's pending run, handing the run on when full.
func (d *dispatcher) take(ln ingest.Line) bool {
	sp := d.srcs[ln.Pos.Source]
	if sp == nil {
		sp = &sourceParser{name: ln.Pos.Source, in: make(chan item, 4), pending: d.run()}
		d.srcs[sp.name] = sp
		d.order = append(d.order, sp)
		p := d.parsers[sp.name]
		d.running.Go(func() { d.parse(sp.name, p, sp.in) })
	}
	sp.pending = append(sp.pending, ln)
	return len(sp.pending) < chunkLines || d.handOn(sp)
}

// handOn hands sp's pending run to its parser. It reports false when the
// stage is stopping.
func (d *dispatcher) handOn(sp *sourceParser) bool {
	if len(sp.pending) == 0 {
		return true
	}
	if !d.send(sp, item{lines: sp.pending}) {
		return false
	}
	sp.pending = d.run()
	return true
}

func (d *dispatcher) handOnAll() bool {
	for _, sp := range d.order {
		if !d.handOn(sp) {
			return false
		}
	}
	return true
}

// pass sends b after the pending lines of every source, through its
// parser, and one copy of it straight to the accounting, so that a stage
// with no source yet passes it too.
func (d *dispatcher) pass(b *barrier) bool {
	if !d.handOnAll() {
		return false
	}
	b.pending = len(d.order) + 1
	for _, sp := range d.order {
		if !d.send(sp, item{barrier: b}) {
			return false
		}
	}
	select {
	case d.out <- &chunk{barrier: b}:
		return true
	case <-d.stop.Done():
		return false
	}
}

func (d *dispatcher) send(sp *sourceParser, it item) bool {
	select {
	case sp.in <- it:
		return true
	case <-d.stop.Done():
		return false
	}
}

// run returns an empty slice for a run of lines, a spare one if any.
func (ps *parseStage) run() []ingest.Line {
	select {
	case l := <-ps.spare:
		return l
	default:
		return make([]ingest.Line, 0, chunkLines)
	}
}

// parse is the parsing goroutine of source name: it parses each run of
// lines into a chunk and sends it, and barriers, to the accounting.
func (ps *parseStage) parse(name string, p ingest.Parser, items <-chan item) {
	for it := range items {
		c := &chunk{barrier: it.barrier}
		if it.barrier == nil {
			c = ps.chunk()
			c.source, c.lines = name, it.lines
			for _, ln := range it.lines {
				var err error
				if ln.Request() {
					// not a line: passed on, in its place, untouched
				} else if p == nil {
					err = errNoParser
				} else {
					c.events, err = ingest.ParseLine(p, ln, c.events)
				}
				c.errs = append(c.errs, err)
				c.ends = append(c.ends, len(c.events))
				if ps.placer != nil {
					c.places = ps.placeEvents(c.places, c.events[len(c.places):])
				}
			}
		}
		select {
		case ps.out <- c:
		case <-ps.stop.Done():
			return
		}
	}
}

// placeEvents appends the place of each event's address to places, and
// gives an event whose line named no country the place's.
func (ps *parseStage) placeEvents(places []place, events []ingest.Event) []place {
	for i := range events {
		ev := &events[i]
		var pl place
		if ev.IP.IsValid() {
			if pl.p, pl.ok = ps.placer(ev.IP); pl.ok && ev.Country == "" {
				ev.Country = pl.p.Country
			}
		}
		places = append(places, pl)
	}
	return places
}

// chunk returns a spare chunk or a new one.
func (ps *parseStage) chunk() *chunk {
	select {
	case c := <-ps.free:
		return c
	default:
		return &chunk{errs: make([]error, 0, chunkLines), ends: make([]int, 0, chunkLines)}
	}
}
