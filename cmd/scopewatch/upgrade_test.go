package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/scopewatch/scopewatch/detect"
	"github.com/scopewatch/scopewatch/internal/traffic"
	"github.com/scopewatch/scopewatch/report"
	"github.com/scopewatch/scopewatch/store"
)

// TestUpgradeFromSchema2 starts today's daemon on a store written by the
// release before it: testdata/store/schema2.db is the file the schema 2
// scopewatch left after its demo, and the two JSON files beside it are
// what that release's `clients` and `findings` printed from it. The
// daemon migrates the file on open; every count and finding is kept, and
// each open finding's group is marked to be told once.
func TestUpgradeFromSchema2(t *testing.T) {
	bin := scopewatchBinary(t)
	dir := t.TempDir()
	fixture, err := os.ReadFile(filepath.Join("..", "..", "testdata", "store", "schema2.db"))
	if err != nil {
		t.Fatal(err)
	}
	dbPath := filepath.Join(dir, "scopewatch.db")
	write(t, dbPath, string(fixture))
	write(t, filepath.Join(dir, "rules.yaml"), traffic.DemoRules)
	cfg := filepath.Join(dir, "scopewatch.yaml")
	write(t, cfg, keepDatedClients(fmt.Sprintf(traffic.DemoConfig, dir, "127.0.0.1:0")))

	var wantClients []report.ClientView
	var wantFindings []report.FindingView
	readJSON(t, filepath.Join("..", "..", "testdata", "store", "schema2.clients.json"), &wantClients)
	readJSON(t, filepath.Join("..", "..", "testdata", "store", "schema2.findings.json"), &wantFindings)

	// That release listed FHIR uses among the scopes ("fhir:Observation.r");
	// today they are fhir_uses, with the same counts.
	for i, c := range wantClients {
		var scopes []report.ScopeView
		for _, s := range c.Scopes {
			if name, ok := strings.CutPrefix(s.Scope, detect.FHIRUsePrefix); ok {
				wantClients[i].FHIR = append(wantClients[i].FHIR, report.FHIRView{Interaction: name, Used: s.Used, LastUsed: s.LastUsed})
				continue
			}
			scopes = append(scopes, s)
		}
		wantClients[i].Scopes = scopes
	}

	d := startGeoDaemon(t, bin, cfg)
	var gotClients []report.ClientView
	getJSON(t, d, "/api/v1/clients", &gotClients)
	want, _ := json.Marshal(wantClients)
	got, _ := json.Marshal(gotClients)
	if string(got) != string(want) {
		t.Errorf("clients after the migration differ from what schema 2 reported:\n got %s\nwant %s", got, want)
	}
	var gotFindings []report.FindingView
	getJSON(t, d, "/api/v1/findings", &gotFindings)
	byID := make(map[string]report.FindingView, len(gotFindings))
	for _, f := range gotFindings {
		byID[f.ID] = f
	}
	for _, w := range wantFindings {
		g, ok := byID[w.ID]
		if !ok || g.Kind != w.Kind || g.Client != w.Client || g.Subject != w.Subject || g.Count != w.Count || !g.First.Equal(w.First) || !g.Opened.Equal(w.Opened) {
			t.Errorf("finding %s %s/%s: got %+v", w.ID, w.Kind, w.Client, g)
		}
	}
	d.stop(t)

	db, err := store.Open(dbPath, store.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if v, err := db.SchemaVersion(); err != nil || v != store.SchemaVersion {
		t.Errorf("schema version %d, %v; want %d", v, err, store.SchemaVersion)
	}
	groups, err := db.Groups()
	if err != nil {
		t.Fatal(err)
	}
	marked := map[store.GroupKey]bool{}
	for _, g := range groups {
		marked[g.GroupKey] = true
	}
	for _, w := range wantFindings {
		if k := (store.GroupKey{Kind: w.Kind, Client: w.Client}); w.State == "open" && !marked[k] {
			t.Errorf("group %v of an open finding not marked", k)
		}
	}
}

func readJSON(t *testing.T, path string, v any) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

func getJSON(t *testing.T, d *geoDaemon, path string, v any) {
	t.Helper()
	code, body, err := d.get(path)
	if err != nil || code != http.StatusOK {
		t.Fatalf("%s: %d %v %s", path, code, err, body)
	}
	if err := json.Unmarshal(body, v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}
