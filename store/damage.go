package store

import (
	"errors"
	"fmt"
	"os"
	"regexp"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"
)

// A damaged file. bbolt validates only the two meta pages when it opens a
// file (magic, version, checksum): no option makes Open verify the other
// pages, and StrictMode only runs Tx.Check after each commit, panicking on
// a problem. A data page is trusted when it is read, and a damaged one
// makes bbolt panic (an assertion on the page's id or type, an index out
// of range), or, for a page past the end of a truncated file, fault on the
// memory map. So the store
//
//   - checks at Open, before bbolt reads any data page, that the file holds
//     every page its meta page counts (checkSize);
//   - runs every bbolt call that reads pages under guard, which turns such
//     a panic into a *DamagedError naming the file;
//   - turns a record its decoders refuse (ErrCorrupt) into a *DamagedError
//     too, at the boundary of the transaction (view, update);
//   - offers Check, bbolt's consistency check plus a decode of every record.

// ErrDamaged means the file is damaged: a page bbolt cannot read, a file
// shorter than its pages, or a record that does not decode. The error is a
// *DamagedError; errors.Is(err, ErrCorrupt) holds for it too, so a caller
// that gives up on a corrupt record gives up on a damaged page as well.
var ErrDamaged = errors.New("store damaged")

// ErrEmpty means a store opened read-only is a 0-byte file: it was
// created but never written.
var ErrEmpty = errors.New("store is empty")

// DamagedError reports a damaged store file.
type DamagedError struct {
	Path string
	// Page is the damaged page, or -1 when it is not known.
	Page int64
	// Err is what was found: bbolt's panic, the size, the record.
	Err error
}

// Error names the file, the page when known and what was found, and says
// what to do.
func (e *DamagedError) Error() string {
	what := e.Err.Error()
	if e.Page >= 0 && !strings.HasPrefix(what, "page ") {
		what = fmt.Sprintf("page %d: %s", e.Page, what)
	}
	return fmt.Sprintf("store %s is damaged (%s): restore it from a backup, see README Backup", e.Path, what)
}

// Unwrap returns what was found.
func (e *DamagedError) Unwrap() error { return e.Err }

// Is makes errors.Is true for ErrDamaged and ErrCorrupt.
func (e *DamagedError) Is(target error) bool { return target == ErrDamaged || target == ErrCorrupt }

// damaged returns err as a *DamagedError of the file at path when it
// reports damage (a decoder's ErrCorrupt, invalid meta pages), and err
// itself otherwise.
func damaged(path string, err error) error {
	if err == nil {
		return nil
	}
	var d *DamagedError
	if errors.As(err, &d) {
		return d
	}
	switch {
	case errors.Is(err, ErrCorrupt):
		return &DamagedError{Path: path, Page: -1, Err: err}
	case errors.Is(err, bolterrors.ErrInvalid), errors.Is(err, bolterrors.ErrChecksum), errors.Is(err, bolterrors.ErrVersionMismatch):
		return &DamagedError{Path: path, Page: -1, Err: fmt.Errorf("neither meta page (0 and 1) is valid, or this is no bbolt file: %w", err)}
	}
	return err
}

// failed puts err in the context of what was being done ("read clients
// from …"), unless it is a *DamagedError: that one names the file and says
// what to do, and is returned as it is.
func failed(err error, context string) error {
	var d *DamagedError
	if errors.As(err, &d) {
		return d
	}
	return fmt.Errorf("%s: %w", context, err)
}

// view runs fn in a read transaction under guard; a record fn refuses as
// corrupt becomes a *DamagedError.
func (db *DB) view(fn func(*bolt.Tx) error) error {
	return damaged(db.path, guard(db.path, func() error { return db.bolt.View(fn) }))
}

// update runs fn in a write transaction under guard, like view. bbolt
// rolls the transaction back when fn or bbolt panics.
func (db *DB) update(fn func(*bolt.Tx) error) error {
	return damaged(db.path, guard(db.path, func() error { return db.bolt.Update(fn) }))
}

// guard runs f, a call into bbolt, and turns a panic that bbolt raised,
// or a memory fault on the map of the file, into a *DamagedError naming
// path. Only those are recovered: any other panic (one raised by the
// store's own code, a bug) goes on. SetPanicOnFault makes a fault of this
// goroutine on the map (a page past the end of the file) a panic rather
// than a crash; bbolt's own goroutines (Tx.Check) are not covered, which
// is why Check verifies the size and walks the pages here first.
func guard(path string, f func() error) (err error) {
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		r := recover()
		if r == nil {
			return
		}
		if !fromBolt(r) {
			panic(r)
		}
		err = panicDamage(path, r)
	}()
	return f()
}

// fromBolt reports whether the panic being handled is a memory fault or
// was raised in bbolt's code. It must run in the deferred function, while
// the panicking frames are still on the stack: the first frame below
// runtime.gopanic that is not the runtime's is where it was raised.
func fromBolt(r any) bool {
	if _, ok := r.(interface{ Addr() uintptr }); ok {
		return true // a fault at a non-nil address: the map, with SetPanicOnFault
	}
	pcs := make([]uintptr, 64)
	frames := runtime.CallersFrames(pcs[:runtime.Callers(1, pcs)])
	panicking := false
	for {
		f, more := frames.Next()
		switch {
		case f.Function == "runtime.gopanic":
			panicking = true
		case !panicking, strings.HasPrefix(f.Function, "runtime."), strings.HasPrefix(f.Function, "internal/"):
		default:
			return strings.HasPrefix(f.Function, "go.etcd.io/bbolt")
		}
		if !more {
			return false
		}
	}
}

// panicDamage describes a recovered panic of bbolt.
func panicDamage(path string, r any) *DamagedError {
	msg := fmt.Sprint(r)
	if _, ok := r.(interface{ Addr() uintptr }); ok {
		msg = "reading the file faulted (is it cut short?): " + msg
	} else {
		msg = "bbolt: " + msg
	}
	return &DamagedError{Path: path, Page: pageOf(msg), Err: errors.New(msg)}
}

// pageRE finds the page id in bbolt's panic and check messages: "page 7:",
// "Page expected to be: 7", "invalid page type: 7: 10", "pgid (7) above
// high water mark", "leaf page(7)", "for pgId:7".
var pageRE = regexp.MustCompile(`(?i)\b(?:page(?: expected to be| type)?|pgid)[:( ]+(\d+)`)

// pageOf returns the page a bbolt message names, or -1.
func pageOf(msg string) int64 {
	if strings.Contains(msg, "non-freelist page") {
		return -1 // the number that follows is the page's flags
	}
	m := pageRE.FindStringSubmatch(msg)
	if m == nil {
		return -1
	}
	n, err := strconv.ParseInt(m[1], 10, 64)
	if err != nil {
		return -1
	}
	return n
}

// mapSize is the address space bbolt's map of the store reserves when the
// store is opened: 1 GiB on a 64-bit system. bbolt maps the file read-only
// and grows the map by doubling it; a commit that outgrows the map first
// copies every record the transaction holds out of it (its nodes'
// dereference), which at 10,000 clients is a checkpoint's 22 MB again for
// each doubling: 257 MB of the allocations of a catch-up from an empty
// store. The reservation is address space only: only pages read are
// resident, and the file grows by growStep. A read-only open never grows
// the file and reserves nothing.
const mapSize = (1 << 30) * (strconv.IntSize / 64)

// initialMap is the map a store opened so reserves: mapSize, unless it is
// opened read-only.
func initialMap(readOnly bool) int {
	if readOnly {
		return 0
	}
	return mapSize
}

// growStep is how much bbolt extends the file by when it needs more room
// (bbolt's AllocSize, 16 MiB by default, applies once the map is larger
// than it, hence at once with mapSize): a new store's file is a few MiB,
// most of it a hole. Each extension costs a truncate and an fsync: a
// 50 MB store takes about 13 of them growing from empty (its size over
// 4 MiB), about as many as with bbolt's default (one for each doubling
// of its map up to 16 MiB, then one every 16 MiB), and nothing beside
// its checkpoints' fsyncs.
const growStep = 4 << 20

// openBolt opens the file with bbolt under guard: opening for writing (or
// with preload) reads the freelist page, which may be damaged. If bbolt
// panics, the file it opened is closed, which releases its lock; its
// memory map cannot be reached and stays until the process exits.
func openBolt(path string, readOnly, preload bool, timeout time.Duration) (*bolt.DB, error) {
	var file *os.File
	var bdb *bolt.DB
	err := guard(path, func() error {
		var err error
		bdb, err = bolt.Open(path, fileMode, &bolt.Options{
			Timeout:         timeout,
			ReadOnly:        readOnly,
			PreLoadFreelist: preload,
			// The array freelist degrades badly on large fragmented files;
			// the hashmap one is faster in almost all cases (bbolt db.go).
			FreelistType: bolt.FreelistMapType,
			// Reserve the map's address space up front (see mapSize).
			InitialMmapSize: initialMap(readOnly),
			// NoSync stays false: a batch must be durable once Commit
			// returns.
			OpenFile: func(name string, flag int, perm os.FileMode) (*os.File, error) {
				f, err := os.OpenFile(name, flag, perm)
				file = f
				return f, err
			},
		})
		return err
	})
	var d *DamagedError
	if errors.As(err, &d) && file != nil {
		_ = file.Close()
	}
	if errors.Is(err, bolterrors.ErrTimeout) {
		return nil, &LockedError{Path: path, PID: lockHolder(path)}
	}
	if err != nil {
		if err = damaged(path, err); errors.Is(err, ErrDamaged) {
			return nil, err
		}
		return nil, fmt.Errorf("open store %s: %w", path, err)
	}
	bdb.AllocSize = growStep
	return bdb, nil
}

// checkSize returns a *DamagedError when the file is shorter than the
// pages its meta page counts: reading those would fault.
func checkSize(bdb *bolt.DB, path string) error {
	var want int64
	if err := bdb.View(func(tx *bolt.Tx) error { want = tx.Size(); return nil }); err != nil {
		return fmt.Errorf("open store %s: %w", path, err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		return fmt.Errorf("open store %s: %w", path, err)
	}
	if fi.Size() >= want {
		return nil
	}
	ps := int64(bdb.Info().PageSize)
	return &DamagedError{Path: path, Page: fi.Size() / ps, Err: fmt.Errorf(
		"the file ends at %d bytes but its %d pages of %d bytes reach %d: it was cut short", fi.Size(), want/ps, ps, want)}
}

// probe opens the file read-only, without reading the freelist, and checks
// its size, so that a truncated file is reported as such before bbolt
// opens it for writing and reads the freelist page.
func probe(path string, timeout time.Duration) error {
	bdb, err := openBolt(path, true, false, timeout)
	if err != nil {
		return err
	}
	defer bdb.Close()
	return checkSize(bdb, path)
}
