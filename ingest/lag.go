package ingest

import (
	"os"
	"sync"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/scopewatch/scopewatch/rules"
	"github.com/scopewatch/scopewatch/store"
)

// LagCollector exports, per source, how many bytes of the live file are not
// yet committed to the store: the size of the file now at the source's
// path minus the committed offset in that file. It stats the files at
// scrape time only, never on the per-line path.
type LagCollector struct {
	desc *prometheus.Desc

	mu        sync.Mutex
	sources   []rules.Source
	committed map[string]map[store.FileID]int64 // source → file → offset
}

// NewLagCollector returns a collector for the given sources.
func NewLagCollector(sources []rules.Source) *LagCollector {
	return &LagCollector{
		desc: prometheus.NewDesc("scopewatch_position_lag_bytes",
			"Bytes of the live file not yet committed to the store.", []string{"source"}, nil),
		sources:   sources,
		committed: make(map[string]map[store.FileID]int64),
	}
}

// SetSources replaces the sources reported, after a configuration reload.
// What was committed is kept: a source that stays keeps its lag.
func (c *LagCollector) SetSources(sources []rules.Source) {
	c.mu.Lock()
	c.sources = sources
	c.mu.Unlock()
}

// Committed records that p is durable.
func (c *LagCollector) Committed(p store.Position) {
	c.mu.Lock()
	m := c.committed[p.Source]
	if m == nil {
		m = make(map[store.FileID]int64)
		c.committed[p.Source] = m
	}
	// One entry per file the source has had (a few per rotation period);
	// Collect looks up the file now at the path.
	m[p.File] = p.Offset
	c.mu.Unlock()
}

// Describe implements prometheus.Collector.
func (c *LagCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

// Collect implements prometheus.Collector.
func (c *LagCollector) Collect(ch chan<- prometheus.Metric) {
	c.mu.Lock()
	sources := c.sources
	c.mu.Unlock()
	for _, s := range sources {
		fi, err := os.Stat(s.Path)
		if err != nil {
			continue
		}
		id := fileIdentity(fi)
		c.mu.Lock()
		off := c.committed[s.Name][id]
		c.mu.Unlock()
		lag := fi.Size() - off
		if lag < 0 {
			lag = 0
		}
		ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue, float64(lag), s.Name)
	}
}
