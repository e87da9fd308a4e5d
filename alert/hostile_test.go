package alert

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"strings"
	"testing"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/scopewatch/scopewatch/detect"
	"github.com/scopewatch/scopewatch/report"
	"github.com/scopewatch/scopewatch/rules"
	"github.com/scopewatch/scopewatch/store"
)

// hostileIDs are client ids (and scopes, subjects) that anyone reaching a
// token endpoint can make a log hold.
var hostileIDs = []string{
	"evil\x1b[31mred\x1b[0m",                         // colours the terminal
	"forged\r\nbilling-export  admin  never_used  1", // a table row of its own
	"bell\a",
	"rtl\u202etxt.exe", // shows as exe.txt
	"c1\u009b31m",      // the one-byte CSI
	"del\x7f",
	"notutf8\x9b31m",
	"zero\u200bwidth",
	"tab\there",
	"sep\u2028line",
	"`<!channel>` & *bold* | [link](x)",
}

// humanOutputs renders every output meant for people with id as the
// client id, the scope, the subject and in the summary: the texts a
// reader sees (for Slack, every text of the message: the plain_text
// header, the fallback text and each mrkdwn section).
func humanOutputs(t *testing.T, id string) map[string][]string {
	t.Helper()
	at := time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)
	out := map[string][]string{}
	write := func(name string, fn func(*bytes.Buffer) error) {
		var b bytes.Buffer
		if err := fn(&b); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		out[name] = []string{b.String()}
	}

	views := []report.ClientView{{ID: id, Scopes: []report.ScopeView{{Scope: id, Granted: 3, LastGranted: at}}}, {ID: id}}
	write("clients table", func(b *bytes.Buffer) error { return report.WriteClients(b, views, report.FormatTable) })

	rep := unusedWith(id, at)
	write("report unused table", func(b *bytes.Buffer) error { return report.WriteUnused(b, rep, report.FormatTable) })
	write("report unused markdown", func(b *bytes.Buffer) error { return report.WriteUnused(b, rep, report.FormatMarkdown) })

	sr := scopeWith(id, at)
	write("report scope table", func(b *bytes.Buffer) error { return report.WriteScope(b, sr, report.FormatTable) })
	write("report scope markdown", func(b *bytes.Buffer) error { return report.WriteScope(b, sr, report.FormatMarkdown) })

	fs := findingsWith(id, at)
	write("findings table", func(b *bytes.Buffer) error { return report.WriteFindings(b, fs, report.FormatTable) })

	ss := []store.Silence{{ID: "s1", Client: id, Kind: "unused_scope", Subject: id, Expires: at.Add(time.Hour), Reason: id, Author: id}}
	write("silence list table", func(b *bytes.Buffer) error { return report.WriteSilences(b, ss, at, report.FormatTable) })

	n := &GroupNotice{Group: store.Of(fs[0].FindingKey), Client: rules.Client{Owner: id, Role: id},
		New: fs[:1], Standing: fs[1:2], Resolved: fs[1:]}
	out["slack finding header"], out["slack finding"] = messageTexts(t, Render(n))
	n.Repeat, n.New = true, nil
	out["slack reminder header"], out["slack reminder"] = messageTexts(t, Render(n))
	msgs, err := ReportMessages(rep, "#c", "/var/lib/scopewatch/reports", true)
	if err != nil {
		t.Fatal(err)
	}
	out["slack report header"], out["slack report"] = messageTexts(t, msgs[0])
	return out
}

func unusedWith(id string, at time.Time) detect.UnusedReport {
	return detect.UnusedReport{GeneratedAt: at, Window: "90d", MinObservation: "30d", Clients: 2,
		Unused: []detect.UnusedScope{
			{Client: id, Owner: id, Role: id, Scope: id, Status: detect.StatusNeverUsed, Grants: 2, FirstGrant: at, LastGrant: at, IdleFor: "9d"},
			{Client: id, Scope: "patient/*.read", Status: detect.StatusBroader, Narrower: []string{id}, IdleFor: "1d"},
		},
		Pending: []detect.PendingClient{{Client: id, ObservedFor: "3d"}},
	}
}

func scopeWith(id string, at time.Time) report.ScopeReport {
	return report.ScopeReport{Scope: id, GeneratedAt: at, Window: "90d", InCatalog: true, Lifecycle: rules.Deprecated, ReplacedBy: id,
		Clients: []report.ScopeHolder{{Client: id, Owner: id, Role: id, Grants: 1, Uses: 1, LastUsed: at, UsedInWindow: true}},
		UsedBy:  []string{id}}
}

func findingsWith(id string, at time.Time) []store.Finding {
	f := store.Finding{FindingKey: store.FindingKey{Kind: "unused_scope", Client: id, Subject: id},
		Severity: store.SeverityWarning, State: store.StateOpen, Count: 2, First: at, Last: at,
		Summary: id + " holds " + id + " and has never used it.",
		Evidence: store.Evidence{Subject: id, Country: id, Network: id, Scopes: []string{id}, Narrower: []string{id},
			Lines: []store.LineRef{{Source: "kc", Path: "/var/log/" + id, Line: 3}}}}
	g := f
	g.Kind, g.Subject, g.Severity = "broad_request", "admin", store.SeverityHigh
	g.Evidence.Narrower, g.Evidence.ReplacedBy = nil, id
	return []store.Finding{f, g}
}

// messageTexts returns the plain_text header of m, and its fallback text
// with every other text its blocks hold (mrkdwn), as Slack receives them.
func messageTexts(t *testing.T, m store.Message) (header []string, texts []string) {
	t.Helper()
	texts = []string{m.Text}
	var blocks []any
	if err := json.Unmarshal(m.Blocks, &blocks); err != nil {
		t.Fatal(err)
	}
	var walk func(v any, into *[]string)
	walk = func(v any, into *[]string) {
		switch v := v.(type) {
		case map[string]any:
			for k, x := range v {
				if s, ok := x.(string); ok && k == "text" {
					*into = append(*into, s)
				}
				walk(x, into)
			}
		case []any:
			for _, x := range v {
				walk(x, into)
			}
		}
	}
	for _, b := range blocks {
		if b.(map[string]any)["type"] == "header" {
			walk(b, &header)
			continue
		}
		walk(b, &texts)
	}
	return header, texts
}

// TestHostileIDsEscaped renders every human output with each hostile id
// and checks that no control character, bidi control or invalid byte
// reaches the reader, that no line is forged (as many lines as with a
// plain id), that the id is shown escaped rather than dropped, and that
// Slack markup from the id is escaped.
func TestHostileIDsEscaped(t *testing.T) {
	plain := humanOutputs(t, "plain-id")
	for _, id := range hostileIDs {
		outputs := humanOutputs(t, id)
		if len(outputs) != len(plain) {
			t.Fatalf("%d outputs, %d with a plain id", len(outputs), len(plain))
		}
		for name, texts := range outputs {
			if len(texts) != len(plain[name]) {
				t.Errorf("%s with %s: %d texts, %d with a plain id", name, report.Text(id), len(texts), len(plain[name]))
				continue
			}
			for i, s := range texts {
				where := name + " with " + report.Text(id)
				if !utf8.ValidString(s) {
					t.Errorf("%s: output is not UTF-8: %q", where, s)
				}
				for _, r := range s {
					if r != '\n' && !unicode.IsGraphic(r) {
						t.Errorf("%s: %U reaches the reader raw in %q", where, r, s)
						break
					}
				}
				if got, want := strings.Count(s, "\n"), strings.Count(plain[name][i], "\n"); got != want {
					t.Errorf("%s: %d lines, %d with a plain id: a row is forged\n%s", where, got, want, s)
				}
				shown := report.Text(id)
				if strings.Contains(name, "markdown") {
					shown = report.Markdown(id)
				}
				if strings.HasPrefix(name, "slack") {
					for _, markup := range []string{"<!channel>", "&amp;amp;"} {
						if strings.Contains(s, markup) && !strings.HasSuffix(name, " header") {
							t.Errorf("%s: %q in a mrkdwn text: %q", where, markup, s)
						}
					}
					continue // not every text names the id
				}
				if !strings.Contains(s, shown) {
					t.Errorf("%s: the id is not shown as %s:\n%s", where, shown, s)
				}
			}
		}
	}
}

// TestHostileIDsExactInJSONAndCSV checks that the outputs for programs
// keep the exact id: JSON escapes it, CSV quotes a field with a line
// break so that it stays one field of one record.
func TestHostileIDsExactInJSONAndCSV(t *testing.T) {
	at := time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)
	for _, id := range hostileIDs {
		var b bytes.Buffer
		if err := report.WriteClients(&b, []report.ClientView{{ID: id, Scopes: []report.ScopeView{{Scope: id}}}}, report.FormatJSON); err != nil {
			t.Fatal(err)
		}
		var views []report.ClientView
		if err := json.Unmarshal(b.Bytes(), &views); err != nil || views[0].ID != id && utf8.ValidString(id) {
			t.Errorf("clients json: %v, %+v", err, views)
		}

		b.Reset()
		if err := report.WriteUnused(&b, unusedWith(id, at), report.FormatJSON); err != nil {
			t.Fatal(err)
		}
		var rep detect.UnusedReport
		if err := json.Unmarshal(b.Bytes(), &rep); err != nil || utf8.ValidString(id) && (rep.Unused[0].Client != id || rep.Pending[0].Client != id) {
			t.Errorf("report unused json with %s: %v, %+v", report.Text(id), err, rep)
		}

		b.Reset()
		if err := report.WriteFindings(&b, findingsWith(id, at), report.FormatJSON); err != nil {
			t.Fatal(err)
		}
		var fvs []report.FindingView
		if err := json.Unmarshal(b.Bytes(), &fvs); err != nil || utf8.ValidString(id) && (fvs[0].Client != id || fvs[0].Subject != id) {
			t.Errorf("findings json with %s: %v, %+v", report.Text(id), err, fvs)
		}

		for name, render := range map[string]func(*bytes.Buffer) error{
			"report unused": func(b *bytes.Buffer) error { return report.WriteUnused(b, unusedWith(id, at), report.FormatCSV) },
			"report scope":  func(b *bytes.Buffer) error { return report.WriteScope(b, scopeWith(id, at), report.FormatCSV) },
		} {
			b.Reset()
			if err := render(&b); err != nil {
				t.Fatal(err)
			}
			raw := b.String()
			want := id
			if strings.ContainsAny(id, "\r\n\",") {
				want = `"` + strings.ReplaceAll(id, `"`, `""`) + `"`
			}
			if !strings.Contains(raw, want) {
				t.Errorf("%s csv with %s does not hold the exact id %q:\n%q", name, report.Text(id), want, raw)
			}
			rows, err := csv.NewReader(strings.NewReader(raw)).ReadAll()
			if err != nil {
				t.Errorf("%s csv with %s: %v", name, report.Text(id), err)
				continue
			}
			wantRows := 3 // header and two rows
			if name == "report scope" {
				wantRows = 2
			}
			// Go's csv reader turns a quoted \r\n into \n; the bytes above are exact.
			readBack := strings.ReplaceAll(id, "\r\n", "\n")
			if len(rows) != wantRows || rows[1][0] != readBack && rows[1][1] != readBack {
				t.Errorf("%s csv with %s: %d records %q, want %d with the id", name, report.Text(id), len(rows), rows, wantRows)
			}
		}
	}
}

func TestShellQuote(t *testing.T) {
	if got := shellQuote("a'b\x1b[31m"); got != `$'a\'b\x1b[31m'` {
		t.Errorf("shellQuote = %s", got)
	}
}
