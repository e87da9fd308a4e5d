// Package alert delivers what detect finds to people: Slack messages
// (grouped in the Alertmanager manner by the Notifier, delivered from the
// store's outbox by the Sender, rendered in Block Kit), the unused-scope
// report (tables, JSON, CSV and Markdown, also written on a schedule and
// posted to Slack), the per-scope report, the per-client usage view, and
// findings, silences and dead letters for the API.
package alert
