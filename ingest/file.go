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
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/fsnotify/fsnotify"
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
	// Poll reads and checks the file on every check only, without
	// inotify (network file systems, where inotify sees no remote write).
	Poll bool
	// RotateWait is how long a rotated file keeps being read after it
	// stopped growing, for writers that append until signalled; default 5s.
	RotateWait time.Duration
	// CheckInterval is how often Path is stat'ed for rotation and
	// truncation, and read whatever inotify said; default 250ms. Ignored
	// when Tick is set.
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
// reads the file through its own descriptor with the block reader that
// scans and rotated files use, woken by inotify on the file and its
// directory (fileWatch) and, on every check, by a stat of the path that
// notices rotation and truncation. A rotated file is finished through the
// descriptor it was read by.
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
	sent      map[store.FileID]store.Position
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
	if !f.opts.Poll {
		fw, err := newFileWatch(f.opts.Path)
		if err != nil {
			// Most often the per-user limit of inotify instances
			// (fs.inotify.max_user_instances).
			f.log.Warn("inotify unavailable, reading the file on every check instead", "err", err, "check_interval", f.opts.CheckInterval)
		}
		r.watch = fw
	}
	if f.opts.Positions != nil {
		saved, err := f.opts.Positions.Positions(f.opts.Name)
		if err != nil {
			return fmt.Errorf("source %s: load positions: %w", f.opts.Name, err)
		}
		r.saved = saved
	}
	r.saved = f.withSent(r.saved)
	r.seen = r.list(nil) // before the path is looked at: see check
	if err := r.start(ctx); err != nil {
		if re := (*ReadError)(nil); errors.As(err, &re) {
			f.markStarted()
		}
		return r.result(ctx, err)
	}
	f.markStarted()
	ready := make(chan struct{}) // closed: a receive from it never waits
	close(ready)
	for {
		// While the live file has more than one turn's lines, reading on
		// is always ready, and takes its turn with checks and events.
		var readOn <-chan struct{}
		if r.more {
			readOn = ready
		}
		var err error
		select {
		case <-ctx.Done():
			return nil
		case now := <-tick:
			err = r.check(ctx, now)
		case ev, ok := <-r.watch.events():
			err = r.woken(ctx, ev, ok)
		case werr, ok := <-r.watch.errs():
			r.watchError(werr, ok)
		case <-readOn:
			err = r.readLive(ctx)
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
	watch *fileWatch // nil when polling

	cur      *openFile // the live file; nil while waiting for the path
	live     *drainer  // reads cur from its offset; nil with cur
	more     bool      // live may have complete lines not yet read
	resumed  bool      // cur resumed from its saved position
	lastSize int64     // size of cur at the last check
	now      time.Time // time of the last check

	rotated []*rotatedFile // old files still being finished

	// seen holds the identities of the files matching Glob at the last
	// look that found the live file at the path, and seenDir the
	// modification time of their directory then: a file that is neither
	// seen nor followed when the path changes was created at the path and
	// rotated away between two looks.
	seen    map[store.FileID]bool
	seenDir time.Time

	lost bool // lines were lost: the next live file's first line says so
}

// liveTurn is how many lines Run reads from the live file before it looks
// at its ticker and events again.
const liveTurn = 4096

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
	r.watch.close()
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
			r.markLost()
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

// attach opens the file at the path and follows it: from its saved
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
	return r.follow()
}

// follow starts reading the live file at its consumed offset, dropping
// whatever an earlier reader of it had buffered.
func (r *fileRun) follow() error {
	cur := r.cur
	if _, err := cur.f.Seek(cur.offset, io.SeekStart); err != nil {
		r.cur, r.live = nil, nil
		cur.close()
		return readError(r.metrics, r.opts.Name, r.opts.Path, "seek", err)
	}
	r.live = &drainer{
		source: r.opts.Name, of: cur, lr: newLineReader(&guardedFile{of: cur}, r.opts.MaxLineSize, defaultChunkSize),
		lines: r.lines, oversized: r.oversized, afterLoss: r.lost,
	}
	r.lost = false
	r.more = true
	if r.watch != nil {
		if err := r.watch.follow(); err != nil {
			r.log.Debug("file not watched; its directory's watch and the checks cover it", "err", err)
		}
	}
	return nil
}

// markLost marks the next line read from the live file as the first after
// a loss.
func (r *fileRun) markLost() {
	if r.live != nil {
		r.live.afterLoss = true
		return
	}
	r.lost = true
}

// errHeadChanged is what guardedFile returns in place of data read after
// the file stopped starting as it did.
var errHeadChanged = errors.New("file no longer starts as it did")

// guardedFile reads the live file for its line reader, and refuses data
// read once the file no longer starts with the bytes it started with: the
// file was truncated and written again past our offset, and the data is
// the new content's, not the continuation of ours. One small read per
// block read.
type guardedFile struct {
	of  *openFile
	buf [prefixLen]byte
}

func (g *guardedFile) Read(p []byte) (int, error) {
	n, err := g.of.f.Read(p)
	if n > 0 && !g.of.samePrefix(&g.buf) {
		return 0, errHeadChanged
	}
	return n, err
}

// readLive hands on up to a turn of complete lines from the live file.
func (r *fileRun) readLive(ctx context.Context) error {
	r.more = false
	if r.live == nil {
		return nil
	}
	more, err := r.live.drainUpTo(ctx, r.out, false, liveTurn)
	switch {
	case err == nil:
		r.more = more
		return nil
	case ctx.Err() != nil:
		return ctx.Err()
	case errors.Is(err, errHeadChanged):
		r.log.Debug("file no longer starts as it did, checking it", "offset", r.cur.offset)
		if err := r.checkPath(ctx); err != nil {
			return err
		}
		if r.live != nil && r.live.lr.err != nil {
			// The check found the file as it was: read on from our offset.
			return r.follow()
		}
		return nil
	default:
		return readError(r.metrics, r.opts.Name, r.opts.Path, "read", err)
	}
}

// woken handles an event of the watch (ok false: the watcher ended).
func (r *fileRun) woken(ctx context.Context, ev fsnotify.Event, ok bool) error {
	if !ok {
		r.log.Warn("inotify watch ended, reading the file on every check instead")
		r.watch.close()
		r.watch = nil
		return nil
	}
	wk := r.watch.take(ev)
	if wk.check {
		if err := r.checkLive(ctx); err != nil {
			return err
		}
	}
	return r.readLive(ctx)
}

// watchError handles an error of the watch. Events lost to an overflow
// delay lines by a check at most: the checks read and stat on their own.
func (r *fileRun) watchError(err error, ok bool) {
	switch {
	case !ok:
		r.watch.close()
		r.watch = nil
		r.log.Warn("inotify watch ended, reading the file on every check instead")
	case overflowed(err):
		r.log.Debug("inotify events lost; the next check reads the file", "err", err)
		r.more = true
	default:
		r.log.Warn("inotify watch error", "err", err)
	}
}

// check runs on every tick: it finishes rotated files, looks for rotation
// or truncation of the live file, and reads it.
func (r *fileRun) check(ctx context.Context, now time.Time) error {
	r.now = now
	if err := r.followRotated(ctx); err != nil {
		return err
	}
	if r.watch != nil {
		r.watch.ensure()
	}
	// The glob is listed before the path is looked at, so that a file
	// listed now cannot be one created at the path after the live file
	// left it: it is kept for missed only once the path is seen to hold
	// the live file still (or the change is handled).
	listed := r.list(r.seen)
	if err := r.checkLive(ctx); err != nil {
		return err
	}
	if listed != nil {
		for _, rf := range r.rotated {
			listed[rf.d.of.id] = true
		}
		r.seen = listed
	}
	return r.readLive(ctx)
}

// checkLive attaches the path if none is followed, or checks the followed
// one.
func (r *fileRun) checkLive(ctx context.Context) error {
	if r.cur == nil {
		return r.replace(ctx, nil, "")
	}
	return r.checkPath(ctx)
}

// replace moves from old, which has left the path (nil: none was
// followed), to what the path holds now. The new file is opened first, so
// that the file the path names cannot change again unseen in between;
// then old is finished and the files missed between two looks are read,
// before any line of the new file. An error opening the new file (a pipe
// in its place, say) is returned once old, and every file retired before
// it, is read to its end: an event can find the path changed again after
// the live file left it, before any check has read what was appended to
// the file since.
func (r *fileRun) replace(ctx context.Context, old *openFile, reason string) error {
	r.cur, r.live = nil, nil
	attachErr := r.attach(false)
	if old != nil {
		if err := r.retire(ctx, old, reason); err != nil {
			return err
		}
	}
	if err := r.missed(ctx); err != nil {
		return err
	}
	if attachErr != nil {
		for _, rf := range r.rotated {
			if err := r.drainRotated(ctx, rf); err != nil {
				return err
			}
		}
	}
	return attachErr
}

// checkPath compares the file at the path with the live file.
func (r *fileRun) checkPath(ctx context.Context) error {
	cur := r.cur
	fi, err := os.Stat(r.opts.Path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return r.replace(ctx, cur, "rename")
	case err != nil:
		return readError(r.metrics, r.opts.Name, r.opts.Path, "stat", err)
	case fileIdentity(fi) != cur.id:
		reason := "rename"
		if st, ok := statOf(cur); ok && st.Nlink == 0 {
			reason = "replaced"
		}
		return r.replace(ctx, cur, reason)
	}
	changed, err := cur.headChanged()
	if err != nil {
		return readError(r.metrics, r.opts.Name, r.opts.Path, "read", err)
	}
	if fi.Size() < cur.offset || changed {
		r.cur, r.live = nil, nil
		r.truncated(ctx, cur, fi.Size())
		cur.close()
		return r.attach(false)
	}
	r.lastSize = fi.Size()
	cur.size = fi.Size()
	r.metrics.OffsetBytes.WithLabelValues(r.opts.Name).Set(float64(cur.offset))
	r.metrics.FileSizeBytes.WithLabelValues(r.opts.Name).Set(float64(r.lastSize))
	return nil
}

// list returns the identities of the files matching Glob, for missed,
// or nil when the directory has not changed since prev was listed: its
// modification time is the same and not recent (a directory's times are
// coarse: one changed within the last second may have changed again since
// without showing it). A Glob with a directory pattern is always listed.
func (r *fileRun) list(prev map[store.FileID]bool) map[store.FileID]bool {
	dir := filepath.Dir(r.opts.Glob)
	if !hasMeta(dir) {
		fi, err := os.Stat(dir)
		if err != nil {
			return nil
		}
		if prev != nil && fi.ModTime().Equal(r.seenDir) && time.Since(fi.ModTime()) > time.Second {
			return nil
		}
		r.seenDir = fi.ModTime()
	}
	paths, err := filepath.Glob(r.opts.Glob)
	if err != nil {
		return nil
	}
	ids := make(map[store.FileID]bool, len(paths))
	for _, p := range paths {
		if fi, err := os.Stat(p); err == nil {
			ids[fileIdentity(fi)] = true
		}
	}
	return ids
}

func hasMeta(path string) bool { return strings.ContainsAny(path, `*?[\`) }

// missed finishes the files that were created at the path and rotated
// away between two looks, when the path changed more than once since the
// last (two rotations within one check interval, or while Run was busy
// handing lines on): a non-empty, uncompressed file matching Glob that
// was not there at the last look and is not followed. Each is read from
// its start, oldest first.
func (r *fileRun) missed(ctx context.Context) error {
	if r.seen == nil {
		return nil
	}
	var found []*openFile
	for _, p := range globOrNil(r.opts.Glob) {
		if p == r.opts.Path {
			continue
		}
		fi, err := os.Stat(p)
		if err != nil || !fi.Mode().IsRegular() || fi.Size() == 0 || r.seen[fileIdentity(fi)] || r.known(fileIdentity(fi)) {
			continue
		}
		of, err := openFingerprint(p)
		if err != nil {
			continue
		}
		if compressed(of.prefix) {
			of.close()
			continue
		}
		found = append(found, of)
	}
	slices.SortFunc(found, func(a, b *openFile) int { return a.mtime.Compare(b.mtime) })
	for i, of := range found {
		r.seen[of.id] = true
		r.log.Info("finishing a file created and rotated between two checks", "file", of.path)
		if err := r.retire(ctx, of, "rename"); err != nil {
			for _, rest := range found[i+1:] {
				rest.close()
			}
			return err
		}
	}
	return nil
}

func globOrNil(pattern string) []string {
	paths, _ := filepath.Glob(pattern) // the only error is a bad pattern, refused by rules
	return paths
}

// compressed reports whether a file starting with head is gzip, bzip2, xz
// or zstd data: a rotated file compressed after rotation, not lines.
func compressed(head []byte) bool {
	for _, magic := range [...]string{"\x1f\x8b", "BZh", "\xfd7zXZ\x00", "\x28\xb5\x2f\xfd"} {
		if bytes.HasPrefix(head, []byte(magic)) {
			return true
		}
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
	known := max(r.lastSize, old.offset)
	startsAsOld := func(of *openFile) bool { return old.headLen > 0 && of.startsAs(old.headLen, old.headHash) }
	copyOf := r.findSibling(func(of *openFile) bool { return of.size >= old.offset && startsAsOld(of) })
	if copyOf == nil {
		copyOf = r.findSibling(startsAsOld)
	}
	if copyOf == nil {
		if lost := known - old.offset; lost > 0 {
			r.metrics.LostBytes.WithLabelValues(r.opts.Name).Add(float64(lost))
			r.markLost()
		}
		r.metrics.Rotations.WithLabelValues(r.opts.Name, "truncate").Inc()
		r.log.Info("file truncated", "offset", old.offset, "size", size, "lost_bytes", known-old.offset)
		return
	}
	if lost := known - max(copyOf.size, old.offset); lost > 0 {
		r.metrics.LostBytes.WithLabelValues(r.opts.Name).Add(float64(lost))
		r.markLost()
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
		if r.seen != nil {
			r.seen[rf.d.of.id] = true // read: never a missed live file
		}
		rf.d.of.close()
	}
	clear(r.rotated[len(keep):])
	r.rotated = keep
	return nil
}
