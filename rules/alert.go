package rules

import (
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// Alert configures how findings and reports reach people.
type Alert struct {
	Report ReportSchedule `yaml:"report"`
}

// ReportSchedule writes the unused-scope report on a schedule.
type ReportSchedule struct {
	// Every is the time between reports, e.g. 168h or 1w; absent or zero
	// writes none.
	Every Duration `yaml:"every"`
	// Formats are the files written each time: csv, json, markdown.
	// Default all three.
	Formats []string `yaml:"formats"`
	// Dir is where they are written; default "reports" beside the store.
	Dir string `yaml:"dir"`
}

// ReportFormats returns the formats a scheduled report may be written in.
func ReportFormats() []string { return []string{"csv", "json", "markdown"} }

// checkAlert applies the defaults of the alert section and records its
// problems in p.
func (c *Config) checkAlert(lines map[string]int, p *problems) {
	r := &c.Alert.Report
	if r.Every == 0 {
		return
	}
	if r.Every < Duration(time.Hour) {
		p.add(lineOf(lines, "alert.report.every"), "alert.report.every", "must be at least 1h, got %s; a weekly report is every: 1w", r.Every)
	}
	if _, set := lines["alert.report.formats"]; !set {
		r.Formats = ReportFormats()
	}
	if len(r.Formats) == 0 {
		p.add(lineOf(lines, "alert.report.formats"), "alert.report.formats", "name at least one of %s", strings.Join(ReportFormats(), ", "))
	}
	for i, f := range r.Formats {
		if !slices.Contains(ReportFormats(), f) {
			fp := joinIndex("alert.report.formats", i)
			p.add(lineOf(lines, fp, "alert.report.formats"), fp, "unknown format %q; use %s", f, strings.Join(ReportFormats(), ", "))
		}
	}
	if r.Dir == "" && c.Store != "" {
		r.Dir = filepath.Join(filepath.Dir(c.Store), "reports")
	}
}
