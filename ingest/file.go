package ingest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"

	"github.com/nxadm/tail"
	"github.com/nxadm/tail/watch"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/scopewatch/scopewatch/store"
)

// Defaults of FileOptions.
const (
	DefaultRotateWait    = 5 * time.Second
	DefaultCheckInterval = 250 * time.Millisecond
)

// FileOptions configure a File.
type FileOptions struct {
	Name string // source name, used in positions and metrics
	Path string // the live file
	// Glob matches the rotated siblings of Path (default Path + ".*"). It
	// is searched for files rotated while the daemon was stopped and for
	// the copy a copytruncate rotation leaves.
	Glob string
	Poll bool // poll for changes instead of inotify (network file systems)
	// RotateWait is how long a rotated file keeps being read after it
	// stopped growing, for writers that append until signalled; default 5s.
	RotateWait time.Duration
	// CheckInterval is how often Path is stat'ed for rotation and
	// truncation; default 250ms. Ignored when Tick is set.
	CheckInterval time.Duration
	// MaxLineSize is the source's max_line_bytes: a longer line is sent
	// as one that ParseLine reports too_long, at its position, and
	// reading goes on at the next line. Default 1 MiB.
	MaxLineSize int
	Positions   PositionStore
	Metrics     *Metrics // nil creates unregistered metrics
	Logger      *slog.Logger
	// Tick, when set, replaces the check ticker: every value received is
	// a check at that time. Tests drive it; RotateWait is measured in the
	// times it delivers.
	Tick <-chan time.Time
	// Started, when set, is called once, by the first Run that has
	// checked the saved positions, finished the files rotated while
	// stopped and followed the live path (or waits for it), or that found
	// the path unreadable (a *ReadError, reported; the supervisor retries
	// it): a source that cannot be read holds no one up.
	Started func()
}

// File follows one live log file across rotations and truncations. It
// reads the file with nxadm/tail and keeps its own descriptor on it, which
// it uses to fingerprint the file, to notice rotation and truncation by
// stat on every check, and to finish a rotated file itself: the library
// reopens the path without draining the old file.
//
// Every Line carries its own position; File never writes positions. At
// start it resumes from the saved record that matches the live file by
// device, inode and head hash, and finishes files rotated while stopped,
// found through Glob.
type File struct {
	opts    FileOptions
	metrics *Metrics
	log     *slog.Logger
	waiting atomic.Bool
	// sent is how far each file was handed on when the last Run ended.
	// Runs follow one another (the supervisor restarts a failed one), so
	// it needs no lock.
	sent map[store.FileID]store.Position
	// pollOnly is set once the path has been truncated under an inotify
	// tail: nxadm/tail v1.4.11 then no longer delivers inotify events to a
	// new tail on the same path name in this process (reproduced: truncate
	// while tailing, stop, tail again, append; nothing arrives), so later
	// tails of the path poll.
	pollOnly  atomic.Bool
	started   sync.Once
	lines     prometheus.Counter
	oversized prometheus.Counter
}

var _ Source = (*File)(nil)

// NewFile returns a File for opts. It starts nothing.
func NewFile(opts FileOptions) *File {
	if opts.Glob == "" {
		opts.Glob = opts.Path + ".*"
	}
	if opts.RotateWait <= 0 {
		opts.RotateWait = DefaultRotateWait
	}
	if opts.CheckInterval <= 0 {
		opts.CheckInterval = DefaultCheckInterval
	}
	if opts.MaxLineSize <= 0 {
		opts.MaxLineSize = DefaultMaxLineSize
	}
	f := &File{opts: opts, metrics: opts.Metrics, log: opts.Logger}
	if f.metrics == nil {
		f.metrics = NewMetrics(nil)
	}
	if f.log == nil {
		f.log = slog.New(slog.DiscardHandler)
	}
	f.log = f.log.With("source", opts.Name, "path", opts.Path)
	f.lines = f.metrics.LinesRead.WithLabelValues(opts.Name)
	f.oversized = f.metrics.Oversized.WithLabelValues(opts.Name)
	return f
}

// Name returns the source name.
func (f *File) Name() string { return f.opts.Name }

// Waiting reports whether the source is waiting for its path to appear.
func (f *File) Waiting() bool { return f.waiting.Load() }

// Run follows the file until ctx ends, sending complete lines to out. It
// returns nil when ctx ends, after stopping everything it started, and a
// *ReadError when the file cannot be read.
func (f *File) Run(ctx context.Context, out chan<- Line) error {
	tick := f.opts.Tick
	if tick == nil {
		t := time.NewTicker(f.opts.CheckInterval)
		defer t.Stop()
		tick = t.C
	}
	r := &fileRun{File: f, out: out}
	defer r.shutdown()
	if f.opts.Positions != nil {
		saved, err := f.opts.Positions.Positions(f.opts.Name)
		if err != nil {
			return fmt.Errorf("source %s: load positions: %w", f.opts.Name, err)
		}
		r.saved = saved
	}
	r.saved = f.withSent(r.saved)
	if err := r.start(ctx); err != nil {
		if re := (*ReadError)(nil); errors.As(err, &re) {
			f.markStarted()
		}
		return r.result(ctx, err)
	}
	f.markStarted()
	for {
		var lines chan *tail.Line
		if r.tl != nil {
			lines = r.tl.Lines
		}
		var err error
		select {
		case <-ctx.Done():
			return nil
		case now := <-tick:
			err = r.check(ctx, now)
		case l, ok := <-lines:
			if ok {
				err = r.onLine(ctx, l)
			} else {
				r.tailDied()
			}
		}
		if err != nil {
			return r.result(ctx, err)
		}
	}
}

func (f *File) markStarted() {
	if f.opts.Started != nil {
		f.started.Do(f.opts.Started)
	}
}

// fileRun is the state of one Run. Only Run's goroutine touches it.
type fileRun struct {
	*File
	out   chan<- Line
	saved []store.Position

	cur      *openFile // the live file; nil while waiting for the path
	resumed  bool      // cur resumed from its saved position
	lastSize int64     // size of cur at the last check
	now      time.Time // time of the last check

	tl       *tail.Tail // nxadm/tail on cur
	tlNum    int        // Line.Num of the last line it sent
	inLong   bool       // inside the chunks of an oversized line
	tlDeaths int        // consecutive unexpected ends of the tail
	verify   []byte
	prefix   [prefixLen]byte

	rotated []*rotatedFile // old files still being finished

	lost bool // lines were lost: the next line handed on says so

	stallOffset int64 // cur.offset at the last check
	stallChecks int   // consecutive checks without progress while lines wait
}

// stallChecks is how many consecutive checks may see a complete line
// waiting in the live file without the tail delivering it before the tail
// is restarted from our offset. nxadm/tail can miss an append made between
// its reaching the end of the file and its inotify watch being set up; it
// then sleeps until the next append, which for a quiet log may be never.
const stallChecks = 8

// rotatedFile is a file that has left the live path and is read through
// our own descriptor until it stops growing.
type rotatedFile struct {
	d      drainer
	size   int64
	grown  time.Time // check time at which it last grew; zero until a check
	reason string
}

// result turns an error that ended a Run into what Run returns.
func (r *fileRun) result(ctx context.Context, err error) error {
	if ctx.Err() != nil && errors.Is(err, ctx.Err()) {
		return nil
	}
	return err
}

func (r *fileRun) shutdown() {
	r.stopTail()
	r.remember(r.cur)
	r.cur.close()
	for _, rf := range r.rotated {
		r.remember(rf.d.of)
		rf.d.of.close()
	}
}

// remember keeps how far of was handed on, for the next Run of this File.
func (r *fileRun) remember(of *openFile) {
	if of == nil || of.line == 0 {
		return
	}
	if r.sent == nil {
		r.sent = make(map[store.FileID]store.Position)
	}
	// Every line up to of.offset was handed on at a position built the
	// same way, so its head is grown that far already.
	r.sent[of.id] = of.position(r.opts.Name, of.offset, of.line).Record()
}

// withSent returns the saved records with those of files a previous Run of
// this File handed on further than the store knows. Lines sent but not yet
// committed when a Run failed must not be sent again when the supervisor
// restarts it: the engine still holds them.
func (f *File) withSent(saved []store.Position) []store.Position {
	if len(f.sent) == 0 {
		return saved
	}
	out := slices.Clone(saved)
	for id, sp := range f.sent {
		i := slices.IndexFunc(out, func(p store.Position) bool { return p.File == id })
		switch {
		case i < 0:
			out = append(out, sp)
		case sp.Offset > out[i].Offset:
			out[i] = sp
		}
	}
	return out
}

// start attaches to the live file, resuming from its saved position, and
// finishes the saved files that are no longer live but still have lines:
// renamed ones, found among Glob by identity and head, and the copy of one
// copied and truncated while the daemon was stopped, found by its head
// alone. A live file that lost what was read of it with no copy to be
// found was truncated (or replaced) while stopped.
func (r *fileRun) start(ctx context.Context) error {
	if err := r.attach(true); err != nil {
		return err
	}
	var sibs []*openFile
	if len(r.saved) > 0 && !(len(r.saved) == 1 && r.resumed) {
		sibs = r.siblings()
	}
	defer func() {
		for _, of := range sibs {
			of.close() // nil once taken
		}
	}()
	take := func(ok func(*openFile) bool) *openFile {
		for i, of := range sibs {
			if of != nil && ok(of) {
				sibs[i] = nil
				return of
			}
		}
		return nil
	}
	for _, rec := range r.saved {
		live := r.cur != nil && rec.File == r.cur.id
		if live && r.resumed {
			continue
		}
		if !live {
			if of := take(func(of *openFile) bool { return of.matches(rec) }); of != nil {
				if of.size <= rec.Offset {
					of.close() // read to its end
					continue
				}
				of.offset, of.line = rec.Offset, rec.Line
				r.log.Info("finishing file rotated while stopped", "file", of.path, "offset", rec.Offset)
				if err := r.retire(ctx, of, ""); err != nil {
					return err
				}
				continue
			}
		}
		// The file rec describes no longer holds what was read of it, or
		// is gone. A copy of it starts with the same head and holds at
		// least what was read; a sibling with a saved position of its own
		// is another file that merely starts alike.
		copyOf := take(func(of *openFile) bool {
			if rec.HeadLen <= 0 || of.size < rec.Offset || !of.startsAs(rec.HeadLen, rec.HeadHash) {
				return false
			}
			_, own := bestMatch(of, r.saved)
			return !own
		})
		if copyOf != nil {
			copyOf.offset, copyOf.line = rec.Offset, rec.Line
			r.log.Info("file copied and truncated while stopped, finishing the copy", "copy", copyOf.path, "offset", rec.Offset)
			if err := r.retire(ctx, copyOf, "copytruncate"); err != nil {
				return err
			}
			continue
		}
		if !live {
			continue // gone
		}
		if lost := rec.Offset - r.lastSize; lost > 0 {
			// Truncated while stopped, and no copy to finish. What was
			// written after the saved position before the truncation is
			// lost, to a reader that was not running: count the bytes by
			// which the saved position lies past the file's new end.
			r.metrics.Rotations.WithLabelValues(r.opts.Name, "truncate").Inc()
			r.metrics.LostBytes.WithLabelValues(r.opts.Name).Add(float64(lost))
			r.lost = true
			r.log.Warn("file truncated while stopped and no copy of it found among glob; lines written after the saved position are lost, reading it from the start",
				"glob", r.opts.Glob, "offset", rec.Offset, "size", r.lastSize, "lost_bytes", lost)
			continue
		}
		r.log.Info("file replaced since its position was saved, reading from the start")
		r.metrics.Rotations.WithLabelValues(r.opts.Name, "replaced").Inc()
	}
	return nil
}

// siblings opens the files matching Glob other than the live path and
// the files being followed. Those that cannot be opened (or are not
// regular files) are left out.
func (r *fileRun) siblings() []*openFile {
	paths, err := filepath.Glob(r.opts.Glob)
	if err != nil {
		return nil
	}
	var out []*openFile
	for _, p := range paths {
		if p == r.opts.Path {
			continue
		}
		of, err := openFingerprint(p)
		if err != nil {
			continue
		}
		if r.known(of.id) {
			of.close()
			continue
		}
		out = append(out, of)
	}
	return out
}

// findSibling returns the first file matching Glob, other than the live
// file and the files being finished, for which ok holds; nil if none.
func (r *fileRun) findSibling(ok func(*openFile) bool) *openFile {
	paths, err := filepath.Glob(r.opts.Glob)
	if err != nil {
		return nil
	}
	for _, p := range paths {
		if p == r.opts.Path {
			continue
		}
		of, err := openFingerprint(p)
		if err != nil {
			continue
		}
		if !r.known(of.id) && ok(of) {
			return of
		}
		of.close()
	}
	return nil
}

func (r *fileRun) known(id store.FileID) bool {
	if r.cur != nil && r.cur.id == id {
		return true
	}
	for _, rf := range r.rotated {
		if rf.d.of.id == id {
			return true
		}
	}
	return false
}

// attach opens the file at the path and starts tailing it: from its saved
// position on the first attach, from the start after a rotation. A missing
// path leaves the source waiting.
func (r *fileRun) attach(first bool) error {
	of, err := openFingerprint(r.opts.Path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			if !r.waiting.Swap(true) {
				r.log.Info("waiting for file to appear")
			}
			return nil
		}
		return readError(r.metrics, r.opts.Name, r.opts.Path, "open", err)
	}
	if r.waiting.Swap(false) {
		r.log.Info("file appeared")
	}
	if first {
		// A live file shorter than its saved position, or that no longer
		// starts as it did, is read from the start; start looks for its
		// copy.
		if rec, ok := bestMatch(of, r.saved); ok && rec.Offset <= of.size {
			of.offset, of.line = rec.Offset, rec.Line
			r.resumed = true
		}
	}
	r.cur, r.lastSize = of, of.size
	if first {
		// One line per source start (and per reload): where it resumes.
		r.log.Info("source opened", "offset", of.offset, "size", of.size)
	}
	r.startTail()
	return nil
}

// startTail starts nxadm/tail on the live file at its consumed offset.
func (r *fileRun) startTail() {
	r.tlNum, r.inLong = 0, false
	// The library opens the path itself, with a plain open: never let it
	// open anything but our file (a named pipe would block it for ever).
	if fi, err := os.Stat(r.opts.Path); err != nil || !fi.Mode().IsRegular() || fileIdentity(fi) != r.cur.id {
		r.log.Debug("path changed before starting the tail")
		return // the next check handles it
	}
	tl, err := tail.TailFile(r.opts.Path, tail.Config{
		Location:      &tail.SeekInfo{Offset: r.cur.offset, Whence: io.SeekStart},
		ReOpen:        true,
		MustExist:     true, // open now, so that the check below brackets it
		Poll:          r.opts.Poll || r.pollOnly.Load(),
		Follow:        true,
		MaxLineSize:   r.opts.MaxLineSize,
		CompleteLines: true,
		Logger:        tail.DiscardingLogger,
	})
	if err != nil {
		r.log.Debug("tail not started", "err", err)
		return // the next check finds out why
	}
	// TailFile opened the path after we did: if it is still our file, the
	// library reads our file. If not, the next check handles the rotation.
	if fi, err := os.Stat(r.opts.Path); err != nil || fileIdentity(fi) != r.cur.id {
		r.tl = tl
		r.stopTail()
		r.log.Debug("path changed while starting the tail")
		return
	}
	r.tl = tl
	r.log.Debug("tail started", "file", r.cur.id, "offset", r.cur.offset)
}

// tailStopLimit bounds the wait for a stopped tail to end. nxadm/tail
// reopens the path on its own after a rotation with a plain open, which
// waits for a writer for ever if a named pipe has taken the path: such a
// tail is left behind rather than holding up the source, or shutdown.
const tailStopLimit = 2 * time.Second

// stopTail stops nxadm/tail, discarding what it has not sent: those lines
// are past our offset and are read again from there.
func (r *fileRun) stopTail() {
	if r.tl == nil {
		return
	}
	tl := r.tl
	r.tl = nil
	tl.Kill(nil)
	ended := make(chan struct{})
	go func() {
		for range tl.Lines {
		}
		_ = tl.Wait() // its error is that of a tail we no longer need
		close(ended)
	}()
	timeout := time.NewTimer(tailStopLimit)
	defer timeout.Stop()
	select {
	case <-ended:
	case <-timeout.C:
		// Its inotify watch may stay registered: poll this path from now on.
		r.pollOnly.Store(true)
		r.log.Warn("tail did not stop; left behind (is the path a named pipe?)", "waited", tailStopLimit)
		return
	}
	if !r.opts.Poll && !r.pollOnly.Load() && !waitInotifyReleased(r.opts.Path) {
		r.log.Warn("inotify watch of a stopped tail not released")
	}
	r.log.Debug("tail stopped")
}

// waitInotifyReleased waits (briefly, bounded) until the stopped tail's
// inotify goroutine has dropped its watch. nxadm/tail shares one watch per
// path name and drops it asynchronously after Stop; a new tail on the same
// path that registered before that drop would never be woken again.
func waitInotifyReleased(path string) bool {
	name := filepath.Clean(path)
	// nxadm/tail creates its shared tracker lazily, in whichever
	// goroutine watches a file first. Registering and dropping a watch of
	// our own orders this goroutine after that creation, so reading the
	// tracker below is not a data race with another source's first tail.
	// The probe name is never a log's, so no tail's channel is touched.
	probe := filepath.Join(filepath.Dir(name), ".scopewatch-inotify-probe")
	if watch.WatchCreate(probe) == nil {
		_ = watch.RemoveWatchCreate(probe)
	}
	deadline := time.Now().Add(time.Second)
	for inotifyWatched(name) {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(time.Millisecond)
	}
	return true
}

func inotifyWatched(name string) bool {
	return watch.Events(name) != nil
}

// tailDied handles the end of the library's line channel without a Stop.
// The next check restarts it from our offset.
func (r *fileRun) tailDied() {
	err := r.tl.Wait()
	r.tl = nil
	r.tlDeaths++
	r.log.Warn("tail stopped unexpectedly", "err", err)
}

// onLine handles one line from nxadm/tail.
func (r *fileRun) onLine(ctx context.Context, l *tail.Line) error {
	s := l.Text
	off := l.SeekInfo.Offset
	consumed := off - r.cur.offset
	// Line.Num counts the lines of one open; it restarts when the library
	// reopens the path on its own (rename, delete, truncation). Offsets
	// must also follow on from ours, the first lines are checked against
	// our own descriptor, and the file must still start as it did (it was
	// not truncated and rewritten past our offset), so that a line read
	// from another file or another content is never attributed to ours.
	ok := l.Num == r.tlNum+1 && r.cur.samePrefix(&r.prefix)
	switch {
	case !ok:
	case consumed == 0:
		ok = r.inLong // further chunks of an oversized line
		if ok {
			r.tlNum = l.Num
			return nil
		}
	case consumed == int64(len(s))+1:
		ok = r.checkContent(s, off, false)
	case consumed > int64(len(s))+1 && len(s) == r.opts.MaxLineSize:
		// The first chunk of a line over the limit, which the library
		// splits into chunks of MaxLineSize sent with the same offset.
		ok = r.checkContent(s, off, true)
		if ok {
			r.tlNum, r.inLong = l.Num, true
			pos := r.cur.position(r.opts.Name, off, r.cur.line+1)
			return r.send(ctx, tooLongLine(consumed-1, r.opts.MaxLineSize, pos), off, true)
		}
	default:
		ok = false
	}
	if !ok {
		return r.reopened(ctx, l)
	}
	r.tlNum, r.inLong = l.Num, false
	if n := len(s); n > 0 && s[n-1] == '\r' {
		s = s[:n-1]
	}
	// The library allocates a new string per line and never reuses it, so
	// it can be handed on as bytes without a copy.
	text := unsafe.Slice(unsafe.StringData(s), len(s))
	return r.send(ctx, Line{Text: text, Pos: r.cur.position(r.opts.Name, off, r.cur.line+1)}, off, false)
}

// send hands ln, which ends at off in the live file, on.
func (r *fileRun) send(ctx context.Context, ln Line, off int64, tooLong bool) error {
	ln.Pos.AfterLoss = r.lost
	select {
	case r.out <- ln:
		// Consumed only once handed on: a restarted Run resumes here.
		r.cur.offset = off
		r.cur.line++
		r.lost = false
		r.lines.Inc()
		if tooLong {
			r.oversized.Inc()
		}
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// checkContent compares a line from the library with our file, for the
// first line of each tail and while within the head: a line read from
// another file fails it. For an oversized line only its first chunk and
// final newline are compared.
func (r *fileRun) checkContent(s string, off int64, long bool) bool {
	if r.tlNum > 0 && r.cur.offset >= store.HeadMax {
		return true
	}
	n := int64(len(s))
	if int64(cap(r.verify)) < n+1 {
		r.verify = make([]byte, n+1)
	}
	r.verify = r.verify[:n+1]
	if _, err := r.cur.f.ReadAt(r.verify[:n], r.cur.offset); err != nil {
		return false
	}
	if _, err := r.cur.f.ReadAt(r.verify[n:], off-1); err != nil {
		return false
	}
	return string(r.verify[:n]) == s && r.verify[n] == '\n' && (long || r.cur.offset+n+1 == off)
}

// reopened handles a line showing that the library is no longer reading
// our file where we are: it reopened the path on its own.
func (r *fileRun) reopened(ctx context.Context, l *tail.Line) error {
	r.log.Debug("tail reopened on its own", "num", l.Num, "last_num", r.tlNum, "offset", l.SeekInfo.Offset, "our_offset", r.cur.offset, "len", len(l.Text))
	r.stopTail()
	return r.checkPath(ctx)
}

// check runs on every tick: it finishes rotated files and looks for
// rotation or truncation of the live one.
func (r *fileRun) check(ctx context.Context, now time.Time) error {
	r.now = now
	if err := r.followRotated(ctx); err != nil {
		return err
	}
	if r.cur == nil {
		return r.attach(false)
	}
	return r.checkPath(ctx)
}

// checkPath compares the file at the path with the live file.
func (r *fileRun) checkPath(ctx context.Context) error {
	cur := r.cur
	fi, err := os.Stat(r.opts.Path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		r.stopTail()
		r.cur = nil
		if err := r.retire(ctx, cur, "rename"); err != nil {
			return err
		}
		return r.attach(false)
	case err != nil:
		return readError(r.metrics, r.opts.Name, r.opts.Path, "stat", err)
	case fileIdentity(fi) != cur.id:
		r.stopTail()
		r.cur = nil
		reason := "rename"
		if st, ok := statOf(cur); ok && st.Nlink == 0 {
			reason = "replaced"
		}
		if err := r.retire(ctx, cur, reason); err != nil {
			return err
		}
		return r.attach(false)
	}
	changed, err := cur.headChanged()
	if err != nil {
		return readError(r.metrics, r.opts.Name, r.opts.Path, "read", err)
	}
	if fi.Size() < cur.offset || changed {
		r.stopTail()
		r.truncated(ctx, cur, fi.Size())
		cur.close()
		r.cur = nil
		return r.attach(false)
	}
	r.lastSize = fi.Size()
	r.metrics.OffsetBytes.WithLabelValues(r.opts.Name).Set(float64(cur.offset))
	r.metrics.FileSizeBytes.WithLabelValues(r.opts.Name).Set(float64(r.lastSize))
	r.checkStall(fi.Size())
	if r.tl == nil {
		if r.tlDeaths > 3 {
			return readError(r.metrics, r.opts.Name, r.opts.Path, "tail", errors.New("tail keeps stopping"))
		}
		r.startTail()
	} else if r.tlNum > 0 {
		r.tlDeaths = 0
	}
	return nil
}

// checkStall stops a tail that has not delivered a waiting complete line
// for stallChecks checks; checkPath then restarts it from our offset.
func (r *fileRun) checkStall(size int64) {
	cur := r.cur
	if r.tl == nil || cur.offset != r.stallOffset || size <= cur.offset {
		r.stallOffset, r.stallChecks = cur.offset, 0
		return
	}
	r.stallChecks++
	if r.stallChecks < stallChecks {
		return
	}
	r.stallChecks = 0
	if size-cur.offset <= int64(r.opts.MaxLineSize)+2 && !hasNewline(cur.f, cur.offset, size) {
		return // a partial line: nothing to deliver yet
	}
	r.log.Debug("tail stalled, restarting it", "offset", cur.offset, "size", size)
	r.stopTail()
}

// hasNewline reports whether f holds a newline between from and to. It
// reads in small pieces: the span may be as long as the line limit.
func hasNewline(f *os.File, from, to int64) bool {
	var buf [32 << 10]byte
	for from < to {
		n, err := f.ReadAt(buf[:min(int64(len(buf)), to-from)], from)
		if bytes.IndexByte(buf[:n], '\n') >= 0 {
			return true
		}
		if n == 0 || (err != nil && n < len(buf)) {
			return false
		}
		from += int64(n)
	}
	return false
}

func statOf(of *openFile) (*syscall.Stat_t, bool) {
	fi, err := of.f.Stat()
	if err != nil {
		return nil, false
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	return st, ok
}

// truncated handles the live file having been truncated in place (and
// perhaps written again). If a sibling holds a copy of it (copytruncate),
// the copy is finished from our offset; otherwise what was written past
// our offset is counted as lost. A copy that ends before our offset (we
// read, from the live file, lines written after the copy was taken) is a
// copytruncate all the same, with nothing of it left to read.
func (r *fileRun) truncated(ctx context.Context, old *openFile, size int64) {
	if !r.opts.Poll && !r.pollOnly.Swap(true) {
		r.log.Info("file truncated under an inotify tail: polling it from now on")
	}
	known := max(r.lastSize, old.offset)
	startsAsOld := func(of *openFile) bool { return old.headLen > 0 && of.startsAs(old.headLen, old.headHash) }
	copyOf := r.findSibling(func(of *openFile) bool { return of.size >= old.offset && startsAsOld(of) })
	if copyOf == nil {
		copyOf = r.findSibling(startsAsOld)
	}
	if copyOf == nil {
		if lost := known - old.offset; lost > 0 {
			r.metrics.LostBytes.WithLabelValues(r.opts.Name).Add(float64(lost))
			r.lost = true
		}
		r.metrics.Rotations.WithLabelValues(r.opts.Name, "truncate").Inc()
		r.log.Info("file truncated", "offset", old.offset, "size", size, "lost_bytes", known-old.offset)
		return
	}
	if lost := known - max(copyOf.size, old.offset); lost > 0 {
		r.metrics.LostBytes.WithLabelValues(r.opts.Name).Add(float64(lost))
		r.lost = true
	}
	if copyOf.size <= old.offset {
		r.metrics.Rotations.WithLabelValues(r.opts.Name, "copytruncate").Inc()
		r.log.Info("file copied and truncated; the copy holds nothing past the position read", "copy", copyOf.path,
			"offset", old.offset, "copy_size", copyOf.size, "lost_bytes", max(known-old.offset, 0))
		copyOf.close()
		return
	}
	copyOf.offset, copyOf.line = old.offset, old.line
	r.log.Info("file copied and truncated, finishing the copy", "copy", copyOf.path, "offset", old.offset)
	// The error can only be ctx's; Run sees ctx end on its next turn.
	_ = r.retire(ctx, copyOf, "copytruncate")
}

// retire moves of out of the live path: it is read through our own
// descriptor from its offset, now and on every check, until it has not
// grown for RotateWait.
func (r *fileRun) retire(ctx context.Context, of *openFile, reason string) error {
	if reason != "" {
		r.metrics.Rotations.WithLabelValues(r.opts.Name, reason).Inc()
		r.log.Info("file rotated", "kind", reason, "offset", of.offset)
	}
	if _, err := of.f.Seek(of.offset, io.SeekStart); err != nil {
		of.close()
		return readError(r.metrics, r.opts.Name, of.path, "seek", err)
	}
	rf := &rotatedFile{
		d: drainer{source: r.opts.Name, of: of, lr: newLineReader(of.f, r.opts.MaxLineSize, defaultChunkSize),
			lines: r.lines, oversized: r.oversized},
		size: of.offset, reason: reason,
	}
	r.rotated = append(r.rotated, rf)
	return r.drainRotated(ctx, rf)
}

func (r *fileRun) drainRotated(ctx context.Context, rf *rotatedFile) error {
	if err := rf.d.drain(ctx, r.out, false); err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return readError(r.metrics, r.opts.Name, rf.d.of.path, "read", err)
	}
	return nil
}

// followRotated reads what was appended to rotated files and closes those
// that have been quiet for RotateWait, sending a last line that lacks its
// newline.
func (r *fileRun) followRotated(ctx context.Context) error {
	keep := r.rotated[:0]
	for i, rf := range r.rotated {
		if err := r.drainRotated(ctx, rf); err != nil {
			r.rotated = append(keep, r.rotated[i:]...)
			return err
		}
		size := rf.d.of.offset + rf.d.lr.buffered()
		if size != rf.size || rf.grown.IsZero() {
			rf.size, rf.grown = size, r.now
		}
		if r.now.Sub(rf.grown) < r.opts.RotateWait {
			keep = append(keep, rf)
			continue
		}
		if err := rf.d.drain(ctx, r.out, true); err != nil {
			r.rotated = append(keep, r.rotated[i:]...)
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return readError(r.metrics, r.opts.Name, rf.d.of.path, "read", err)
		}
		r.log.Info("finished rotated file", "file", rf.d.of.path, "offset", rf.d.of.offset)
		rf.d.of.close()
	}
	clear(r.rotated[len(keep):])
	r.rotated = keep
	return nil
}
