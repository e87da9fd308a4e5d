package main

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/scopewatch/scopewatch/alert"
	"github.com/scopewatch/scopewatch/detect"
	"github.com/scopewatch/scopewatch/detect/geoip"
	"github.com/scopewatch/scopewatch/ingest"
	"github.com/scopewatch/scopewatch/rules"
	"github.com/scopewatch/scopewatch/store"
)

// pipeline wires sources → engine → store for run, scan and demo. The
// store, the metrics and the HTTP side live as long as the process; what
// a configuration builds (parsers, GeoIP, sources) is swapped by a reload
// between two runs of the engine.
type pipeline struct {
	conf    atomic.Pointer[rules.Config] // the configuration in force
	db      *store.DB
	log     *slog.Logger
	reg     *prometheus.Registry
	ingestM *ingest.Metrics
	engineM *detect.EngineMetrics
	findM   *detect.FindingMetrics
	senderM *alert.SenderMetrics
	geoM    *geoip.Metrics // registered once GeoIP is first configured
	// reportLast is when the scheduled report last succeeded, reportDue
	// when the next falls due; registered once a report is first
	// scheduled.
	reportLast, reportDue prometheus.Gauge
	// geo places addresses for the geography detector; nil without GeoIP
	// databases. Swapped by apply only while the engine is stopped.
	geo *geoip.DB
	// noDetect runs the engine without detectors: usage is recorded, no
	// finding is raised (scan --no-detect).
	noDetect bool
	parsers  map[string]ingest.Parser
	lag      *ingest.LagCollector

	committedLines atomic.Uint64 // lines whose effects are durable
	running        atomic.Bool   // the engine is consuming lines
	// commitFailing is set while the engine holds a batch the store could
	// not commit (a full disk) and retries it: not ready, but alive.
	commitFailing atomic.Bool
	// gen tracks the live sources of the current run attaching to their
	// files; liveSources starts a new one.
	gen      atomic.Pointer[readiness]
	progress chan struct{} // signalled (non-blocking) after each commit
	// probes carries the watchdog's liveness probes to the engine.
	probes chan chan<- struct{}
	// silences is signalled (non-blocking) when a silence is added or
	// expired at run time, so the engine applies it to open findings.
	silences chan struct{}
	// notify, when set, tells the Slack notifier that a commit marked
	// notification groups. Set only while the engine is stopped.
	notify func()
}

// readiness counts the live sources of one run that have attached.
type readiness struct {
	live     int64
	attached atomic.Int64
	done     chan struct{} // closed once every live source has attached
}

// config returns the configuration in force; a reload replaces it.
func (p *pipeline) config() *rules.Config { return p.conf.Load() }

// readyC returns a channel closed once every live source of the current
// run has attached to its file.
func (p *pipeline) readyC() <-chan struct{} { return p.gen.Load().done }

// silencesChanged tells the running engine that the stored silences
// changed; it never blocks.
func (p *pipeline) silencesChanged() {
	select {
	case p.silences <- struct{}{}:
	default:
	}
}

// openPipeline opens the store and builds parsers and metrics; it starts
// nothing.
func openPipeline(cfg *rules.Config, log *slog.Logger) (*pipeline, error) {
	parsers, err := newParsers(cfg)
	if err != nil {
		return nil, err
	}
	db, err := store.Open(cfg.Store, store.Options{})
	if err != nil {
		return nil, err
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	buildInfo := prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "scopewatch_build_info", Help: "Build information; the value is always 1.",
	}, []string{"version", "goversion", "revision"})
	v := readVersion()
	buildInfo.WithLabelValues(v.Version, v.Go, v.Revision).Set(1)
	reg.MustRegister(buildInfo, storeCollector{db: db})
	p := &pipeline{
		db: db, log: log, reg: reg,
		ingestM:  ingest.NewMetrics(reg),
		engineM:  detect.NewEngineMetrics(reg),
		findM:    detect.NewFindingMetrics(reg),
		senderM:  alert.NewSenderMetrics(reg),
		lag:      ingest.NewLagCollector(cfg.Sources),
		progress: make(chan struct{}, 1),
		probes:   make(chan chan<- struct{}),
		silences: make(chan struct{}, 1),
	}
	p.gen.Store(&readiness{live: int64(len(cfg.Sources)), done: make(chan struct{})})
	reg.MustRegister(p.lag)
	geo, err := p.openGeo(cfg)
	if err != nil {
		db.Close()
		return nil, err
	}
	p.apply(&setup{cfg: cfg, parsers: parsers, geo: geo})
	saved, err := db.AllPositions()
	if err != nil {
		p.close()
		return nil, err
	}
	for _, pos := range saved {
		p.lag.Committed(pos)
	}
	srcs, err := db.Sources()
	if err != nil {
		p.close()
		return nil, err
	}
	for _, s := range srcs {
		p.engineM.Newest.Saw(s.Name, s.Events.Last)
	}
	return p, nil
}

// setup is what a configuration builds before it can run: its parsers
// and its GeoIP databases.
type setup struct {
	cfg     *rules.Config
	parsers map[string]ingest.Parser
	geo     *geoip.DB // nil without GeoIP
}

// newParsers builds a parser per source of cfg.
func newParsers(cfg *rules.Config) (map[string]ingest.Parser, error) {
	parsers := make(map[string]ingest.Parser, len(cfg.Sources))
	for _, src := range cfg.Sources {
		p, err := ingest.NewParser(src)
		if err != nil {
			return nil, usageError{fmt.Errorf("%s: source %s: %w", cfg.File, src.Name, err)}
		}
		parsers[src.Name] = p
	}
	return parsers, nil
}

// openGeo opens the GeoIP databases of cfg, or returns nil without them.
func (p *pipeline) openGeo(cfg *rules.Config) (*geoip.DB, error) {
	if !cfg.GeoIP.Enabled() {
		return nil, nil
	}
	if p.geoM == nil {
		p.geoM = geoip.NewMetrics(p.reg)
	}
	return openGeoIP(cfg, p.log, p.geoM)
}

// openGeoIP opens the GeoIP databases of cfg as the daemon does; validate
// opens them the same way, so that a file it passes is one run accepts.
func openGeoIP(cfg *rules.Config, log *slog.Logger, m *geoip.Metrics) (*geoip.DB, error) {
	geo, err := geoip.Open(geoip.Options{
		Country: cfg.GeoIP.CountryDB(), CountryName: cfg.GeoIP.CountryKey(), ASN: cfg.GeoIP.ASN, Logger: log, Metrics: m,
	})
	if err != nil {
		return nil, usageError{fmt.Errorf("%s: geoip: %w", cfg.File, err)}
	}
	return geo, nil
}

// prepare builds what cfg needs while the current configuration keeps
// running: its parsers, and its GeoIP databases, re-read from disk when
// the paths are the same and opened anew when they changed. It must not
// run concurrently with apply.
func (p *pipeline) prepare(cfg *rules.Config) (*setup, error) {
	parsers, err := newParsers(cfg)
	if err != nil {
		return nil, err
	}
	s := &setup{cfg: cfg, parsers: parsers}
	old := p.config().GeoIP
	if p.geo != nil && cfg.GeoIP.CountryDB() == old.CountryDB() && cfg.GeoIP.ASN == old.ASN {
		if err := p.geo.Reload(); err != nil {
			return nil, fmt.Errorf("%s: geoip: %w", cfg.File, err)
		}
		s.geo = p.geo
		return s, nil
	}
	if s.geo, err = p.openGeo(cfg); err != nil {
		return nil, err
	}
	return s, nil
}

// discard closes what prepare opened for a setup that is not applied.
func (p *pipeline) discard(s *setup) {
	if s.geo != nil && s.geo != p.geo {
		s.geo.Close()
	}
}

// apply puts a prepared configuration in force. The engine must be
// stopped: the next run uses it.
func (p *pipeline) apply(s *setup) {
	if p.geo != nil && p.geo != s.geo {
		p.geo.Close()
	}
	p.geo = s.geo
	p.parsers = s.parsers
	p.lag.SetSources(s.cfg.Sources)
	for _, src := range s.cfg.Sources {
		p.ingestM.InitSource(src.Name)
		p.engineM.InitSource(src.Name)
	}
	p.conf.Store(s.cfg)
}

// close closes the store and the GeoIP databases.
func (p *pipeline) close() error {
	if p.geo != nil {
		p.geo.Close()
	}
	return p.db.Close()
}

// locator returns what places addresses for the detectors: the GeoIP
// databases in force, or nil without them.
func (p *pipeline) locator() detect.Locator {
	if p.geo == nil {
		return nil
	}
	return geoLocator{p.geo}
}

// geoLocator places addresses with the GeoIP databases.
type geoLocator struct{ db *geoip.DB }

// Locate implements detect.Locator.
func (g geoLocator) Locate(ip netip.Addr) detect.Place {
	i := g.db.Lookup(ip)
	return detect.Place{Country: i.Country, ASN: i.ASN, Network: i.Network, Internal: i.Internal}
}

// liveSources builds a tailing source per configured source, and starts
// counting them attaching afresh.
func (p *pipeline) liveSources() []ingest.Source {
	cfg := p.config()
	out := make([]ingest.Source, 0, len(cfg.Sources))
	gen := &readiness{live: int64(len(cfg.Sources)), done: make(chan struct{})}
	p.gen.Store(gen)
	for _, s := range cfg.Sources {
		out = append(out, ingest.NewFile(ingest.FileOptions{
			Name: s.Name, Path: s.Path, Glob: s.Glob, Poll: s.Poll,
			RotateWait: time.Duration(s.RotateWait), MaxLineSize: s.MaxLineBytes,
			Positions: p.db, Metrics: p.ingestM, Logger: p.log,
			Started: gen.started,
		}))
	}
	return out
}

// started counts a live source that has attached. Each source calls it
// once (through sync.OnceFunc), however often it is restarted.
func (r *readiness) started() {
	if r.attached.Add(1) == r.live {
		close(r.done)
	}
}

// run feeds sources through the engine until ctx ends (or, for finite
// sources, until all are read), then commits what was read and returns.
// Live sources that fail are restarted; one-shot ones are not, and their
// errors are returned after everything read is committed.
func (p *pipeline) run(ctx context.Context, sources []ingest.Source, oneShot bool) error {
	srcCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	lines := make(chan ingest.Line, 4096)
	det, err := p.detection(oneShot)
	if err != nil {
		return err
	}
	cfg := p.config()
	engine := detect.NewEngine(detect.EngineOptions{
		Parsers:    p.parsers,
		Accountant: detect.NewAccountant(cfg.Rules, fhirBases(cfg)),
		Store:      p.db,
		MaxEvents:  cfg.Batch.MaxEvents,
		MaxDelay:   time.Duration(cfg.Batch.MaxDelay),
		Metrics:    p.engineM,
		Logger:     p.log,
		Committed:  p.committed,
		Detection:  det,
		Probes:     p.probes,
		Sources:    cfg.Sources,
		Stop:       ctx.Done(),
		CommitFailing: func(err error) {
			p.commitFailing.Store(err != nil)
		},
	})
	var wg sync.WaitGroup
	var supErr error
	wg.Go(func() {
		supErr = ingest.Supervise(srcCtx, sources, lines, ingest.SuperviseOptions{Logger: p.log, NoRestart: oneShot})
	})
	p.running.Store(true)
	// The engine drains lines until the supervisor closes it, so a
	// cancelled ctx still commits everything read before it.
	err = engine.Run(context.WithoutCancel(ctx), lines)
	p.running.Store(false)
	if err != nil {
		cancel()
		for range lines { // let the sources see the cancellation and return
		}
	}
	wg.Wait()
	if err != nil {
		return err
	}
	if supErr != nil && ctx.Err() == nil {
		return supErr
	}
	return nil
}

// detection builds the detectors from the stored findings, silences,
// coverage and client baselines. A one-shot scan judges as of the newest
// event it has seen rather than the wall clock, and does not judge
// sources stale.
func (p *pipeline) detection(oneShot bool) (*detect.Detection, error) {
	cfg := p.config()
	spans, err := p.db.Coverage()
	if err != nil {
		return nil, err
	}
	cov := detect.NewCoverage(spans, time.Duration(cfg.Detect.UnusedScope.CoverageGap))
	if p.noDetect {
		return &detect.Detection{Coverage: cov}, nil
	}
	existing, err := p.db.Findings()
	if err != nil {
		return nil, err
	}
	silences, err := p.loadSilences()
	if err != nil {
		return nil, err
	}
	now := time.Now
	var clock *detect.DataClock
	if oneShot {
		clock = &detect.DataClock{}
		for _, ss := range spans {
			if n := len(ss); n > 0 {
				clock.Observe(ss[n-1].End)
			}
		}
		now = clock.Now
	}
	fs := detect.NewFindings(existing, silences, now, p.findM)
	dets := detect.NewDetectors(detect.DetectorOptions{
		Config: cfg.Detect, Rules: cfg.Rules, Locator: p.locator(), ByASN: cfg.GeoIP.ASN != "",
	}, fs)
	if err := p.db.ForEachClient(func(c store.Client) error { dets.Load(c); return nil }); err != nil {
		return nil, err
	}
	d := &detect.Detection{
		Detectors: dets,
		Findings:  fs,
		Coverage:  cov,
		Sweeper: detect.NewSweeper(detect.SweeperOptions{
			Config: cfg, Findings: fs, Coverage: cov, Live: !oneShot, Started: time.Now(),
		}),
		Clients:         p.db,
		SweepEvery:      time.Duration(cfg.Detect.UnusedScope.Every),
		Now:             now,
		DataClock:       clock,
		SilencesChanged: p.silences,
		LoadSilences:    p.loadSilences,
	}
	if cfg.Privacy.PseudonymiseSubjects {
		d.Pseudonymise = detect.NewPseudonymiser(cfg.Privacy.Key).Pseudonym
	}
	return d, nil
}

// loadSilences returns the configured silences followed by the stored ones.
func (p *pipeline) loadSilences() ([]store.Silence, error) { return allSilences(p.config(), p.db) }

// ready reports whether the engine runs and every live source has
// attached to its file (or is waiting for it to appear).
func (p *pipeline) ready() bool {
	if !p.running.Load() || p.commitFailing.Load() {
		return false
	}
	gen := p.gen.Load()
	select {
	case <-gen.done:
		return true
	default:
		return gen.live == 0
	}
}

// probe asks the engine to prove it is alive: the channel returned is
// closed once the engine has committed what it held and every commit is
// durable. Between two runs (a reload) the probe waits for the next
// engine; it gives up when ctx ends.
func (p *pipeline) probe(ctx context.Context) <-chan struct{} {
	alive := make(chan struct{})
	if p.commitFailing.Load() {
		// The engine is alive, holding a batch the store refused for want
		// of space and retrying it: a watchdog restart would not help.
		close(alive)
		return alive
	}
	select {
	case p.probes <- alive:
	case <-ctx.Done():
	}
	return alive
}

// fhirBases maps each source that serves a FHIR API to its base path. A
// HAPI FHIR server's own log names FHIR interactions on paths relative
// to its base, so it needs no fhir_base.
func fhirBases(cfg *rules.Config) map[string]string {
	m := make(map[string]string)
	for _, s := range cfg.Sources {
		if ingest.ServesFHIR(s) {
			m[s.Name] = s.FHIRBase
		}
	}
	return m
}

// committed is called by the engine after each durable batch.
func (p *pipeline) committed(b *store.Batch) {
	var n uint64
	for _, s := range b.Sources {
		n += s.Lines
	}
	p.committedLines.Add(n)
	for _, pos := range b.Positions {
		p.lag.Committed(pos)
	}
	if len(b.Notify) > 0 && p.notify != nil {
		p.notify()
	}
	select {
	case p.progress <- struct{}{}:
	default:
	}
}

// storeCollector exports the store file's size and free space at scrape
// time.
type storeCollector struct{ db *store.DB }

var (
	storeSizeDesc = prometheus.NewDesc("scopewatch_store_size_bytes", "Size of the store file.", nil, nil)
	storeFreeDesc = prometheus.NewDesc("scopewatch_store_free_bytes", "Bytes of free pages inside the store file.", nil, nil)
)

// Describe implements prometheus.Collector.
func (c storeCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- storeSizeDesc
	ch <- storeFreeDesc
}

// Collect implements prometheus.Collector.
func (c storeCollector) Collect(ch chan<- prometheus.Metric) {
	st, err := c.db.Stats()
	if err != nil {
		return
	}
	ch <- prometheus.MustNewConstMetric(storeSizeDesc, prometheus.GaugeValue, float64(st.FileSize))
	ch <- prometheus.MustNewConstMetric(storeFreeDesc, prometheus.GaugeValue, float64(st.FreeBytes))
}
