package report

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/scopewatch/scopewatch/detect"
	"github.com/scopewatch/scopewatch/internal/durable"
)

// reportPrefix and reportStamp name scheduled report files:
// unused-scopes-20261123T1300Z.csv. The stamp sorts as the time does.
const (
	reportPrefix = "unused-scopes-"
	reportStamp  = "20060102T1504Z"
)

// FileName is the name of the scheduled report file of time t with
// extension ext (".csv"): unused-scopes-20261123T1300Z.csv.
func FileName(t time.Time, ext string) string {
	return reportPrefix + t.UTC().Format(reportStamp) + ext
}

// reportExt maps a report format to its file extension.
var reportExt = map[string]string{FormatCSV: ".csv", FormatJSON: ".json", "markdown": ".md"}

// ReportFormats returns the formats a scheduled report can be written in.
func ReportFormats() []string { return []string{FormatCSV, FormatJSON, "markdown"} }

// SchedulerOptions configure a Scheduler.
type SchedulerOptions struct {
	Dir     string        // where report files are written
	Every   time.Duration // time between reports
	Formats []string      // of ReportFormats
	// Build computes the report as of now.
	Build  func(now time.Time) (detect.UnusedReport, error)
	Now    func() time.Time                       // default time.Now
	After  func(d time.Duration) <-chan time.Time // default time.After
	Logger *slog.Logger
	// LastSuccess, when set, is set to the time of each report written.
	LastSuccess prometheus.Gauge
	// NextDue, when set, is set to when the next report falls due: Every
	// after the last report written. A failed report leaves it at the time
	// it fell due, so that an overdue report stays visible (as the clock
	// passing it) until one is written, whatever Every is.
	NextDue prometheus.Gauge
	// Post, when set, queues the report for Slack. It runs before the
	// files are written: the newest file marks a report done, so a crash
	// in between posts it twice rather than never.
	Post func(rep detect.UnusedReport) error
}

// Scheduler writes the unused-scope report into a directory every so
// often, each format to its own dated file, atomically. A report that fell
// due while the daemon was down is written at start.
type Scheduler struct {
	opt SchedulerOptions
}

// NewScheduler returns a scheduler; it starts nothing.
func NewScheduler(opt SchedulerOptions) *Scheduler {
	if opt.Now == nil {
		opt.Now = time.Now
	}
	if opt.After == nil {
		opt.After = time.After
	}
	if opt.Logger == nil {
		opt.Logger = slog.New(slog.DiscardHandler)
	}
	return &Scheduler{opt: opt}
}

// Run writes reports when they fall due until ctx ends. A failed report is
// logged and tried again at the next due time; Run returns nil when ctx
// ends, or an error when the directory cannot be used at all.
func (s *Scheduler) Run(ctx context.Context) error {
	if err := os.MkdirAll(s.opt.Dir, 0o750); err != nil {
		return fmt.Errorf("report directory: %w", err)
	}
	last, err := LastReport(s.opt.Dir)
	if err != nil {
		return err
	}
	if !last.IsZero() && s.opt.LastSuccess != nil {
		s.opt.LastSuccess.Set(float64(last.Unix()))
	}
	if last.IsZero() {
		s.setNextDue(s.opt.Now()) // no report yet: one is due now
	} else {
		s.setNextDue(last.Add(s.opt.Every))
	}
	for {
		due := last.Add(s.opt.Every)
		if wait := due.Sub(s.opt.Now()); wait > 0 && !last.IsZero() {
			select {
			case <-ctx.Done():
				return nil
			case <-s.opt.After(wait):
			}
		}
		now := s.opt.Now()
		if _, err := s.Write(now); err != nil {
			s.opt.Logger.Error("scheduled report failed; trying again at the next due time", "err", err)
		} else {
			s.setNextDue(now.Add(s.opt.Every))
		}
		last = now
		if ctx.Err() != nil {
			return nil
		}
	}
}

// setNextDue sets the NextDue gauge, when there is one.
func (s *Scheduler) setNextDue(t time.Time) {
	if s.opt.NextDue != nil {
		s.opt.NextDue.Set(float64(t.Unix()))
	}
}

// Write builds the report as of now and writes it in every format,
// returning the files written.
func (s *Scheduler) Write(now time.Time) ([]string, error) {
	rep, err := s.opt.Build(now)
	if err != nil {
		return nil, fmt.Errorf("build report: %w", err)
	}
	if s.opt.Post != nil {
		if err := s.opt.Post(rep); err != nil {
			s.opt.Logger.Error("scheduled report: cannot queue it for Slack; the files are still written", "err", err)
		}
	}
	var files []string
	for _, f := range s.opt.Formats {
		ext, ok := reportExt[f]
		if !ok {
			return files, fmt.Errorf("%w %q for a scheduled report; use %s", ErrFormat, f, strings.Join(ReportFormats(), ", "))
		}
		path := filepath.Join(s.opt.Dir, FileName(now, ext))
		if err := durable.Replace(path, 0o640, func(w io.Writer) error { return WriteUnused(w, rep, f) }); err != nil {
			return files, err
		}
		files = append(files, path)
	}
	if s.opt.LastSuccess != nil {
		s.opt.LastSuccess.Set(float64(now.Unix()))
	}
	s.opt.Logger.Info("unused-scope report written", "files", files, "scopes", len(rep.Unused))
	return files, nil
}

// LastReport returns the time of the newest scheduled report in dir, zero
// when there is none.
func LastReport(dir string) (time.Time, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return time.Time{}, fmt.Errorf("read report directory: %w", err)
	}
	var last time.Time
	for _, e := range entries {
		name, ok := strings.CutPrefix(e.Name(), reportPrefix)
		if !ok || e.IsDir() {
			continue
		}
		name = strings.TrimSuffix(name, filepath.Ext(name))
		t, err := time.Parse(reportStamp, name)
		if err == nil && t.After(last) {
			last = t
		}
	}
	return last, nil
}
