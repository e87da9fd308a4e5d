package alert

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/scopewatch/scopewatch/detect"
	"github.com/scopewatch/scopewatch/store"
)

func sampleReport() detect.UnusedReport {
	at := time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)
	return detect.UnusedReport{
		GeneratedAt: at, Window: "90d", MinObservation: "30d", Clients: 3,
		Unused: []detect.UnusedScope{
			{Client: "lab-portal", Owner: "lab@clinic.example", Role: "lab-technician", Scope: "read_all_data",
				Status: detect.StatusNeverUsed, Grants: 12, FirstGrant: at.AddDate(0, -4, 0), LastGrant: at, IdleFor: "120d"},
			{Client: "ehr-sync", Scope: "view_notes", Status: detect.StatusUnused, Registered: true,
				Grants: 3, LastGrant: at, LastUsed: at.AddDate(0, -4, 0), Uses: 7, IdleFor: "122d"},
			{Client: "mychart", Scope: "patient/*.read", Status: detect.StatusBroader, Grants: 9, LastGrant: at,
				LastUsed: at, Uses: 40, IdleFor: "0s", Narrower: []string{"patient/Condition.r", "patient/Observation.rs"}},
		},
		Pending: []detect.PendingClient{{Client: "triage-bot", ObservedFor: "9d"}},
	}
}

func TestWriteUnusedFormats(t *testing.T) {
	rep := sampleReport()

	var table bytes.Buffer
	if err := WriteUnused(&table, rep, FormatTable); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"Unused scopes (window 90d, clients observed at least 30d), as of 2026-11-01 12:00 UTC",
		"lab-portal", "read_all_data", "never_used", "never", "lab@clinic.example",
		"unused (registered)", "2026-07-01",
		"3 scope grant(s) to prune or narrow across 3 client(s); 3 client(s) examined.",
		"broader_than_used", "patient/Condition.r patient/Observation.rs",
		"Not judged yet, observed less than 30d: triage-bot (9d)",
	} {
		if !strings.Contains(table.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, table.String())
		}
	}

	var csvOut bytes.Buffer
	if err := WriteUnused(&csvOut, rep, FormatCSV); err != nil {
		t.Fatal(err)
	}
	rows, err := csv.NewReader(&csvOut).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 4 || rows[0][0] != "client" || rows[1][3] != "read_all_data" || rows[2][5] != "true" ||
		rows[3][12] != "patient/Condition.r patient/Observation.rs" {
		t.Errorf("csv rows = %q", rows)
	}
	if rows[1][10] != "" || rows[2][10] != "2026-07-01T12:00:00Z" {
		t.Errorf("last_used column = %q, %q; want empty for never and RFC 3339 otherwise", rows[1][10], rows[2][10])
	}

	var js bytes.Buffer
	if err := WriteUnused(&js, rep, FormatJSON); err != nil {
		t.Fatal(err)
	}
	var back detect.UnusedReport
	if err := json.Unmarshal(js.Bytes(), &back); err != nil {
		t.Fatal(err)
	}
	if len(back.Unused) != 3 || back.Unused[1].Uses != 7 || !back.GeneratedAt.Equal(rep.GeneratedAt) {
		t.Errorf("json round trip = %+v", back)
	}
	if n := strings.Count(js.String(), `"last_used"`); n != 2 {
		t.Errorf("a never-used scope carries a last_used time:\n%s", js.String())
	}

	if err := WriteUnused(&js, rep, "xml"); !errors.Is(err, ErrFormat) {
		t.Errorf("unknown format: err = %v, want ErrFormat", err)
	}
}

func TestWriteUnusedEmpty(t *testing.T) {
	var out bytes.Buffer
	if err := WriteUnused(&out, detect.UnusedReport{Window: "90d", MinObservation: "30d"}, FormatTable); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "No unused scopes.") {
		t.Errorf("empty report:\n%s", out.String())
	}
}

func TestClientsViews(t *testing.T) {
	t1 := time.Date(2026, 10, 1, 0, 0, 0, 0, time.UTC)
	cs := []store.Client{{
		ID:   "lab",
		Seen: store.Counter{N: 3, First: t1, Last: t1.Add(time.Hour)},
		Scopes: map[string]store.ScopeUsage{
			"view_lab_results": {Granted: store.Counter{N: 2, First: t1, Last: t1}, Used: store.Counter{N: 1, First: t1, Last: t1}},
			"openid":           {Granted: store.Counter{N: 2, First: t1, Last: t1}},
		},
		IPs: map[string]store.Counter{"10.0.0.1": {N: 1, Last: t1}, "10.0.0.2": {N: 1, Last: t1.Add(time.Minute)}},
	}}
	views := Views(cs)
	if len(views) != 1 || views[0].Scopes[0].Scope != "openid" || views[0].IPs[0] != "10.0.0.2" {
		t.Fatalf("views = %+v; want scopes sorted by name and IPs newest first", views)
	}
	var out bytes.Buffer
	if err := WriteClients(&out, views, FormatTable); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "view_lab_results") || !strings.Contains(out.String(), "2026-10-01") {
		t.Errorf("clients table:\n%s", out.String())
	}
	if err := WriteClients(&out, views, FormatCSV); !errors.Is(err, ErrFormat) {
		t.Errorf("csv clients: err = %v, want ErrFormat", err)
	}
}
