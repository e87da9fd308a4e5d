// Package alert delivers what detect finds to people: unused-scope reports
// rendered as tables, JSON or CSV. Slack delivery arrives with its own
// issue.
package alert
