// Package alert delivers what detect finds to people: the unused-scope
// report (tables, JSON, CSV and Markdown, also written on a schedule), the
// per-scope report, the per-client usage view, and findings and silences.
// Slack delivery is not built yet.
package alert
