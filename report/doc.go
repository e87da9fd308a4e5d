// Package report answers questions about the store and renders the
// answers for people and programs: the unused-scope report (table, JSON,
// CSV and Markdown, also written to files on a schedule by the
// Scheduler), the per-scope report, the per-client usage view, and the
// findings and silences as a reader should see them. Text, Markdown, Day
// and Minute make values from the logs safe and readable in every output.
//
// It does not deliver anything: posting a report to Slack is alert's job.
package report
