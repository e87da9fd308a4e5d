package alert

import (
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/slack-go/slack"

	"github.com/scopewatch/scopewatch/report"
	"github.com/scopewatch/scopewatch/rules"
	"github.com/scopewatch/scopewatch/store"
)

// Slack's limits (docs.slack.dev, chat.postMessage and Block Kit): a
// message of at most 50 blocks, a section's text at most 3,000
// characters, a header at most 150, and a fallback text best kept under
// 4,000.
const (
	maxBlocks      = 50
	maxSectionText = 3000
	maxHeaderText  = 150
	maxText        = 4000
	// maxListed bounds the findings a message details; the rest are
	// counted, so a message stays readable and within the block limit.
	maxListed = 10
)

// GroupNotice is what one message tells about a group: the findings that
// opened or became graver since the last message, those that still stand,
// and those that resolved.
type GroupNotice struct {
	Group store.GroupKey
	// Client is the registration of the group's client, when it has one.
	Client rules.Client
	// New are findings not told before or told at a lesser severity;
	// Standing are those told before and unchanged; Resolved are those
	// told before that no longer hold.
	New, Standing, Resolved []store.Finding
	// Repeat marks a reminder about standing findings.
	Repeat bool
	// HideAddresses leaves single addresses out of the evidence (the
	// network and country stay).
	HideAddresses bool
}

// Severity returns the gravest severity among the findings that stand.
func (n *GroupNotice) Severity() string {
	sev := ""
	for _, fs := range [][]store.Finding{n.New, n.Standing} {
		for _, f := range fs {
			if sev == "" || store.SeverityRank(f.Severity) > store.SeverityRank(sev) {
				sev = f.Severity
			}
		}
	}
	return sev
}

var severityMark = map[string]string{
	store.SeverityHigh:    ":red_circle: HIGH",
	store.SeverityWarning: ":large_orange_circle: WARNING",
	store.SeverityInfo:    ":large_blue_circle: INFO",
}

// Render builds the Slack message for n: a header with the severity, kind
// and client, the client's owner and role, each finding with its evidence
// and proposed fix, what resolved, and the command that silences the
// group. It keeps within Slack's block and text limits.
func Render(n *GroupNotice) store.Message {
	var blocks []slack.Block
	sev := n.Severity()
	title := rules.KindTitle(n.Group.Kind)
	if title == "" {
		title = report.Text(n.Group.Kind)
	}
	// The header is plain_text: Slack shows it as it is, so only its
	// control characters are escaped.
	subject := report.Text(n.Group.Client)
	if subject == "" {
		subject = "scopewatch"
	}
	var head string
	switch {
	case sev == "":
		head = fmt.Sprintf(":white_check_mark: RESOLVED · %s · %s", title, subject)
	case n.Repeat && len(n.New) == 0:
		head = fmt.Sprintf("%s · still open: %s · %s", severityMark[sev], title, subject)
	default:
		head = fmt.Sprintf("%s · %s · %s", severityMark[sev], title, subject)
	}
	head = truncate(head, maxHeaderText)
	blocks = append(blocks, slack.NewHeaderBlock(slack.NewTextBlockObject(slack.PlainTextType, head, true, false)))

	if n.Group.Client != "" {
		who := "*Client* `" + escape(n.Group.Client) + "`"
		if n.Client.Owner != "" {
			who += " · owner *" + escape(n.Client.Owner) + "*"
		}
		if n.Client.Role != "" {
			who += " · role `" + escape(n.Client.Role) + "`"
		}
		if n.Client.Owner == "" && n.Client.Role == "" {
			who += " · not registered in the rules"
		}
		blocks = append(blocks, section(who))
	}

	// Findings: new ones first, then standing, then resolved, each list
	// capped, with the remainder counted.
	listed := 0
	list := func(label string, fs []store.Finding, render func(store.Finding) string) {
		if len(fs) == 0 {
			return
		}
		blocks = append(blocks, slack.NewContextBlock("", slack.NewTextBlockObject(slack.MarkdownType, label, false, false)))
		for i, f := range fs {
			if listed >= maxListed {
				blocks = append(blocks, section(fmt.Sprintf("…and %d more; `%s` lists them all.",
					len(fs)-i, escape("scopewatch findings --kind "+n.Group.Kind+" --client "+shellQuote(n.Group.Client)))))
				return
			}
			listed++
			blocks = append(blocks, section(render(f)))
		}
	}
	switch {
	case n.Repeat && len(n.New) == 0:
		list(fmt.Sprintf("*Still open* (%d)", len(n.Standing)), n.Standing, func(f store.Finding) string { return describe(f, n.HideAddresses) })
	default:
		list(fmt.Sprintf("*New or graver* (%d)", len(n.New)), n.New, func(f store.Finding) string { return describe(f, n.HideAddresses) })
		if len(n.Standing) > 0 {
			blocks = append(blocks, slack.NewContextBlock("", slack.NewTextBlockObject(slack.MarkdownType,
				fmt.Sprintf("%d more finding(s) of this group still open, told before.", len(n.Standing)), false, false)))
		}
	}
	list(fmt.Sprintf("*Resolved* (%d)", len(n.Resolved)), n.Resolved, func(f store.Finding) string {
		return ":white_check_mark: " + escape(summary(f, n.HideAddresses)) + "\n" + times(f) + " · id `" + f.ID() + "`"
	})

	if sev != "" {
		blocks = append(blocks, slack.NewDividerBlock(), slack.NewContextBlock("", slack.NewTextBlockObject(slack.MarkdownType,
			truncate("To silence: `"+escape(silenceCommand(n))+"`", maxSectionText), false, false)))
	}
	if len(blocks) > maxBlocks {
		blocks = blocks[:maxBlocks]
	}

	raw, err := json.Marshal(slack.Blocks{BlockSet: blocks})
	if err != nil {
		// The blocks are built from plain strings above; a failure here is
		// a programming error, and the text alone still informs.
		raw = nil
	}
	return store.Message{Group: n.Group, Text: truncate(fallback(n, escape(head)), maxText), Blocks: raw}
}

// TestMessage is what `scopewatch alert test` posts: it says where it
// came from, so the operator can tell test from real.
func TestMessage(host, config string, now time.Time) store.Message {
	text := fmt.Sprintf(":white_check_mark: scopewatch test message from %s (config %s), %s. Findings will arrive like this one did.",
		escape(host), escape(config), now.UTC().Format(time.RFC3339))
	raw, _ := json.Marshal(slack.Blocks{BlockSet: []slack.Block{section(text)}})
	return store.Message{Text: text, Blocks: raw, Queued: now}
}

// describe renders one finding for a message: its summary, how often and
// when it was seen, the evidence and the proposed fix.
func describe(f store.Finding, hideAddresses bool) string {
	var b strings.Builder
	b.WriteString(severityMark[f.Severity] + " · *" + escape(summary(f, hideAddresses)) + "*\n")
	b.WriteString(times(f))
	e := f.Evidence
	var ev []string
	if e.Country != "" {
		ev = append(ev, "country "+escape(e.Country))
	}
	if e.ASN != 0 {
		ev = append(ev, "AS"+strconv.FormatUint(uint64(e.ASN), 10))
	}
	if e.Network != "" {
		ev = append(ev, "network "+escape(e.Network))
	}
	if e.IP != "" && !hideAddresses {
		ev = append(ev, "address "+escape(e.IP))
	}
	if e.Subject != "" {
		ev = append(ev, "user "+escape(e.Subject))
	}
	if e.Requests > 0 {
		r := strconv.Itoa(e.Requests) + " requests"
		if e.Window != "" {
			r += " in " + escape(e.Window)
		}
		ev = append(ev, r)
	}
	if len(e.Scopes) > 0 {
		ev = append(ev, "scopes `"+escape(strings.Join(e.Scopes, " "))+"`")
	}
	if !e.LastGrant.IsZero() {
		ev = append(ev, "last granted "+report.Day(e.LastGrant))
	}
	if !e.LastUse.IsZero() {
		ev = append(ev, "last used "+report.Day(e.LastUse))
	} else if f.Kind == rules.KindUnusedScope {
		ev = append(ev, "never used")
	}
	if len(e.Lines) > 0 {
		l := e.Lines[len(e.Lines)-1]
		ev = append(ev, fmt.Sprintf("newest line %s:%d", escape(l.Path), l.Line))
	}
	if len(ev) > 0 {
		b.WriteString("\n*Evidence:* " + strings.Join(ev, " · "))
	}
	if fix := proposedFix(f); fix != "" {
		b.WriteString("\n*Fix:* " + fix)
	}
	b.WriteString("\nid `" + f.ID() + "`")
	return b.String()
}

// summary is the finding's sentence, with its single address masked when
// addresses are hidden.
func summary(f store.Finding, hideAddresses bool) string {
	if hideAddresses && f.Evidence.IP != "" {
		return strings.ReplaceAll(f.Summary, f.Evidence.IP, "(address hidden)")
	}
	return f.Summary
}

// times says how often and when a finding was seen.
func times(f store.Finding) string {
	seen := "seen once"
	if f.Count > 1 {
		seen = fmt.Sprintf("seen %d times", f.Count)
	}
	if f.First.IsZero() {
		return seen
	}
	if f.Last.Sub(f.First) < time.Minute {
		return seen + ", " + report.Minute(f.First)
	}
	return seen + ", first " + report.Minute(f.First) + ", last " + report.Minute(f.Last)
}

// proposedFix says what to change for a finding, in the operator's terms.
func proposedFix(f store.Finding) string {
	e := f.Evidence
	switch {
	case len(e.Narrower) > 0:
		return "grant `" + escape(strings.Join(e.Narrower, " ")) + "` instead of `" + escape(f.Subject) + "`"
	case e.ReplacedBy != "":
		return "move the client from `" + escape(f.Subject) + "` to `" + escape(e.ReplacedBy) + "`"
	case f.Kind == rules.KindUnusedScope:
		return "remove `" + escape(f.Subject) + "` from the client's grants"
	case f.Kind == rules.KindTokenInURL:
		return "send the token in the Authorization header, and rotate it: it is now in the log"
	case f.Kind == rules.KindStaleSource:
		return "check that the log is still written and readable by scopewatch"
	case f.Kind == rules.KindClientIDSpray:
		return "rate-limit or block the addresses named at the IdP or the gateway"
	case f.Kind == rules.KindUnfamiliarGeo || f.Kind == rules.KindUnfamiliarBurst:
		return "confirm with the owner; if expected, add it to the client's expected countries or the allowed networks"
	}
	return ""
}

// silenceCommand is the CLI command that silences the whole group.
func silenceCommand(n *GroupNotice) string {
	cmd := "scopewatch silence add --kind " + n.Group.Kind
	if n.Group.Client != "" {
		cmd += " --client " + shellQuote(n.Group.Client)
	}
	if len(n.New) == 1 && n.New[0].Subject != "" && !(n.HideAddresses && n.New[0].Evidence.IP != "") {
		// One finding: silence just it; without --subject the whole group.
		cmd += " --subject " + shellQuote(n.New[0].Subject)
	}
	return cmd + " --for 30d --reason '...'"
}

// fallback is the message's plain text, shown in notifications and by
// clients that cannot draw blocks.
func fallback(n *GroupNotice, head string) string {
	var b strings.Builder
	b.WriteString(head)
	for _, fs := range [][]store.Finding{n.New, n.Resolved} {
		for _, f := range fs {
			b.WriteString("\n- " + escape(summary(f, n.HideAddresses)))
		}
	}
	return b.String()
}

func section(text string) slack.Block {
	return slack.NewSectionBlock(slack.NewTextBlockObject(slack.MarkdownType, truncate(text, maxSectionText), false, false), nil, nil)
}

// slackEscaper escapes what Slack mrkdwn reads as markup: &, < and > as
// Slack requires (&amp; &lt; &gt;), and a backquote, which would end the
// code span a value is shown in.
var slackEscaper = strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;", "`", "'")

// escape makes s safe in Slack mrkdwn and in a message's fallback text:
// its control characters escaped (Text), then Slack's markup.
func escape(s string) string { return slackEscaper.Replace(report.Text(s)) }

// truncate cuts s to at most n characters (runes), marking the cut.
func truncate(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}

// shellQuote quotes s for a POSIX shell when it needs quoting. A value
// with control characters is written $'...', with them escaped as Text
// escapes them, which bash, zsh and ksh read back as the exact value.
func shellQuote(s string) string {
	if s != "" && strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.:/@") == "" {
		return s
	}
	if q := report.Text(s); q != s {
		return "$'" + strings.ReplaceAll(q[1:len(q)-1], "'", `\'`) + "'"
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// sortFindings orders findings gravest first, then by subject.
func sortFindings(fs []store.Finding) {
	sort.Slice(fs, func(i, j int) bool {
		if a, b := store.SeverityRank(fs[i].Severity), store.SeverityRank(fs[j].Severity); a != b {
			return a > b
		}
		return fs[i].Subject < fs[j].Subject
	})
}
