// Package alert delivers what detect finds to people in Slack: findings
// grouped in the Alertmanager manner by the Notifier, rendered in Block Kit
// (Render, ReportMessages for a scheduled report), and delivered from the
// store's outbox by the Sender, which retries through outages and rate
// limits and keeps what Slack refuses as dead letters. Rendering for
// terminals, files and the API is report's job.
package alert
