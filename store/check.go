package store

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"

	bolt "go.etcd.io/bbolt"
)

// Problem is one thing Check found wrong with the file.
type Problem struct {
	Page   int64  // the damaged page, or -1 when not known
	Bucket string // the bucket, or "" when the problem is not in one
	Key    string // the record's key as printed, or "" when not about one record
	What   string
}

// String says where the problem is and what it is: `page 7, bucket
// clients: bbolt: invalid page type: 7: 00`.
func (p Problem) String() string {
	var where []string
	if p.Page >= 0 {
		where = append(where, fmt.Sprintf("page %d", p.Page))
	}
	if p.Bucket != "" {
		where = append(where, "bucket "+p.Bucket)
	}
	if p.Key != "" {
		where = append(where, "key "+p.Key)
	}
	if len(where) == 0 {
		return p.What
	}
	return strings.Join(where, ", ") + ": " + p.What
}

// BucketCheck is what Check read of one bucket.
type BucketCheck struct {
	Name    string
	Records int // records read and decoded (or refused)
}

// Report is what Check checked and found.
type Report struct {
	Path     string
	FileSize int64
	PageSize int
	Pages    int64 // pages in use, meta and free ones included
	Schema   int   // the recorded schema version
	Buckets  []BucketCheck
	// PageCheck is whether bbolt's consistency check (Tx.Check) ran: it
	// is skipped when reading the pages already failed, because it runs
	// in a goroutine of its own, where a fault on a damaged page would
	// crash the process.
	PageCheck bool
	Problems  []Problem
}

// Damaged reports whether Check found any problem.
func (r *Report) Damaged() bool { return len(r.Problems) > 0 }

// Err returns nil for a sound store, and for a damaged one a
// *DamagedError naming the first problem.
func (r *Report) Err() error {
	if !r.Damaged() {
		return nil
	}
	p := r.Problems[0]
	what := p.String()
	if len(r.Problems) > 1 {
		what = fmt.Sprintf("%d problems, the first: %s", len(r.Problems), what)
	}
	return &DamagedError{Path: r.Path, Page: -1, Err: errors.New(what)}
}

func (r *Report) add(p Problem) { r.Problems = append(r.Problems, p) }

// addDamage records a *DamagedError found in bucket (or outside any,
// for ""); other errors are returned.
func (r *Report) addDamage(err error, bucket string) error {
	var d *DamagedError
	if !errors.As(err, &d) {
		return err
	}
	r.add(Problem{Page: d.Page, Bucket: bucket, What: trimPage(d.Err.Error(), d.Page)})
	return nil
}

// trimPage removes a leading "page N: " that Problem.String prints
// anyway.
func trimPage(what string, page int64) string {
	if page < 0 {
		return what
	}
	return strings.TrimPrefix(what, fmt.Sprintf("page %d: ", page))
}

// Check checks the store file at path without writing to it: the file
// holds every page its meta page counts, bbolt can read every page, every
// record of every bucket decodes, and bbolt's consistency check (Tx.Check:
// every page is reachable or free, once, keys in order) passes. The
// problems it finds are in the report; the error is for a file it could
// not check at all: missing, empty, held by a writer, not a store, or of
// a newer schema.
func Check(path string) (Report, error) {
	r := Report{Path: path}
	fi, err := os.Stat(path)
	if err != nil {
		return r, fmt.Errorf("check store %s: %w", path, err)
	}
	r.FileSize = fi.Size()
	if r.FileSize == 0 {
		return r, fmt.Errorf("store %s is empty: no daemon has written it yet: %w", path, ErrEmpty)
	}
	// First without the freelist: bbolt reads only the meta pages, so the
	// size can be checked before any other page is read.
	bdb, err := openBolt(path, true, false, DefaultLockTimeout)
	if err != nil {
		return r, r.addDamage(err, "")
	}
	r.PageSize = bdb.Info().PageSize
	_ = bdb.View(func(tx *bolt.Tx) error { r.Pages = tx.Size() / int64(r.PageSize); return nil })
	err = checkSize(bdb, path)
	_ = bdb.Close()
	if err != nil {
		return r, r.addDamage(err, "")
	}
	bdb, err = openBolt(path, true, true, DefaultLockTimeout)
	if err != nil {
		return r, r.addDamage(err, "")
	}
	defer bdb.Close()
	return r, r.check(bdb)
}

// Check checks the open store as the function Check does a file. No
// commit may run meanwhile: bbolt's check is not safe beside a writer.
func (db *DB) Check() (Report, error) {
	r := Report{Path: db.path, PageSize: db.bolt.Info().PageSize}
	fi, err := os.Stat(db.path)
	if err != nil {
		return r, fmt.Errorf("check store %s: %w", db.path, err)
	}
	r.FileSize = fi.Size()
	_ = db.bolt.View(func(tx *bolt.Tx) error { r.Pages = tx.Size() / int64(r.PageSize); return nil })
	if err := checkSize(db.bolt, db.path); err != nil {
		return r, r.addDamage(err, "")
	}
	return r, r.check(db.bolt)
}

// bucketSpec is a bucket of the layout: the schema version that added it
// and how its records decode.
type bucketSpec struct {
	name   []byte
	since  int
	key    func(k []byte) string
	decode func(k, v []byte) error
}

func quoteKey(k []byte) string { return strconv.Quote(string(k)) }

// seqKeyString prints an outbox or dead-letter key, a sequence number.
func seqKeyString(k []byte) string {
	if len(k) != 8 {
		return quoteKey(k)
	}
	return strconv.FormatUint(binary.BigEndian.Uint64(k), 10)
}

// scopeKeyString prints a scope names key, a number.
func scopeKeyString(k []byte) string {
	if len(k) != 4 {
		return quoteKey(k)
	}
	return strconv.FormatUint(uint64(binary.BigEndian.Uint32(k)), 10)
}

// positionKeyString prints a positions key: source, device and inode.
func positionKeyString(k []byte) string {
	if len(k) < 17 || k[len(k)-17] != 0 {
		return quoteKey(k)
	}
	return fmt.Sprintf("%q dev %d ino %d", k[:len(k)-17],
		binary.BigEndian.Uint64(k[len(k)-16:]), binary.BigEndian.Uint64(k[len(k)-8:]))
}

// decodeJSON returns a decoder of records stored as JSON into a T.
func decodeJSON[T any]() func(k, v []byte) error {
	return func(_, v []byte) error {
		var x T
		if err := json.Unmarshal(v, &x); err != nil {
			return fmt.Errorf("%w: %v", ErrCorrupt, err)
		}
		return nil
	}
}

// layout returns the buckets of the current schema, in the order Check
// reads them: the scope names before the client records that number them.
func layout() []bucketSpec {
	var names []string // by number; "" for a number the store lacks
	return []bucketSpec{
		{bucketMeta, 1, quoteKey, decodeMeta},
		{bucketScopes, 9, scopeKeyString, func(k, v []byte) error {
			err := checkScopeName(len(names), k, v)
			if len(k) == 4 {
				if n := int(binary.BigEndian.Uint32(k)); n >= len(names) && n < 1<<24 {
					names = append(names, make([]string, n+1-len(names))...)
					names[n] = string(v)
				}
			}
			return err
		}},
		{bucketClients, 1, quoteKey, func(k, v []byte) error {
			if !validClientID(string(k)) {
				return fmt.Errorf("client id is empty or contains a 0 byte: %w", ErrCorrupt)
			}
			_, err := decodeClient(names, string(k), v)
			return err
		}},
		{bucketSources, 1, quoteKey, func(k, v []byte) error { _, err := decodeSource(string(k), v); return err }},
		{bucketPositions, 1, positionKeyString, func(k, v []byte) error { _, err := decodePosition(k, v); return err }},
		{bucketFindings, 2, quoteKey, decodeJSON[Finding]()},
		{bucketSilences, 2, quoteKey, decodeJSON[Silence]()},
		{bucketCoverage, 2, quoteKey, decodeJSON[[]Span]()},
		{bucketGroups, 3, quoteKey, decodeJSON[Group]()},
		{bucketOutbox, 3, seqKeyString, decodeJSON[Message]()},
		{bucketDeadLetter, 3, seqKeyString, decodeJSON[DeadLetter]()},
		{bucketWindows, 5, quoteKey, func(_, v []byte) error { _, err := DecodeWindow(v); return err }},
		{bucketOwners, 6, quoteKey, func(_, v []byte) error { _, err := decodeOwner(v); return err }},
		{bucketChangelog, 7, quoteKey, func(k, v []byte) error {
			if bytes.HasSuffix(k, []byte(seededSuffix)) {
				if len(v) != 8 {
					return fmt.Errorf("changelog marker of %d bytes, not a nonce of 8: %w", len(v), ErrCorrupt)
				}
				return nil
			}
			if _, n := binary.Uvarint(v); n <= 0 {
				return fmt.Errorf("changelog entry of %d bytes: %w", len(v), ErrCorrupt)
			}
			return nil
		}},
	}
}

// decodeMeta decodes the records of the meta bucket the store knows.
func decodeMeta(k, v []byte) error {
	d := decoder{b: v}
	switch string(k) {
	case string(keySchema):
		d.uvarint()
		return d.end("schema version")
	case string(keyCreated):
		d.time()
		return d.end("creation time")
	}
	return nil
}

// check reads every bucket of the open file, each in a read transaction
// of its own under guard, so that a damaged page ends the walk of its
// bucket only; then, if every page read, runs bbolt's check.
func (r *Report) check(bdb *bolt.DB) error {
	var names [][]byte
	var version uint64
	err := guard(r.Path, func() error {
		return bdb.View(func(tx *bolt.Tx) error {
			var err error
			if version, _, err = readMeta(tx); err != nil {
				return err
			}
			return tx.ForEach(func(name []byte, _ *bolt.Bucket) error {
				names = append(names, append([]byte(nil), name...))
				return nil
			})
		})
	})
	var d *DamagedError
	switch {
	case errors.As(err, &d):
		return r.addDamage(err, "")
	case err != nil:
		// The version does not decode: read the buckets of this one.
		r.add(Problem{Page: -1, Bucket: string(bucketMeta), Key: quoteKey(keySchema), What: err.Error()})
		version = SchemaVersion
	case version == 0:
		return fmt.Errorf("check store %s: the file has no scopewatch schema marker (key %q in bucket %q): %w",
			r.Path, keySchema, bucketMeta, ErrNotStore)
	case version > SchemaVersion:
		return fmt.Errorf("check store %s: schema version %d is newer than %d, the newest this scopewatch knows: %w",
			r.Path, version, SchemaVersion, ErrSchemaTooNew)
	}
	r.Schema = int(version)

	pagesRead := true
	known := make(map[string]bool)
	for _, spec := range layout() {
		known[string(spec.name)] = true
		if spec.since > r.Schema {
			continue
		}
		if !r.walk(bdb, spec) {
			pagesRead = false
		}
	}
	for _, name := range names {
		if !known[string(name)] {
			r.add(Problem{Page: -1, Bucket: strconv.Quote(string(name)), What: "a bucket the store does not have"})
		}
	}
	if !pagesRead {
		return nil
	}
	r.PageCheck = true
	return r.addDamage(guard(r.Path, func() error {
		return bdb.View(func(tx *bolt.Tx) error {
			for err := range tx.Check() {
				msg := err.Error()
				page := pageOf(msg)
				r.add(Problem{Page: page, What: trimPage(msg, page)})
			}
			return nil
		})
	}), "")
}

// walk reads and decodes every record of one bucket, and reports whether
// bbolt read its pages.
func (r *Report) walk(bdb *bolt.DB, spec bucketSpec) bool {
	bc := BucketCheck{Name: string(spec.name)}
	err := guard(r.Path, func() error {
		return bdb.View(func(tx *bolt.Tx) error {
			b := tx.Bucket(spec.name)
			if b == nil {
				r.add(Problem{Page: -1, Bucket: bc.Name, What: "missing"})
				return nil
			}
			c := b.Cursor()
			for k, v := c.First(); k != nil; k, v = c.Next() {
				bc.Records++
				if v == nil {
					r.add(Problem{Page: -1, Bucket: bc.Name, Key: spec.key(k), What: "a nested bucket the store does not have"})
					continue
				}
				if err := spec.decode(k, v); err != nil {
					r.add(Problem{Page: -1, Bucket: bc.Name, Key: spec.key(k), What: err.Error()})
				}
			}
			return nil
		})
	})
	r.Buckets = append(r.Buckets, bc)
	if err == nil {
		return true
	}
	if err := r.addDamage(err, bc.Name); err != nil {
		r.add(Problem{Page: -1, Bucket: bc.Name, What: err.Error()})
	}
	return false
}
