package daemon

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/scopewatch/scopewatch/alert"
	"github.com/scopewatch/scopewatch/detect"
	"github.com/scopewatch/scopewatch/report"
)

// reportScheduler builds the scheduler of alert.report, or returns nil
// when no report is scheduled. post, when not nil, queues each report for
// Slack.
func (p *Daemon) reportScheduler(post func(detect.UnusedReport) error) *alert.Scheduler {
	r := p.Config().Alert.Report
	if r.Every == 0 {
		if p.reportLast != nil { // a reload removed the schedule: nothing is due
			p.reg.Unregister(p.reportLast)
			p.reg.Unregister(p.reportDue)
			p.reportLast, p.reportDue = nil, nil
		}
		return nil
	}
	if p.reportLast == nil { // registered with the first schedule
		p.reportLast = prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "scopewatch_report_last_success_timestamp_seconds",
			Help: "When the scheduled unused-scope report was last written.",
		})
		p.reportDue = prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "scopewatch_report_next_due_timestamp_seconds",
			Help: "When the next scheduled unused-scope report falls due; in the past while reports fail.",
		})
		p.reg.MustRegister(p.reportLast, p.reportDue)
	}
	return alert.NewScheduler(alert.SchedulerOptions{
		Dir: r.Dir, Every: time.Duration(r.Every), Formats: r.Formats,
		Build: func(now time.Time) (detect.UnusedReport, error) {
			return report.Unused(p.Config(), p.db, func() time.Time { return now })
		},
		Logger: p.log, LastSuccess: p.reportLast, NextDue: p.reportDue, Post: post,
	})
}
