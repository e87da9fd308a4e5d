package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/scopewatch/scopewatch/alert"
	"github.com/scopewatch/scopewatch/detect"
	"github.com/scopewatch/scopewatch/detect/geoip"
	"github.com/scopewatch/scopewatch/engine"
	"github.com/scopewatch/scopewatch/ingest"
	"github.com/scopewatch/scopewatch/ingest/kafka"
	"github.com/scopewatch/scopewatch/report"
	"github.com/scopewatch/scopewatch/rules"
	"github.com/scopewatch/scopewatch/store"
)

// Daemon wires sources → engine → store for run, scan and the demo. The
// store, the metrics and the HTTP side live as long as the process; what a
// configuration builds (parsers, GeoIP, sources) is one generation,
// swapped whole by a reload between two runs of the engine.
type Daemon struct {
	o        Options
	cgroup   cgroupFiles  // where batch.memory_limit auto reads the cgroup's limits
	memLimit appliedLimit // what applyMemoryLimit last set
	db       *store.DB
	log      *slog.Logger
	reg      *prometheus.Registry
	ingestM  *ingest.Metrics
	kafkaM   *kafka.Metrics
	engineM  *engine.Metrics
	findM    *detect.FindingMetrics
	senderM  *alert.SenderMetrics
	geoM     *geoip.Metrics // registered once GeoIP is first configured
	reloadM  *reloadMetrics
	lag      *ingest.LagCollector

	// gen is the generation in force. Only the run loop swaps it, while
	// the engine is stopped.
	gen atomic.Pointer[generation]

	// The run loop's own: the report gauges, registered with the first
	// schedule, and the Slack delivery of the running generation.
	reportLast, reportDue prometheus.Gauge
	notify                atomic.Pointer[func()] // the notifier of the running delivery

	committedLines atomic.Uint64 // lines whose effects are durable
	running        atomic.Bool   // the engine is consuming lines
	// commitFailing is set while the engine holds a batch the store could
	// not commit (a full disk) and retries it: not ready, but alive.
	commitFailing atomic.Bool
	// attach tracks the live sources of the current run attaching to
	// their files; liveSources starts a new one.
	attach   atomic.Pointer[readiness]
	progress chan struct{} // signalled (non-blocking) after each commit
	// probes carries the watchdog's liveness probes to the engine.
	probes chan chan<- struct{}
	// silences is signalled (non-blocking) when a silence is added or
	// expired at run time, so the engine applies it to open findings.
	silences chan struct{}
	// reloads hands a prepared generation to the run loop.
	reloads chan *reloadRequest
	// ended is closed when Run's loop has stopped its last generation.
	ended chan struct{}

	closeOnce sync.Once
	closeErr  error
}

// Options are how the daemon is run, beside its configuration.
type Options struct {
	// Logger receives the daemon's log; nil discards it.
	Logger *slog.Logger
	// Level is the log level a reload may change; nil: it stays.
	Level *slog.LevelVar
	// LogJSON is --log-json, which a reload keeps over log.format.
	LogJSON bool
	// Systemd receives READY, WATCHDOG, RELOADING and STOPPING; nil, or
	// without NOTIFY_SOCKET, nothing is sent.
	Systemd *Systemd
	// Reload asks for the configuration to be read again from its file
	// (SIGHUP); nil: only Reload reloads.
	Reload <-chan os.Signal
	// Started, when not nil, is called with the HTTP address once Run
	// serves it.
	Started func(addr string)
	// Version is exported as scopewatch_build_info.
	Version Version
	// NoDetect runs the engine without detectors: usage is recorded, no
	// finding is raised (scan --no-detect).
	NoDetect bool
	// SetMemoryLimit, when set, is given the soft memory limit that
	// batch.memory_limit resolves to, at start and at each reload that
	// changes it: the daemon's process passes runtime/debug's
	// SetMemoryLimit; nil leaves the process's limit alone.
	SetMemoryLimit func(int64) int64
	// SetGCPercent and Collect, when both set, let the daemon have the
	// collector work harder while a large checkpoint is in memory and
	// collect once it is committed (checkpointGC): the daemon's process
	// passes runtime/debug's SetGCPercent and runtime.GC; nil leaves the
	// collector alone.
	SetGCPercent func(int) int
	Collect      func()
}

// Version names the build, for scopewatch_build_info.
type Version struct{ Version, Go, Revision string }

// ConfigError is a configuration that loads but cannot run: a parser or a
// GeoIP database it names fails. The person who wrote it must change it.
type ConfigError struct{ Err error }

// Error returns the configuration problem.
func (e ConfigError) Error() string { return e.Err.Error() }

// Unwrap returns the underlying error.
func (e ConfigError) Unwrap() error { return e.Err }

// readiness counts the live sources of one run that have attached.
type readiness struct {
	live     int64
	attached atomic.Int64
	done     chan struct{} // closed once every live source has attached
}

// Config returns the configuration in force; a reload replaces it.
func (d *Daemon) Config() *rules.Config { return d.gen.Load().cfg }

// Store returns the daemon's store, open from New to Close.
func (d *Daemon) Store() *store.DB { return d.db }

// Registry returns the registry of the daemon's metrics.
func (d *Daemon) Registry() *prometheus.Registry { return d.reg }

// Committed returns how many lines have had their effects committed.
func (d *Daemon) Committed() uint64 { return d.committedLines.Load() }

// Progress is signalled (it never blocks the engine) after each commit.
func (d *Daemon) Progress() <-chan struct{} { return d.progress }

// Attached returns a channel closed once every live source of the current
// run has attached to its file.
func (d *Daemon) Attached() <-chan struct{} { return d.attach.Load().done }

// SilencesChanged tells the running engine that the stored silences
// changed; it never blocks.
func (d *Daemon) SilencesChanged() {
	select {
	case d.silences <- struct{}{}:
	default:
	}
}

// New opens the store and builds the parsers, GeoIP databases and
// metrics of cfg; it starts nothing. The caller closes the daemon.
func New(cfg *rules.Config, o Options) (*Daemon, error) {
	log := o.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	for _, w := range cfg.Warnings { // problems that do not refuse the configuration
		log.Warn("configuration warning", "problem", w.Error())
	}
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
	v := o.Version
	buildInfo.WithLabelValues(v.Version, v.Go, v.Revision).Set(1)
	reg.MustRegister(buildInfo, storeCollector{db: db})
	d := &Daemon{
		o: o, cgroup: cgroupFiles{self: procSelfCgroup, root: cgroupMount},
		db: db, log: log, reg: reg,
		ingestM:  ingest.NewMetrics(reg),
		kafkaM:   kafka.NewMetrics(reg),
		engineM:  engine.NewMetrics(reg),
		findM:    detect.NewFindingMetrics(reg),
		senderM:  alert.NewSenderMetrics(reg),
		lag:      ingest.NewLagCollector(cfg.Sources),
		progress: make(chan struct{}, 1),
		probes:   make(chan chan<- struct{}),
		silences: make(chan struct{}, 1),
		reloads:  make(chan *reloadRequest),
		ended:    make(chan struct{}),
	}
	d.attach.Store(&readiness{live: int64(len(cfg.Sources)), done: make(chan struct{})})
	reg.MustRegister(d.lag)
	geo, err := d.openGeo(cfg)
	if err != nil {
		db.Close()
		return nil, err
	}
	d.apply(&generation{cfg: cfg, parsers: parsers, geo: geo})
	saved, err := db.AllPositions()
	if err != nil {
		d.Close()
		return nil, err
	}
	for _, pos := range saved {
		d.lag.Committed(pos)
	}
	srcs, err := db.Sources()
	if err != nil {
		d.Close()
		return nil, err
	}
	for _, s := range srcs {
		d.engineM.Newest.Saw(s.Name, s.Events.Last)
	}
	d.reloadM = newReloadMetrics(reg)
	return d, nil
}

// generation is what a configuration builds before it can run: its
// parsers and its GeoIP databases. It does not change once built.
type generation struct {
	cfg     *rules.Config
	parsers map[string]ingest.Parser
	geo     *geoip.DB // nil without GeoIP
}

// newParsers builds a parser per source of cfg.
func newParsers(cfg *rules.Config) (map[string]ingest.Parser, error) {
	parsers := make(map[string]ingest.Parser, len(cfg.Sources))
	for _, src := range cfg.Sources {
		parser, err := ingest.NewParser(src)
		if err != nil {
			return nil, ConfigError{fmt.Errorf("%s: source %s: %w", cfg.File, src.Name, err)}
		}
		parsers[src.Name] = parser
	}
	return parsers, nil
}

// openGeo opens the GeoIP databases of cfg, or returns nil without them.
func (d *Daemon) openGeo(cfg *rules.Config) (*geoip.DB, error) {
	if !cfg.GeoIP.Enabled() {
		return nil, nil
	}
	if d.geoM == nil {
		d.geoM = geoip.NewMetrics(d.reg)
	}
	return OpenGeoIP(cfg, d.log, d.geoM)
}

// OpenGeoIP opens the GeoIP databases of cfg as the daemon does; validate
// opens them the same way, so that a file it passes is one run accepts.
func OpenGeoIP(cfg *rules.Config, log *slog.Logger, m *geoip.Metrics) (*geoip.DB, error) {
	geo, err := geoip.Open(geoip.Options{
		Country: cfg.GeoIP.CountryDB(), CountryName: cfg.GeoIP.CountryKey(), ASN: cfg.GeoIP.ASN, Logger: log, Metrics: m,
	})
	if err != nil {
		return nil, ConfigError{fmt.Errorf("%s: geoip: %w", cfg.File, err)}
	}
	return geo, nil
}

// prepare builds what cfg needs while the current configuration keeps
// running: its parsers, and its GeoIP databases, re-read from disk when
// the paths are the same and opened anew when they changed. It must not
// run concurrently with apply.
func (d *Daemon) prepare(cfg *rules.Config) (*generation, error) {
	parsers, err := newParsers(cfg)
	if err != nil {
		return nil, err
	}
	s := &generation{cfg: cfg, parsers: parsers}
	cur := d.gen.Load()
	old := cur.cfg.GeoIP
	if cur.geo != nil && cfg.GeoIP.CountryDB() == old.CountryDB() && cfg.GeoIP.ASN == old.ASN {
		if err := cur.geo.Reload(); err != nil {
			return nil, fmt.Errorf("%s: geoip: %w", cfg.File, err)
		}
		s.geo = cur.geo
		return s, nil
	}
	if s.geo, err = d.openGeo(cfg); err != nil {
		return nil, err
	}
	return s, nil
}

// discard closes what prepare opened for a generation that is not applied.
func (d *Daemon) discard(s *generation) {
	if s.geo != nil && s.geo != d.gen.Load().geo {
		s.geo.Close()
	}
}

// apply puts a prepared configuration in force. The engine must be
// stopped: the next run uses it.
func (d *Daemon) apply(s *generation) {
	if cur := d.gen.Load(); cur != nil && cur.geo != nil && cur.geo != s.geo {
		cur.geo.Close()
	}
	d.lag.SetSources(s.cfg.Sources)
	for _, src := range s.cfg.Sources {
		d.ingestM.InitSource(src.Name)
		d.engineM.InitSource(src.Name)
	}
	d.applyMemoryLimit(s.cfg.Batch.MemoryLimit)
	d.gen.Store(s)
}

// Close closes the store and the GeoIP databases; Run must have
// returned. Calls after the first do nothing.
func (d *Daemon) Close() error {
	d.closeOnce.Do(func() {
		if g := d.gen.Load(); g != nil && g.geo != nil {
			g.geo.Close()
		}
		d.closeErr = d.db.Close()
	})
	return d.closeErr
}

// locator returns what places addresses for the detectors: the GeoIP
// databases in force, or nil without them.
func (d *Daemon) locator() detect.Locator {
	geo := d.gen.Load().geo
	if geo == nil {
		return nil
	}
	return geoLocator{geo}
}

// geoLocator places addresses with the GeoIP databases.
type geoLocator struct{ db *geoip.DB }

// Locate implements detect.Locator.
func (g geoLocator) Locate(ip netip.Addr) detect.Place {
	i := g.db.Lookup(ip)
	return detect.Place{
		Country: i.Country, ASN: i.ASN, Network: i.Network, Internal: i.Internal,
		Lat: i.Lat, Lon: i.Lon, RadiusKm: i.RadiusKm, Located: i.Located,
	}
}

// liveSources builds a tailing source per configured source, and starts
// counting them attaching afresh.
func (d *Daemon) liveSources() []ingest.Source {
	cfg := d.Config()
	out := make([]ingest.Source, 0, len(cfg.Sources))
	gen := &readiness{live: int64(len(cfg.Sources)), done: make(chan struct{})}
	d.attach.Store(gen)
	var changelogs []string
	for _, s := range cfg.Sources {
		if s.Kafka != nil && s.Kafka.Changelog != "" {
			changelogs = append(changelogs, s.Name)
		}
	}
	// Before any source reads: every commit from now on records what
	// their changelogs lack.
	if err := d.db.KeepChangelog(store.ChangelogOptions{Sources: changelogs, WindowClient: detect.WindowClient}); err != nil {
		d.log.Error("what the store held for changelogs no source keeps now was not deleted: keep them off until this is fixed", "err", err)
	}
	for _, s := range cfg.Sources {
		if s.Kafka != nil {
			var stage ingest.Parser
			if s.Kafka.Repartition != nil {
				// The stage's own parser: the engine's serves the
				// engine's goroutine. It builds as the engine's did.
				stage, _ = ingest.NewParser(s) // without one, Run says why
			}
			out = append(out, kafka.New(kafka.Options{
				Name: s.Name, Config: *s.Kafka, MaxLineSize: s.MaxLineBytes, Parser: stage,
				Positions: d.db, Changelog: d.db, Metrics: d.kafkaM, Logger: d.log, Started: gen.started,
			}))
			continue
		}
		out = append(out, ingest.NewFile(ingest.FileOptions{
			Name: s.Name, Path: s.Path, Glob: s.Glob, Poll: s.Poll,
			RotateWait: time.Duration(s.RotateWait), MaxLineSize: s.MaxLineBytes,
			Positions: d.db, Metrics: d.ingestM, Logger: d.log,
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
func (d *Daemon) run(ctx context.Context, sources []ingest.Source, oneShot bool) error {
	srcCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	// The engine's parse stage queues lines of its own; a deeper queue
	// here only holds more read blocks in memory (300,000 lines of 10,000
	// clients: 5 MiB less anonymous memory at 1024 than at 4096, at the
	// same rate).
	lines := make(chan ingest.Line, 1024)
	cfg := d.Config()
	// The clients' usage is read from the store as events name them.
	state := store.NewState(d.db, cfg.Batch.MaxClients)
	acc := detect.NewAccountant(cfg.Rules, fhirBases(cfg), state)
	det, err := d.detection(oneShot, acc.Known())
	if err != nil {
		return err
	}
	var holding func() func()
	gc := d.checkpointGC()
	if gc != nil {
		holding = gc.hold
	}
	eng := engine.New(engine.Options{
		Parsers:    d.gen.Load().parsers,
		Accountant: acc,
		Store:      d.db,
		MaxEvents:  cfg.Batch.MaxEvents,
		MaxDelay:   time.Duration(cfg.Batch.MaxDelay),
		Backfill:   oneShot,
		Metrics:    d.engineM,
		Logger:     d.log,
		Committed:  d.committed,
		Detection:  det,
		Probes:     d.probes,
		Sources:    cfg.Sources,
		CommitFailing: func(err error) {
			d.commitFailing.Store(err != nil)
		},
		Holding: holding,
	})
	var wg sync.WaitGroup
	gcCtx, stopGC := context.WithCancel(ctx)
	defer stopGC()
	if gc != nil {
		wg.Go(func() { gc.collector(gcCtx) })
	}
	var supErr error
	wg.Go(func() {
		supErr = ingest.Supervise(srcCtx, sources, lines, ingest.SuperviseOptions{Logger: d.log, NoRestart: oneShot})
	})
	d.running.Store(true)
	// The engine drains lines until the supervisor closes them, so a
	// cancelled ctx still commits everything read before it.
	err = eng.Run(ctx, lines)
	d.running.Store(false)
	stopGC()
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

// ScanFiles are files to read once, in the format of a configured source.
type ScanFiles struct {
	Source string
	Paths  []string
}

// Scan reads files through the parsers, detectors and store as Run reads
// live files, resuming where an earlier scan stopped, and returns once
// everything read is committed (or ctx ends). It judges findings as of the
// newest event read, not the wall clock. A file whose lines are all
// malformed is not read: its *ingest.FormatError is among those returned,
// after everything else was read.
//
// The files of sources that show grants (the IdP's) are read first, and
// the others once they are committed: a client is known from its first
// grant on (see detect.KnownClients), so a backfill counts the uses of
// every client whose grant any of the files holds.
func (d *Daemon) Scan(ctx context.Context, files []ScanFiles) error {
	cfg := d.Config()
	var grants, others []ingest.Source
	for _, f := range files {
		i := slices.IndexFunc(cfg.Sources, func(s rules.Source) bool { return s.Name == f.Source })
		if i < 0 {
			return fmt.Errorf("no source %q in %s", f.Source, cfg.File)
		}
		src := cfg.Sources[i]
		if src.Kafka != nil {
			return fmt.Errorf("source %q reads Kafka topics; scan reads files of file sources (run reads the topics)", f.Source)
		}
		// Check: a file none of whose lines yields an event and some of
		// which are malformed is the wrong format for the source; it is
		// not read, so that a scan after the fix reads it whole.
		scan := ingest.NewScan(ingest.ScanOptions{
			Name: f.Source, Paths: f.Paths, Positions: d.db, Metrics: d.ingestM,
			MaxLineSize: src.MaxLineBytes, Check: &src,
		})
		if g, _ := ingest.Shows(src); g {
			grants = append(grants, scan)
		} else {
			others = append(others, scan)
		}
	}
	var errs []error
	for _, sources := range [][]ingest.Source{grants, others} {
		if len(sources) == 0 {
			continue
		}
		if err := d.run(ctx, sources, true); err != nil {
			errs = append(errs, err)
		}
		if ctx.Err() != nil {
			break
		}
	}
	if len(errs) == 1 {
		return errs[0]
	}
	return errors.Join(errs...)
}

// detection builds the detectors from the stored findings, silences,
// coverage and client baselines, and loads the stored clients that get
// full state into known (only those are kept: a store holding sprayed
// ids costs a pass over them, not memory). A one-shot scan judges as of
// the newest event it has seen rather than the wall clock, and does not
// judge sources stale.
func (d *Daemon) detection(oneShot bool, known *detect.KnownClients) (*engine.Detection, error) {
	cfg := d.Config()
	spans, err := d.db.Coverage()
	if err != nil {
		return nil, err
	}
	cov := detect.NewCoverage(spans, time.Duration(cfg.Detect.UnusedScope.CoverageGap))
	if d.o.NoDetect {
		if err := d.db.ForEachClient(func(c store.Client) error { known.Load(c); return nil }); err != nil {
			return nil, err
		}
		return &engine.Detection{Coverage: cov, Place: detect.NewPlacer(d.locator())}, nil
	}
	existing, err := d.db.Findings()
	if err != nil {
		return nil, err
	}
	silences, err := d.loadSilences()
	if err != nil {
		return nil, err
	}
	now := time.Now
	var clock *engine.DataClock
	if oneShot {
		clock = &engine.DataClock{}
		for _, ss := range spans {
			if n := len(ss); n > 0 {
				clock.Observe(ss[n-1].End)
			}
		}
		now = clock.Now
	}
	fs := detect.NewFindings(existing, silences, now, d.findM)
	loc := d.locator()
	dets := detect.NewDetectors(detect.DetectorOptions{
		Config: cfg.Detect, Rules: cfg.Rules, Locator: loc, ByASN: cfg.GeoIP.ASN != "", Known: known,
	}, fs)
	if err := d.db.ForEachClient(func(c store.Client) error { dets.Load(c); return nil }); err != nil {
		return nil, err
	}
	windows, err := d.db.Windows()
	if err != nil {
		return nil, err
	}
	// A scan judges as of its data: it keeps every window; the daemon
	// drops those that ended before now.
	var windowsNow time.Time
	if !oneShot {
		windowsNow = time.Now()
	}
	dets.LoadWindows(windows, windowsNow)
	det := &engine.Detection{
		Place:     detect.NewPlacer(loc),
		Detectors: dets,
		Findings:  fs,
		Coverage:  cov,
		Sweeper: detect.NewSweeper(detect.SweeperOptions{
			Config: cfg, Findings: fs, Coverage: cov, Live: !oneShot, Started: time.Now(), Forget: dets,
		}),
		Clients:         d.db,
		SweepEvery:      time.Duration(cfg.Detect.UnusedScope.Every),
		Now:             now,
		DataClock:       clock,
		SilencesChanged: d.silences,
		LoadSilences:    d.loadSilences,
	}
	if cfg.Privacy.PseudonymiseSubjects {
		det.Pseudonymise = detect.NewPseudonymiser(cfg.Privacy.Key).Pseudonym
	}
	return det, nil
}

// loadSilences returns the configured silences followed by the stored ones.
func (d *Daemon) loadSilences() ([]store.Silence, error) { return report.Silences(d.Config(), d.db) }

// Ready reports whether the engine runs, every live source has attached
// to its file (or is waiting for it to appear), and no Kafka partition
// taken over is still being rebuilt from its start.
func (d *Daemon) Ready() bool {
	if !d.running.Load() || d.commitFailing.Load() || d.kafkaM.PartitionsRestoring() > 0 {
		return false
	}
	gen := d.attach.Load()
	select {
	case <-gen.done:
		return true
	default:
		return gen.live == 0
	}
}

// Probe asks the engine to prove it is alive: the channel returned is
// closed once the engine has committed what it held and every commit is
// durable. Between two runs (a reload) the probe waits for the next
// engine; it gives up when ctx ends.
func (d *Daemon) Probe(ctx context.Context) <-chan struct{} {
	alive := make(chan struct{})
	if d.commitFailing.Load() {
		// The engine is alive, holding a batch the store refused for want
		// of space and retrying it: a watchdog restart would not help.
		close(alive)
		return alive
	}
	select {
	case d.probes <- alive:
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
func (d *Daemon) committed(b *store.Batch) {
	var n uint64
	for _, s := range b.Sources {
		n += s.Lines
	}
	d.committedLines.Add(n)
	for _, pos := range b.Positions {
		d.lag.Committed(pos)
	}
	if n := d.notify.Load(); (len(b.Notify) > 0 || b.Restore != nil) && n != nil {
		// A restore brings its clients' notification groups, some due.
		(*n)()
	}
	select {
	case d.progress <- struct{}{}:
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
