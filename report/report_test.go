package report

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

func TestWriteUnusedMarkdown(t *testing.T) {
	rep := sampleReport()
	at := rep.GeneratedAt
	rep.Unused = append(rep.Unused,
		detect.UnusedScope{Client: "lab_sync", Owner: "lab@clinic.example", Role: "lab-technician", Scope: "view_imaging",
			Status: detect.StatusNeverRequested, Registered: true, IdleFor: "95d"},
		detect.UnusedScope{Client: "lab-portal", Owner: "lab@clinic.example", Scope: "system/*.*",
			Status: detect.StatusInsufficientCoverage, Judged: detect.StatusNeverUsed, Coverage: "40 of 90 days",
			Grants: 2, FirstGrant: at.AddDate(0, -1, 0), LastGrant: at, IdleFor: "31d"},
		detect.UnusedScope{Client: "ehr-sync", Owner: "ops|team", Role: "sync", Scope: "user/Patient.rs?`x`",
			Status: detect.StatusUnused, Grants: 1, FirstGrant: at.AddDate(0, -5, 0), LastGrant: at,
			LastUsed: at.AddDate(0, -4, 0), Uses: 1, IdleFor: "123d"},
	)
	var out bytes.Buffer
	if err := WriteUnused(&out, rep, FormatMarkdown); err != nil {
		t.Fatal(err)
	}
	want := "# Unused OAuth scopes\n" +
		"\n" +
		"- Window: 90d\n" +
		"- Minimum observation: 30d\n" +
		"- Report time: 2026-11-01 12:00 UTC\n" +
		"- Clients examined: 3\n" +
		"\n" +
		"## lab@clinic.example\n" +
		"\n" +
		"### Role: lab-technician\n" +
		"\n" +
		"| Client | Scope | Status | Granted since | Last used | Narrower replacement |\n" +
		"|---|---|---|---|---|---|\n" +
		"| lab-portal | read\\_all\\_data | never\\_used | 2026-07-01 | never | - |\n" +
		"| lab\\_sync | view\\_imaging | never\\_requested (registered) | registered | never | - |\n" +
		"\n" +
		"### Role: (no role)\n" +
		"\n" +
		"| Client | Scope | Status | Granted since | Last used | Narrower replacement |\n" +
		"|---|---|---|---|---|---|\n" +
		"| lab-portal | system/\\*.\\* | insufficient coverage (40 of 90 days) | 2026-10-01 | never | - |\n" +
		"\n" +
		"2 scope grants to prune or narrow across 2 clients; 1 more not judged, their logs were not observed for the whole window.\n" +
		"\n" +
		"## ops\\|team\n" +
		"\n" +
		"### Role: sync\n" +
		"\n" +
		"| Client | Scope | Status | Granted since | Last used | Narrower replacement |\n" +
		"|---|---|---|---|---|---|\n" +
		"| ehr-sync | user/Patient.rs?\\`x\\` | unused | 2026-06-01 | 2026-07-01 | - |\n" +
		"\n" +
		"1 scope grant to prune or narrow across 1 client.\n" +
		"\n" +
		"## (no owner)\n" +
		"\n" +
		"### Role: (no role)\n" +
		"\n" +
		"| Client | Scope | Status | Granted since | Last used | Narrower replacement |\n" +
		"|---|---|---|---|---|---|\n" +
		"| ehr-sync | view\\_notes | unused (registered) | registered | 2026-07-01 | - |\n" +
		"| mychart | patient/\\*.read | broader\\_than\\_used | never | 2026-11-01 | patient/Condition.r patient/Observation.rs |\n" +
		"\n" +
		"2 scope grants to prune or narrow across 2 clients.\n" +
		"\n" +
		"## Total\n" +
		"\n" +
		"5 scope grants to prune or narrow across 4 clients; 1 more not judged, their logs were not observed for the whole window.\n" +
		"\n" +
		"## Not judged yet\n" +
		"\n" +
		"Observed for less than 30d:\n" +
		"\n" +
		"- triage-bot (9d)\n"
	if got := out.String(); got != want {
		t.Errorf("got:\n%s\nwant:\n%s", got, want)
	}

	out.Reset()
	if err := WriteUnused(&out, detect.UnusedReport{Window: "90d", MinObservation: "30d"}, FormatMarkdown); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "\nNo unused scopes.\n") || strings.Contains(out.String(), "## Total") {
		t.Errorf("empty markdown report:\n%s", out.String())
	}
}

// TestViewsSeparateFHIRUses: a FHIR interaction recorded for a client is
// shown as a FHIR use, not among its scopes, in JSON and in the table.
func TestViewsSeparateFHIRUses(t *testing.T) {
	at := time.Date(2026, 10, 1, 0, 0, 0, 0, time.UTC)
	c := store.Client{ID: "app", Scopes: map[string]store.ScopeUsage{
		"patient/Observation.rs": {Granted: store.Counter{N: 2, First: at, Last: at}},
		"fhir:Observation.r":     {Used: store.Counter{N: 5, First: at, Last: at}},
	}}
	v := Views([]store.Client{c})[0]
	if len(v.Scopes) != 1 || v.Scopes[0].Scope != "patient/Observation.rs" {
		t.Errorf("scopes %+v, want the SMART scope alone", v.Scopes)
	}
	if len(v.FHIR) != 1 || v.FHIR[0].Interaction != "Observation.r" || v.FHIR[0].Used != 5 {
		t.Errorf("FHIR uses %+v, want Observation.r used 5 times", v.FHIR)
	}
	var b strings.Builder
	if err := WriteClients(&b, []ClientView{v}, FormatTable); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(b.String(), "FHIR Observation.r") || strings.Contains(b.String(), "fhir:") {
		t.Errorf("table:\n%s\nwant a FHIR Observation.r row and no fhir: scope", b.String())
	}
}
