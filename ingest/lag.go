package ingest

import (
	"os"
	"sync"
	"syscall"

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
	wake      chan struct{}                     // signalled (non-blocking) by Committed
}

// NewLagCollector returns a collector for the given sources.
func NewLagCollector(sources []rules.Source) *LagCollector {
	return &LagCollector{
		desc: prometheus.NewDesc("scopewatch_position_lag_bytes",
			"Bytes of the live file not yet committed to the store.", []string{"source"}, nil),
		sources:   sources,
		committed: make(map[string]map[store.FileID]int64),
		wake:      make(chan struct{}, 1),
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
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

// Wake is signalled after positions were committed, for one waiter that
// then asks Pending again.
func (c *LagCollector) Wake() <-chan struct{} { return c.wake }

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

// FileMark is how far a source's live file reached at one moment.
type FileMark struct {
	Source string
	File   store.FileID
	Size   int64
}

// Marks returns, for every source whose live file can be opened for
// reading, the file's identity and size now: the backlog that a catch-up
// has to commit. A file that cannot be read is left out, so that it holds
// nothing up; its source reports it.
func (c *LagCollector) Marks() []FileMark {
	c.mu.Lock()
	sources := c.sources
	c.mu.Unlock()
	var marks []FileMark
	for _, s := range sources {
		// The type first: opening a FIFO would block until a writer came.
		if fi, err := os.Stat(s.Path); err != nil || !fi.Mode().IsRegular() {
			continue
		}
		f, err := os.OpenFile(s.Path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
		if err != nil {
			continue
		}
		fi, err := f.Stat()
		f.Close()
		if err != nil || !fi.Mode().IsRegular() {
			continue
		}
		marks = append(marks, FileMark{Source: s.Name, File: fileIdentity(fi), Size: fi.Size()})
	}
	return marks
}

// Pending returns the sources of marks whose backlog is not committed
// yet. A mark whose file has left the source's path (rotated away) counts
// as reached: what came after it is in the new file.
func (c *LagCollector) Pending(marks []FileMark) []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	paths := make(map[string]string, len(c.sources))
	for _, s := range c.sources {
		paths[s.Name] = s.Path
	}
	var pending []string
	for _, m := range marks {
		if c.committed[m.Source][m.File] >= m.Size {
			continue
		}
		path, ok := paths[m.Source]
		if !ok {
			continue // the source was removed by a reload
		}
		if fi, err := os.Stat(path); err != nil || fileIdentity(fi) != m.File {
			continue
		}
		pending = append(pending, m.Source)
	}
	return pending
}
