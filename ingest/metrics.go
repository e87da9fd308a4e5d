package ingest

import "github.com/prometheus/client_golang/prometheus"

// Metrics are the ingest counters. Labels are bounded: source names come
// from config and reasons from a fixed vocabulary; never a client, IP or
// scope.
type Metrics struct {
	LinesRead *prometheus.CounterVec // source
	// Oversized counts the lines longer than the source's max_line_bytes:
	// the same lines as scopewatch_lines_malformed_total{reason="too_long"},
	// kept under this name for the dashboards that chart it.
	Oversized     *prometheus.CounterVec // source
	Rotations     *prometheus.CounterVec // source, kind: rename|truncate|copytruncate|replaced
	LostBytes     *prometheus.CounterVec // source: bytes that may have been lost (copytruncate)
	ReadErrors    *prometheus.CounterVec // source, reason: permission|not_found|io
	OffsetBytes   *prometheus.GaugeVec   // source: committed-to-be offset in the current file
	FileSizeBytes *prometheus.GaugeVec   // source: size of the current file
}

// NewMetrics creates the ingest metrics and registers them with reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		LinesRead: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "scopewatch_lines_read_total", Help: "Complete lines read from log files.",
		}, []string{"source"}),
		Oversized: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "scopewatch_lines_oversized_total", Help: "Lines longer than the source's max_line_bytes, each also counted in scopewatch_lines_malformed_total{reason=\"too_long\"}.",
		}, []string{"source"}),
		Rotations: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "scopewatch_file_rotations_total", Help: "File rotations and truncations seen, by kind.",
		}, []string{"source", "kind"}),
		LostBytes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "scopewatch_lost_bytes_total", Help: "Bytes that may have been lost, e.g. written between a copytruncate's copy and its truncate.",
		}, []string{"source"}),
		ReadErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "scopewatch_read_errors_total", Help: "Errors opening or reading log files, by reason.",
		}, []string{"source", "reason"}),
		OffsetBytes: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "scopewatch_tail_offset_bytes", Help: "Offset read up to in the current file of a source.",
		}, []string{"source"}),
		FileSizeBytes: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "scopewatch_file_size_bytes", Help: "Size of the current file of a source.",
		}, []string{"source"}),
	}
	if reg != nil {
		reg.MustRegister(m.LinesRead, m.Oversized, m.Rotations, m.LostBytes, m.ReadErrors, m.OffsetBytes, m.FileSizeBytes)
	}
	return m
}

// InitSource creates the series of one source at zero, so that dashboards
// and increase() see the first rotation, loss or error rather than a
// series that appears with it.
func (m *Metrics) InitSource(name string) {
	m.LinesRead.WithLabelValues(name)
	m.Oversized.WithLabelValues(name)
	m.LostBytes.WithLabelValues(name)
	for _, kind := range []string{"rename", "truncate", "copytruncate", "replaced"} {
		m.Rotations.WithLabelValues(name, kind)
	}
	for _, reason := range []string{ReasonPermission, ReasonNotFound, ReasonIO} {
		m.ReadErrors.WithLabelValues(name, reason)
	}
}
