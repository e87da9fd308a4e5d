package daemon

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/scopewatch/scopewatch/detect"
	"github.com/scopewatch/scopewatch/report"
)

// reportScheduler builds the scheduler of alert.report, or returns nil
// when no report is scheduled. post, when not nil, queues each report for
// Slack.
func (d *Daemon) reportScheduler(post func(detect.UnusedReport) error) *report.Scheduler {
	r := d.Config().Alert.Report
	if r.Every == 0 {
		if d.reportLast != nil { // a reload removed the schedule: nothing is due
			d.reg.Unregister(d.reportLast)
			d.reg.Unregister(d.reportDue)
			d.reportLast, d.reportDue = nil, nil
		}
		return nil
	}
	if d.reportLast == nil { // registered with the first schedule
		d.reportLast = prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "scopewatch_report_last_success_timestamp_seconds",
			Help: "When the scheduled unused-scope report was last written.",
		})
		d.reportDue = prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "scopewatch_report_next_due_timestamp_seconds",
			Help: "When the next scheduled unused-scope report falls due; in the past while reports fail.",
		})
		d.reg.MustRegister(d.reportLast, d.reportDue)
	}
	return report.NewScheduler(report.SchedulerOptions{
		Dir: r.Dir, Every: time.Duration(r.Every), Formats: r.Formats,
		Build: func(now time.Time) (detect.UnusedReport, error) {
			return report.Unused(d.Config(), d.db, func() time.Time { return now })
		},
		Logger: d.log, LastSuccess: d.reportLast, NextDue: d.reportDue, Post: post,
	})
}
