package main

import (
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/scopewatch/scopewatch/alert"
	"github.com/scopewatch/scopewatch/detect"
)

// reportScheduler builds the scheduler of alert.report, or returns nil
// when no report is scheduled. post, when not nil, queues each report for
// Slack.
func reportScheduler(p *pipeline, log *slog.Logger, post func(detect.UnusedReport) error) *alert.Scheduler {
	r := p.config().Alert.Report
	if r.Every == 0 {
		return nil
	}
	if p.reportLast == nil {
		p.reportLast = prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "scopewatch_report_last_success_timestamp_seconds",
			Help: "When the scheduled unused-scope report was last written.",
		})
		p.reg.MustRegister(p.reportLast)
	}
	return alert.NewScheduler(alert.SchedulerOptions{
		Dir: r.Dir, Every: time.Duration(r.Every), Formats: r.Formats,
		Build: func(now time.Time) (detect.UnusedReport, error) {
			return unusedReport(p.config(), p.db, func() time.Time { return now })
		},
		Logger: log, LastSuccess: p.reportLast, Post: post,
	})
}
