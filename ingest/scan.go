package ingest

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"os"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/scopewatch/scopewatch/rules"
	"github.com/scopewatch/scopewatch/store"
)

// Defaults shared by the file sources.
const (
	// DefaultMaxLineSize is the line limit of a source that sets none:
	// the default of its max_line_bytes.
	DefaultMaxLineSize = rules.DefaultMaxLineBytes
	defaultChunkSize   = 256 << 10
)

// This file is the one home of the line limit. Every reader of log lines
// (the live tail, rotated files, scan and validate --sample) measures a
// line the same way: its bytes before the newline, a carriage return
// included. A line over its source's limit is not dropped: it is handed on
// as a line of its own, at its position, whose text stands for it (see
// tooLongLine), and ParseLine turns it into a malformed line with reason
// too_long. So it is counted like any malformed line, and its position is
// committed like any line's.

// tooLongLine returns the line that stands for a line of n bytes over the
// limit. Its text is a newline followed by n and the limit: no line read
// from a file holds a newline, so it cannot be taken for one.
func tooLongLine(n int64, limit int, pos Position) Line {
	text := make([]byte, 1, 24)
	text[0] = '\n'
	text = strconv.AppendInt(text, n, 10)
	text = append(text, ' ')
	text = strconv.AppendInt(text, int64(limit), 10)
	return Line{Text: text, Pos: pos}
}

// TooLongLine returns the line that stands for a line of n bytes over its
// source's limit, for readers outside this package (a Kafka record).
func TooLongLine(n int64, limit int, pos Position) Line { return tooLongLine(n, limit, pos) }

// TooLong reports whether ln stands for a line longer than its source's
// limit, and if so the line's length and the limit.
func TooLong(ln Line) (n int64, limit int, ok bool) {
	t := ln.Text
	if len(t) == 0 || t[0] != '\n' {
		return 0, 0, false
	}
	a, b, _ := bytes.Cut(t[1:], []byte{' '})
	n, _ = strconv.ParseInt(string(a), 10, 64)
	l, _ := strconv.Atoi(string(b))
	return n, l, true
}

// ParseLine parses a line a Source produced with p, as every consumer of
// lines does: a line longer than its source's limit is malformed, with
// reason too_long, and p never sees it. An event dated outside the years
// 1678 to 2262 is malformed too, with reason bad_time: no clock writes
// such a time, and every later stage holds an event's time as Unix
// nanoseconds, which span exactly those years. Like a malformed record of
// a page, it loses only its own event: the line is malformed whole when
// it had no other (ParseError.Records counts the rest).
func ParseLine(p Parser, ln Line, dst []Event) ([]Event, error) {
	if len(ln.Text) > 0 && ln.Text[0] == '\n' {
		return dst, tooLongError(ln)
	}
	n := len(dst)
	dst, err := p.Parse(ln.Text, ln.Pos, dst)
	for i := n; i < len(dst); i++ {
		if !inNanoRange(dst[i].Time) {
			return dropOutOfRange(ln, dst, n, err)
		}
	}
	return dst, err
}

// dropOutOfRange removes the events of dst[n:] that inNanoRange refuses
// and returns the line's outcome with them counted as malformed.
func dropOutOfRange(ln Line, dst []Event, n int, err error) ([]Event, error) {
	kept, dropped := n, 0
	var first time.Time
	for i := n; i < len(dst); i++ {
		if inNanoRange(dst[i].Time) {
			dst[kept] = dst[i]
			kept++
			continue
		}
		if dropped == 0 {
			first = dst[i].Time
		}
		dropped++
	}
	clear(dst[kept:])
	dst = dst[:kept]
	var pe *ParseError
	if errors.As(err, &pe) && pe.Records > 0 {
		pe.Records += dropped // a page with malformed records already
		return dst, err
	}
	pe = &ParseError{Source: ln.Pos.Source, Line: ln.Pos.Line, Offset: ln.Pos.Offset, Field: "time", Reason: ReasonBadTime,
		Err: fmt.Errorf("time %s is outside the years 1678 to 2262", first.Format(time.RFC3339Nano))}
	if kept > n {
		pe.Records = dropped // the line's other events stand
	}
	return dst, pe
}

// inNanoRange reports whether a Unix time in nanoseconds holds t (from
// late 1677 to 2262), leaving out its least value, which stores take for
// the zero time.
func inNanoRange(t time.Time) bool {
	ns := t.UnixNano() // wraps around out of range
	return ns != math.MinInt64 && time.Unix(0, ns).Equal(t)
}

func tooLongError(ln Line) error {
	n, limit, _ := TooLong(ln)
	return &ParseError{
		Source: ln.Pos.Source, Line: ln.Pos.Line, Offset: ln.Pos.Offset, Reason: ReasonTooLong,
		Err: fmt.Errorf("line of %d bytes is longer than max_line_bytes (%d); skipped", n, limit),
	}
}

// lineReader splits a stream into lines without copying each one: it reads
// into large chunks and hands out sub-slices of them. A chunk is not
// written again while a line from it is in use: a line that straddles the
// end of a chunk is moved to the start of a fresh chunk, and a chunk is
// read into again only once the reader has moved on from it and every
// line sent from it is Done (Block). Lines longer than max are skipped
// whole (never held in memory) and reported as too long, with their
// length in long.
type lineReader struct {
	src     io.Reader
	cur     *Block // the block chunk is, nil before the first fill
	chunk   []byte
	sent    int64 // lines sent from cur (countSent)
	blocks  *blocks
	r, w    int // unread data is chunk[r:w]
	size    int
	max     int
	skip    bool  // discarding the rest of an oversized line
	skipped int64 // bytes of the oversized line discarded so far
	long    int64 // length of the last too-long line returned
	err     error // sticky non-EOF error
}

func newLineReader(src io.Reader, maxLine, chunkSize int) *lineReader {
	if maxLine <= 0 {
		maxLine = DefaultMaxLineSize
	}
	size := max(chunkSize, 4096)
	return &lineReader{src: src, size: size, max: maxLine, blocks: &blocks{size: size}}
}

// next returns the next complete line without its terminator (and without
// a trailing carriage return) and the number of bytes it occupied in the
// stream. An oversized line is returned with oversized set and a nil text.
// ok is false when no complete line is buffered and the source has no more
// data for now; a partial line stays buffered for the next call.
func (lr *lineReader) next() (text []byte, n int64, oversized, ok bool) {
	for {
		data := lr.chunk[lr.r:lr.w]
		if lr.skip {
			if i := bytes.IndexByte(data, '\n'); i >= 0 {
				n = lr.skipped + int64(i) + 1
				lr.long = n - 1
				lr.r += i + 1
				lr.skip, lr.skipped = false, 0
				return nil, n, true, true
			}
			lr.skipped += int64(len(data))
			lr.r = lr.w
		} else if i := bytes.IndexByte(data, '\n'); i >= 0 {
			lr.r += i + 1
			if i > lr.max {
				lr.long = int64(i)
				return nil, int64(i) + 1, true, true
			}
			text = data[:i:i]
			if i > 0 && text[i-1] == '\r' {
				text = text[: i-1 : i-1]
			}
			return text, int64(i) + 1, false, true
		} else if len(data) > lr.max {
			lr.skip, lr.skipped = true, int64(len(data))
			lr.r = lr.w
		}
		if !lr.fill() {
			return nil, 0, false, false
		}
	}
}

// fill reads more data, moving a partial line into a fresh chunk when the
// current one is full. It reports whether anything was read.
func (lr *lineReader) fill() bool {
	if lr.err != nil {
		return false
	}
	if lr.chunk == nil || lr.w == len(lr.chunk) {
		// A line longer than half a chunk moves to one twice its size,
		// for as long as it grows (up to past max, when it is skipped):
		// the chunks held by the lines in flight stay of the usual size,
		// 256 KiB, not twice max_line_bytes.
		size := lr.size
		if part := lr.w - lr.r; 2*part > size {
			size = 2 * part
		}
		fresh := lr.blocks.get(size)
		lr.w = copy(fresh.b, lr.chunk[lr.r:lr.w])
		lr.r = 0
		if lr.cur != nil {
			lr.cur.retire(lr.sent)
		}
		lr.cur, lr.chunk, lr.sent = fresh, fresh.b, 0
	}
	for range 8 {
		n, err := lr.src.Read(lr.chunk[lr.w:])
		lr.w += n
		if err != nil && !errors.Is(err, io.EOF) {
			lr.err = err
		}
		if n > 0 {
			return true
		}
		if err != nil {
			return false
		}
	}
	return false
}

// countSent counts one more line sent from the current block: a caller
// that sends the text last returned on with its block (Line.Block) calls
// it once the line is sent.
func (lr *lineReader) countSent() { lr.sent++ }

// rest returns the buffered partial line (the final line of a file that
// does not end in a newline) and consumes it. oversized reports that it
// was longer than the limit; it is then returned as nil with its length.
func (lr *lineReader) rest() (text []byte, n int64, oversized bool) {
	if lr.skip {
		n = lr.skipped + int64(lr.w-lr.r)
		lr.r, lr.skip, lr.skipped = lr.w, false, 0
		lr.long = n
		return nil, n, true
	}
	text = lr.chunk[lr.r:lr.w:lr.w]
	n = int64(len(text))
	lr.r = lr.w
	if len(text) > lr.max {
		lr.long = n
		return nil, n, true
	}
	if len(text) > 0 && text[len(text)-1] == '\r' {
		text = text[: len(text)-1 : len(text)-1]
	}
	return text, n, false
}

// buffered reports how many bytes of a partial line are held.
func (lr *lineReader) buffered() int64 {
	if lr.skip {
		return lr.skipped + int64(lr.w-lr.r)
	}
	return int64(lr.w - lr.r)
}

// ScanOptions configure a Scan.
type ScanOptions struct {
	Name  string   // source name, used in positions and metrics
	Paths []string // files to read, plain or gzip-compressed
	// MaxLineSize is the source's max_line_bytes: a longer line is sent
	// as one that ParseLine reports too_long. Default 1 MiB.
	MaxLineSize int
	Positions   PositionStore
	Metrics     *Metrics // nil creates unregistered metrics
	Logger      *slog.Logger
	// Check, when set, is the configuration of the source, whose parser
	// reads each file from its saved position before any of its lines is
	// sent, up to its first event. A file with no event and some
	// malformed lines is sent nothing, so nothing of it is counted and
	// its position is not committed: it is the wrong format (or wrapper)
	// for the source, and once the configuration is fixed a scan reads
	// it whole. Run goes on with the other files and returns a
	// *FormatError for each such file.
	Check *rules.Source
}

// Scan reads a fixed set of files once, for backfills: plain files and
// gzip files (recognised by their magic bytes). It resumes each file from
// its saved position and returns nil when every file has been read.
type Scan struct {
	opts    ScanOptions
	metrics *Metrics
	log     *slog.Logger
	check   Parser
	checkOK error // why Check has no parser
}

var _ Source = (*Scan)(nil)

// NewScan returns a Scan over opts.Paths. It starts nothing.
func NewScan(opts ScanOptions) *Scan {
	if opts.MaxLineSize <= 0 {
		opts.MaxLineSize = DefaultMaxLineSize
	}
	s := &Scan{opts: opts, metrics: opts.Metrics, log: opts.Logger}
	if s.metrics == nil {
		s.metrics = NewMetrics(nil)
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if opts.Check != nil {
		s.check, s.checkOK = NewParser(*opts.Check)
	}
	return s
}

// Name returns the source name.
func (s *Scan) Name() string { return s.opts.Name }

// FormatError reports a file that a Scan did not read because no line of
// it yields an event and some are malformed: the source's format (or
// wrapper) is not the file's. Nothing of the file was counted and its
// position was not saved, so a scan with a corrected configuration reads
// it whole.
type FormatError struct {
	Path   string
	Format string // the source's format
	Tally  Tally  // what the lines from the saved position came to
	Hint   string // what would read the file, or the likely cause
}

// Error says why the file was refused and what would read it.
func (e *FormatError) Error() string {
	mal := e.Tally.MalformedLines()
	top, _ := topReason(e.Tally.Malformed)
	s := fmt.Sprintf("%s: no line yields an event and %d of %d lines are malformed for format %s (mostly %s); the file is not marked as read",
		e.Path, mal, e.Tally.Lines, e.Format, top)
	if e.Hint != "" {
		s += "; " + e.Hint
	}
	return s + "; fix the source and scan the file again"
}

// Run reads every file from its saved position to its end, sending the
// lines to out. It returns nil when done or when ctx ends, a *ReadError
// when a file cannot be read, and the *FormatError of each file the
// check refused, joined, once every other file is read.
func (s *Scan) Run(ctx context.Context, out chan<- Line) error {
	if s.checkOK != nil {
		return fmt.Errorf("check parser: %w", s.checkOK)
	}
	var saved []store.Position
	if s.opts.Positions != nil {
		var err error
		if saved, err = s.opts.Positions.Positions(s.opts.Name); err != nil {
			return fmt.Errorf("source %s: load positions: %w", s.opts.Name, err)
		}
	}
	var refused []error
	for _, path := range s.opts.Paths {
		err := s.scanFile(ctx, path, saved, out)
		if fe := (*FormatError)(nil); errors.As(err, &fe) {
			refused = append(refused, err)
			continue
		}
		if err != nil {
			return err
		}
		if ctx.Err() != nil {
			return nil
		}
	}
	return errors.Join(refused...)
}

func (s *Scan) scanFile(ctx context.Context, path string, saved []store.Position, out chan<- Line) error {
	of, err := openFingerprint(path)
	if err != nil {
		return readError(s.metrics, s.opts.Name, path, "open", err)
	}
	defer of.close()
	var magic [2]byte
	n, _ := of.f.ReadAt(magic[:], 0)
	compressed := n == 2 && magic == [2]byte{0x1f, 0x8b}

	var start, line int64
	if r, ok := bestMatch(of, saved); ok {
		start, line = r.Offset, r.Line
		if !compressed && start > of.size {
			// Truncated since the position was taken: the saved offset
			// no longer means anything in this file.
			start, line = 0, 0
			s.metrics.Rotations.WithLabelValues(s.opts.Name, "truncate").Inc()
		}
	}
	if compressed {
		of.static = true
	}
	// open returns the file's lines from start; done is false when a
	// compressed file ends before start (everything was read before).
	open := func() (src io.Reader, done bool, err error) {
		if !compressed {
			if _, err := of.f.Seek(start, io.SeekStart); err != nil {
				return nil, false, readError(s.metrics, s.opts.Name, path, "seek", err)
			}
			return of.f, false, nil
		}
		if _, err := of.f.Seek(0, io.SeekStart); err != nil {
			return nil, false, readError(s.metrics, s.opts.Name, path, "seek", err)
		}
		zr, err := gzip.NewReader(bufio.NewReaderSize(of.f, 64<<10))
		if err != nil {
			return nil, false, readError(s.metrics, s.opts.Name, path, "gzip", err)
		}
		if _, err := io.CopyN(io.Discard, zr, start); err != nil {
			if errors.Is(err, io.EOF) {
				return nil, true, nil
			}
			return nil, false, readError(s.metrics, s.opts.Name, path, "gzip", err)
		}
		return zr, false, nil
	}

	if s.check != nil {
		src, done, err := open()
		if err != nil || done {
			return err
		}
		if err := s.checkFile(src, path, start, line); err != nil {
			return err
		}
	}
	src, done, err := open()
	if err != nil || done {
		return err
	}
	of.offset, of.line = start, line
	d := drainer{source: s.opts.Name, of: of, lr: newLineReader(src, s.opts.MaxLineSize, defaultChunkSize),
		lines: s.metrics.LinesRead.WithLabelValues(s.opts.Name), oversized: s.metrics.Oversized.WithLabelValues(s.opts.Name)}
	if err := d.drain(ctx, out, true); err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return readError(s.metrics, s.opts.Name, path, "read", err)
	}
	return nil
}

// checkFile reads src with the check parser up to the first line that
// yields an event, and returns a *FormatError when there is none and
// some lines were malformed. A read error is left to the scan proper,
// which reads the same bytes and reports it after sending what it could.
func (s *Scan) checkFile(src io.Reader, path string, start, line int64) error {
	lr := NewLineReader(src, s.opts.Name, path, s.opts.MaxLineSize)
	lr.offset, lr.line = start, line
	var (
		tally Tally
		evs   []Event
	)
	for {
		ln, err := lr.Next()
		if err != nil {
			break
		}
		var perr error
		evs, perr = ParseLine(s.check, ln, evs[:0])
		skip, pe := Outcome(perr)
		if tally.Add(ln, len(evs), skip, pe); tally.Yielding > 0 {
			return nil
		}
	}
	if tally.MalformedLines() == 0 {
		return nil // only lines of no interest: read, and counted as ignored
	}
	return &FormatError{Path: path, Format: s.opts.Check.Format, Tally: tally, Hint: tally.Diagnose(*s.opts.Check)}
}

// LineReader reads the lines of a stream the way every file source does,
// for a reader that is not a source (validate --sample): the same limit,
// the same positions, and a line over the limit returned as the line that
// ParseLine reports too_long.
type LineReader struct {
	lr           *lineReader
	source, path string
	offset, line int64
	done         bool
}

// NewLineReader returns a LineReader of r, whose lines carry source and
// path in their positions; maxLine is the source's max_line_bytes
// (default 1 MiB when 0).
func NewLineReader(r io.Reader, source, path string, maxLine int) *LineReader {
	if maxLine <= 0 {
		maxLine = DefaultMaxLineSize
	}
	return &LineReader{lr: newLineReader(r, maxLine, defaultChunkSize), source: source, path: path}
}

// Next returns the next line, a last one without a newline included. Its
// text stays valid after later calls. It returns io.EOF after the last
// line, or the error that stopped reading.
func (r *LineReader) Next() (Line, error) {
	if r.done {
		return Line{}, io.EOF
	}
	text, n, over, ok := r.lr.next()
	if !ok {
		if r.lr.err != nil {
			r.done = true
			return Line{}, r.lr.err
		}
		text, n, over = r.lr.rest()
		if n == 0 {
			r.done = true
			return Line{}, io.EOF
		}
	}
	r.offset += n
	r.line++
	pos := Position{Source: r.source, Path: r.path, Offset: r.offset, Line: r.line}
	if over {
		return tooLongLine(r.lr.long, r.lr.max, pos), nil
	}
	r.lr.countSent() // never Done: the text stays valid
	return Line{Text: text, Pos: pos}, nil
}

// OpenLines opens the file at path, plain or gzip-compressed (told by its
// magic bytes, as a scan tells it), for reading its lines from the start.
// close closes the file.
func OpenLines(path, source string, maxLine int) (r *LineReader, close func() error, err error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, err
	}
	br := bufio.NewReaderSize(f, 64<<10)
	var src io.Reader = br
	if magic, _ := br.Peek(2); len(magic) == 2 && magic[0] == 0x1f && magic[1] == 0x8b {
		zr, err := gzip.NewReader(br)
		if err != nil {
			f.Close()
			return nil, nil, fmt.Errorf("read %s: %w", path, err)
		}
		src = zr
	}
	return NewLineReader(src, source, path, maxLine), f.Close, nil
}

// bestMatch returns the saved record that matches of with the largest offset.
func bestMatch(of *openFile, saved []store.Position) (store.Position, bool) {
	var best store.Position
	found := false
	for _, r := range saved {
		if of.matches(r) && (!found || r.Offset > best.Offset) {
			best, found = r, true
		}
	}
	return best, found
}

// drainer sends the lines of one file read with a lineReader, keeping the
// file's offset and line number.
type drainer struct {
	source    string
	of        *openFile
	lr        *lineReader
	lines     prometheus.Counter
	oversized prometheus.Counter
	afterLoss bool // the next line sent is the first after lost lines
}

// drain sends every complete line available now. With final, a last line
// without a newline is sent too. It returns ctx's error when ctx ends and
// a read error if the file cannot be read.
func (d *drainer) drain(ctx context.Context, out chan<- Line, final bool) error {
	_, err := d.drainUpTo(ctx, out, final, 0)
	return err
}

// drainUpTo is drain that stops after limit lines (0: no limit),
// reporting whether it stopped for the limit.
func (d *drainer) drainUpTo(ctx context.Context, out chan<- Line, final bool, limit int) (more bool, err error) {
	for sent := 0; limit == 0 || sent < limit; sent++ {
		text, n, over, ok := d.lr.next()
		if !ok {
			if d.lr.err != nil {
				return false, d.lr.err
			}
			if !final {
				return false, nil
			}
			text, n, over = d.lr.rest()
			if n == 0 {
				return false, nil
			}
		}
		ln := Line{Text: text, Pos: d.of.position(d.source, d.of.offset+n, d.of.line+1), Block: d.lr.cur}
		if over {
			ln = tooLongLine(d.lr.long, d.lr.max, ln.Pos)
		}
		ln.Pos.AfterLoss = d.afterLoss
		ln.Pos.Behind = !d.of.static && d.of.size-ln.Pos.Offset > BehindBytes // a compressed file's size is not its lines'
		select {
		case out <- ln:
			if ln.Block != nil {
				d.lr.countSent()
			}
			// Consumed only once handed on: a restarted Run resumes here.
			d.of.offset += n
			d.of.line++
			d.afterLoss = false
			d.lines.Inc()
			if over {
				d.oversized.Inc()
			}
		case <-ctx.Done():
			return false, ctx.Err()
		}
	}
	return true, nil
}
