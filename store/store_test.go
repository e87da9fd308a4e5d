package store

import (
	"errors"
	"fmt"
	"maps"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

func openTest(t *testing.T, path string, opts Options) *DB {
	t.Helper()
	db, err := Open(path, opts)
	if err != nil {
		t.Fatalf("Open(%s): %v", path, err)
	}
	t.Cleanup(func() { _ = db.Close() })
	return db
}

func newTestDB(t *testing.T) (*DB, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "scopewatch.db")
	return openTest(t, path, Options{}), path
}

func commit(t *testing.T, db *DB, b *Batch) {
	t.Helper()
	if err := db.Commit(b); err != nil {
		t.Fatalf("Commit: %v", err)
	}
}

// addCounter adds c's count to t: one at its first time, the rest at its
// last.
func addCounter(t *Tally, c Counter) {
	if c.N == 0 {
		return
	}
	t.Add(1, c.First)
	t.Add(c.N-1, c.Last)
}

// countScope adds c, its first and its last occurrence, to the counter
// kind of scope name in cs.
func countScope(cs *ClientState, name string, kind ScopeKinds, c Counter) {
	if c.N == 0 {
		return
	}
	cs.CountScope(name, kind, 1, c.First)
	cs.CountScope(name, kind, c.N-1, c.Last)
}

var t0 = time.Date(2026, 1, 2, 3, 4, 5, 123_000_000, time.UTC)

func at(d time.Duration) time.Time { return t0.Add(d) }

func counter(n uint64, first, last time.Time) Counter {
	return Counter{N: n, First: first, Last: last}
}

// fullBatch sets every field the store records: a checkpoint of a State
// that holds nothing but fullClient, and a source and a position.
func fullBatch() *Batch {
	st := NewState(nil, 0)
	c := st.Client("ehr-app")
	c.Seen = tallyOf(counter(3, at(0), at(time.Hour)))
	countScope(c, "patient/Observation.rs", ScopeRequested, counter(1, at(0), at(0)))
	countScope(c, "patient/Observation.rs", ScopeGranted, counter(2, at(time.Second), at(time.Minute)))
	countScope(c, "patient/Observation.rs", ScopeUsed, counter(5, at(time.Nanosecond), at(time.Hour+7)))
	countScope(c, "openid", ScopeGranted, counter(1, at(0), at(0)))
	c.SawIP(netip.MustParseAddr("192.0.2.10"), at(time.Minute))
	c.SawIP(netip.MustParseAddr("2001:db8::1"), at(2*time.Minute))
	c.SawCountry("US", at(3*time.Minute))
	b := NewBatch()
	st.Checkpoint(b)
	*b.Source("keycloak") = SourceDelta{Lines: 10, Malformed: 2, Ignored: 3, Unattributed: 1,
		Events: counter(4, at(0), at(time.Hour))}
	b.SetPosition(Position{
		Source: "keycloak", File: FileID{Dev: 0x801, Ino: 1234567},
		HeadLen: 1024, HeadHash: 0xfedcba9876543210, Offset: 4096, Line: 17,
		Path: "/var/log/keycloak/keycloak.log", Size: 8192, ModTime: at(-time.Hour),
	})
	return b
}

func wantClient(t *testing.T, db *DB, want Client) {
	t.Helper()
	got, ok, err := db.Client(want.ID)
	if err != nil || !ok {
		t.Fatalf("Client(%q) = _, %v, %v", want.ID, ok, err)
	}
	if !clientEqual(got, want) {
		t.Errorf("Client(%q)\n got %+v\nwant %+v", want.ID, got, want)
	}
}

// counterEqual compares instants, not time.Time representations.
func counterEqual(a, b Counter) bool {
	return a.N == b.N && a.First.Equal(b.First) && a.Last.Equal(b.Last)
}

func usageEqual(a, b ScopeUsage) bool {
	return counterEqual(a.Requested, b.Requested) && counterEqual(a.Granted, b.Granted) && counterEqual(a.Used, b.Used)
}

func clientEqual(a, b Client) bool {
	return a.ID == b.ID && counterEqual(a.Seen, b.Seen) &&
		maps.EqualFunc(a.Scopes, b.Scopes, usageEqual) &&
		maps.EqualFunc(a.IPs, b.IPs, counterEqual) &&
		maps.EqualFunc(a.Countries, b.Countries, counterEqual)
}

func fullClient() Client {
	return Client{
		ID:   "ehr-app",
		Seen: counter(3, at(0), at(time.Hour)),
		Scopes: map[string]ScopeUsage{
			"patient/Observation.rs": {
				Requested: counter(1, at(0), at(0)),
				Granted:   counter(2, at(time.Second), at(time.Minute)),
				Used:      counter(5, at(time.Nanosecond), at(time.Hour+7)),
			},
			"openid": {Granted: counter(1, at(0), at(0))},
		},
		IPs: map[string]Counter{
			"192.0.2.10":  counter(1, at(time.Minute), at(time.Minute)),
			"2001:db8::1": counter(1, at(2*time.Minute), at(2*time.Minute)),
		},
		Countries: map[string]Counter{"US": counter(1, at(3*time.Minute), at(3*time.Minute))},
	}
}

func TestRoundTrip(t *testing.T) {
	db, path := newTestDB(t)
	commit(t, db, fullBatch())

	check := func(t *testing.T, db *DB) {
		t.Helper()
		wantClient(t, db, fullClient())
		srcs, err := db.Sources()
		if err != nil {
			t.Fatal(err)
		}
		wantSrc := Source{Name: "keycloak", Lines: 10, Malformed: 2, Ignored: 3, Unattributed: 1,
			Events: counter(4, at(0), at(time.Hour))}
		if len(srcs) != 1 || !reflect.DeepEqual(srcs[0], wantSrc) {
			t.Errorf("Sources() = %+v, want [%+v]", srcs, wantSrc)
		}
		want := fullBatch().Positions[PositionKey{Source: "keycloak", File: FileID{Dev: 0x801, Ino: 1234567}}]
		for name, get := range map[string]func() ([]Position, error){
			"Positions":    func() ([]Position, error) { return db.Positions("keycloak") },
			"AllPositions": db.AllPositions,
		} {
			got, err := get()
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			if len(got) != 1 || !got[0].ModTime.Equal(want.ModTime) {
				t.Fatalf("%s() = %+v, want [%+v]", name, got, want)
			}
			got[0].ModTime = want.ModTime
			if !reflect.DeepEqual(got[0], want) {
				t.Errorf("%s() = %+v, want [%+v]", name, got[0], want)
			}
		}
	}
	t.Run("open", func(t *testing.T) { check(t, db) })
	t.Run("reopened", func(t *testing.T) {
		if err := db.Close(); err != nil {
			t.Fatal(err)
		}
		check(t, openTest(t, path, Options{}))
	})
}

func TestTimeEncoding(t *testing.T) {
	tests := []struct {
		name string
		t    time.Time
	}{
		{"zero", time.Time{}},
		{"epoch", time.Unix(0, 0)},
		{"before epoch", time.Unix(-1, 999_999_999)},
		{"millisecond", t0},
		{"nanosecond", t0.Add(1)},
		{"year 1", time.Date(1, 1, 1, 0, 0, 0, 1, time.UTC)},
		{"year 9999", time.Date(9999, 12, 31, 23, 59, 59, 999_999_999, time.UTC)},
		{"zone", time.Date(2026, 5, 6, 7, 8, 9, 0, time.FixedZone("X", 3600))},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := decoder{b: appendTime(nil, tt.t)}
			got := d.time()
			if err := d.end("time"); err != nil {
				t.Fatal(err)
			}
			if !got.Equal(tt.t) || got.IsZero() != tt.t.IsZero() {
				t.Errorf("round trip of %v = %v", tt.t, got)
			}
		})
	}
}

func TestMergeAcrossCommits(t *testing.T) {
	db, _ := newTestDB(t)
	commits := []struct {
		seen, used, granted Counter
	}{
		{counter(2, at(10*time.Minute), at(20*time.Minute)), counter(1, at(15*time.Minute), at(15*time.Minute)), Counter{}},
		{counter(1, at(5*time.Minute), at(5*time.Minute)), Counter{}, counter(3, at(time.Minute), at(2*time.Minute))},
		{counter(4, at(30*time.Minute), at(40*time.Minute)), counter(2, at(time.Second), at(time.Hour)), Counter{}},
	}
	for _, c := range commits {
		st := NewState(db, 0) // as after a restart: the client is read back
		d := st.Client("svc")
		addCounter(&d.Seen, c.seen)
		countScope(d, "user/*.read", ScopeUsed, c.used)
		countScope(d, "user/*.read", ScopeGranted, c.granted)
		d.SawIP(netip.MustParseAddr("192.0.2.1"), c.seen.First)
		d.SawCountry("US", c.seen.First)
		b := NewBatch()
		st.Checkpoint(b)
		commit(t, db, b)
	}
	wantClient(t, db, Client{
		ID:   "svc",
		Seen: counter(7, at(5*time.Minute), at(40*time.Minute)),
		Scopes: map[string]ScopeUsage{"user/*.read": {
			Used:    counter(3, at(time.Second), at(time.Hour)),
			Granted: counter(3, at(time.Minute), at(2*time.Minute)),
		}},
		IPs:       map[string]Counter{"192.0.2.1": counter(3, at(5*time.Minute), at(30*time.Minute))},
		Countries: map[string]Counter{"US": counter(3, at(5*time.Minute), at(30*time.Minute))},
	})
}

func TestBoundedSets(t *testing.T) {
	tests := []struct {
		name  string
		max   int
		sight func(c *ClientState, i int, t time.Time)
		key   func(i int) string
		get   func(Client) map[string]Counter
	}{
		{"ips", MaxIPs, func(c *ClientState, i int, t time.Time) { c.SawIP(ipOf(i), t) },
			func(i int) string { return ipOf(i).String() }, func(c Client) map[string]Counter { return c.IPs }},
		{"countries", MaxCountries, func(c *ClientState, i int, t time.Time) { c.SawCountry(name(i), t) },
			name, func(c Client) map[string]Counter { return c.Countries }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			db, _ := newTestDB(t)
			// Commit max+10 names, one per commit, name i seen at minute i;
			// then see name 0 again: it was evicted long ago, so it starts
			// afresh as the most recent.
			n := tt.max + 10
			for i := range n {
				st := NewState(db, 0)
				tt.sight(st.Client("c"), i, at(time.Duration(i)*time.Minute))
				b := NewBatch()
				st.Checkpoint(b)
				commit(t, db, b)
			}
			st := NewState(db, 0)
			tt.sight(st.Client("c"), 0, at(time.Duration(n)*time.Minute))
			// Several new names in one checkpoint, older than everything
			// kept: they are evicted at once.
			for i := n; i < n+3; i++ {
				tt.sight(st.Client("c"), i, at(-time.Hour))
			}
			b := NewBatch()
			st.Checkpoint(b)
			commit(t, db, b)

			c, _, err := db.Client("c")
			if err != nil {
				t.Fatal(err)
			}
			got := tt.get(c)
			want := map[string]Counter{tt.key(0): counter(1, at(time.Duration(n)*time.Minute), at(time.Duration(n)*time.Minute))}
			for i := n - tt.max + 1; i < n; i++ {
				want[tt.key(i)] = counter(1, at(time.Duration(i)*time.Minute), at(time.Duration(i)*time.Minute))
			}
			if !maps.EqualFunc(got, want, counterEqual) {
				t.Errorf("kept %d entries %v\nwant %d entries %v", len(got), slices.Sorted(maps.Keys(got)), len(want), slices.Sorted(maps.Keys(want)))
			}
		})
	}
}

// ipOf returns a distinct address for each i.
func ipOf(i int) netip.Addr { return netip.AddrFrom4([4]byte{10, 0, byte(i / 256), byte(i % 256)}) }

func name(i int) string {
	return "n" + strings.Repeat("x", i%3) + string(rune('A'+i/26)) + string(rune('a'+i%26))
}

func TestPositionsReplace(t *testing.T) {
	db, _ := newTestDB(t)
	file := FileID{Dev: 1, Ino: 2}
	for _, off := range []int64{100, 50, 900} {
		b := NewBatch()
		b.SetPosition(Position{Source: "gw", File: file, Offset: off, Path: "/var/log/gw.log"})
		b.SetPosition(Position{Source: "gw-2", File: file, Offset: 7})
		commit(t, db, b)
	}
	got, err := db.Positions("gw")
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].Offset != 900 || got[0].File != file {
		t.Errorf(`Positions("gw") = %+v, want one at offset 900`, got)
	}
	all, err := db.AllPositions()
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != 2 || all[0].Source != "gw" || all[1].Source != "gw-2" {
		t.Errorf("AllPositions() = %+v, want gw then gw-2", all)
	}
	none, err := db.Positions("g")
	if err != nil || len(none) != 0 {
		t.Errorf(`Positions("g") = %+v, %v; want none`, none, err)
	}
}

func TestClientsListing(t *testing.T) {
	db, _ := newTestDB(t)
	var ids []string
	b := NewBatch()
	st := NewState(db, 0)
	// More than one page of ForEachClient, in an order unlike the sorted one.
	for i := range clientPage + 10 {
		id := name(clientPage + 10 - i)
		ids = append(ids, id)
		st.Client(id).CountScope("s", ScopeUsed, 1, at(0))
		if i%3 == 0 { // scopes that differ from client to client
			st.Client(id).CountScope(fmt.Sprintf("t%d", i%7), ScopeGranted, 1, at(0))
		}
	}
	st.Client("a").Seen.Add(1, at(0)) // a prefix of no other id, sorts first
	st.Client("a\x01").Seen.Add(1, at(0))
	ids = append(ids, "a", "a\x01")
	st.Checkpoint(b)
	commit(t, db, b)

	got, err := db.Clients()
	if err != nil {
		t.Fatal(err)
	}
	var gotIDs []string
	for _, c := range got {
		gotIDs = append(gotIDs, c.ID)
	}
	slices.Sort(ids)
	if !reflect.DeepEqual(gotIDs, ids) {
		t.Errorf("Clients() ids = %q\nwant %q", gotIDs, ids)
	}
	if c := got[len(got)-1]; c.Scopes["s"].Used.N != 1 {
		t.Errorf("last client %+v lacks its scope", c)
	}
	if _, ok, err := db.Client("missing"); ok || err != nil {
		t.Errorf(`Client("missing") = _, %v, %v; want not found`, ok, err)
	}
	stop := errors.New("stop")
	n := 0
	err = db.ForEachClient(func(Client) error { n++; return stop })
	if !errors.Is(err, stop) || n != 1 {
		t.Errorf("ForEachClient stopped after %d with %v; want 1, stop", n, err)
	}

	// Usage alone: the same clients, without addresses and countries.
	st.Client("a").SawIP(netip.MustParseAddr("203.0.113.7"), at(0))
	st.Client("a").SawCountry("US", at(0))
	b = NewBatch()
	st.Checkpoint(b)
	commit(t, db, b)
	if got, err = db.Clients(); err != nil {
		t.Fatal(err)
	}
	// The walk fills its values again for later clients: a copy is
	// kept, and a slice filled again must hold the later client's
	// scopes only.
	var usage []ClientUsage
	if err := db.ForEachClientUsage(func(c *ClientUsage) error {
		u := *c
		u.Scopes = nil
		if len(c.Scopes) > 0 {
			u.Scopes = slices.Clone(c.Scopes)
		}
		usage = append(usage, u)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	var want []ClientUsage
	for i := range got {
		if got[i].ID == "a" && (len(got[i].IPs) != 1 || len(got[i].Countries) != 1) {
			t.Errorf("client a = %+v, want its address and country", got[i])
		}
		want = append(want, got[i].Usage())
	}
	if !reflect.DeepEqual(usage, want) {
		t.Errorf("ForEachClientUsage differs from the clients without their addresses and countries")
	}
}

func TestEmptyBatchStartsNoTransaction(t *testing.T) {
	db, _ := newTestDB(t)
	before := db.bolt.Stats().TxStats
	for _, b := range []*Batch{nil, NewBatch()} {
		if err := db.Commit(b); err != nil {
			t.Fatal(err)
		}
	}
	after := db.bolt.Stats().TxStats
	if d := after.Sub(&before); d.GetWrite() != 0 {
		t.Errorf("empty commits wrote %d pages", d.GetWrite())
	}
}

func TestCommitAtomic(t *testing.T) {
	hookErr := errors.New("disk on fire")
	tests := []struct {
		name    string
		prepare func(*DB, *Batch)
		want    error
	}{
		{"failing hook", func(db *DB, _ *Batch) {
			db.beforeCommit = func(*bolt.Tx) error { return hookErr }
		}, hookErr},
		// Positions are written last, so clients and sources are already
		// in the transaction when the bad position fails it.
		{"invalid position", func(_ *DB, b *Batch) {
			b.SetPosition(Position{Source: "bad\x00name"})
		}, ErrInvalid},
		{"bad client id", func(_ *DB, b *Batch) {
			st := NewState(nil, 0)
			st.Client("x\x00y").Seen.Add(1, at(0))
			st.Checkpoint(b)
		}, ErrInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			db, path := newTestDB(t)
			b := fullBatch()
			tt.prepare(db, b)
			err := db.Commit(b)
			if !errors.Is(err, tt.want) || !strings.Contains(err.Error(), path) {
				t.Fatalf("Commit = %v, want %v naming %s", err, tt.want, path)
			}
			db.beforeCommit = nil
			if cs, err := db.Clients(); err != nil || len(cs) != 0 {
				t.Errorf("Clients() = %+v, %v; want none", cs, err)
			}
			if ss, err := db.Sources(); err != nil || len(ss) != 0 {
				t.Errorf("Sources() = %+v, %v; want none", ss, err)
			}
			if ps, err := db.AllPositions(); err != nil || len(ps) != 0 {
				t.Errorf("AllPositions() = %+v, %v; want none", ps, err)
			}
			// The store is still usable and the next batch lands whole.
			commit(t, db, fullBatch())
			wantClient(t, db, fullClient())
		})
	}
}

func TestFileMode(t *testing.T) {
	tests := []struct {
		name   string
		before os.FileMode // 0: no file before Open
	}{
		{"new file", 0},
		{"loose existing file", 0o644},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "s.db")
			if tt.before != 0 {
				db := openTest(t, path, Options{})
				if err := db.Close(); err != nil {
					t.Fatal(err)
				}
				if err := os.Chmod(path, tt.before); err != nil {
					t.Fatal(err)
				}
			}
			openTest(t, path, Options{})
			fi, err := os.Stat(path)
			if err != nil {
				t.Fatal(err)
			}
			if got := fi.Mode().Perm(); got != 0o600 {
				t.Errorf("mode = %o, want 600", got)
			}
		})
	}
}

func TestMeta(t *testing.T) {
	path := filepath.Join(t.TempDir(), "s.db")
	created := time.Date(2026, 4, 1, 12, 0, 0, 0, time.UTC)
	db := openTest(t, path, Options{Now: func() time.Time { return created }})
	v, err := db.SchemaVersion()
	if err != nil || v != SchemaVersion {
		t.Errorf("SchemaVersion() = %d, %v; want %d", v, err, SchemaVersion)
	}
	if got, err := db.Created(); err != nil || !got.Equal(created) {
		t.Errorf("Created() = %v, %v; want %v", got, err, created)
	}
	if db.Path() != path {
		t.Errorf("Path() = %q, want %q", db.Path(), path)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	// Reopening keeps the creation time.
	db = openTest(t, path, Options{Now: func() time.Time { return created.Add(time.Hour) }})
	if got, err := db.Created(); err != nil || !got.Equal(created) {
		t.Errorf("Created() after reopen = %v, %v; want %v", got, err, created)
	}
}

func TestOpenRefuses(t *testing.T) {
	tests := []struct {
		name    string
		prepare func(t *testing.T, path string) // leaves a file at path
		opts    Options
		want    error
		says    string
	}{
		{"newer schema", writeSchema(SchemaVersion + 1), Options{}, ErrSchemaTooNew, fmt.Sprintf("schema version %d is newer than %d", SchemaVersion+1, SchemaVersion)},
		{"newer schema read-only", writeSchema(SchemaVersion + 1), Options{ReadOnly: true}, ErrSchemaTooNew, "newer"},
		{"foreign bbolt file", func(t *testing.T, path string) {
			bdb, err := bolt.Open(path, 0o600, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer bdb.Close()
			if err := bdb.Update(func(tx *bolt.Tx) error { _, err := tx.CreateBucket([]byte("other")); return err }); err != nil {
				t.Fatal(err)
			}
		}, Options{}, ErrNotStore, `buckets "other" but without scopewatch's schema marker`},
		{"read-only missing file", func(*testing.T, string) {}, Options{ReadOnly: true}, os.ErrNotExist, "open store"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "s.db")
			tt.prepare(t, path)
			db, err := Open(path, tt.opts)
			if err == nil {
				db.Close()
				t.Fatal("Open succeeded")
			}
			if !errors.Is(err, tt.want) || !strings.Contains(err.Error(), tt.says) || !strings.Contains(err.Error(), path) {
				t.Errorf("Open = %v; want %v saying %q and naming the file", err, tt.want, tt.says)
			}
		})
	}
}

// writeSchema returns a preparation that creates a store and then records
// version v in its meta bucket.
func writeSchema(v uint64) func(t *testing.T, path string) {
	return func(t *testing.T, path string) {
		t.Helper()
		db, err := Open(path, Options{})
		if err != nil {
			t.Fatal(err)
		}
		err = db.bolt.Update(func(tx *bolt.Tx) error {
			return tx.Bucket(bucketMeta).Put(keySchema, appendUvarint(nil, v))
		})
		if err != nil {
			t.Fatal(err)
		}
		if err := db.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

func TestReadOnly(t *testing.T) {
	path := filepath.Join(t.TempDir(), "s.db")
	db := openTest(t, path, Options{})
	commit(t, db, fullBatch())
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	// Two readers share the file.
	r1 := openTest(t, path, Options{ReadOnly: true})
	r2 := openTest(t, path, Options{ReadOnly: true})
	wantClient(t, r1, fullClient())
	wantClient(t, r2, fullClient())
	if err := r1.Commit(fullBatch()); !errors.Is(err, ErrReadOnly) {
		t.Errorf("Commit on read-only store = %v, want ErrReadOnly", err)
	}
	// A writer cannot join them; within one process the holder is this one.
	_, err := Open(path, Options{LockTimeout: 100 * time.Millisecond})
	var le *LockedError
	if !errors.As(err, &le) || !errors.Is(err, ErrLocked) || le.PID != os.Getpid() {
		t.Errorf("Open while read-only openers hold the file = %v, want a LockedError naming pid %d", err, os.Getpid())
	}
}

func TestStats(t *testing.T) {
	db, path := newTestDB(t)
	for i := range 20 {
		st := NewState(db, 0)
		st.Client(name(i)).CountScope(strings.Repeat("s", 3000), ScopeUsed, 1, at(0))
		b := NewBatch()
		st.Checkpoint(b)
		commit(t, db, b)
	}
	s, err := db.Stats()
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if s.FileSize != fi.Size() || s.PageSize <= 0 || s.DataSize <= 0 || s.DataSize > s.FileSize {
		t.Errorf("Stats() = %+v, file size %d", s, fi.Size())
	}
	// Every commit rewrites pages, so earlier copies are free or pending.
	if s.FreePages+s.PendingPages == 0 || s.FreeBytes != int64(s.FreePages+s.PendingPages)*int64(s.PageSize) {
		t.Errorf("Stats() = %+v, want free pages accounted in FreeBytes", s)
	}
}

func TestCompact(t *testing.T) {
	db, _ := newTestDB(t)
	commit(t, db, fullBatch())
	dst := filepath.Join(t.TempDir(), "compact.db")
	if err := db.Compact(dst); err != nil {
		t.Fatal(err)
	}
	if err := db.Compact(dst); !errors.Is(err, os.ErrExist) {
		t.Errorf("Compact onto an existing file = %v, want ErrExist", err)
	}
	c := openTest(t, dst, Options{ReadOnly: true})
	wantClient(t, c, fullClient())
	if v, err := c.SchemaVersion(); err != nil || v != SchemaVersion {
		t.Errorf("compacted SchemaVersion() = %d, %v", v, err)
	}
	// The copy holds its used pages and no more, and takes writes again.
	var used int64
	_ = c.bolt.View(func(tx *bolt.Tx) error { used = tx.Size(); return nil })
	if fi, err := os.Stat(dst); err != nil || fi.Size() != used {
		t.Errorf("compacted file of %d bytes (%v), its pages use %d", fi.Size(), err, used)
	}
	c.Close()
	w := openTest(t, dst, Options{})
	st := NewState(w, 0)
	for i := range 2000 {
		st.Client(name(i)).Seen.Add(1, at(0))
	}
	b := NewBatch()
	st.Checkpoint(b)
	commit(t, w, b)
	if cs, err := w.Clients(); err != nil || len(cs) != 2001 {
		t.Errorf("after a commit to the compacted copy: %d clients, %v; want 2001", len(cs), err)
	}
}

// TestClientRecordDeterministic commits the same content to two stores;
// map iteration order differs between the runs, the stored bytes must not.
func TestClientRecordDeterministic(t *testing.T) {
	fill := func(db *DB) *Batch {
		st := NewState(db, 0)
		c := st.Client("app")
		c.Seen.Add(1, at(0))
		for i := range 40 {
			c.CountScope(name(i), ScopeGranted, uint64(i+1), at(time.Duration(i)*time.Second))
			c.SawIP(ipOf(i*37), at(time.Duration(i%7)*time.Minute))
		}
		for i := range 40 {
			c.SawCountry(name(i), at(time.Duration(i%5)*time.Minute))
		}
		b := NewBatch()
		st.Checkpoint(b)
		return b
	}
	var recs [][]byte
	for range 3 {
		db, _ := newTestDB(t)
		commit(t, db, fill(db))
		commit(t, db, fill(db)) // on top of the stored record
		err := db.bolt.View(func(tx *bolt.Tx) error {
			recs = append(recs, slices.Clone(tx.Bucket(bucketClients).Get([]byte("app"))))
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		c, _, err := db.Client("app")
		if err != nil || len(c.Scopes) != 40 || len(c.IPs) != 40 || len(c.Countries) != MaxCountries {
			t.Fatalf("Client = %d scopes, %d IPs, %d countries, %v", len(c.Scopes), len(c.IPs), len(c.Countries), err)
		}
	}
	for _, r := range recs[1:] {
		if !slices.Equal(r, recs[0]) {
			t.Fatalf("records differ:\n%x\n%x", recs[0], r)
		}
	}
}

// TestClientRecordCorrupt checks that damaged client records are reported,
// not misread.
func TestClientRecordCorrupt(t *testing.T) {
	b := fullBatch()
	db, _ := newTestDB(t)
	commit(t, db, b)
	var good []byte
	_ = db.bolt.View(func(tx *bolt.Tx) error {
		good = slices.Clone(tx.Bucket(bucketClients).Get([]byte("ehr-app")))
		return nil
	})
	// The two scopes, "openid" and "patient/...", swapped: names out of order.
	names := db.scopes.load()
	d := decoder{b: good, names: names}
	d.clientHead()
	d.count(4)
	first := len(good) - len(d.b)
	d.scope(nil, true)
	second := len(good) - len(d.b)
	d.scope(nil, true)
	end := len(good) - len(d.b)
	if d.err != nil || good[0] != formatClient || good[first] >= 0x80 {
		t.Fatalf("record of format %d, first scope number %d: %v", good[0], good[first], d.err)
	}
	swapped := slices.Concat(good[:first], good[second:end], good[first:second], good[end:])
	unnamed := slices.Concat(good[:first], []byte{byte(len(names))}, good[first+1:])

	for _, tc := range []struct {
		name string
		v    []byte
	}{
		{"truncated", good[:len(good)-3]},
		{"trailing", append(slices.Clone(good), 0)},
		{"old format", append([]byte{formatV1}, good[1:]...)},
		{"unsorted scopes", swapped},
		{"scope number without a name", unnamed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := decodeClient(names, "x", tc.v); !errors.Is(err, ErrCorrupt) {
				t.Errorf("decodeClient = %v, want ErrCorrupt", err)
			}
			err := db.bolt.Update(func(tx *bolt.Tx) error {
				return tx.Bucket(bucketClients).Put([]byte("ehr-app"), tc.v)
			})
			if err != nil {
				t.Fatal(err)
			}
			if _, _, err := db.Client("ehr-app"); !errors.Is(err, ErrCorrupt) {
				t.Errorf("Client = %v, want ErrCorrupt", err)
			}
			st := NewState(db, 0)
			st.Client("ehr-app").Seen.Add(1, at(0))
			if err := st.Err(); !errors.Is(err, ErrCorrupt) {
				t.Errorf("State.Err after reading the client = %v, want ErrCorrupt", err)
			}
			b := NewBatch()
			if st.Checkpoint(b); len(b.Records) != 0 {
				t.Errorf("a checkpoint wrote the client whose record could not be read")
			}
		})
	}
}

// TestOldLayoutRefused opens a file in the unreleased layout with one key
// per scope: it must be refused, not misread.
func TestOldLayoutRefused(t *testing.T) {
	path := filepath.Join(t.TempDir(), "old.db")
	db, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	err = db.bolt.Update(func(tx *bolt.Tx) error {
		cb := tx.Bucket(bucketClients)
		if err := cb.Put([]byte("ehr-app\x00"), []byte{formatV1, 0, 0, 0}); err != nil {
			return err
		}
		return cb.Put([]byte("ehr-app\x00openid"), []byte{formatV1, 0, 0, 0})
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	for _, opts := range []Options{{}, {ReadOnly: true}} {
		db, err := Open(path, opts)
		if err == nil {
			db.Close()
			t.Fatalf("Open(%+v) succeeded", opts)
		}
		if !errors.Is(err, ErrNotStore) || !strings.Contains(err.Error(), "older development layout") || !strings.Contains(err.Error(), path) {
			t.Errorf("Open(%+v) = %v", opts, err)
		}
	}
}

// walkClients is how many clients newWalkTestDB stores: more than three
// pages of a walk.
const walkClients = 3*clientPage + 1

// newWalkTestDB returns a store of walkClients clients, c00000 on, each
// granted openid, and the State that wrote them.
func newWalkTestDB(t *testing.T) (*DB, *State) {
	t.Helper()
	db, _ := newTestDB(t)
	st := NewState(db, 0)
	for i := range walkClients {
		st.Client(fmt.Sprintf("c%05d", i)).CountScope("openid", ScopeGranted, 1, at(0))
	}
	b := NewBatch()
	st.Checkpoint(b)
	commit(t, db, b)
	return db, st
}

// TestForEachClientUsageStops checks the ends of a walk whose next page
// is read while fn takes the current one: fn's error ends it at once, and
// a record that cannot be decoded ends it after the pages before it.
func TestForEachClientUsageStops(t *testing.T) {
	db, _ := newWalkTestDB(t)

	stop := errors.New("stop")
	seen := 0
	err := db.ForEachClientUsage(func(c *ClientUsage) error {
		if seen++; seen == clientPage+1 {
			return stop
		}
		return nil
	})
	if !errors.Is(err, stop) || seen != clientPage+1 {
		t.Errorf("walk stopped after %d clients with %v; want %d, stop", seen, err, clientPage+1)
	}

	// The first client of the third page is corrupt.
	bad := fmt.Sprintf("c%05d", 2*clientPage)
	if err := db.bolt.Update(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketClients).Put([]byte(bad), []byte{formatClient, 0xff})
	}); err != nil {
		t.Fatal(err)
	}
	seen = 0
	err = db.ForEachClientUsage(func(c *ClientUsage) error { seen++; return nil })
	if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), bad) || seen != 2*clientPage {
		t.Errorf("walk over a corrupt record: %d clients, %v; want %d, ErrCorrupt naming %s", seen, err, 2*clientPage, bad)
	}
}

// TestForEachClientUsageCommits checks that fn may commit while the walk
// reads its next page, as a sweep that prunes does: clients deleted and
// others added, enough of them that bbolt maps the grown file again,
// which waits for every read transaction to end.
func TestForEachClientUsageCommits(t *testing.T) {
	db, st := newWalkTestDB(t)

	seen, dropped := 0, 0
	err := db.ForEachClientUsage(func(c *ClientUsage) error {
		seen++
		b := NewBatch()
		if seen == 1 {
			// Clients sorting before the walk's: not seen by it.
			for i := range 3000 {
				c := st.Client(fmt.Sprintf("a%05d", i))
				for h := range MaxIPs {
					c.SawIP(netip.AddrFrom4([4]byte{10, byte(i >> 8), byte(i), byte(h)}), at(time.Duration(h)))
				}
			}
			st.Checkpoint(b)
		}
		if seen%10 == 0 {
			b.DropClients[c.ID] = struct{}{}
			dropped++
		}
		return db.Commit(b)
	})
	if err != nil || seen != walkClients {
		t.Fatalf("walk = %v after %d clients, want nil after %d", err, seen, walkClients)
	}
	got, err := db.Clients()
	if err != nil {
		t.Fatal(err)
	}
	if want := walkClients - dropped + 3000; len(got) != want {
		t.Errorf("%d clients stored after the walk, want %d", len(got), want)
	}
}
