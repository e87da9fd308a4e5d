package main

import (
	"encoding/csv"
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/scopewatch/scopewatch/internal/probe"
	"github.com/scopewatch/scopewatch/report"
	"github.com/scopewatch/scopewatch/store"
)

// TestHostileClientIDsInCommands runs every command that prints a table or
// Markdown on a store whose clients a hostile token endpoint named (an
// escape sequence, a CR/LF that would forge a row, a bell, a bidi
// override) and checks that none reaches the terminal raw, while JSON and
// CSV keep the exact id.
func TestHostileClientIDsInCommands(t *testing.T) {
	ids := []string{"evil\x1b[31mred", "forged\r\nlab-portal  admin  0  0  never  0  never", "bell\a", "rtl\u202etxt.exe"}
	dir := t.TempDir()
	addr, err := probe.FreeAddr()
	if err != nil {
		t.Fatal(err)
	}
	cfgPath := filepath.Join(dir, "scopewatch.yaml")
	write(t, cfgPath, fmt.Sprintf("store: %[1]s/scopewatch.db\nlisten: %[2]s\nsources:\n  - {name: keycloak, path: %[1]s/keycloak.log, format: keycloak}\n", dir, addr))
	db, err := store.Open(filepath.Join(dir, "scopewatch.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC().Truncate(time.Second)
	b := store.NewBatch()
	st := store.NewState(db, 0)
	for _, id := range ids {
		c := st.Client(id)
		c.Seen.Add(1, now.Add(-200*24*time.Hour))
		c.Seen.Add(1, now.Add(-time.Hour))
		c.CountScope("admin", store.ScopeGranted, 3, now.Add(-time.Hour))
		c.CountScope(id, store.ScopeGranted, 1, now.Add(-time.Hour))
		c.CountScope(id, store.ScopeUsed, 1, now.Add(-time.Hour))
		k := store.FindingKey{Kind: "unused_scope", Client: id, Subject: "admin"}
		b.Findings[k] = store.Finding{FindingKey: k, Severity: store.SeverityWarning, State: store.StateOpen,
			Summary: id + " holds admin and has never used it.", First: now, Last: now, Count: 1, Opened: now, Changed: now}
	}
	st.Checkpoint(b)
	if err := db.Commit(b); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	run := func(args ...string) string {
		t.Helper()
		code, out, errOut := runCmd(t, append(args, "--config", cfgPath)...)
		if code != exitOK {
			t.Fatalf("%v: exit %d: %s", args, code, errOut)
		}
		return out
	}
	for _, id := range ids {
		if code, _, errOut := runCmd(t, "silence", "add", "--config", cfgPath, "--client", strings.ReplaceAll(id, "[", "?"), "--kind", "unused_scope",
			"--for", "30d", "--reason", "reason "+id); code != exitOK {
			t.Fatalf("silence add: exit %d: %s", code, errOut)
		}
	}

	human := map[string]string{
		"clients":                run("clients"),
		"report unused":          run("report", "unused"),
		"report unused markdown": run("report", "unused", "--format", "markdown"),
		"report scope":           run("report", "scope", "admin"),
		"report scope markdown":  run("report", "scope", "admin", "--format", "markdown"),
		"findings":               run("findings", "--state", "all"),
		"silence list":           run("silence", "list"),
	}
	for _, id := range ids {
		human["clients --client "+report.Text(id)] = run("clients", "--client", id)
		human["report scope "+report.Text(id)] = run("report", "scope", id)
	}
	for name, out := range human {
		if !utf8.ValidString(out) {
			t.Errorf("%s: not UTF-8: %q", name, out)
		}
		for _, r := range out {
			if r != '\n' && !unicode.IsGraphic(r) {
				t.Errorf("%s: %U reaches the terminal raw:\n%s", name, r, out)
				break
			}
		}
		for _, line := range strings.Split(out, "\n") {
			if strings.HasPrefix(line, "lab-portal") {
				t.Errorf("%s: a forged row: %q", name, line)
			}
		}
	}
	for _, id := range ids {
		if !strings.Contains(human["clients"], report.Text(id)) || !strings.Contains(human["findings"], report.Text(id)) {
			t.Errorf("the tables do not show %s", report.Text(id))
		}
	}

	var views []report.ClientView
	if err := json.Unmarshal([]byte(run("clients", "--format", "json")), &views); err != nil {
		t.Fatal(err)
	}
	got := map[string]bool{}
	for _, v := range views {
		got[v.ID] = true
	}
	var fvs []report.FindingView
	if err := json.Unmarshal([]byte(run("findings", "--state", "all", "--format", "json")), &fvs); err != nil {
		t.Fatal(err)
	}
	for _, f := range fvs {
		got["finding "+f.Client] = true
	}
	rows, err := csv.NewReader(strings.NewReader(run("report", "scope", "admin", "--format", "csv"))).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != len(ids)+1 {
		t.Errorf("report scope csv: %d records, want %d: %q", len(rows), len(ids)+1, rows)
	}
	for _, r := range rows[1:] {
		got["csv "+r[1]] = true
	}
	for _, id := range ids {
		// Go's CSV reader reads a quoted \r\n back as \n.
		for _, k := range []string{id, "finding " + id, "csv " + strings.ReplaceAll(id, "\r\n", "\n")} {
			if !got[k] {
				t.Errorf("JSON or CSV lacks the exact id: %q", k)
			}
		}
	}
}
