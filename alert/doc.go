// Package alert delivers what detect finds to people. Today that is the
// unused-scope report and the per-client usage view, rendered as tables
// for people, JSON for programs and CSV for spreadsheets; Slack delivery
// is not built yet.
package alert
