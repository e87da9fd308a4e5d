package engine

import (
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/scopewatch/scopewatch/ingest"
	"github.com/scopewatch/scopewatch/store"
)

// Metrics are the engine's counters and histograms. Labels are
// bounded: source names from config, kinds and reasons from fixed sets.
type Metrics struct {
	LinesParsed    *prometheus.CounterVec // source: lines parsed without error
	LinesIgnored   *prometheus.CounterVec // source, reason: well-formed lines without an event of interest
	FieldsDropped  *prometheus.CounterVec // source, field: optional fields left empty, their events kept
	Malformed      *prometheus.CounterVec // source, reason
	Events         *prometheus.CounterVec // source, kind
	Unattributed   *prometheus.CounterVec // source: API calls without a client id
	UnknownClients *prometheus.CounterVec // source, kind: events of clients neither registered nor issued a token
	Unmapped       *prometheus.CounterVec // source: API calls matching no route
	LinesCommitted *prometheus.CounterVec // source: lines whose effects and position are durable
	// NoEvents is 1 while a source has read NoEventsAfter lines since
	// the engine started and yielded no event, 0 otherwise.
	NoEvents       *prometheus.GaugeVec // source
	CommitDuration prometheus.Histogram
	BatchEvents    prometheus.Histogram
	BatchRecords   prometheus.Histogram // client records per committed batch
	CommitErrors   prometheus.Counter
	CommitFailing  prometheus.Gauge // 1 while a failing commit is being retried
	// ClientsInMemory, Evicted and Loaded follow the clients' State:
	// how many it holds, and how many it evicted to the store and read
	// back on demand.
	ClientsInMemory prometheus.Gauge
	Evicted         prometheus.Counter
	Loaded          prometheus.Counter
	// Released counts the clients deleted with the partitions another
	// instance now reads.
	Released prometheus.Counter
	// ScopesNotKept counts the scopes asked for that a client did not
	// keep, holding store.MaxAskedOnly it was only ever asked for.
	ScopesNotKept prometheus.Counter
	// Newest holds each source's newest committed event time, exported
	// as a timestamp and as the lag behind the clock.
	Newest *NewestEvents
}

// NewMetrics creates the engine metrics and registers them with reg
// when it is not nil.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		LinesParsed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "scopewatch_lines_parsed_total", Help: "Lines parsed without error (including those ignored).",
		}, []string{"source"}),
		LinesIgnored: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "scopewatch_lines_ignored_total", Help: "Well-formed lines that carry no event of interest, by reason.",
		}, []string{"source", "reason"}),
		FieldsDropped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "scopewatch_fields_dropped_total", Help: "Optional fields (ip, country, ...) that could not be read and were left empty; their events were kept.",
		}, []string{"source", "field"}),
		Malformed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "scopewatch_lines_malformed_total", Help: "Lines that could not be parsed, by reason; they are skipped.",
		}, []string{"source", "reason"}),
		Events: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "scopewatch_events_total", Help: "Events parsed, by kind.",
		}, []string{"source", "kind"}),
		Unattributed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "scopewatch_uses_unattributed_total", Help: "API calls logged without a client id.",
		}, []string{"source"}),
		UnknownClients: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "scopewatch_unknown_client_events_total",
			Help: "Events of client ids neither registered nor issued a token, by event kind: counted here and in the client-id spray finding, not stored per client.",
		}, []string{"source", "kind"}),
		Unmapped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "scopewatch_uses_unmapped_total", Help: "API calls whose route maps to no scope.",
		}, []string{"source"}),
		LinesCommitted: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "scopewatch_lines_committed_total", Help: "Lines whose effects and position are committed to the store.",
		}, []string{"source"}),
		NoEvents: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "scopewatch_source_no_events",
			Help: "1 while the source has read 10,000 lines since the start and yielded no event (wrong format, wrapper or log level), 0 otherwise.",
		}, []string{"source"}),
		CommitDuration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "scopewatch_store_commit_duration_seconds",
			Help:    "Time to commit one batch (counts and positions) to the store.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14),
		}),
		BatchEvents: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "scopewatch_store_batch_events",
			Help:    "Events per committed batch.",
			Buckets: []float64{1, 10, 100, 1000, 5000, 10_000, 25_000, 50_000},
		}),
		BatchRecords: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "scopewatch_store_batch_records",
			Help:    "Client records written per committed batch (the clients its lines changed).",
			Buckets: []float64{1, 10, 100, 1000, 5000, 10_000, 25_000, 50_000},
		}),
		ClientsInMemory: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "scopewatch_clients_in_memory", Help: "Clients whose usage is held in memory (batch.max_clients bounds those not being written).",
		}),
		Evicted: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "scopewatch_clients_evicted_total", Help: "Clients dropped from memory, their usage durable in the store, to stay within batch.max_clients.",
		}),
		Loaded: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "scopewatch_clients_loaded_total", Help: "Evicted or not yet loaded clients read back from the store when an event named them.",
		}),
		Released: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "scopewatch_clients_released_total", Help: "Clients deleted from memory and the store because the partition of their events moved to another instance, which rebuilds them.",
		}),
		CommitErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "scopewatch_store_commit_errors_total", Help: "Attempts at committing a batch that failed.",
		}),
		ScopesNotKept: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "scopewatch_scopes_not_kept_total", Help: "Scopes asked for and not granted that a client did not keep in its usage: it already holds " + strconv.Itoa(store.MaxAskedOnly) + " it was only ever asked for (names anyone can invent).",
		}),
		CommitFailing: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "scopewatch_store_commit_failing", Help: "1 while a batch the store failed to commit (a full disk, an I/O error) is held and retried.",
		}),
		Newest: &NewestEvents{newest: make(map[string]time.Time), now: time.Now},
	}
	if reg != nil {
		reg.MustRegister(m.LinesParsed, m.LinesIgnored, m.FieldsDropped, m.Malformed, m.Events, m.Unattributed,
			m.UnknownClients, m.Unmapped, m.LinesCommitted, m.NoEvents, m.CommitDuration, m.BatchEvents, m.BatchRecords, m.CommitErrors, m.CommitFailing,
			m.ClientsInMemory, m.Evicted, m.Loaded, m.Released, m.ScopesNotKept, m.Newest)
	}
	return m
}

// InitSource creates the counters of one source at zero. Of the malformed
// reasons, which come from the parsers and appear with the first line
// of each, only too_long is created: the line reader gives it for every
// format, and it gives the malformed series a zero to start from. The no-events gauge is set to 0: a configuration (at
// start or reloaded) counts its lines afresh.
func (m *Metrics) InitSource(name string) {
	m.LinesParsed.WithLabelValues(name)
	m.Malformed.WithLabelValues(name, ingest.ReasonTooLong)
	for _, r := range ingest.SkipReasons() {
		m.LinesIgnored.WithLabelValues(name, string(r))
	}
	for _, f := range ingest.FieldNames() {
		m.FieldsDropped.WithLabelValues(name, f)
	}
	m.Unattributed.WithLabelValues(name)
	m.Unmapped.WithLabelValues(name)
	m.LinesCommitted.WithLabelValues(name)
	m.NoEvents.WithLabelValues(name).Set(0)
	for k := range ingest.Kind(numKinds) {
		m.Events.WithLabelValues(name, k.String())
		m.UnknownClients.WithLabelValues(name, k.String())
	}
}

// numKinds is the number of event kinds, unknown included.
const numKinds = int(ingest.KindAdmin) + 1

// NewestEvents tracks the newest committed event time of each source. It
// is safe for concurrent use: the engine records, scrapes read.
type NewestEvents struct {
	mu     sync.Mutex
	newest map[string]time.Time
	now    func() time.Time
}

var (
	newestDesc = prometheus.NewDesc("scopewatch_source_newest_event_timestamp_seconds",
		"Time of the newest event of the source whose effects are committed.", []string{"source"}, nil)
	lagDesc = prometheus.NewDesc("scopewatch_source_lag_seconds",
		"How far the newest committed event of the source is behind the clock.", []string{"source"}, nil)
)

// Saw records that an event of source at t is committed.
func (n *NewestEvents) Saw(source string, t time.Time) {
	if t.IsZero() {
		return
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if t.After(n.newest[source]) {
		n.newest[source] = t
	}
}

// Describe implements prometheus.Collector.
func (n *NewestEvents) Describe(ch chan<- *prometheus.Desc) {
	ch <- newestDesc
	ch <- lagDesc
}

// Collect implements prometheus.Collector.
func (n *NewestEvents) Collect(ch chan<- prometheus.Metric) {
	n.mu.Lock()
	defer n.mu.Unlock()
	now := n.now()
	for src, t := range n.newest {
		ch <- prometheus.MustNewConstMetric(newestDesc, prometheus.GaugeValue, float64(t.UnixNano())/1e9, src)
		ch <- prometheus.MustNewConstMetric(lagDesc, prometheus.GaugeValue, max(0, now.Sub(t).Seconds()), src)
	}
}
