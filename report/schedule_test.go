package report

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/scopewatch/scopewatch/detect"
)

// fakeClock drives a Scheduler: After reports each wait to the test,
// which moves the clock and fires it.
type fakeClock struct {
	mu    sync.Mutex
	now   time.Time
	waits chan time.Duration
	fire  chan time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

func (c *fakeClock) After(d time.Duration) <-chan time.Time {
	c.waits <- d
	return c.fire
}

func startScheduler(t *testing.T, dir string, clock *fakeClock, every time.Duration) (prometheus.Gauge, func()) {
	t.Helper()
	g := prometheus.NewGauge(prometheus.GaugeOpts{Name: "last"})
	s := NewScheduler(SchedulerOptions{
		Dir: dir, Every: every, Formats: []string{FormatCSV, FormatJSON},
		Build: func(now time.Time) (detect.UnusedReport, error) {
			return detect.UnusedReport{GeneratedAt: now, Unused: []detect.UnusedScope{{Client: "lab-portal", Scope: "read_all_data", Status: detect.StatusNeverUsed}}}, nil
		},
		Now: clock.Now, After: clock.After, LastSuccess: g,
	})
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	return g, func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}
}

func reportFiles(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}

func TestSchedulerWritesOnTimeAndCatchesUp(t *testing.T) {
	dir := t.TempDir()
	t0 := time.Date(2026, 11, 23, 13, 0, 0, 0, time.UTC)
	clock := &fakeClock{now: t0, waits: make(chan time.Duration), fire: make(chan time.Time)}
	g, stop := startScheduler(t, dir, clock, 7*24*time.Hour)

	// No report yet: one is written at once, then the next is a week away.
	if d := <-clock.waits; d != 7*24*time.Hour {
		t.Errorf("first wait %v, want a week", d)
	}
	want := []string{"unused-scopes-20261123T1300Z.csv", "unused-scopes-20261123T1300Z.json"}
	if got := reportFiles(t, dir); !slices.Equal(got, want) {
		t.Errorf("files %v, want %v", got, want)
	}
	if v := testutil.ToFloat64(g); v != float64(t0.Unix()) {
		t.Errorf("last success %v, want %v", v, t0.Unix())
	}
	clock.advance(7 * 24 * time.Hour)
	clock.fire <- clock.Now()
	<-clock.waits
	if got := reportFiles(t, dir); len(got) != 4 || got[2] != "unused-scopes-20261130T1300Z.csv" {
		t.Errorf("after a week: %v", got)
	}
	stop()

	// Restarted ten days later: the report due three days ago is written
	// at start.
	clock.advance(10 * 24 * time.Hour)
	_, stop = startScheduler(t, dir, clock, 7*24*time.Hour)
	<-clock.waits
	if got := reportFiles(t, dir); len(got) != 6 || got[4] != "unused-scopes-20261210T1300Z.csv" {
		t.Errorf("after the restart: %v", got)
	}
	stop()

	// Restarted a day later: nothing is due for six days.
	clock.advance(24 * time.Hour)
	_, stop = startScheduler(t, dir, clock, 7*24*time.Hour)
	if d := <-clock.waits; d != 6*24*time.Hour {
		t.Errorf("wait after a restart a day later %v, want 6 days", d)
	}
	if got := reportFiles(t, dir); len(got) != 6 {
		t.Errorf("a report was written early: %v", got)
	}
	stop()

	b, err := os.ReadFile(filepath.Join(dir, "unused-scopes-20261123T1300Z.csv"))
	if err != nil || !slices.Contains([]string{"client"}, string(b[:6])) {
		t.Errorf("csv report = %q, %v", b, err)
	}
}

// TestSchedulerNextDue checks the next-due gauge: set when a report is
// written, left at the missed due time while reports fail, so that an
// alert on the clock passing it needs no knowledge of the interval.
func TestSchedulerNextDue(t *testing.T) {
	dir := t.TempDir()
	t0 := time.Date(2026, 11, 23, 13, 0, 0, 0, time.UTC)
	const week = 7 * 24 * time.Hour
	clock := &fakeClock{now: t0, waits: make(chan time.Duration), fire: make(chan time.Time)}
	var failing atomic.Bool
	start := func() (last, next prometheus.Gauge, stop func()) {
		last = prometheus.NewGauge(prometheus.GaugeOpts{Name: "last"})
		next = prometheus.NewGauge(prometheus.GaugeOpts{Name: "next"})
		s := NewScheduler(SchedulerOptions{
			Dir: dir, Every: week, Formats: []string{FormatCSV},
			Build: func(now time.Time) (detect.UnusedReport, error) {
				if failing.Load() {
					return detect.UnusedReport{}, errors.New("store closed")
				}
				return detect.UnusedReport{GeneratedAt: now}, nil
			},
			Now: clock.Now, After: clock.After, LastSuccess: last, NextDue: next,
		})
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan error, 1)
		go func() { done <- s.Run(ctx) }()
		return last, next, func() {
			cancel()
			if err := <-done; err != nil {
				t.Error(err)
			}
		}
	}
	unix := func(tm time.Time) float64 { return float64(tm.Unix()) }

	// Each step waits for the scheduler to block on its next wait, so the
	// gauges are read while it is idle.
	last, next, stop := start()
	<-clock.waits
	if got, want := testutil.ToFloat64(next), unix(t0.Add(week)); got != want {
		t.Errorf("after the first report: next due %v, want %v", got, want)
	}

	failing.Store(true)
	clock.advance(week)
	clock.fire <- clock.Now()
	<-clock.waits
	if got, want := testutil.ToFloat64(next), unix(t0.Add(week)); got != want {
		t.Errorf("after a failed report: next due %v, want the missed due time %v", got, want)
	}
	if got, want := testutil.ToFloat64(last), unix(t0); got != want {
		t.Errorf("after a failed report: last success %v, want %v", got, want)
	}

	failing.Store(false)
	clock.advance(week)
	clock.fire <- clock.Now()
	<-clock.waits
	if got, want := testutil.ToFloat64(next), unix(t0.Add(3*week)); got != want {
		t.Errorf("after a report written again: next due %v, want %v", got, want)
	}
	stop()

	// Restarted a day later, before the next report: due a week after the
	// newest report on disk.
	clock.advance(24 * time.Hour)
	_, next, stop = start()
	<-clock.waits
	if got, want := testutil.ToFloat64(next), unix(t0.Add(3*week)); got != want {
		t.Errorf("after a restart: next due %v, want %v", got, want)
	}
	stop()
}
