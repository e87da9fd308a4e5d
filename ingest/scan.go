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

	"github.com/prometheus/client_golang/prometheus"

	"github.com/scopewatch/scopewatch/store"
)

// Defaults shared by the file sources.
const (
	DefaultMaxLineSize = 64 << 10
	defaultChunkSize   = 256 << 10
)

// lineReader splits a stream into lines without copying each one: it reads
// into large chunks and hands out sub-slices of them. A chunk is never
// written again once a line from it has been handed out; a line that
// straddles the end of a chunk is moved to the start of a fresh chunk. Lines
// longer than max are skipped whole and reported as oversized.
type lineReader struct {
	src     io.Reader
	chunk   []byte
	r, w    int // unread data is chunk[r:w]
	size    int
	max     int
	skip    bool  // discarding the rest of an oversized line
	skipped int64 // bytes of the oversized line discarded so far
	err     error // sticky non-EOF error
}

func newLineReader(src io.Reader, maxLine, chunkSize int) *lineReader {
	if maxLine <= 0 {
		maxLine = DefaultMaxLineSize
	}
	chunkSize = max(chunkSize, 2*(maxLine+2), 4096)
	return &lineReader{src: src, size: chunkSize, max: maxLine}
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
				lr.r += i + 1
				lr.skip, lr.skipped = false, 0
				return nil, n, true, true
			}
			lr.skipped += int64(len(data))
			lr.r = lr.w
		} else if i := bytes.IndexByte(data, '\n'); i >= 0 {
			lr.r += i + 1
			if i > lr.max {
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
		fresh := make([]byte, lr.size)
		lr.w = copy(fresh, lr.chunk[lr.r:lr.w])
		lr.r = 0
		lr.chunk = fresh
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

// rest returns the buffered partial line (the final line of a file that
// does not end in a newline) and consumes it. oversized reports that it
// was longer than the limit; it is then returned as nil with its length.
func (lr *lineReader) rest() (text []byte, n int64, oversized bool) {
	if lr.skip {
		n = lr.skipped + int64(lr.w-lr.r)
		lr.r, lr.skip, lr.skipped = lr.w, false, 0
		return nil, n, true
	}
	text = lr.chunk[lr.r:lr.w:lr.w]
	n = int64(len(text))
	lr.r = lr.w
	if len(text) > lr.max {
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
	Name        string   // source name, used in positions and metrics
	Paths       []string // files to read, plain or gzip-compressed
	MaxLineSize int      // longer lines are skipped and counted; default 64 KiB
	Positions   PositionStore
	Metrics     *Metrics // nil creates unregistered metrics
	Logger      *slog.Logger
}

// Scan reads a fixed set of files once, for backfills: plain files and
// gzip files (recognised by their magic bytes). It resumes each file from
// its saved position and returns nil when every file has been read.
type Scan struct {
	opts    ScanOptions
	metrics *Metrics
	log     *slog.Logger
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
	return s
}

// Name returns the source name.
func (s *Scan) Name() string { return s.opts.Name }

// Run reads every file from its saved position to its end, sending the
// lines to out. It returns nil when done or when ctx ends, and a
// *ReadError when a file cannot be read.
func (s *Scan) Run(ctx context.Context, out chan<- Line) error {
	var saved []store.Position
	if s.opts.Positions != nil {
		var err error
		if saved, err = s.opts.Positions.Positions(s.opts.Name); err != nil {
			return fmt.Errorf("source %s: load positions: %w", s.opts.Name, err)
		}
	}
	for _, path := range s.opts.Paths {
		if err := s.scanFile(ctx, path, saved, out); err != nil {
			return err
		}
		if ctx.Err() != nil {
			return nil
		}
	}
	return nil
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

	var src io.Reader
	if compressed {
		of.static = true
		zr, err := gzip.NewReader(bufio.NewReaderSize(of.f, 64<<10))
		if err != nil {
			return readError(s.metrics, s.opts.Name, path, "gzip", err)
		}
		if _, err := io.CopyN(io.Discard, zr, start); err != nil {
			if errors.Is(err, io.EOF) {
				return nil // everything was read before
			}
			return readError(s.metrics, s.opts.Name, path, "gzip", err)
		}
		src = zr
	} else {
		if _, err := of.f.Seek(start, io.SeekStart); err != nil {
			return readError(s.metrics, s.opts.Name, path, "seek", err)
		}
		src = of.f
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
}

// drain sends every complete line available now. With final, a last line
// without a newline is sent too. It returns ctx's error when ctx ends and
// a read error if the file cannot be read.
func (d *drainer) drain(ctx context.Context, out chan<- Line, final bool) error {
	for {
		text, n, over, ok := d.lr.next()
		if !ok {
			if d.lr.err != nil {
				return d.lr.err
			}
			if !final {
				return nil
			}
			text, n, over = d.lr.rest()
			if n == 0 {
				return nil
			}
		}
		if over {
			d.of.offset += n
			d.of.line++
			d.oversized.Inc()
			continue
		}
		select {
		case out <- Line{Text: text, Pos: d.of.position(d.source, d.of.offset+n, d.of.line+1)}:
			// Consumed only once handed on: a restarted Run resumes here.
			d.of.offset += n
			d.of.line++
			d.lines.Inc()
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}
