package engine

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/scopewatch/scopewatch/detect"
	"github.com/scopewatch/scopewatch/ingest"
	"github.com/scopewatch/scopewatch/rules"
	"github.com/scopewatch/scopewatch/store"
)

// TestEngineBoundsClientsInMemory feeds grants of 200 clients, round and
// round, through an engine whose State may hold 20: the clients held stay
// within the bound (plus the quarter that forces a checkpoint), clients
// are evicted and read back all along, and every grant is counted.
func TestEngineBoundsClientsInMemory(t *testing.T) {
	db := openTestDB(t)
	const clients, rounds, bound = 200, 5, 20
	state := store.NewState(db, bound)
	var most int
	m := NewMetrics(nil)
	e := New(Options{
		Parsers: testParsers(t), Accountant: detect.NewAccountant(loadTestRules(t), nil, state), Store: db,
		MaxEvents: 50, MaxDelay: time.Hour, Metrics: m,
		taken: func() { most = max(most, state.Len()) },
	})
	in := make(chan ingest.Line, clients*rounds)
	for i := range clients * rounds {
		in <- line("idp", 1, int64(100*(i+1)), int64(i+1), fmt.Sprintf(
			`{"ts":"2026-10-01T10:%02d:%02dZ","type":"token","client":"app-%03d","scope":"openid view_lab_results"}`,
			i/60%60, i%60, i%clients))
	}
	close(in)
	if err := e.Run(t.Context(), in); err != nil {
		t.Fatal(err)
	}
	if limit := bound + bound/4 + 1; most > limit {
		t.Errorf("held %d clients at most, want at most %d", most, limit)
	}
	evicted, loaded := state.Stats()
	t.Logf("held %d clients at most; evicted %d, read back %d", most, evicted, loaded)
	if evicted == 0 || loaded == 0 {
		t.Errorf("evicted %d, loaded back %d: the bound never bit", evicted, loaded)
	}
	cs, err := db.Clients()
	if err != nil {
		t.Fatal(err)
	}
	if len(cs) != clients {
		t.Fatalf("%d clients stored, want %d", len(cs), clients)
	}
	for _, c := range cs {
		if c.Issued.N != rounds || c.Scopes["view_lab_results"].Granted.N != rounds {
			t.Fatalf("%s: issued %d, granted %d; want %d each", c.ID, c.Issued.N, c.Scopes["view_lab_results"].Granted.N, rounds)
		}
	}
}

// TestEngineReleasesAPartition reads grants of five clients from two
// partitions, app-1 to app-3 from the first, app-4 and app-5 from the
// second, through a State that holds two clients (so that owned clients
// are evicted), then releases the first: its clients and its position
// leave the store, the others stay. A second run on the same store, its
// owners read back, releases the second.
func TestEngineReleasesAPartition(t *testing.T) {
	db := openTestDB(t)
	part := func(ino uint64, n int64, client string) ingest.Line {
		ln := line("idp", ino, 100*n, n, fmt.Sprintf(
			`{"ts":"2026-10-01T10:00:%02dZ","type":"token","client":"%s","scope":"openid view_lab_results"}`, n, client))
		ln.Pos.Partition = true
		return ln
	}
	release := func(ino uint64) (ingest.Line, chan error) {
		done := make(chan error, 1)
		return ingest.Line{Pos: ingest.Position{Source: "idp", File: store.FileID{Dev: 1, Ino: ino}, Partition: true},
			Release: &ingest.Release{Done: done}}, done
	}
	run := func(lines ...ingest.Line) {
		t.Helper()
		state := store.NewState(db, 2)
		e := New(Options{
			Parsers: testParsers(t), Accountant: detect.NewAccountant(loadTestRules(t), nil, state), Store: db,
			MaxEvents: 3, MaxDelay: time.Hour, Metrics: NewMetrics(nil),
		})
		runLines(t, e, lines...)
	}
	stored := func() (ids []string, positions []uint64) {
		t.Helper()
		cs, err := db.Clients()
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range cs {
			ids = append(ids, c.ID)
		}
		ps, err := db.Positions("idp")
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range ps {
			positions = append(positions, p.File.Ino)
		}
		return ids, positions
	}

	rel1, done1 := release(1)
	var lines []ingest.Line
	for n, c := range []string{"app-1", "app-4", "app-2", "app-5", "app-3", "app-1", "app-4"} {
		ino := uint64(1)
		if c == "app-4" || c == "app-5" {
			ino = 2
		}
		lines = append(lines, part(ino, int64(n+1), c))
	}
	run(append(lines, rel1, part(2, 8, "app-5"))...)
	if err := <-done1; err != nil {
		t.Fatalf("release: %v", err)
	}
	ids, positions := stored()
	if fmt.Sprint(ids) != "[app-4 app-5]" || fmt.Sprint(positions) != "[2]" {
		t.Errorf("after releasing the first partition: clients %v, positions of partitions %v; want [app-4 app-5] and [2]", ids, positions)
	}
	owners, err := db.Owners()
	if err != nil {
		t.Fatal(err)
	}
	if len(owners) != 2 || owners["app-4"].File.Ino != 2 || owners["app-5"].File.Ino != 2 {
		t.Errorf("owners %v; want app-4 and app-5 of the second partition", owners)
	}

	rel2, done2 := release(2)
	run(rel2)
	if err := <-done2; err != nil {
		t.Fatalf("release: %v", err)
	}
	if ids, positions := stored(); len(ids) != 0 || len(positions) != 0 {
		t.Errorf("after releasing the second partition in a new run: clients %v, positions %v; want none", ids, positions)
	}
	if owners, _ := db.Owners(); len(owners) != 0 {
		t.Errorf("owners %v left; want none", owners)
	}
}

// TestEngineRestoresAPartition reads, on one store, a grant that raises
// a finding from a partition, ships the partition's changelog, and
// restores it through a Restore line into an engine on another store,
// which then reads the next grant of the partition: the client's counts
// go on from the restored ones, its partition is recorded, and the
// finding goes on counting, opened when it first was and not told again.
// Released at once after a restore, the restored client leaves.
func TestEngineRestoresAPartition(t *testing.T) {
	r := loadTestRules(t)
	cfg := &rules.Config{Detect: testDetect(), Rules: r, Sources: []rules.Source{{Name: "idp", Format: "json", Kind: "grant"}}}
	grant := func(n int64) ingest.Line {
		ln := line("idp", 1, 100*n, n, fmt.Sprintf(
			`{"ts":"2026-10-01T10:00:%02dZ","type":"token","client":"lab","scope":"openid system/*.rs"}`, n))
		ln.Pos.Partition = true
		return ln
	}
	notified := 0
	run := func(db *store.DB, lines ...ingest.Line) {
		t.Helper()
		clock := &DataClock{}
		fs := detect.NewFindings(nil, nil, clock.Now, nil)
		cov := detect.NewCoverage(nil, time.Duration(cfg.Detect.UnusedScope.CoverageGap))
		state := store.NewState(db, 100)
		e := New(Options{
			Parsers: testParsers(t), Accountant: detect.NewAccountant(r, nil, state), Store: db, MaxEvents: 1,
			MaxDelay: time.Hour, Metrics: NewMetrics(nil),
			Committed: func(b *store.Batch) { notified += len(b.Notify) },
			Detection: &Detection{
				Detectors: detect.NewDetectors(detect.DetectorOptions{Config: cfg.Detect, Rules: r}, fs),
				Findings:  fs, Coverage: cov, Clients: db, Now: clock.Now, DataClock: clock,
			},
		})
		runLines(t, e, lines...)
	}
	k := store.PositionKey{Source: "idp", File: store.FileID{Dev: 1, Ino: 1}}

	from := openTestDB(t)
	if err := from.KeepChangelog(store.ChangelogOptions{Sources: []string{"idp"}, WindowClient: detect.WindowClient}); err != nil {
		t.Fatal(err)
	}
	run(from, grant(1))
	if notified == 0 {
		t.Fatal("the first grant told nothing: the test would show nothing")
	}
	ch, err := from.Changes(k)
	if err != nil || ch == nil || len(ch.Clients) != 1 {
		t.Fatalf("Changes = %+v, %v; want lab's", ch, err)
	}
	part, err := store.EncodePartition(ch.Position, ch.Coverage, 7)
	if err != nil {
		t.Fatal(err)
	}
	snap, err := store.DecodeSnapshot(k, part, map[string][]byte{"lab": ch.Clients[0].Value})
	if err != nil {
		t.Fatal(err)
	}

	to := openTestDB(t)
	notified = 0
	done := make(chan error, 1)
	run(to, ingest.Line{Pos: grant(1).Pos, Restore: &ingest.Restore{Snapshot: snap, Done: done}}, grant(2))
	if err := <-done; err != nil {
		t.Fatalf("restore: %v", err)
	}
	c, ok, err := to.Client("lab")
	if err != nil || !ok || c.Issued.N != 2 {
		t.Errorf("restored lab = %+v, %v, %v; want 2 tokens issued", c, ok, err)
	}
	if owners, _ := to.Owners(); owners["lab"] != k {
		t.Errorf("owners %v, want lab of the partition", owners)
	}
	fs, err := to.Findings()
	if err != nil || len(fs) != 1 || fs[0].Count != 2 || !fs[0].Opened.Equal(time.Date(2026, 10, 1, 10, 0, 1, 0, time.UTC)) {
		t.Errorf("findings after the restore = %+v, %v; want one, seen twice, opened at the first grant", fs, err)
	}
	if notified != 0 {
		t.Errorf("%d notifications after the restore, want none: the finding was told by the partition's former owner", notified)
	}
	if ps, _ := to.Positions("idp"); len(ps) != 1 || ps[0].Offset != 200 {
		t.Errorf("positions %+v, want the second grant's", ps)
	}

	// Restored and released at once, before any event names it: the
	// client leaves with the partition.
	again := openTestDB(t)
	restored, released := make(chan error, 1), make(chan error, 1)
	run(again, ingest.Line{Pos: grant(1).Pos, Restore: &ingest.Restore{Snapshot: snap, Done: restored}},
		ingest.Line{Pos: grant(1).Pos, Release: &ingest.Release{Done: released}})
	if err := errors.Join(<-restored, <-released); err != nil {
		t.Fatal(err)
	}
	if cs, _ := again.Clients(); len(cs) != 0 {
		t.Errorf("after a restore and a release, clients %+v stored; want none", cs)
	}
}
