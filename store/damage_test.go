package store

import (
	"bytes"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

// writeGoodStore writes, through the package, a store with enough
// clients to take several pages (a branch page above leaves), and
// returns its path.
func writeGoodStore(t *testing.T, dir string) string {
	t.Helper()
	path := filepath.Join(dir, "scopewatch.db")
	db, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	for batch := range 4 {
		b := NewBatch()
		st := NewState(db, 0)
		for i := range 100 {
			c := st.Client(fmt.Sprintf("client-%03d", batch*100+i))
			c.Seen.Add(1, at(time.Duration(i)*time.Second))
			for s := range 6 {
				c.CountScope(fmt.Sprintf("patient/Resource%d.read", s), ScopeGranted, 2, at(time.Minute))
			}
			c.SawIP(netip.AddrFrom4([4]byte{192, 0, 2, byte(i)}), at(time.Minute))
		}
		*b.Source("keycloak") = SourceDelta{Lines: 100, Events: counter(100, at(0), at(time.Hour))}
		b.SetPosition(Position{Source: "keycloak", File: FileID{Dev: 1, Ino: 2}, Offset: int64(batch) * 1000, Path: "/var/log/k.log"})
		b.Findings = map[FindingKey]Finding{{Kind: "unused_scope", Client: "client-001", Subject: "openid"}: {State: StateOpen, Opened: at(0)}}
		st.Checkpoint(b)
		commit(t, db, b)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	return path
}

// boltInfo returns the page size, the pages in use and the root page of
// the clients bucket of the file.
func boltInfo(t *testing.T, path string) (pageSize int, pages int64, clientsRoot int64) {
	t.Helper()
	bdb, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer bdb.Close()
	pageSize = bdb.Info().PageSize
	err = bdb.View(func(tx *bolt.Tx) error {
		pages = tx.Size() / int64(pageSize)
		clientsRoot = int64(tx.Bucket(bucketClients).Root())
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return pageSize, pages, clientsRoot
}

// patchFile overwrites the file at off with b.
func patchFile(t *testing.T, path string, off int64, b []byte) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt(b, off); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}

// damage is a way to damage a good store, with what Open says of it.
type damage struct {
	name string
	do   func(t *testing.T, path string)
	// page is the page the problem names, -1 for none.
	page func(t *testing.T, path string) int64
	// records is how many records Check finds corrupt, 0 for page damage.
	records int
}

func damages() []damage {
	clientsRoot := func(t *testing.T, path string) int64 { _, _, root := boltInfo(t, path); return root }
	return []damage{
		{name: "page type flipped", page: clientsRoot, do: func(t *testing.T, path string) {
			ps, _, root := boltInfo(t, path)
			patchFile(t, path, root*int64(ps)+8, []byte{0xff, 0xff}) // the flags of the page header
		}},
		{name: "page id flipped", page: clientsRoot, do: func(t *testing.T, path string) {
			ps, _, root := boltInfo(t, path)
			patchFile(t, path, root*int64(ps), []byte{0x5a, 0x5a, 0x5a, 0x5a}) // the id of the page header
		}},
		{name: "half size", page: func(t *testing.T, path string) int64 {
			ps, _, _ := boltInfo(t, path+".orig")
			fi, _ := os.Stat(path)
			return fi.Size() / int64(ps)
		}, do: func(t *testing.T, path string) {
			fi, err := os.Stat(path)
			if err != nil {
				t.Fatal(err)
			}
			// The file ends in room bbolt reserved (growStep): the cut
			// falls in the middle of the pages in use.
			ps, pages, _ := boltInfo(t, path)
			if pages < 8 || pages*int64(ps) > fi.Size() {
				t.Fatalf("%d pages of %d bytes in use in a file of %d bytes: no store to cut", pages, ps, fi.Size())
			}
			orig, _ := os.ReadFile(path)
			if err := os.WriteFile(path+".orig", orig, 0o600); err != nil {
				t.Fatal(err)
			}
			if err := os.Truncate(path, pages/2*int64(ps)); err != nil {
				t.Fatal(err)
			}
		}},
		{name: "16 corrupt records", records: 16, do: func(t *testing.T, path string) {
			corruptRecords(t, path, 16)
		}},
	}
}

// corruptRecords overwrites, in place in the file, the format byte of n
// client records (every copy of each, free pages included).
func corruptRecords(t *testing.T, path string, n int) {
	t.Helper()
	var kvs [][]byte
	bdb, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	err = bdb.View(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketClients).Cursor()
		i := 0
		for k, v := c.First(); k != nil; k, v = c.Next() {
			if i%20 == 0 && len(kvs) < n {
				kvs = append(kvs, slices.Concat(k, v))
			}
			i++
		}
		return nil
	})
	bdb.Close()
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, kv := range kvs {
		klen := bytes.IndexByte(kv, formatClient) // keys are "client-NNN": no byte 4
		found := 0
		for off := 0; ; {
			i := bytes.Index(data[off:], kv)
			if i < 0 {
				break
			}
			data[off+i+klen] = 0x7e
			off += i + len(kv)
			found++
		}
		if found == 0 {
			t.Fatalf("record %q not found in the file", kv[:klen])
		}
	}
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestDamagedStore damages a good store in several ways and checks that
// opening and reading it returns a *DamagedError naming the file (never a
// panic), and that Check reports the damage.
func TestDamagedStore(t *testing.T) {
	for _, dm := range damages() {
		t.Run(dm.name, func(t *testing.T) {
			path := writeGoodStore(t, t.TempDir())
			dm.do(t, path)
			wantPage := int64(-1)
			if dm.page != nil {
				wantPage = dm.page(t, path)
			}
			isDamage := func(what string, err error) {
				t.Helper()
				var d *DamagedError
				if !errors.As(err, &d) || !errors.Is(err, ErrDamaged) || !errors.Is(err, ErrCorrupt) {
					t.Fatalf("%s = %v; want a *DamagedError", what, err)
				}
				msg := err.Error()
				t.Logf("%s: %s", what, msg)
				if !strings.HasPrefix(msg, "store "+path+" is damaged (") || !strings.HasSuffix(msg, "): restore it from a backup, see README Backup") {
					t.Errorf("%s says %q", what, msg)
				}
				if wantPage >= 0 && (d.Page != wantPage || !strings.Contains(msg, fmt.Sprintf("(page %d: ", wantPage))) {
					t.Errorf("%s = %q, page %d; want page %d", what, msg, d.Page, wantPage)
				}
			}
			// Every way in: for writing, read-only, and the reads.
			for _, opts := range []Options{{}, {ReadOnly: true}} {
				db, err := Open(path, opts)
				if err != nil {
					isDamage(fmt.Sprintf("Open(%+v)", opts), err)
					continue
				}
				_, err = db.Clients()
				isDamage(fmt.Sprintf("Clients after Open(%+v)", opts), err)
				if !opts.ReadOnly {
					// The engine reads each client back before it
					// writes it: damage shows there, or in the commit.
					b := NewBatch()
					st := NewState(db, 0)
					for i := range 400 {
						st.Client(fmt.Sprintf("client-%03d", i)).Seen.Add(1, at(0))
					}
					err := st.Err()
					if err == nil {
						st.Checkpoint(b)
						err = db.Commit(b)
					}
					isDamage("reading and committing clients", err)
					dst := filepath.Join(t.TempDir(), "c.db")
					if err := db.Compact(dst); dm.records == 0 {
						isDamage("Compact", err)
					}
				}
				if err := db.Close(); err != nil {
					t.Fatal(err)
				}
			}

			r, err := Check(path)
			if err != nil {
				t.Fatalf("Check = %v", err)
			}
			if !r.Damaged() || !errors.Is(r.Err(), ErrDamaged) {
				t.Fatalf("Check found nothing: %+v", r)
			}
			if dm.records > 0 {
				if len(r.Problems) != dm.records || !r.PageCheck {
					t.Errorf("Check found %d problems (page check %v), want %d: %v", len(r.Problems), r.PageCheck, dm.records, r.Problems)
				}
				for _, p := range r.Problems {
					if p.Bucket != "clients" || !strings.HasPrefix(p.Key, `"client-`) || !strings.Contains(p.What, fmt.Sprintf("record format 126, want %d", formatClient)) {
						t.Errorf("problem %q; want a client record of format 126", p)
					}
				}
				return
			}
			t.Logf("Check: %v", r.Problems)
			if p := r.Problems[0]; p.Page != wantPage {
				t.Errorf("Check's first problem %q; want page %d", p, wantPage)
			}
		})
	}
}

// TestCheckSoundStore checks a good store: every bucket read, bbolt's
// check run, nothing found; the same through an open DB.
func TestCheckSoundStore(t *testing.T) {
	path := writeGoodStore(t, t.TempDir())
	r, err := Check(path)
	if err != nil || r.Damaged() || !r.PageCheck || r.Schema != SchemaVersion || r.Err() != nil {
		t.Fatalf("Check = %+v, %v", r, err)
	}
	if len(r.Buckets) != len(layout()) || r.Buckets[2].Name != "clients" || r.Buckets[2].Records != 400 || r.Buckets[1].Name != "scopes" || r.Buckets[1].Records == 0 {
		t.Errorf("Check read %+v", r.Buckets)
	}
	if r.Pages <= 2 || r.PageSize <= 0 || r.FileSize < r.Pages*int64(r.PageSize) {
		t.Errorf("Check = %+v", r)
	}
	db := openTest(t, path, Options{})
	r2, err := db.Check()
	if err != nil || r2.Damaged() || !slices.Equal(r2.Buckets, r.Buckets) {
		t.Errorf("DB.Check = %+v, %v", r2, err)
	}
}

// TestCheckRefuses checks the files Check cannot check at all.
func TestCheckRefuses(t *testing.T) {
	dir := t.TempDir()
	empty := filepath.Join(dir, "empty.db")
	if err := os.WriteFile(empty, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Check(empty); !errors.Is(err, ErrEmpty) || !strings.Contains(err.Error(), "store "+empty+" is empty: no daemon has written it yet") {
		t.Errorf("Check(empty file) = %v", err)
	}
	foreign := writeForeign(t, dir)
	if _, err := Check(foreign); !errors.Is(err, ErrNotStore) || !strings.Contains(err.Error(), foreign) {
		t.Errorf("Check(foreign file) = %v", err)
	}
	if _, err := Check(filepath.Join(dir, "missing.db")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Check(missing file) = %v", err)
	}
}

// writeForeign writes a bbolt file of another program whose only bucket
// is called meta.
func writeForeign(t *testing.T, dir string) string {
	t.Helper()
	path := filepath.Join(dir, "foreign.db")
	bdb, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	err = bdb.Update(func(tx *bolt.Tx) error {
		b, err := tx.CreateBucket([]byte("meta"))
		if err != nil {
			return err
		}
		return b.Put([]byte("version"), []byte("7"))
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := bdb.Close(); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestForeignMetaOnlyRefused opens a foreign bbolt file whose only bucket
// is meta: it is refused, for writing and read-only, and left unchanged.
func TestForeignMetaOnlyRefused(t *testing.T) {
	path := writeForeign(t, t.TempDir())
	before, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, opts := range []Options{{}, {ReadOnly: true}} {
		db, err := Open(path, opts)
		if err == nil {
			db.Close()
			t.Fatalf("Open(%+v) of a foreign file succeeded", opts)
		}
		if !errors.Is(err, ErrNotStore) || !strings.Contains(err.Error(), path) {
			t.Errorf("Open(%+v) = %v; want ErrNotStore naming the file", opts, err)
		}
	}
	if after, _ := os.ReadFile(path); !bytes.Equal(after, before) {
		t.Error("opening the foreign file changed it")
	}
}

// TestOpenCreatesDirectory opens a store for writing in a directory that
// does not exist yet; read-only, a 0-byte file says it is empty.
func TestOpenCreatesDirectory(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "lib", "scopewatch")
	path := filepath.Join(dir, "scopewatch.db")
	if _, err := Open(path, Options{ReadOnly: true}); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("read-only Open in a missing directory = %v", err)
	}
	db := openTest(t, path, Options{})
	commit(t, db, fullBatch())
	fi, err := os.Stat(dir)
	if err != nil || fi.Mode().Perm() != 0o750 {
		t.Errorf("store directory: %v, mode %v; want 0750", err, fi.Mode().Perm())
	}

	empty := filepath.Join(t.TempDir(), "empty.db")
	if err := os.WriteFile(empty, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	_, err = Open(empty, Options{ReadOnly: true})
	if !errors.Is(err, ErrEmpty) || err.Error() != "store "+empty+" is empty: no daemon has written it yet: store is empty" {
		t.Errorf("read-only Open of a 0-byte file = %v", err)
	}
	// For writing, a 0-byte file is laid out.
	openTest(t, empty, Options{})
}

// TestGuardIsNarrow checks that guard recovers bbolt's panics only: a
// panic of the store's own code goes on.
func TestGuardIsNarrow(t *testing.T) {
	defer func() {
		if r := recover(); r != "not bbolt's" {
			t.Errorf("recovered %v, want the panic to go on", r)
		}
	}()
	_ = guard("x.db", func() error { panic("not bbolt's") })
	t.Error("guard returned")
}

func TestPageOf(t *testing.T) {
	for msg, want := range map[string]int64{
		"assertion failed: Page expected to be: 7, but self identifies as 8": 7,
		"assertion failed: page 12: has unexpected type/flags: 10":           12,
		"invalid page type: 5: 10":                                           5,
		"pgid (30) above high water mark (20)":                               30,
		"invalid freelist page: 3, page type is leaf":                        3,
		"unexpected page type (flags: 10) for pgId:9":                        9,
		"can't get freelist page count from a non-freelist page: 10":         -1,
		"misplaced bucket header: 6d -> 6e":                                  -1,
	} {
		if got := pageOf(msg); got != want {
			t.Errorf("pageOf(%q) = %d, want %d", msg, got, want)
		}
	}
}

// TestCheckChangelogEntries checks that Check tells a changelog's marker
// that holds no nonce, and an entry that holds no sequence number, from a
// sound entry.
func TestCheckChangelogEntries(t *testing.T) {
	path := writeGoodStore(t, t.TempDir())
	k := PositionKey{Source: "kc", File: FileID{Dev: 1, Ino: 2}}
	bdb, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	err = bdb.Update(func(tx *bolt.Tx) error {
		cb := tx.Bucket(bucketChangelog)
		for key, v := range map[string][]byte{
			seededSuffix: {1, 2, 3},    // a marker too short
			"good":       {5},          // a sound entry
			"bad":        {0x80, 0x80}, // an unfinished uvarint
		} {
			if err := cb.Put(changeKey(k, key), v); err != nil {
				return err
			}
		}
		return nil
	})
	bdb.Close()
	if err != nil {
		t.Fatal(err)
	}
	r, err := Check(path)
	if err != nil {
		t.Fatal(err)
	}
	var whats []string
	for _, p := range r.Problems {
		if p.Bucket == "changelog" {
			whats = append(whats, p.What)
		}
	}
	slices.Sort(whats)
	want := []string{"changelog entry of 2 bytes: " + ErrCorrupt.Error(), "changelog marker of 3 bytes, not a nonce of 8: " + ErrCorrupt.Error()}
	if !slices.Equal(whats, want) {
		t.Errorf("Check's problems in the changelog: %q; want %q", whats, want)
	}
}
