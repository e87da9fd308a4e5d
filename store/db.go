package store

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"
)

// SchemaVersion is the version of the bucket layout and record encodings
// written by this package. Files with an older version are migrated when
// opened for writing; files with a newer one are refused.
const SchemaVersion = 10

// DefaultLockTimeout is how long Open waits for another process to release
// the file when Options.LockTimeout is zero.
const DefaultLockTimeout = time.Second

// fileMode is the permission of a store file: it holds client identifiers
// and network addresses, so only its owner may read it.
const fileMode os.FileMode = 0o600

// Errors returned by the store, wrapped with the operation and the file;
// test for them with errors.Is.
var (
	// ErrLocked means another process (or another DB in this process)
	// holds the file. The error is a *LockedError naming the holder.
	ErrLocked = errors.New("store in use")
	// ErrSchemaTooNew means the file was written by a newer scopewatch.
	ErrSchemaTooNew = errors.New("store schema too new")
	// ErrNotStore means the file is a bbolt database but not a scopewatch
	// store, or one whose schema cannot be used as it is.
	ErrNotStore = errors.New("not a usable scopewatch store")
	// ErrReadOnly means a write was attempted on a store opened read-only.
	ErrReadOnly = errors.New("store opened read-only")
	// ErrInvalid means a batch holds something the store cannot record,
	// such as an empty client id.
	ErrInvalid = errors.New("invalid batch content")
	// ErrCorrupt means a stored record could not be decoded.
	ErrCorrupt = errors.New("corrupt record")
)

// LockedError reports that the store file is held by another process.
// PID is 0 when the holder could not be identified.
type LockedError struct {
	Path string
	PID  int
}

// Error names the file and, when known, the process holding it.
func (e *LockedError) Error() string {
	if e.PID > 0 {
		return fmt.Sprintf("store %s is in use by pid %d", e.Path, e.PID)
	}
	return fmt.Sprintf("store %s is in use by another process", e.Path)
}

// Is makes errors.Is(err, ErrLocked) true for a *LockedError.
func (e *LockedError) Is(target error) bool { return target == ErrLocked }

// Options configure Open.
type Options struct {
	// ReadOnly opens the file with a shared lock and refuses writes; any
	// number of read-only openers may coexist, but not with a writer.
	ReadOnly bool
	// LockTimeout bounds the wait for another process's lock;
	// zero or negative means DefaultLockTimeout.
	LockTimeout time.Duration
	// Now is the clock used for the creation time; nil means time.Now.
	Now func() time.Time
}

// DB is an open scopewatch store. Its methods are safe for concurrent use;
// writes are serialised, reads run in short read transactions and return
// copies.
type DB struct {
	bolt     *bolt.DB
	path     string
	readOnly bool
	now      func() time.Time

	mu  sync.Mutex // serialises Commit and guards enc and changelog
	enc encoder
	// scopes are the store's scope names, which client records number.
	scopes scopeNames
	// changelog names the sources whose partitions keep a changelog
	// (KeepChangelog); nil when none does.
	changelog *changelogKeep

	// beforeCommit, when set (by tests), runs inside Commit's transaction
	// after every write; an error from it rolls the transaction back.
	beforeCommit func(*bolt.Tx) error
}

// Bucket and key names of the layout.
var (
	bucketMeta      = []byte("meta")
	bucketClients   = []byte("clients")
	bucketSources   = []byte("sources")
	bucketPositions = []byte("positions")

	keySchema  = []byte("schema")
	keyCreated = []byte("created")
)

// migrations returns the schema upgrade steps: step i brings a file from
// version i to version i+1, so len(migrations()) == SchemaVersion. Step 0
// lays out a new file. All pending steps of one Open run in one
// transaction together with the version update.
func migrations() []func(tx *bolt.Tx) error {
	return []func(tx *bolt.Tx) error{
		0: func(tx *bolt.Tx) error {
			for _, name := range [][]byte{bucketMeta, bucketClients, bucketSources, bucketPositions} {
				if _, err := tx.CreateBucketIfNotExists(name); err != nil {
					return fmt.Errorf("create bucket %s: %w", name, err)
				}
			}
			return nil
		},
		// Version 2 adds findings, silences and per-source coverage.
		1: func(tx *bolt.Tx) error {
			for _, name := range [][]byte{bucketFindings, bucketSilences, bucketCoverage} {
				if _, err := tx.CreateBucketIfNotExists(name); err != nil {
					return fmt.Errorf("create bucket %s: %w", name, err)
				}
			}
			return nil
		},
		// Version 3 adds the notification groups, the outbox and the dead
		// letters.
		2: func(tx *bolt.Tx) error {
			for _, name := range [][]byte{bucketGroups, bucketOutbox, bucketDeadLetter} {
				if _, err := tx.CreateBucketIfNotExists(name); err != nil {
					return fmt.Errorf("create bucket %s: %w", name, err)
				}
			}
			return markStanding(tx)
		},
		// Version 4 writes client records with the tokens issued to the
		// client (format 3). Records of format 2 are read as they are
		// and rewritten when next touched: nothing to move here. The
		// version keeps an older scopewatch, which cannot read format 3,
		// from opening the file.
		3: func(*bolt.Tx) error { return nil },
		// Version 5 adds the detectors' time windows.
		4: func(tx *bolt.Tx) error {
			if _, err := tx.CreateBucketIfNotExists(bucketWindows); err != nil {
				return fmt.Errorf("create bucket %s: %w", bucketWindows, err)
			}
			return nil
		},
		// Version 6 adds the partition each client of a keyed Kafka
		// topic belongs to.
		5: func(tx *bolt.Tx) error {
			if _, err := tx.CreateBucketIfNotExists(bucketOwners); err != nil {
				return fmt.Errorf("create bucket %s: %w", bucketOwners, err)
			}
			return nil
		},
		// Version 7 adds what the partitions' changelogs lack.
		6: func(tx *bolt.Tx) error {
			if _, err := tx.CreateBucketIfNotExists(bucketChangelog); err != nil {
				return fmt.Errorf("create bucket %s: %w", bucketChangelog, err)
			}
			return nil
		},
		// Version 8 writes client records with times relative to one
		// another and addresses as bytes (format 4). Records of formats
		// 2 and 3 are read as they are and rewritten when next touched;
		// the version keeps an older scopewatch, which cannot read format
		// 4, from opening the file.
		7: func(*bolt.Tx) error { return nil },
		// Version 9 numbers the scope names, and writes client records
		// that name their scopes by number (format 5). Records of
		// formats 2 to 4 are read as they are and rewritten when next
		// touched.
		8: func(tx *bolt.Tx) error {
			if _, err := tx.CreateBucketIfNotExists(bucketScopes); err != nil {
				return fmt.Errorf("create bucket %s: %w", bucketScopes, err)
			}
			return nil
		},
		// Version 10 writes each IPv4 address of a client record as its
		// difference from the one before (format 6). Records of formats
		// 2 to 5 are read as they are and rewritten when next touched;
		// the version keeps an older scopewatch, which cannot read
		// format 6, from opening the file.
		9: func(*bolt.Tx) error { return nil },
	}
}

// Open opens the store at path, creating it (mode 0600, and its directory,
// mode 0750, when missing) unless opts.ReadOnly is set, and brings its
// schema up to SchemaVersion. If another process holds the file, Open
// gives up after opts.LockTimeout with a *LockedError (errors.Is(err,
// ErrLocked)). A damaged file (one shorter than its pages, a page bbolt
// cannot read) fails with a *DamagedError (errors.Is(err, ErrDamaged)), a
// 0-byte file opened read-only with ErrEmpty, and a bbolt file without the
// store's schema marker with ErrNotStore.
func Open(path string, opts Options) (*DB, error) {
	timeout := opts.LockTimeout
	if timeout <= 0 {
		timeout = DefaultLockTimeout
	}
	now := opts.Now
	if now == nil {
		now = time.Now
	}
	fi, err := os.Stat(path)
	switch {
	case err == nil && fi.Size() == 0 && opts.ReadOnly:
		return nil, fmt.Errorf("store %s is empty: no daemon has written it yet: %w", path, ErrEmpty)
	case err == nil && fi.Size() > 0 && !opts.ReadOnly:
		// Opening for writing reads the freelist page at once: check
		// first that the file holds its pages.
		if err := probe(path, timeout); err != nil {
			return nil, err
		}
	case errors.Is(err, fs.ErrNotExist) && !opts.ReadOnly:
		if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
			return nil, fmt.Errorf("open store %s: create its directory: %w", path, err)
		}
	}
	bdb, err := openBolt(path, opts.ReadOnly, false, timeout)
	if err != nil {
		return nil, err
	}
	if opts.ReadOnly {
		if err := checkSize(bdb, path); err != nil {
			_ = bdb.Close()
			return nil, err
		}
	}
	db := &DB{bolt: bdb, path: path, readOnly: opts.ReadOnly, now: now}
	if !opts.ReadOnly {
		if err := restrictMode(path); err != nil {
			_ = bdb.Close()
			return nil, err
		}
	}
	if err := db.upgrade(); err != nil {
		_ = bdb.Close()
		return nil, err
	}
	if err := db.view(db.scopes.read); err != nil {
		_ = bdb.Close()
		return nil, failed(err, "open store "+path)
	}
	return db, nil
}

// restrictMode removes group and other permissions from an existing file
// that was created looser than fileMode, by hand or by another tool.
func restrictMode(path string) error {
	fi, err := os.Stat(path)
	if err != nil {
		return fmt.Errorf("stat store %s: %w", path, err)
	}
	if fi.Mode().Perm()&^fileMode == 0 {
		return nil
	}
	if err := os.Chmod(path, fi.Mode().Perm()&fileMode); err != nil {
		return fmt.Errorf("restrict permissions of store %s: %w", path, err)
	}
	return nil
}

// upgrade checks the schema version and runs pending migrations.
func (db *DB) upgrade() error {
	var version uint64
	var hasCreated bool
	err := db.view(func(tx *bolt.Tx) error {
		var err error
		version, hasCreated, err = readMeta(tx)
		if err != nil {
			return err
		}
		if version == 0 {
			return checkForeign(tx)
		}
		return checkClientLayout(tx)
	})
	if err != nil {
		return failed(err, "open store "+db.path)
	}
	switch {
	case version > SchemaVersion:
		return fmt.Errorf("open store %s: schema version %d is newer than %d, the newest this scopewatch supports: %w",
			db.path, version, SchemaVersion, ErrSchemaTooNew)
	case version == SchemaVersion && hasCreated:
		return nil
	case db.readOnly && version == 0:
		return fmt.Errorf("open store %s read-only: the file has no scopewatch schema: %w", db.path, ErrNotStore)
	case db.readOnly:
		return fmt.Errorf("open store %s read-only: schema version %d needs migrating to %d; open it for writing once: %w",
			db.path, version, SchemaVersion, ErrNotStore)
	}
	err = db.update(func(tx *bolt.Tx) error {
		for v, step := range migrations()[version:] {
			if err := step(tx); err != nil {
				return fmt.Errorf("migrate schema from version %d: %w", int(version)+v, err)
			}
		}
		meta := tx.Bucket(bucketMeta)
		if err := meta.Put(keySchema, appendUvarint(nil, SchemaVersion)); err != nil {
			return err
		}
		if meta.Get(keyCreated) == nil {
			return meta.Put(keyCreated, appendTime(nil, db.now()))
		}
		return nil
	})
	if err != nil {
		return failed(err, "initialise store "+db.path)
	}
	return nil
}

// readMeta returns the schema version (0 for a file without one) and
// whether a creation time is recorded.
func readMeta(tx *bolt.Tx) (version uint64, hasCreated bool, err error) {
	meta := tx.Bucket(bucketMeta)
	if meta == nil {
		return 0, false, nil
	}
	if v := meta.Get(keySchema); v != nil {
		d := decoder{b: v}
		version = d.uvarint()
		if d.err != nil {
			return 0, false, fmt.Errorf("read schema version: %w", d.err)
		}
	}
	return version, meta.Get(keyCreated) != nil, nil
}

// checkForeign refuses a file without the store's schema marker (the key
// "schema" in bucket "meta") that holds any bucket: it belongs to some
// other program, even when its only bucket is called meta. Every
// migration writes the marker in the transaction that creates the
// buckets, so a file that scopewatch laid out always has it.
func checkForeign(tx *bolt.Tx) error {
	var names []string
	err := tx.ForEach(func(name []byte, _ *bolt.Bucket) error {
		names = append(names, strconv.Quote(string(name)))
		return nil
	})
	if err != nil || len(names) == 0 {
		return err
	}
	return fmt.Errorf("the file is a bbolt database with buckets %s but without scopewatch's schema marker (key %q in bucket %q): "+
		"it belongs to another program; point store elsewhere: %w", strings.Join(names, ", "), keySchema, bucketMeta, ErrNotStore)
}

// checkClientLayout refuses a file whose clients bucket holds records of
// the unreleased layout with one key per scope: their keys contain a 0
// byte, which client ids never do, and their values start with format 1.
// Every key has the same layout, so the first one tells. Any other first
// record passes: if it is damaged, reading it says so.
func checkClientLayout(tx *bolt.Tx) error {
	b := tx.Bucket(bucketClients)
	if b == nil {
		return nil
	}
	k, v := b.Cursor().First()
	if k == nil {
		return nil
	}
	if bytes.IndexByte(k, 0) < 0 || len(v) == 0 || v[0] != formatV1 {
		return nil
	}
	return fmt.Errorf("clients are stored in an older development layout (one record per scope) that this scopewatch does not read; "+
		"move the file aside and let scopewatch build a new store from the logs: %w", ErrNotStore)
}

// Close releases the file and its lock. Reads and commits after Close fail.
func (db *DB) Close() error {
	if err := db.bolt.Close(); err != nil {
		return failed(err, fmt.Sprintf("close store %s", db.path))
	}
	return nil
}

// Path returns the file the store was opened from.
func (db *DB) Path() string { return db.path }

// SchemaVersion returns the schema version recorded in the file.
func (db *DB) SchemaVersion() (int, error) {
	var version uint64
	err := db.view(func(tx *bolt.Tx) error {
		var err error
		version, _, err = readMeta(tx)
		return err
	})
	if err != nil {
		return 0, failed(err, fmt.Sprintf("read schema version of %s", db.path))
	}
	return int(version), nil
}

// Created returns when the store file was first laid out.
func (db *DB) Created() (time.Time, error) {
	var t time.Time
	err := db.view(func(tx *bolt.Tx) error {
		v := tx.Bucket(bucketMeta).Get(keyCreated)
		d := decoder{b: v}
		t = d.time()
		return d.err
	})
	if err != nil {
		return time.Time{}, failed(err, fmt.Sprintf("read creation time of %s", db.path))
	}
	return t, nil
}

// Stats describes the file for metrics.
type Stats struct {
	FileSize      int64 // bytes on disk
	DataSize      int64 // bytes up to the highest page in use
	PageSize      int
	FreePages     int   // pages free for reuse
	PendingPages  int   // pages freed by recent commits, reusable once no read transaction needs them
	FreeBytes     int64 // (FreePages + PendingPages) × PageSize: what compaction could reclaim
	FreelistBytes int   // bytes the freelist itself occupies
}

// Stats returns the file size and free-space figures. Free pages are only
// tracked when the store is open for writing; read-only stores report 0.
func (db *DB) Stats() (Stats, error) {
	var s Stats
	err := db.view(func(tx *bolt.Tx) error {
		s.DataSize = tx.Size()
		return nil
	})
	if err != nil {
		return Stats{}, failed(err, fmt.Sprintf("read stats of %s", db.path))
	}
	fi, err := os.Stat(db.path)
	if err != nil {
		return Stats{}, failed(err, fmt.Sprintf("read stats of %s", db.path))
	}
	// The freelist figures are refreshed when a transaction ends, so read
	// them after the View above.
	bs := db.bolt.Stats()
	s.FileSize = fi.Size()
	s.PageSize = db.bolt.Info().PageSize
	s.FreePages = bs.FreePageN
	s.PendingPages = bs.PendingPageN
	s.FreeBytes = int64(bs.FreePageN+bs.PendingPageN) * int64(s.PageSize)
	s.FreelistBytes = bs.FreelistInuse
	return s, nil
}

// Backup writes a consistent copy of the store to w, from one read
// transaction: commits go on meanwhile and are not in the copy. It
// returns the bytes written; size, called before the first write, gets
// the copy's size (for a Content-Length).
func (db *DB) Backup(w io.Writer, size func(int64)) (int64, error) {
	var n int64
	err := db.view(func(tx *bolt.Tx) error {
		if size != nil {
			size(tx.Size())
		}
		var err error
		n, err = tx.WriteTo(w)
		return err
	})
	if err != nil {
		return n, failed(err, fmt.Sprintf("back up store %s", db.path))
	}
	return n, nil
}

// Compact writes a compacted copy of the store to dst, which must not
// exist. bbolt files never shrink, so this is how space freed by churn is
// returned: compact (the source may be open read-only), stop every user of
// the store, then rename dst over the original.
func (db *DB) Compact(dst string) error {
	if _, err := os.Lstat(dst); err == nil {
		return fmt.Errorf("compact store %s into %s: %w", db.path, dst, os.ErrExist)
	}
	out, err := bolt.Open(dst, fileMode, &bolt.Options{Timeout: DefaultLockTimeout, FreelistType: bolt.FreelistMapType})
	if err != nil {
		return failed(err, fmt.Sprintf("compact store %s into %s", db.path, dst))
	}
	// 64 MiB per transaction bounds the memory the copy needs.
	err = damaged(db.path, guard(db.path, func() error { return bolt.Compact(out, db.bolt, 64<<20) }))
	if err != nil {
		_ = out.Close()
		_ = os.Remove(dst)
		return failed(err, fmt.Sprintf("compact store %s into %s", db.path, dst))
	}
	var used int64
	_ = out.View(func(tx *bolt.Tx) error { used = tx.Size(); return nil })
	if err := out.Close(); err != nil {
		return failed(err, fmt.Sprintf("compact store %s into %s", db.path, dst))
	}
	if err := truncateTo(dst, used); err != nil {
		_ = os.Remove(dst)
		return failed(err, fmt.Sprintf("compact store %s into %s", db.path, dst))
	}
	return nil
}

// truncateTo cuts the bbolt file at path to the used bytes of its pages,
// durably. The copy is written without the store's reserved map
// (mapSize), and bbolt then grows a file by doubling its map (up to 1
// GiB), so a compacted copy of 4 MB of records took 8 MiB; the pages past
// its last used one hold nothing, and bbolt grows the file again as it
// needs.
func truncateTo(path string, used int64) error {
	if used <= 0 {
		return nil
	}
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	if err := f.Truncate(used); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
