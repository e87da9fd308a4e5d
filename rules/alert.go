package rules

import (
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// Alert configures how findings and reports reach people.
type Alert struct {
	Slack  Slack          `yaml:"slack"`
	Report ReportSchedule `yaml:"report"`
}

// Defaults of the Slack section: Alertmanager's timers, and Slack's
// "about one message per second per channel".
const (
	DefaultGroupWait      = Duration(30 * time.Second)
	DefaultGroupInterval  = Duration(5 * time.Minute)
	DefaultRepeatInterval = Duration(4 * time.Hour)
	DefaultSlackAPIURL    = "https://slack.com/api/"
	DefaultSlackRate      = 1.0
	DefaultSlackBurst     = 3
	DefaultMaxBackoff     = Duration(5 * time.Minute)
)

// Slack configures delivery of findings to Slack, through a bot token
// (chat.postMessage, with routing to channels) or an incoming webhook (one
// fixed channel). The secret is read from a file or the environment at
// load, never from this file.
type Slack struct {
	// TokenFile or TokenEnv holds the bot token (xoxb-...).
	TokenFile string `yaml:"token_file"`
	TokenEnv  string `yaml:"token_env"`
	// WebhookURLFile or WebhookURLEnv holds an incoming webhook URL, used
	// instead of a token.
	WebhookURLFile string `yaml:"webhook_url_file"`
	WebhookURLEnv  string `yaml:"webhook_url_env"`
	// InlineToken and InlineWebhook catch secrets written into the file,
	// to refuse them.
	InlineToken   string `yaml:"token"`
	InlineWebhook string `yaml:"webhook_url"`
	// APIURL is the Web API base; default https://slack.com/api/.
	APIURL string `yaml:"api_url"`

	// Channel is the default channel. A client's registered channel takes
	// its findings, and SeverityChannels override both for a severity.
	Channel          string            `yaml:"channel"`
	SeverityChannels map[string]string `yaml:"severity_channels"`
	// MinSeverity is the least severity told; default info (all).
	MinSeverity string `yaml:"min_severity"`
	// Kinds are the finding kinds told; default all.
	Kinds []string `yaml:"kinds"`
	// GroupWait, GroupInterval and RepeatInterval time the messages of a
	// group (one kind on one client) as Alertmanager does: the first
	// waits GroupWait for more to join, later changes wait GroupInterval
	// after the previous message, and standing findings are repeated
	// after RepeatInterval.
	GroupWait      Duration `yaml:"group_wait"`
	GroupInterval  Duration `yaml:"group_interval"`
	RepeatInterval Duration `yaml:"repeat_interval"`
	// SendResolved tells when a finding resolves; default true.
	SendResolved bool `yaml:"send_resolved"`
	// Rate is messages per second per channel, Burst how many may go at
	// once; MaxBackoff caps the wait between retries of a failing send.
	Rate       float64  `yaml:"rate"`
	Burst      int      `yaml:"burst"`
	MaxBackoff Duration `yaml:"max_backoff"`

	token, webhook string
}

// Enabled reports whether Slack delivery is configured.
func (s *Slack) Enabled() bool { return s.token != "" || s.webhook != "" }

// Token returns the bot token read at load, or "".
func (s *Slack) Token() string { return s.token }

// Webhook returns the incoming webhook URL read at load, or "".
func (s *Slack) Webhook() string { return s.webhook }

// Severities returns the finding severities, least first.
func Severities() []string { return []string{"info", "warning", "high"} }

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
	// Slack posts a summary and the CSV file to the default channel.
	Slack bool `yaml:"slack"`
}

// ReportFormats returns the formats a scheduled report may be written in.
func ReportFormats() []string { return []string{"csv", "json", "markdown"} }

// checkAlert applies the defaults of the alert section and records its
// problems in p.
func (c *Config) checkAlert(lines map[string]int, p *problems) {
	c.checkSlack(lines, p)
	r := &c.Alert.Report
	if r.Slack && !c.Alert.Slack.Enabled() {
		p.add(lineOf(lines, "alert.report.slack"), "alert.report.slack", "needs alert.slack with a token to post the report to")
	}
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

// checkSlack reads the Slack secret and checks the Slack section.
func (c *Config) checkSlack(lines map[string]int, p *problems) {
	s := &c.Alert.Slack
	const at = "alert.slack"
	if _, set := lines[at]; !set {
		return
	}
	if s.InlineToken != "" {
		p.add(lineOf(lines, at+".token"), at+".token", "do not write the token into the config; put it in a file readable only by scopewatch and name it in token_file, or name an environment variable in token_env")
	}
	if s.InlineWebhook != "" {
		p.add(lineOf(lines, at+".webhook_url"), at+".webhook_url", "a webhook URL is a secret; put it in a file and name it in webhook_url_file, or use webhook_url_env")
	}
	secret := func(fileField, file, envField, env string) (string, bool) {
		switch {
		case file != "" && env != "":
			p.add(lineOf(lines, at+"."+envField), at+"."+envField, "give %s or %s, not both", fileField, envField)
		case file != "":
			b, ok := c.readSecret(lines, p, at+"."+fileField, file, "cannot read: %v")
			v := strings.TrimSpace(string(b))
			switch {
			case !ok:
			case v == "":
				p.add(lineOf(lines, at+"."+fileField), at+"."+fileField, "%s is empty", file)
			default:
				return v, true
			}
		case env != "":
			v := strings.TrimSpace(os.Getenv(env))
			if v == "" {
				p.add(lineOf(lines, at+"."+envField), at+"."+envField, "environment variable %s is not set or empty", env)
				return "", false
			}
			return v, true
		}
		return "", false
	}
	token, hasToken := secret("token_file", s.TokenFile, "token_env", s.TokenEnv)
	hook, hasHook := secret("webhook_url_file", s.WebhookURLFile, "webhook_url_env", s.WebhookURLEnv)
	switch {
	case hasToken && hasHook:
		p.add(lineOf(lines, at+".webhook_url_file", at+".webhook_url_env"), at, "give a bot token or a webhook URL, not both")
	case hasToken:
		if !strings.HasPrefix(token, "xox") {
			// Never echo the value: it is a secret even when wrong.
			fp := setField(lines, at+".token_file", at+".token_env")
			p.add(lineOf(lines, fp), fp, "does not hold a Slack token (they start with xoxb- for a bot)")
		}
		s.token = token
	case hasHook:
		if u, err := url.Parse(hook); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			fp := setField(lines, at+".webhook_url_file", at+".webhook_url_env")
			p.add(lineOf(lines, fp), fp, "does not hold a webhook URL (https://hooks.slack.com/services/...)")
		}
		s.webhook = hook
	case s.TokenFile == "" && s.TokenEnv == "" && s.WebhookURLFile == "" && s.WebhookURLEnv == "" && s.InlineToken == "" && s.InlineWebhook == "":
		p.add(lineOf(lines, at), at, "needs token_file or token_env (a bot token), or webhook_url_file or webhook_url_env")
	}

	if s.APIURL == "" {
		s.APIURL = DefaultSlackAPIURL
	} else if u, err := url.Parse(s.APIURL); err != nil || u.Host == "" {
		p.add(lineOf(lines, at+".api_url"), at+".api_url", "not a URL: %q", s.APIURL)
	} else if u.Scheme != "https" && !(u.Scheme == "http" && isLoopback(u.Hostname())) {
		p.add(lineOf(lines, at+".api_url"), at+".api_url", "must be https (the token travels with every request); plain http only to a loopback address")
	} else if !strings.HasSuffix(s.APIURL, "/") {
		s.APIURL += "/"
	}
	if s.Channel == "" && s.webhook == "" {
		p.add(lineOf(lines, at+".channel", at), at+".channel", "required with a bot token: the default channel, e.g. \"#phi-access\"")
	}
	for sev := range s.SeverityChannels {
		if !slices.Contains(Severities(), sev) {
			fp := at + ".severity_channels." + sev
			p.add(lineOf(lines, fp, at+".severity_channels"), fp, "unknown severity %q; use %s", sev, strings.Join(Severities(), ", "))
		}
	}
	if s.MinSeverity == "" {
		s.MinSeverity = "info"
	} else if !slices.Contains(Severities(), s.MinSeverity) {
		p.add(lineOf(lines, at+".min_severity"), at+".min_severity", "unknown severity %q; use %s", s.MinSeverity, strings.Join(Severities(), ", "))
	}
	if _, set := lines[at+".kinds"]; !set {
		s.Kinds = FindingKinds()
	}
	for i, k := range s.Kinds {
		if !slices.Contains(FindingKinds(), k) {
			fp := joinIndex(at+".kinds", i)
			p.add(lineOf(lines, fp, at+".kinds"), fp, "unknown finding kind %q; use %s", k, strings.Join(FindingKinds(), ", "))
		}
	}
	if _, set := lines[at+".send_resolved"]; !set {
		s.SendResolved = true
	}
	positive(lines, p, at+".group_wait", &s.GroupWait, DefaultGroupWait)
	positive(lines, p, at+".group_interval", &s.GroupInterval, DefaultGroupInterval)
	positive(lines, p, at+".repeat_interval", &s.RepeatInterval, DefaultRepeatInterval)
	positive(lines, p, at+".max_backoff", &s.MaxBackoff, DefaultMaxBackoff)
	if _, set := lines[at+".rate"]; !set {
		s.Rate = DefaultSlackRate
	} else if s.Rate <= 0 {
		p.add(lines[at+".rate"], at+".rate", "must be more than 0 messages a second; Slack allows about 1 per channel")
	}
	if _, set := lines[at+".burst"]; !set {
		s.Burst = DefaultSlackBurst
	} else if s.Burst < 1 {
		p.add(lines[at+".burst"], at+".burst", "must be at least 1")
	}
}

// setField returns the first of fields the file sets, or the first.
func setField(lines map[string]int, fields ...string) string {
	for _, f := range fields {
		if _, ok := lines[f]; ok {
			return f
		}
	}
	return fields[0]
}

// describe says where findings and reports go, without secrets.
func (a *Alert) describe() string {
	var parts []string
	switch s := &a.Slack; {
	case s.token != "":
		parts = append(parts, fmt.Sprintf("slack to %s by bot token (%d severity overrides, client channels from the rules); group_wait %s, group_interval %s, repeat_interval %s",
			s.Channel, len(s.SeverityChannels), s.GroupWait, s.GroupInterval, s.RepeatInterval))
	case s.webhook != "":
		parts = append(parts, fmt.Sprintf("slack by incoming webhook; group_wait %s, group_interval %s, repeat_interval %s", s.GroupWait, s.GroupInterval, s.RepeatInterval))
	default:
		parts = append(parts, "no slack")
	}
	if r := a.Report; r.Every > 0 {
		parts = append(parts, fmt.Sprintf("report every %s to %s", r.Every, r.Dir))
	}
	return strings.Join(parts, "; ")
}

// isLoopback reports whether host names this machine.
func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
