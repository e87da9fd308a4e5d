package alert

import (
	"bytes"
	"cmp"
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"github.com/slack-go/slack"

	"github.com/scopewatch/scopewatch/detect"
	"github.com/scopewatch/scopewatch/report"
	"github.com/scopewatch/scopewatch/store"
)

// ReportMessages builds the Slack post of a scheduled report: a summary
// (totals by status, the clients holding the most unused scopes, and where
// the files are) and, unless files is false (an incoming webhook cannot
// carry one), the CSV as a file. Both go to channel, summary first.
func ReportMessages(rep detect.UnusedReport, channel, dir string, files bool) ([]store.Message, error) {
	byStatus := map[string]int{}
	perClient := map[string]int{}
	for _, u := range rep.Unused {
		byStatus[u.Status]++
		if u.Status != detect.StatusInsufficientCoverage {
			perClient[u.Client]++
		}
	}
	head := fmt.Sprintf("Unused-scope report %s", rep.GeneratedAt.UTC().Format("2006-01-02 15:04Z"))
	var sum strings.Builder
	fmt.Fprintf(&sum, "*%d* clients examined over a %s window: *%d* grants to prune.", rep.Clients, rep.Window, len(rep.Unused)-byStatus[detect.StatusInsufficientCoverage])
	statuses := make([]string, 0, len(byStatus))
	for s := range byStatus {
		statuses = append(statuses, s)
	}
	slices.Sort(statuses)
	for _, s := range statuses {
		fmt.Fprintf(&sum, "\n• %s: %d", strings.ReplaceAll(s, "_", " "), byStatus[s])
	}
	if len(rep.Pending) > 0 {
		fmt.Fprintf(&sum, "\n• clients not yet observed long enough to judge: %d", len(rep.Pending))
	}
	type count struct {
		client string
		n      int
	}
	var top []count
	for c, n := range perClient {
		top = append(top, count{c, n})
	}
	slices.SortFunc(top, func(a, b count) int { return cmp.Or(cmp.Compare(b.n, a.n), strings.Compare(a.client, b.client)) })
	var most strings.Builder
	for i, c := range top {
		if i == maxListed {
			fmt.Fprintf(&most, "\n…and %d more clients", len(top)-i)
			break
		}
		fmt.Fprintf(&most, "\n• `%s`: %d", escape(c.client), c.n)
	}
	where := fmt.Sprintf("Files: `%s/%s` on the scopewatch host.", dir, report.FileName(rep.GeneratedAt, ".{csv,json,md}"))
	if files {
		where = "The full list is in the CSV below; " + strings.ToLower(where[:1]) + where[1:]
	}
	blocks := []slack.Block{
		slack.NewHeaderBlock(slack.NewTextBlockObject(slack.PlainTextType, head, false, false)),
		section(sum.String()),
	}
	if most.Len() > 0 {
		blocks = append(blocks, section("*Most to prune*"+most.String()))
	}
	blocks = append(blocks, slack.NewContextBlock("", slack.NewTextBlockObject(slack.MarkdownType, truncate(where, maxSectionText), false, false)))
	raw, err := json.Marshal(slack.Blocks{BlockSet: blocks})
	if err != nil {
		return nil, fmt.Errorf("encode report message: %w", err)
	}
	msgs := []store.Message{{Channel: channel, Text: truncate(head+"\n"+sum.String(), maxText), Blocks: raw, Queued: rep.GeneratedAt}}
	if files {
		var csv bytes.Buffer
		if err := report.WriteUnused(&csv, rep, report.FormatCSV); err != nil {
			return nil, err
		}
		name := report.FileName(rep.GeneratedAt, ".csv")
		msgs = append(msgs, store.Message{Channel: channel, Text: head + " (CSV)", Queued: rep.GeneratedAt,
			File: &store.File{Name: name, Title: head, Content: csv.Bytes()}})
	}
	return msgs, nil
}
