package engine

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/scopewatch/scopewatch/detect"
	"github.com/scopewatch/scopewatch/ingest"
	"github.com/scopewatch/scopewatch/rules"
	"github.com/scopewatch/scopewatch/store"
)

// sprayRig is the real engine with every detector over a real store, as
// the daemon wires it: the detectors share the accountant's known
// clients, the sweeper forgets what it prunes.
type sprayRig struct {
	db   *store.DB
	cfg  *rules.Config
	acc  *detect.Accountant
	dets *detect.Detectors
	fs   *detect.Findings
	m    *Metrics
	eng  *Engine
	// probes reach the running engine: a probe is answered once every
	// line sent before it is committed.
	probes chan chan<- struct{}
}

// settle returns once every line sent so far is committed.
func (r *sprayRig) settle() {
	done := make(chan struct{})
	r.probes <- done
	<-done
}

func sprayConfig(t *testing.T) *rules.Config {
	d := testDetect()
	d.ClientRetention = rules.DefaultClientRetention
	d.ClientIDSpray = rules.ClientIDSpray{Distinct: 1000, Window: rules.DefaultSprayWindow}
	return &rules.Config{Detect: d, Rules: loadTestRules(t), Sources: []rules.Source{
		{Name: "keycloak", Format: "keycloak"}, {Name: "idp", Format: "json", Kind: "grant"}, {Name: "api", Format: "json", Kind: "use"}}}
}

// newSprayRig loads db as the daemon does at start: the known clients
// and the baselines of those that qualify. now is the sweeps' clock.
func newSprayRig(t *testing.T, db *store.DB, cfg *rules.Config, now func() time.Time) *sprayRig {
	t.Helper()
	parsers := testParsers(t)
	kc, err := ingest.NewParser(rules.Source{Name: "keycloak", Format: "keycloak", TimeZone: "UTC"})
	if err != nil {
		t.Fatal(err)
	}
	parsers["keycloak"] = kc
	r := &sprayRig{db: db, cfg: cfg, acc: detect.NewAccountant(cfg.Rules, nil, nil), m: NewMetrics(prometheus.NewRegistry()), probes: make(chan chan<- struct{})}
	r.fs = detect.NewFindings(nil, nil, now, nil)
	r.dets = detect.NewDetectors(detect.DetectorOptions{Config: cfg.Detect, Rules: cfg.Rules, Known: r.acc.Known()}, r.fs)
	if err := db.ForEachClient(func(c store.Client) error { r.dets.Load(c); return nil }); err != nil {
		t.Fatal(err)
	}
	cov := detect.NewCoverage(nil, time.Duration(cfg.Detect.UnusedScope.CoverageGap))
	r.eng = New(Options{
		Parsers: parsers, Accountant: r.acc, Store: db, MaxEvents: 1000, Metrics: r.m, Probes: r.probes,
		Detection: &Detection{
			Detectors: r.dets, Findings: r.fs, Coverage: cov,
			Sweeper: detect.NewSweeper(detect.SweeperOptions{Config: cfg, Findings: r.fs, Coverage: cov, Forget: r.dets}),
			Clients: db, Now: now,
		},
	})
	return r
}

// run feeds lines through the engine and returns once all are committed.
func (r *sprayRig) run(t *testing.T, lines func(in chan<- ingest.Line)) {
	t.Helper()
	// Unbuffered: a line is in the engine's hands once sent, so a probe
	// sent after it (settle) follows it.
	in := make(chan ingest.Line)
	done := make(chan error, 1)
	go func() { done <- r.eng.Run(t.Context(), in) }()
	lines(in)
	close(in)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

const sprayIDs = 50_000 // per source: 100,000 distinct ids in all

// sprayLines writes sprayIDs Keycloak client_not_found refusals and as
// many API calls, each with a new client id, from 50 addresses each,
// within five minutes starting at at.
func sprayLines(in chan<- ingest.Line, at time.Time) {
	for i := range sprayIDs {
		ts := at.Add(time.Duration(i) * 5 * time.Minute / sprayIDs)
		in <- line("keycloak", 30, int64(i+1)*300, int64(i+1), ts.Format("2006-01-02 15:04:05,000")+
			` WARN  [org.keycloak.events] (executor-thread-2) type="CLIENT_LOGIN_ERROR", realmId="clinic", clientId="spray-kc-`+
			strconv.Itoa(i)+`", userId="null", ipAddress="203.0.113.`+strconv.Itoa(i%50)+`", error="client_not_found", grant_type="client_credentials"`)
		in <- line("api", 31, int64(i+1)*200, int64(i+1), `{"ts":"`+ts.Format(time.RFC3339Nano)+`","client":"spray-api-`+strconv.Itoa(i)+
			`","method":"GET","path":"/api/labs/`+strconv.Itoa(i)+`","status":200,"ip":"198.51.100.`+strconv.Itoa(i%50)+`"}`)
	}
}

// TestClientIDSpray sprays 100,000 distinct client ids, half as Keycloak
// refusals, half as API calls, through the real engine into a real
// store: no record, no detector state, fixed-size aggregates, the metric
// counts them, and one client_id_spray finding per source names the
// figures. A client used before its grant counts from the grant on. A
// restart on that store loads nothing for the sprayed ids.
func TestClientIDSpray(t *testing.T) {
	db := openTestDB(t)
	cfg := sprayConfig(t)
	at := time.Date(2026, 10, 1, 10, 0, 0, 0, time.UTC)
	now := func() time.Time { return at.Add(time.Hour) }
	r := newSprayRig(t, db, cfg, now)
	r.run(t, func(in chan<- ingest.Line) {
		// A use before the client's first grant is seen, the grant, a
		// use after it, each taken before the next: the sources are
		// parsed apart, so only a source's own lines keep their order.
		in <- line("api", 20, 100, 1, `{"ts":"2026-10-01T09:59:00Z","client":"late","method":"GET","path":"/api/labs/1","status":200,"ip":"192.0.2.1"}`)
		r.settle()
		in <- line("idp", 21, 100, 1, `{"ts":"2026-10-01T09:59:30Z","type":"token","client":"late","scope":"openid view_lab_results"}`)
		r.settle()
		in <- line("api", 20, 200, 2, `{"ts":"2026-10-01T09:59:40Z","client":"late","method":"GET","path":"/api/labs/2","status":200,"ip":"192.0.2.1"}`)
		sprayLines(in, at)
	})

	cs, err := db.Clients()
	if err != nil {
		t.Fatal(err)
	}
	if len(cs) != 1 || cs[0].ID != "late" {
		ids := make([]string, 0, min(len(cs), 5))
		for _, c := range cs[:min(len(cs), 5)] {
			ids = append(ids, c.ID)
		}
		t.Fatalf("store holds %d clients (%v...), want only late", len(cs), ids)
	}
	late := cs[0]
	if late.Seen.N != 2 || late.Issued.N != 1 || late.Scopes["view_lab_results"].Used.N != 1 {
		t.Errorf("late: seen %d, issued %d, used %d; want 2, 1, 1: the use before its grant is not its own",
			late.Seen.N, late.Issued.N, late.Scopes["view_lab_results"].Used.N)
	}

	// Bounded: one client's state, one meter per source of a fixed size.
	if n := r.acc.Known().Len(); n != 1 {
		t.Errorf("%d clients known by a token, want 1", n)
	}
	if n := r.dets.Footprint().Clients; n != 1 {
		t.Errorf("detectors hold %d clients, want 1", n)
	}
	if n := len(r.dets.Footprint().SprayBytes); n != 2 {
		t.Errorf("%d spray meters, want one per spraying source, 2", n)
	}
	if size := r.dets.Footprint().SprayBytes["api"]; size > 128<<10 {
		t.Errorf("a spray meter takes %d bytes, want a fixed size under 128 KiB", size)
	}
	if n := r.dets.Footprint().Probes; n > 50 {
		t.Errorf("probing counts %d addresses, want at most the 50 that sprayed", n)
	}

	for _, c := range []struct{ source, kind string }{{"keycloak", "deny"}, {"api", "use"}} {
		want := float64(sprayIDs)
		if c.source == "api" {
			want++ // late's use before its grant
		}
		if got := testutil.ToFloat64(r.m.UnknownClients.WithLabelValues(c.source, c.kind)); got != want {
			t.Errorf("scopewatch_unknown_client_events_total{source=%q,kind=%q} = %v, want %v", c.source, c.kind, got, want)
		}
	}

	stored, err := db.Findings()
	if err != nil {
		t.Fatal(err)
	}
	sprays := map[string]store.Finding{}
	for _, f := range stored {
		if f.Kind == rules.KindClientIDSpray {
			sprays[f.Subject] = f
		} else if f.Client != "" && f.Client != "late" {
			t.Errorf("finding %s/%s/%s about a sprayed id", f.Kind, f.Client, f.Subject)
		}
	}
	for _, src := range []string{"keycloak", "api"} {
		f, ok := sprays[src]
		if !ok {
			t.Errorf("no client_id_spray finding for %s; findings: %d", src, len(stored))
			continue
		}
		if f.Client != "" || f.Count != 1 || f.State != store.StateOpen {
			t.Errorf("%s: client %q, count %d, state %s; want no client, raised once, open", src, f.Client, f.Count, f.State)
		}
		// An estimate (standard error 1.2%), shown as of its last 1%
		// of growth.
		if n := f.Evidence.Requests; n < sprayIDs*95/100 || n > sprayIDs*105/100 {
			t.Errorf("%s: %d distinct ids, want %d within 5%%", src, n, sprayIDs)
		}
		addrs := 50
		if src == "api" {
			addrs++ // late's use before its grant
		}
		if !strings.HasPrefix(f.Evidence.Detail, strconv.Itoa(addrs)+" addresses; ") {
			t.Errorf("%s: detail %q, want %d addresses", src, f.Evidence.Detail, addrs)
		}
		want := fmt.Sprintf("client-id spray on %s: %d distinct unknown client ids from ", src, f.Evidence.Requests)
		if !strings.HasPrefix(f.Summary, want) || !strings.Contains(f.Summary, " addresses within 10m0s") {
			t.Errorf("%s: summary %q, want it to start %q", src, f.Summary, want)
		}
		// Each address sent 1000; the figures are as of the last 1% of the
		// estimate's growth.
		_, busiest, _ := strings.Cut(f.Evidence.Detail, f.Evidence.IP+" (")
		busiest, _, _ = strings.Cut(busiest, ")")
		if n, err := strconv.Atoi(busiest); f.Evidence.IP == "" || err != nil || n < 975 || n > 1000 {
			t.Errorf("%s: evidence %+v, want the busiest address with its 975 to 1000 events", src, f.Evidence)
		}
	}

	// A restart on that store loads the one client, nothing for the ids.
	r2 := newSprayRig(t, db, cfg, now)
	if n, m := r2.acc.Known().Len(), r2.dets.Footprint().Clients; n != 1 || m != 1 {
		t.Errorf("after a restart %d known and %d baselines, want 1 and 1", n, m)
	}
}

// TestClientRetention prunes, in the sweep's transaction, a client
// unseen for longer than client_retention, by an injected clock; a
// registered client unseen as long stays, and so does one seen since.
// The pruned client is forgotten: its next use is unknown until a grant.
func TestClientRetention(t *testing.T) {
	db := openTestDB(t)
	cfg := sprayConfig(t)
	cfg.Rules.Clients = map[string]rules.Client{"registered": {}}
	at := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	clock := at
	now := func() time.Time { return clock }
	grantLine := func(file uint64, client string, t time.Time) ingest.Line {
		return line("idp", file, 100, 1, `{"ts":"`+t.Format(time.RFC3339)+`","type":"token","client":"`+client+`","scope":"openid"}`)
	}
	r := newSprayRig(t, db, cfg, now)
	r.run(t, func(in chan<- ingest.Line) {
		in <- grantLine(1, "old", at)
		in <- grantLine(2, "registered", at)
		in <- grantLine(3, "fresh", at)
	})
	retention := time.Duration(cfg.Detect.ClientRetention)

	clock = at.Add(retention - time.Hour) // not yet
	r = newSprayRig(t, db, cfg, now)
	r.run(t, func(in chan<- ingest.Line) { in <- grantLine(4, "fresh", clock) })
	if cs, _ := db.Clients(); len(cs) != 3 {
		t.Fatalf("%d clients before the retention passed, want 3", len(cs))
	}

	clock = at.Add(retention + time.Hour)
	r = newSprayRig(t, db, cfg, now)
	var committed []*store.Batch
	r.eng.opt.Committed = func(b *store.Batch) {
		if len(b.DropClients) > 0 {
			c := store.NewBatch()
			for id := range b.DropClients {
				c.DropClients[id] = struct{}{}
			}
			c.Positions = b.Positions
			committed = append(committed, c)
		}
	}
	r.run(t, func(in chan<- ingest.Line) {
		in <- line("api", 5, 100, 1, `{"ts":"`+clock.Format(time.RFC3339)+`","client":"old","method":"GET","path":"/api/labs/1","status":200}`)
	})
	cs, err := db.Clients()
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, c := range cs {
		ids = append(ids, c.ID)
	}
	if strings.Join(ids, ",") != "fresh,registered" {
		t.Errorf("clients after the retention passed: %v, want fresh and registered", ids)
	}
	if len(committed) != 1 || len(committed[0].DropClients) != 1 {
		t.Fatalf("batches dropping clients: %d, want 1 dropping old", len(committed))
	}
	if r.acc.Known().Known("old") || r.dets.Holds("old") {
		t.Error("old is still known after it was pruned")
	}
	if got := testutil.ToFloat64(r.m.UnknownClients.WithLabelValues("api", "use")); got != 1 {
		t.Errorf("the pruned client's use: %v unknown events, want 1", got)
	}
}

// TestPruneSprayedStore cleans a store that holds sprayed ids, as a
// version that stored every id left it: at start nothing is loaded for
// them, and the first sweep drops them in chunks of detect.PruneChunk, committed
// as it goes, keeping the clients that were issued a token.
func TestPruneSprayedStore(t *testing.T) {
	db := openTestDB(t)
	cfg := sprayConfig(t)
	at := time.Date(2026, 10, 1, 10, 0, 0, 0, time.UTC)
	const sprayed = 3*detect.PruneChunk + 100
	b := store.NewBatch()
	st := store.NewState(db, 0)
	for i := range sprayed {
		c := st.Client(fmt.Sprintf("spray-%06d", i))
		c.Seen.Add(1, at)
		c.CountScope("fhir:Patient.r", store.ScopeUsed, 1, at) // an API call, as stored before
		c.SawIP(netip.MustParseAddr("198.51.100.7"), at)
	}
	// A client of schema 3: granted scopes, no Issued counter.
	st.Client("real").Seen.Add(1, at)
	st.Client("real").CountScope("openid", store.ScopeGranted, 1, at)
	st.Checkpoint(b)
	if err := db.Commit(b); err != nil {
		t.Fatal(err)
	}

	r := newSprayRig(t, db, cfg, func() time.Time { return at.Add(time.Hour) })
	if n, m := r.acc.Known().Len(), r.dets.Footprint().Clients; n != 1 || m != 1 {
		t.Fatalf("loaded %d known and %d baselines from the sprayed store, want 1 and 1", n, m)
	}
	var drops []int
	r.eng.opt.Committed = func(b *store.Batch) {
		if len(b.DropClients) > 0 {
			drops = append(drops, len(b.DropClients))
		}
	}
	r.run(t, func(chan<- ingest.Line) {})
	cs, err := db.Clients()
	if err != nil {
		t.Fatal(err)
	}
	if len(cs) != 1 || cs[0].ID != "real" {
		t.Errorf("%d clients left, want only real", len(cs))
	}
	if len(drops) != 4 || drops[0] != detect.PruneChunk || drops[3] != 100 {
		t.Errorf("dropped in batches of %v, want 3 of %d and one of 100", drops, detect.PruneChunk)
	}
}
