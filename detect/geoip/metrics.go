package geoip

import "github.com/prometheus/client_golang/prometheus"

// Metrics are the GeoIP counters and gauges. Labels are bounded: results
// and database kinds come from fixed sets, never an address or a path.
type Metrics struct {
	// Reloads counts database reloads by result: "ok" or "error".
	Reloads *prometheus.CounterVec
	// Lookups counts lookups of non-internal addresses by cache result:
	// "hit" or "miss".
	Lookups *prometheus.CounterVec
	// BuildTimestamp is the build time, in Unix seconds, of the database in
	// service, by database: "country" or "asn".
	BuildTimestamp *prometheus.GaugeVec

	hit, miss prometheus.Counter
}

// NewMetrics creates the GeoIP metrics and registers them with reg when it
// is not nil.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		Reloads: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "scopewatch_geoip_reloads_total", Help: "GeoIP database reloads, by result.",
		}, []string{"result"}),
		Lookups: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "scopewatch_geoip_lookups_total", Help: "GeoIP lookups of non-internal addresses, by cache result.",
		}, []string{"result"}),
		BuildTimestamp: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "scopewatch_geoip_database_build_timestamp_seconds", Help: "Build time of the GeoIP database in service, from its metadata.",
		}, []string{"database"}),
	}
	// Resolved once: a label lookup per address would cost more than a
	// cached GeoIP answer.
	m.hit = m.Lookups.WithLabelValues("hit")
	m.miss = m.Lookups.WithLabelValues("miss")
	m.Reloads.WithLabelValues("ok")
	m.Reloads.WithLabelValues("error")
	if reg != nil {
		reg.MustRegister(m.Reloads, m.Lookups, m.BuildTimestamp)
	}
	return m
}
