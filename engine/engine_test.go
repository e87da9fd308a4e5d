package engine

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/scopewatch/scopewatch/detect"
	"github.com/scopewatch/scopewatch/ingest"
	"github.com/scopewatch/scopewatch/rules"
	"github.com/scopewatch/scopewatch/store"
)

const testRules = `
routes:
  - {method: GET, path: "/api/labs/{id}", scopes: [view_lab_results]}
  - {method: POST, path: /api/orders, scopes: [write_orders]}
identity_scopes: [openid]
`

func loadTestRules(t *testing.T) *rules.Rules {
	t.Helper()
	p := filepath.Join(t.TempDir(), "rules.yaml")
	if err := os.WriteFile(p, []byte(testRules), 0o600); err != nil {
		t.Fatal(err)
	}
	r, err := rules.LoadRules(p)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// testParsers returns real JSON parsers: "idp" lines are grants or denials
// by their "kind" field, "api" lines are uses.
func testParsers(t *testing.T) map[string]ingest.Parser {
	t.Helper()
	idp, err := ingest.NewParser(rules.Source{Name: "idp", Format: "json", TimeFormat: "rfc3339", Kind: "grant",
		Fields: rules.JSONFields{Time: "ts", Client: "client", Scopes: "scope", Kind: "type", Reason: "error"},
		Kinds:  map[string]string{"token": "grant", "token_error": "deny"}})
	if err != nil {
		t.Fatal(err)
	}
	api, err := ingest.NewParser(rules.Source{Name: "api", Format: "json", TimeFormat: "rfc3339", Kind: "use",
		Fields: rules.JSONFields{Time: "ts", Client: "client", Method: "method", Path: "path", Status: "status", IP: "ip"}})
	if err != nil {
		t.Fatal(err)
	}
	return map[string]ingest.Parser{"idp": idp, "api": api}
}

// manualTimer is a batch timer the test fires.
type manualTimer struct{ c chan time.Time }

func (m *manualTimer) C() <-chan time.Time { return m.c }
func (m *manualTimer) Stop() bool          { return true }

func openTestDB(t *testing.T) *store.DB {
	t.Helper()
	db, err := store.Open(filepath.Join(t.TempDir(), "s.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// runLines runs e on lines until they are all committed.
func runLines(t *testing.T, e *Engine, lines ...ingest.Line) {
	t.Helper()
	in := make(chan ingest.Line, len(lines))
	for _, ln := range lines {
		in <- ln
	}
	close(in)
	if err := e.Run(t.Context(), in); err != nil {
		t.Fatal(err)
	}
}

func line(src string, file uint64, off, n int64, text string) ingest.Line {
	return ingest.Line{Text: []byte(text), Pos: ingest.Position{
		Source: src, Path: "/var/log/" + src, File: store.FileID{Dev: 1, Ino: file}, Offset: off, Line: n,
	}}
}

func TestEngineCommitsCountsWithPositions(t *testing.T) {
	db := openTestDB(t)
	r := loadTestRules(t)
	timers := make(chan *manualTimer, 8)
	commits := make(chan int, 8)
	taken := make(chan struct{}, 8)
	e := New(Options{
		taken:     func() { taken <- struct{}{} },
		Committed: func(b *store.Batch) { commits <- len(b.Positions) },
		Parsers:   testParsers(t), Accountant: detect.NewAccountant(r, nil, nil), Store: db, MaxEvents: 1000,
		NewTimer: func(time.Duration) Timer {
			mt := &manualTimer{c: make(chan time.Time, 1)}
			timers <- mt
			return mt
		},
	})
	in := make(chan ingest.Line)
	done := make(chan error, 1)
	go func() { done <- e.Run(t.Context(), in) }()

	in <- line("idp", 10, 100, 1, `{"ts":"2026-10-01T10:00:00Z","type":"token","client":"lab","scope":"openid view_lab_results write_orders"}`)
	// Sources are parsed apart: the grant is taken before the uses that
	// follow it only if the test waits for it.
	<-taken
	in <- line("api", 20, 50, 1, `{"ts":"2026-10-01T10:00:01Z","client":"lab","method":"GET","path":"/api/labs/9?x=1","status":200,"ip":"10.1.2.3"}`)
	in <- line("api", 21, 70, 1, `{"ts":"2026-10-01T10:00:02Z","method":"GET","path":"/api/labs/9","status":200}`) // no client, second file
	in <- line("api", 20, 90, 2, `{"ts":"2026-10-01T10:00:03Z","client":"lab","method":"GET","path":"/unmapped","status":200}`)
	in <- line("idp", 10, 160, 2, `{"ts":"2026-10-01T10:00:04Z","type":"token_error","client":"lab","scope":"admin","error":"invalid_scope"}`)
	in <- line("idp", 10, 170, 3, `{"ts": nope`)

	// The delay timer flushes without waiting for more lines.
	(<-timers).c <- time.Now()
	if got := <-commits; got != 3 {
		t.Errorf("first batch carried %d positions, want 3", got)
	}
	if ps, _ := db.Positions("idp"); len(ps) != 1 || ps[0].Offset != 170 {
		t.Errorf("idp positions after the timed flush = %+v, want offset 170", ps)
	}
	close(in)
	if err := <-done; err != nil {
		t.Fatal(err)
	}

	c, ok, err := db.Client("lab")
	if err != nil || !ok {
		t.Fatalf("client lab: ok=%v err=%v", ok, err)
	}
	check := func(scope string, req, granted, used uint64) {
		t.Helper()
		u := c.Scopes[scope]
		if u.Requested.N != req || u.Granted.N != granted || u.Used.N != used {
			t.Errorf("%s: requested/granted/used = %d/%d/%d, want %d/%d/%d", scope,
				u.Requested.N, u.Granted.N, u.Used.N, req, granted, used)
		}
	}
	check("openid", 0, 1, 1) // identity scope: used on issuance
	check("view_lab_results", 0, 1, 1)
	check("write_orders", 0, 1, 0)
	check("admin", 1, 0, 0)
	if c.Seen.N != 4 {
		t.Errorf("client events = %d, want 4", c.Seen.N)
	}
	if _, ok := c.IPs["10.1.2.3"]; !ok {
		t.Errorf("ip not recorded: %v", c.IPs)
	}

	srcs, err := db.Sources()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]store.Source{}
	for _, s := range srcs {
		got[s.Name] = s
	}
	if s := got["api"]; s.Lines != 3 || s.Unattributed != 1 || s.Malformed != 0 {
		t.Errorf("api source = %+v, want 3 lines, 1 unattributed", s)
	}
	if s := got["idp"]; s.Lines != 3 || s.Malformed != 1 {
		t.Errorf("idp source = %+v, want 3 lines, 1 malformed", s)
	}
	// Both files of the api source keep their own position.
	ps, err := db.Positions("api")
	if err != nil {
		t.Fatal(err)
	}
	offsets := map[uint64]int64{}
	for _, p := range ps {
		offsets[p.File.Ino] = p.Offset
	}
	if offsets[20] != 90 || offsets[21] != 70 {
		t.Errorf("api positions = %v, want ino 20 at 90 and ino 21 at 70", offsets)
	}
}

func TestEngineCommitErrorStops(t *testing.T) {
	db, err := store.Open(filepath.Join(t.TempDir(), "s.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	db.Close() // every commit now fails
	e := New(Options{Parsers: testParsers(t), Accountant: detect.NewAccountant(loadTestRules(t), nil, nil), Store: db, MaxEvents: 1})
	in := make(chan ingest.Line, 1)
	in <- line("api", 20, 50, 1, `{"ts":"2026-10-01T10:00:01Z","client":"lab","method":"GET","path":"/api/labs/9"}`)
	err = e.Run(t.Context(), in)
	if err == nil {
		t.Fatal("Run succeeded with a closed store")
	}
	var pe *ingest.ParseError
	if errors.As(err, &pe) {
		t.Fatalf("unexpected parse error: %v", err)
	}
}

// TestEngineBatchSizes checks the batch bounds: MaxEvents while the engine
// keeps up, growing to CatchUpEvents while lines are queued.
func TestEngineBatchSizes(t *testing.T) {
	apiLine := func(i int) ingest.Line {
		return line("api", 20, int64(100*(i+1)), int64(i+1),
			`{"ts":"2026-10-01T10:00:01Z","client":"lab","method":"GET","path":"/api/labs/9"}`)
	}
	taken := make(chan struct{}, 1024)
	run := func(t *testing.T, maxEvents int, in chan ingest.Line, feed func(), backfill bool) []uint64 {
		t.Helper()
		var sizes []uint64
		e := New(Options{
			Parsers: testParsers(t), Accountant: detect.NewAccountant(loadTestRules(t), nil, nil), Store: openTestDB(t),
			MaxEvents: maxEvents, MaxDelay: time.Hour, // only the size bound closes batches here
			Backfill: backfill,
			Committed: func(b *store.Batch) {
				var n uint64
				for _, d := range b.Sources {
					n += d.Lines
				}
				sizes = append(sizes, n)
			},
			taken: func() { taken <- struct{}{} },
		})
		done := make(chan error, 1)
		go func() { done <- e.Run(t.Context(), in) }()
		feed()
		close(in)
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		return sizes
	}
	t.Run("keeping up", func(t *testing.T) {
		in := make(chan ingest.Line) // each line taken before the next is sent: nothing ever queues
		got := run(t, 10, in, func() {
			for i := range 30 {
				in <- apiLine(i)
				<-taken
			}
		}, false)
		if !slices.Equal(got, []uint64{10, 10, 10}) {
			t.Errorf("batch sizes %v, want [10 10 10]", got)
		}
	})
	t.Run("behind", func(t *testing.T) {
		in := make(chan ingest.Line, 120)
		for i := range 120 {
			in <- apiLine(i) // a backlog before the engine starts
		}
		got := run(t, 50, in, func() {}, false)
		if !slices.Equal(got, []uint64{50, 50, 20}) {
			t.Errorf("batch sizes %v, want [50 50 20]", got)
		}
	})
	const clients = 4
	token := func(i int, behind bool) ingest.Line {
		ln := line("idp", 10, int64(100*(i+1)), int64(i+1),
			fmt.Sprintf(`{"ts":"2026-10-01T10:00:01Z","type":"token","client":"c%d","scope":"openid"}`, i%clients))
		ln.Pos.Behind = behind
		return ln
	}
	// A backlog's checkpoint holds linesPerRecord lines for each client
	// it writes, past MaxEvents: it commits on the line that makes them.
	t.Run("scan of many clients", func(t *testing.T) {
		const lines = 2*clients*linesPerRecord + 7
		in := make(chan ingest.Line, lines)
		for i := range lines {
			in <- token(i, false)
		}
		got := run(t, 10, in, func() {}, true)
		if want := []uint64{clients * linesPerRecord, clients * linesPerRecord, 7}; !slices.Equal(got, want) {
			t.Errorf("batch sizes %v, want %v", got, want)
		}
	})
	// So does a tail's, while its lines are read behind, with nothing
	// queued; then it commits at MaxEvents again.
	t.Run("tail behind, many clients", func(t *testing.T) {
		in := make(chan ingest.Line)
		got := run(t, 10, in, func() {
			for i := range 2*clients*linesPerRecord + 20 {
				in <- token(i, i < 2*clients*linesPerRecord)
				<-taken
			}
		}, false)
		if want := []uint64{clients * linesPerRecord, clients * linesPerRecord, 10, 10}; !slices.Equal(got, want) {
			t.Errorf("batch sizes %v, want %v", got, want)
		}
	})
}

// TestEngineSurvivesUnkeyableClient feeds a client id with a 0 byte, which
// anyone can put in a token request: it is counted as malformed and the
// batch around it commits.
func TestEngineSurvivesUnkeyableClient(t *testing.T) {
	db := openTestDB(t)
	e := New(Options{Parsers: testParsers(t), Accountant: detect.NewAccountant(loadTestRules(t), nil, nil), Store: db})
	in := make(chan ingest.Line, 2)
	in <- line("idp", 10, 100, 1, `{"ts":"2026-10-01T10:00:00Z","type":"token","client":"evil\u0000id","scope":"openid"}`)
	in <- line("idp", 10, 200, 2, `{"ts":"2026-10-01T10:00:01Z","type":"token","client":"good","scope":"openid"}`)
	close(in)
	if err := e.Run(t.Context(), in); err != nil {
		t.Fatalf("Run: %v", err)
	}
	if _, ok, _ := db.Client("good"); !ok {
		t.Error("the good line next to the bad one was not committed")
	}
	if ps, _ := db.Positions("idp"); len(ps) != 1 || ps[0].Offset != 200 {
		t.Errorf("positions = %+v, want offset 200", ps)
	}
}

// TestEngineCommitsFindingsWithTheirLines checks that a finding raised by
// a line is in the batch that commits the line's position, that the sweep
// at the end judges with the data clock, and that a silence signalled at
// run time is applied and committed.
func TestEngineCommitsFindingsWithTheirLines(t *testing.T) {
	db := openTestDB(t)
	r := loadTestRules(t)
	cfg := &rules.Config{Detect: testDetect(), Rules: r, Sources: []rules.Source{
		{Name: "idp", Format: "json", Kind: "grant"}, {Name: "api", Format: "json", Kind: "use"}}}
	clock := &DataClock{}
	fs := detect.NewFindings(nil, nil, clock.Now, nil)
	cov := detect.NewCoverage(nil, time.Duration(cfg.Detect.UnusedScope.CoverageGap))
	silencesC := make(chan struct{}, 1)
	var silences []store.Silence
	type commit struct {
		positions int
		findings  []store.FindingKey
	}
	commits := make(chan commit, 8)
	e := New(Options{
		Parsers: testParsers(t), Accountant: detect.NewAccountant(r, nil, nil), Store: db, MaxEvents: 1,
		Committed: func(b *store.Batch) {
			c := commit{positions: len(b.Positions)}
			for k := range b.Findings {
				c.findings = append(c.findings, k)
			}
			commits <- c
		},
		Detection: &Detection{
			Detectors: detect.NewDetectors(detect.DetectorOptions{Config: cfg.Detect, Rules: r}, fs),
			Findings:  fs, Coverage: cov,
			Sweeper: detect.NewSweeper(detect.SweeperOptions{Config: cfg, Findings: fs, Coverage: cov}),
			Clients: db, Now: clock.Now, DataClock: clock,
			SilencesChanged: silencesC,
			LoadSilences:    func() ([]store.Silence, error) { return silences, nil },
		},
	})
	in := make(chan ingest.Line)
	done := make(chan error, 1)
	go func() { done <- e.Run(t.Context(), in) }()

	in <- line("api", 20, 300, 1, `{"ts":"2026-10-01T10:00:00Z","client":"lab","method":"GET","path":"/api/labs/9","status":200,"ip":"203.0.113.4"}`)
	if c := <-commits; c.positions != 1 || len(c.findings) != 0 {
		t.Errorf("first batch: %+v, want a position and no finding", c)
	}
	in <- line("idp", 10, 100, 1, `{"ts":"2026-10-01T10:00:01Z","type":"token","client":"lab","scope":"openid system/*.rs"}`)
	want := store.FindingKey{Kind: rules.KindBroadRequest, Client: "lab", Subject: "system/*.rs"}
	if c := <-commits; c.positions != 1 || len(c.findings) != 1 || c.findings[0] != want {
		t.Errorf("second batch: %+v, want its position and the finding %+v", c, want)
	}

	silences = []store.Silence{{ID: "s1", Client: "lab", Expires: time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC), Reason: "test"}}
	silencesC <- struct{}{}
	if c := <-commits; len(c.findings) != 1 || c.findings[0] != want {
		t.Errorf("after the silence: %+v, want the finding rewritten", c)
	}
	close(in)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	stored, err := db.Findings()
	if err != nil || len(stored) != 1 {
		t.Fatalf("stored findings = %+v, %v", stored, err)
	}
	f := stored[0]
	if f.State != store.StateSilenced || f.Silence != "s1" || len(f.Evidence.Lines) != 1 || f.Evidence.Lines[0].Offset != 100 {
		t.Errorf("stored finding = %+v", f)
	}
	if want := time.Date(2026, 10, 1, 10, 0, 1, 0, time.UTC); !f.Opened.Equal(want) {
		t.Errorf("opened at %v, want %v: the data clock at the line that raised it", f.Opened, want)
	}
	spans, err := db.Coverage()
	if err != nil || len(spans["idp"]) != 1 || len(spans["api"]) != 1 {
		t.Errorf("coverage = %v, %v", spans, err)
	}
}

// gatedStore is a real store whose commits wait at a gate the test opens,
// standing in for a disk that hangs.
type gatedStore struct {
	db      *store.DB
	entered chan struct{} // receives once per commit that reached the gate
	gate    chan struct{} // closed to let commits through
}

func (g *gatedStore) Commit(b *store.Batch) error {
	g.entered <- struct{}{}
	<-g.gate
	return g.db.Commit(b)
}

// TestEngineProbes checks the watchdog's liveness probe: an idle engine
// answers it at once; a probe sent while a commit hangs stays unanswered
// until that commit is durable, and then finds the lines committed.
func TestEngineProbes(t *testing.T) {
	db := openTestDB(t)
	g := &gatedStore{db: db, entered: make(chan struct{}, 4), gate: make(chan struct{})}
	probes := make(chan chan<- struct{})
	timer := &manualTimer{c: make(chan time.Time)}
	e := New(Options{
		Parsers: testParsers(t), Accountant: detect.NewAccountant(loadTestRules(t), nil, nil), Store: g, MaxEvents: 1000,
		NewTimer: func(time.Duration) Timer { return timer }, Probes: probes,
	})
	in := make(chan ingest.Line)
	done := make(chan error, 1)
	go func() { done <- e.Run(t.Context(), in) }()

	// Idle, with nothing to commit: answered without touching the store.
	idle := make(chan struct{})
	probes <- idle
	<-idle
	select {
	case <-g.entered:
		t.Fatal("an idle probe committed an empty batch")
	default:
	}

	// A held line: the probe commits it, and the commit hangs.
	in <- line("api", 20, 50, 1, `{"ts":"2026-10-01T10:00:01Z","client":"lab","method":"GET","path":"/api/labs/9"}`)
	stuck := make(chan struct{})
	probes <- stuck
	<-g.entered
	// The engine has handed the probe on (it accepts the next probe only
	// after that); the commit before it still hangs.
	next := make(chan struct{})
	probes <- next
	select {
	case <-stuck:
		t.Fatal("probe answered while the commit before it hangs")
	default:
	}
	close(g.gate)
	<-stuck
	<-next
	srcs, err := db.Sources()
	if err != nil {
		t.Fatal(err)
	}
	if len(srcs) != 1 || srcs[0].Lines != 1 {
		t.Fatalf("after the answered probe, sources = %+v, want api with 1 line", srcs)
	}
	close(in)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// TestEnginePartialLinesSaveNoPosition checks that the pieces of a line a
// container runtime split are not saved as read until the piece that ends
// the line, so a restart in between reads the whole line again; and that
// every line, pieces included, is counted once.
func TestEnginePartialLinesSaveNoPosition(t *testing.T) {
	db := openTestDB(t)
	kc, err := ingest.NewParser(rules.Source{Name: "kc", Format: "keycloak"})
	if err != nil {
		t.Fatal(err)
	}
	timers := make(chan *manualTimer, 8)
	commits := make(chan struct{}, 8)
	e := New(Options{
		Committed: func(*store.Batch) { commits <- struct{}{} },
		Parsers:   map[string]ingest.Parser{"kc": kc}, Accountant: detect.NewAccountant(loadTestRules(t), nil, nil), Store: db, MaxEvents: 1000,
		NewTimer: func(time.Duration) Timer {
			mt := &manualTimer{c: make(chan time.Time, 1)}
			timers <- mt
			return mt
		},
	})
	in := make(chan ingest.Line)
	done := make(chan error, 1)
	go func() { done <- e.Run(t.Context(), in) }()

	const ts = "2024-03-14T09:15:27.000000001Z stdout "
	in <- line("kc", 1, 100, 1, ts+"F 2024-03-14 09:15:27,000 INFO  [io.quarkus] (main) started")
	in <- line("kc", 1, 200, 2, ts+`P 2024-03-14 09:15:27,100 INFO  [org.keycloak.events] (t) type="CLIENT_LOGIN", realmId="r", `)
	in <- line("kc", 1, 300, 3, ts+`P clientId="svc", `)
	(<-timers).c <- time.Now()
	<-commits
	if ps, _ := db.Positions("kc"); len(ps) != 1 || ps[0].Offset != 100 {
		t.Fatalf("positions with a line half read = %+v, want offset 100 (before its pieces)", ps)
	}
	in <- line("kc", 1, 400, 4, ts+`F scope="system/Claim.rs"`)
	close(in)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if ps, _ := db.Positions("kc"); len(ps) != 1 || ps[0].Offset != 400 {
		t.Errorf("positions after the line's end = %+v, want offset 400", ps)
	}
	c, ok, err := db.Client("svc")
	if err != nil || !ok || c.Scopes["system/Claim.rs"].Granted.N != 1 {
		t.Fatalf("client svc = %+v, %v, %v; want system/Claim.rs granted once from the joined line", c, ok, err)
	}
	srcs, err := db.Sources()
	if err != nil {
		t.Fatal(err)
	}
	if len(srcs) != 1 || srcs[0].Lines != 4 || srcs[0].Ignored != 1 || srcs[0].Malformed != 0 {
		t.Errorf("sources = %+v, want kc with 4 lines (pieces included), 1 ignored, 0 malformed", srcs)
	}
}

// failingStore fails its first n commits with err, then commits to db.
type failingStore struct {
	db  *store.DB
	n   int
	err error
}

func (f *failingStore) Commit(b *store.Batch) error {
	if f.n > 0 {
		f.n--
		return f.err
	}
	return f.db.Commit(b)
}

// TestEngineRetriesAFailingCommit checks that a commit failing for want of
// space is held and retried with backoff, reported when it starts failing
// and when it goes through, and that the counts are exact afterwards:
// nothing lost, nothing twice. A refused batch still stops the engine.
func TestEngineRetriesAFailingCommit(t *testing.T) {
	db := openTestDB(t)
	fs := &failingStore{db: db, n: 3, err: fmt.Errorf("write page: %w", syscall.ENOSPC)}
	var waits []time.Duration
	var states []string
	e := New(Options{
		Parsers: testParsers(t), Accountant: detect.NewAccountant(loadTestRules(t), nil, nil), Store: fs, MaxEvents: 2,
		RetryMin: 10 * time.Millisecond, RetryMax: 25 * time.Millisecond,
		After: func(d time.Duration) <-chan time.Time {
			waits = append(waits, d)
			c := make(chan time.Time, 1)
			c <- time.Time{}
			return c
		},
		CommitFailing: func(err error) {
			if err != nil {
				states = append(states, "failing: "+err.Error())
			} else {
				states = append(states, "ok")
			}
		},
	})
	in := make(chan ingest.Line, 8)
	for i := range 4 {
		in <- line("idp", 1, int64(100*(i+1)), int64(i+1), fmt.Sprintf(`{"ts":"2026-10-01T10:00:0%dZ","type":"token","client":"lab","scope":"openid"}`, i))
	}
	close(in)
	if err := e.Run(t.Context(), in); err != nil {
		t.Fatalf("Run: %v", err)
	}
	if want := []time.Duration{10 * time.Millisecond, 20 * time.Millisecond, 25 * time.Millisecond}; !slices.Equal(waits, want) {
		t.Errorf("backoff waits %v, want %v", waits, want)
	}
	if len(states) != 2 || !strings.Contains(states[0], "no space left") || states[1] != "ok" {
		t.Errorf("reported states %q, want failing (no space) then ok", states)
	}
	c, ok, err := db.Client("lab")
	if err != nil || !ok || c.Scopes["openid"].Granted.N != 4 {
		t.Fatalf("client lab = %+v, %v, %v; want openid granted exactly 4 times", c.Scopes, ok, err)
	}
	if ps, _ := db.Positions("idp"); len(ps) != 1 || ps[0].Offset != 400 {
		t.Errorf("positions %+v, want offset 400", ps)
	}

	// A batch the store refuses is not retried.
	refused := &failingStore{db: db, n: 1, err: fmt.Errorf("client: %w", store.ErrInvalid)}
	e = New(Options{Parsers: testParsers(t), Accountant: detect.NewAccountant(loadTestRules(t), nil, nil), Store: refused,
		After: func(time.Duration) <-chan time.Time { t.Error("a refused batch was retried"); return nil }})
	in = make(chan ingest.Line, 1)
	in <- line("idp", 1, 500, 5, `{"ts":"2026-10-01T10:00:09Z","type":"token","client":"lab","scope":"openid"}`)
	close(in)
	if err := e.Run(t.Context(), in); !errors.Is(err, store.ErrInvalid) {
		t.Errorf("Run with a refused batch = %v, want ErrInvalid", err)
	}
}

// TestEngineStopsRetryingOnStop checks that a commit being retried gives
// up when the process stops (Run's context is cancelled), without
// committing: the lines are read again after a restart.
func TestEngineStopsRetryingOnStop(t *testing.T) {
	db := openTestDB(t)
	ctx, stop := context.WithCancel(t.Context())
	defer stop()
	fs := &failingStore{db: db, n: 1 << 30, err: syscall.EIO}
	e := New(Options{Parsers: testParsers(t), Accountant: detect.NewAccountant(loadTestRules(t), nil, nil), Store: fs,
		CommitFailing: func(err error) {
			if err != nil {
				stop()
			}
		},
		After: func(time.Duration) <-chan time.Time { return nil }})
	in := make(chan ingest.Line, 1)
	in <- line("idp", 1, 100, 1, `{"ts":"2026-10-01T10:00:00Z","type":"token","client":"lab","scope":"openid"}`)
	close(in)
	if err := e.Run(ctx, in); !errors.Is(err, syscall.EIO) {
		t.Errorf("Run = %v, want the commit's error once stopped", err)
	}
	if ps, _ := db.Positions("idp"); len(ps) != 0 {
		t.Errorf("positions %+v saved by a commit that never went through", ps)
	}
}

// testDetect returns the detector settings Load gives an empty detect
// section.
func testDetect() rules.Detect {
	base := rules.Baseline{LearningPeriod: rules.DefaultLearningPeriod, MinEvents: rules.DefaultMinEvents}
	return rules.Detect{
		UnusedScope: rules.UnusedScope{
			Window: rules.DefaultWindow, MinObservation: rules.DefaultMinObservation,
			CoverageGap: rules.DefaultCoverageGap, StaleAfter: rules.DefaultStaleAfter, Every: rules.DefaultSweepEvery,
		},
		BroadRequest: rules.BroadRequest{
			MaxScopes: rules.DefaultMaxScopes, Patterns: rules.DefaultBroadPatterns(), Baseline: base,
			Probing: rules.Probing{Denials: rules.DefaultProbeDenials, Window: rules.DefaultProbeWindow, Reasons: rules.DefaultProbeReasons()},
		},
		UnfamiliarGeo: rules.UnfamiliarGeo{Baseline: base},
		UnfamiliarBurst: rules.UnfamiliarBurst{
			Requests: rules.DefaultBurstRequests, Window: rules.DefaultBurstWindow, NewFor: rules.DefaultBurstNewFor, Baseline: base,
		},
		ResolveAfter: rules.DefaultResolveAfter,
		Retention:    rules.DefaultRetention,
	}
}

var t0 = time.Date(2026, 9, 1, 0, 0, 0, 0, time.UTC)

// TestEngineDrainsDespiteCancel: a cancelled context stops no part of a
// clean drain; every line read is committed with its position.
func TestEngineDrainsDespiteCancel(t *testing.T) {
	db := openTestDB(t)
	e := New(Options{Parsers: testParsers(t), Accountant: detect.NewAccountant(loadTestRules(t), nil, nil), Store: db})
	in := make(chan ingest.Line, 3)
	for i := range 3 {
		in <- line("idp", 1, int64(100*(i+1)), int64(i+1), `{"ts":"2026-10-01T10:00:00Z","type":"token","client":"lab","scope":"openid"}`)
	}
	close(in)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if err := e.Run(ctx, in); err != nil {
		t.Fatalf("Run with a cancelled context = %v, want the lines committed", err)
	}
	srcs, err := db.Sources()
	if err != nil || len(srcs) != 1 || srcs[0].Lines != 3 {
		t.Errorf("sources %+v, %v; want idp with 3 lines", srcs, err)
	}
	if ps, _ := db.Positions("idp"); len(ps) != 1 || ps[0].Offset != 300 {
		t.Errorf("positions %+v, want the third line's", ps)
	}
}

// TestParseStagePlacesAddresses checks that the parse stage places each
// event's address with the Detection's placer, off the accounting
// goroutine, hands the places on beside the events (an event without an
// address, or with one the detectors do not place, has none), and gives
// each event without a country the place's.
func TestParseStagePlacesAddresses(t *testing.T) {
	placed := map[netip.Addr]detect.Place{netip.MustParseAddr("203.0.113.4"): {Country: "NZ", ASN: 64501}}
	placer := func(ip netip.Addr) (detect.Place, bool) {
		p, ok := placed[ip]
		return p, ok
	}
	in := make(chan ingest.Line, 4)
	in <- line("api", 20, 100, 1, `{"ts":"2026-10-01T10:00:00Z","client":"lab","method":"GET","path":"/api/labs/9","status":200,"ip":"203.0.113.4"}`)
	in <- line("api", 20, 200, 2, `{"ts":"2026-10-01T10:00:01Z","client":"lab","method":"GET","path":"/api/labs/9","status":200,"ip":"10.0.0.1"}`)
	in <- line("api", 20, 300, 3, `{"ts":"2026-10-01T10:00:02Z","client":"lab","method":"GET","path":"/api/labs/9","status":200}`)
	close(in)
	ps := startParse(t.Context(), testParsers(t), placer, in)
	var got []place
	var countries []string
	for c := range ps.out {
		for i := range c.lines {
			events, places, err := c.lineEvents(i)
			if err != nil || len(events) != 1 || len(places) != 1 {
				t.Fatalf("line %d: %d events, %d places, %v", i+1, len(events), len(places), err)
			}
			got = append(got, places[0])
			countries = append(countries, events[0].Country)
		}
	}
	ps.wait()
	want := []place{{p: detect.Place{Country: "NZ", ASN: 64501}, ok: true}, {}, {}}
	if !slices.Equal(got, want) || !slices.Equal(countries, []string{"NZ", "", ""}) {
		t.Errorf("places %+v, countries %q; want %+v, NZ only", got, countries, want)
	}
}

// TestDelayPostponedWhileBehind checks a batch's delay running out: with
// half the sources' queue waiting or more, or a source's last line read
// behind, the delay starts again, at most maxPostpones times; then, or
// without a backlog, the batch is asked to commit.
func TestDelayPostponedWhileBehind(t *testing.T) {
	timers := 0
	opt := &Options{MaxDelay: time.Second, NewTimer: func(time.Duration) Timer {
		timers++
		return &manualTimer{c: make(chan time.Time, 1)}
	}}
	in := make(chan ingest.Line, 8)
	r := &run{opt: opt, in: in}
	r.delayOver()
	if len(r.asks) != 1 || !r.asks[0].flush || timers != 0 {
		t.Fatalf("without a backlog: %d asks, %d timers; want a flush asked", len(r.asks), timers)
	}

	r = &run{opt: opt, in: in}
	for range 4 {
		in <- ingest.Line{}
	}
	for i := range maxPostpones {
		r.delayOver()
		if len(r.asks) != 0 || r.timer == nil || timers != i+1 || r.postponed != i+1 {
			t.Fatalf("behind, delay %d: %d asks, %d timers, postponed %d; want the delay started again", i+1, len(r.asks), timers, r.postponed)
		}
	}
	r.delayOver()
	if len(r.asks) != 1 || !r.asks[0].flush || r.timer != nil {
		t.Errorf("after %d postponements: %d asks, timer %v; want a flush asked", maxPostpones, len(r.asks), r.timer)
	}

	// An empty queue, but a source's last line was read far from its
	// file's end: the delay starts again until that source's lines are
	// read near the end, whatever another source's are.
	r = &run{opt: opt, in: make(chan ingest.Line, 8)}
	live, backlog := &sourceState{name: "live"}, &sourceState{name: "backlog"}
	r.cur = backlog
	r.sawBehind(true)
	r.cur = live
	r.sawBehind(false)
	r.delayOver()
	if len(r.asks) != 0 || r.timer == nil || r.postponed != 1 {
		t.Errorf("a source's last line read behind: %d asks, postponed %d; want the delay started again", len(r.asks), r.postponed)
	}
	r.cur = backlog
	r.sawBehind(false)
	r.delayOver()
	if len(r.asks) != 1 || !r.asks[0].flush {
		t.Errorf("every source's last line read near the end: %d asks; want a flush asked", len(r.asks))
	}
}

// TestEngineHandsTextsBack scans a file of many blocks into the engine:
// the engine hands each line's block back once done with it
// (ingest.Block.Done), so the reader reuses a few blocks instead of
// making one for each 256 KiB read, and every line still counts once,
// parsed from its own text: a block read into while its lines are in
// use would garble some of them, which would come out malformed.
func TestEngineHandsTextsBack(t *testing.T) {
	const lines = 100_000
	var b strings.Builder
	for i := range lines {
		fmt.Fprintf(&b, `{"ts":"2026-10-01T10:00:01Z","client":"lab%d","method":"GET","path":"/api/labs/%d"}`+"\n", i%50, i)
	}
	path := filepath.Join(t.TempDir(), "api.log")
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	spanned := (b.Len() + 256<<10 - 1) / (256 << 10)
	read, in := make(chan ingest.Line, 1024), make(chan ingest.Line, 1024)
	scanned := make(chan error, 1)
	go func() {
		scanned <- ingest.NewScan(ingest.ScanOptions{Name: "api", Paths: []string{path}}).Run(t.Context(), read)
		close(read)
	}()
	blocks := map[*ingest.Block]bool{}
	go func() {
		defer close(in)
		for ln := range read {
			blocks[ln.Block] = true
			in <- ln
		}
	}()
	var committed, malformed, ignored, events uint64
	e := New(Options{
		Parsers: testParsers(t), Accountant: detect.NewAccountant(loadTestRules(t), nil, nil), Store: openTestDB(t),
		MaxEvents: 10_000, MaxDelay: time.Hour, Backfill: true,
		Committed: func(b *store.Batch) {
			for _, d := range b.Sources {
				committed += d.Lines
				malformed += d.Malformed
				ignored += d.Ignored
				events += d.Events.N
			}
		},
	})
	if err := e.Run(t.Context(), in); err != nil {
		t.Fatal(err)
	}
	if err := <-scanned; err != nil {
		t.Fatal(err)
	}
	if committed != lines || events != lines || malformed != 0 || ignored != 0 {
		t.Errorf("committed %d lines, %d events, %d malformed, %d ignored; want %d lines, each an event", committed, events, malformed, ignored, lines)
	}
	// In flight at once: the two channels' lines and the parse stage's
	// chunks, a few thousand lines, in the blocks they lie in.
	if len(blocks) > spanned/3 {
		t.Errorf("%d blocks made for a file of %d: the engine hands too few back", len(blocks), spanned)
	}
	t.Logf("%d blocks made for a file of %d", len(blocks), spanned)
}

// TestEngineHoldsLargeCheckpoints checks the spans Options.Holding is
// given: each opens before its checkpoint commits and closes once that
// commit has ended, committed or not, and the committed records let go;
// smaller checkpoints open none.
func TestEngineHoldsLargeCheckpoints(t *testing.T) {
	tokens := func() []ingest.Line {
		var lines []ingest.Line
		for i := range 40 {
			lines = append(lines, line("idp", 10, int64(100*(i+1)), int64(i+1),
				fmt.Sprintf(`{"ts":"2026-10-01T10:00:01Z","type":"token","client":"c%d","scope":"openid"}`, i)))
		}
		return lines
	}
	// spans counts, from both goroutines, the spans opened and closed and
	// the commits, and checks the k-th commit comes after the k-th span
	// opened and before the k-th closed.
	type spans struct {
		mu                       sync.Mutex
		holds, releases, commits int
		last                     *store.Batch // the last committed
		bad                      []string
	}
	engine := func(db *store.DB, holdingBytes int, sp *spans) *Engine {
		return New(Options{
			Parsers: testParsers(t), Accountant: detect.NewAccountant(loadTestRules(t), nil, nil), Store: db,
			MaxEvents: 10, MaxDelay: time.Hour,
			Committed: func(b *store.Batch) {
				sp.mu.Lock()
				defer sp.mu.Unlock()
				sp.commits++
				sp.last = b
				if holdingBytes == 1 && sp.holds < sp.commits {
					sp.bad = append(sp.bad, fmt.Sprintf("commit %d before its span opened", sp.commits))
				}
			},
			Holding: func() func() {
				sp.mu.Lock()
				sp.holds++
				sp.mu.Unlock()
				return func() {
					sp.mu.Lock()
					defer sp.mu.Unlock()
					sp.releases++
					if sp.releases > sp.commits && sp.commits > 0 {
						sp.bad = append(sp.bad, fmt.Sprintf("span %d closed before its commit", sp.releases))
					}
					if sp.last != nil && len(sp.last.Records) > 0 {
						// The span's collection would find them still held.
						sp.bad = append(sp.bad, fmt.Sprintf("span %d closed with its %d records held", sp.releases, len(sp.last.Records)))
					}
				}
			},
			HoldingBytes: holdingBytes,
		})
	}
	t.Run("large", func(t *testing.T) {
		var sp spans
		runLines(t, engine(openTestDB(t), 1, &sp), tokens()...)
		if sp.holds != 4 || sp.releases != 4 || sp.commits != 4 || sp.bad != nil {
			t.Errorf("%d spans opened, %d closed, %d commits (want 4 each); %q", sp.holds, sp.releases, sp.commits, sp.bad)
		}
	})
	t.Run("small", func(t *testing.T) {
		var sp spans
		runLines(t, engine(openTestDB(t), 1<<30, &sp), tokens()...)
		if sp.holds != 0 || sp.commits != 4 {
			t.Errorf("%d spans, %d commits; want none and 4", sp.holds, sp.commits)
		}
	})
	t.Run("failed commit", func(t *testing.T) {
		db, err := store.Open(filepath.Join(t.TempDir(), "s.db"), store.Options{})
		if err != nil {
			t.Fatal(err)
		}
		db.Close() // every commit now fails, for good
		var sp spans
		in := make(chan ingest.Line, 40)
		for _, ln := range tokens() {
			in <- ln
		}
		close(in)
		if err := engine(db, 1, &sp).Run(t.Context(), in); err == nil {
			t.Fatal("Run succeeded with a closed store")
		}
		if sp.holds == 0 || sp.holds != sp.releases {
			t.Errorf("%d spans opened, %d closed: every one must close", sp.holds, sp.releases)
		}
	})
}
