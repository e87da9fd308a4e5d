package report

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/scopewatch/scopewatch/rules"
	"github.com/scopewatch/scopewatch/store"
)

var scopeNow = time.Date(2026, 11, 23, 13, 0, 0, 0, time.UTC)

func ctr(n uint64, first, last time.Time) store.Counter {
	return store.Counter{N: n, First: first, Last: last}
}

// scopeFixture holds a plain scope and a SMART wildcard: lab-portal used
// read_all_data recently, ehr-sync only before the window, billing holds
// it by registration only; mychart read Observations, which
// patient/*.read covers.
func scopeFixture() ([]store.Client, ScopeOptions) {
	day := 24 * time.Hour
	old, recent := scopeNow.Add(-200*day), scopeNow.Add(-2*day)
	cs := []store.Client{
		{ID: "lab-portal", Seen: ctr(9, old, recent), Scopes: map[string]store.ScopeUsage{
			"read_all_data": {Granted: ctr(40, old, recent), Used: ctr(12, old, recent)}}},
		{ID: "ehr-sync", Seen: ctr(9, old, recent), Scopes: map[string]store.ScopeUsage{
			"read_all_data": {Granted: ctr(3, old, recent), Used: ctr(2, old, old)}}},
		{ID: "retired-app", Seen: ctr(9, old, old), Scopes: map[string]store.ScopeUsage{
			"read_all_data": {Granted: ctr(5, old, old), Used: ctr(5, old, old)}}},
		{ID: "mychart", Seen: ctr(9, old, recent), Scopes: map[string]store.ScopeUsage{
			"patient/*.read":      {Granted: ctr(7, old, recent)},
			"fhir:Observation.r":  {Used: ctr(4, old, recent)},
			"fhir:Observation.s":  {Used: ctr(1, old, old)},
			"fhir:Patient.c":      {Used: ctr(6, old, recent)}, // a create: not covered by .read
			"patient/Patient.cud": {Granted: ctr(1, old, old)},
		}},
		// portal-lite never held patient/*.read: its Observation reads
		// were authorised by the narrower scope it holds.
		{ID: "portal-lite", Seen: ctr(3, old, recent), Scopes: map[string]store.ScopeUsage{
			"patient/Observation.rs": {Granted: ctr(3, old, recent)},
			"fhir:Observation.r":     {Used: ctr(3, old, recent)},
		}},
	}
	opt := ScopeOptions{
		Window: 90 * day,
		Now:    func() time.Time { return scopeNow },
		Registrations: map[string]rules.Client{
			"lab-portal": {Owner: "lab@clinic.example", Role: "lab-technician"},
			"billing":    {Owner: "finance@clinic.example", Role: "billing", Scopes: []string{"read_all_data"}},
		},
		Catalog: map[string]rules.Scope{
			"read_all_data": {Lifecycle: rules.Deprecated, ReplacedBy: "view_lab_results", Sunset: "2026-12-31"},
		},
	}
	return cs, opt
}

func TestScope(t *testing.T) {
	tests := []struct {
		name        string
		scope       string
		wantClients []string
		wantUsedBy  []string
		wantUses    []uint64
		wantCatalog bool
	}{
		{"plain scope", "read_all_data", []string{"billing", "ehr-sync", "lab-portal"}, []string{"lab-portal"}, []uint64{0, 2, 12}, true},
		{"SMART scope counts the FHIR calls it covers, of its holders only", "patient/*.read", []string{"mychart"}, []string{"mychart"}, []uint64{5}, false},
		{"a narrower SMART scope", "patient/Observation.rs", []string{"portal-lite"}, []string{"portal-lite"}, []uint64{3}, false},
		{"SMART scope granted before the window only", "patient/Patient.cud", []string{"mychart"}, []string{"mychart"}, []uint64{6}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cs, opt := scopeFixture()
			opt.Scope = tt.scope
			rep, err := NewScopeReport(cs, opt)
			if err != nil {
				t.Fatal(err)
			}
			var clients []string
			var uses []uint64
			for _, h := range rep.Clients {
				clients = append(clients, h.Client)
				uses = append(uses, h.Uses)
			}
			if !slices.Equal(clients, tt.wantClients) || !slices.Equal(rep.UsedBy, tt.wantUsedBy) || !slices.Equal(uses, tt.wantUses) {
				t.Errorf("clients %q, used by %q, uses %v; want %q, %q, %v", clients, rep.UsedBy, uses, tt.wantClients, tt.wantUsedBy, tt.wantUses)
			}
			if rep.InCatalog != tt.wantCatalog {
				t.Errorf("in catalog = %v, want %v", rep.InCatalog, tt.wantCatalog)
			}
		})
	}
}

func TestScopeUnknown(t *testing.T) {
	cs, opt := scopeFixture()
	opt.Scope = "view_everything"
	if _, err := NewScopeReport(cs, opt); !errors.Is(err, ErrUnknownScope) {
		t.Errorf("err = %v, want ErrUnknownScope", err)
	}
	opt.Scope = "view_lab_results"
	opt.Catalog["view_lab_results"] = rules.Scope{Lifecycle: rules.Active}
	rep, err := NewScopeReport(cs, opt)
	if err != nil {
		t.Fatalf("a catalog scope nobody holds: %v", err)
	}
	if got, want := rep.Verdict(), "no client used view_lab_results within the window: it can be removed"; got != want {
		t.Errorf("verdict %q, want %q", got, want)
	}
}

func TestWriteScope(t *testing.T) {
	cs, opt := scopeFixture()
	opt.Scope = "read_all_data"
	rep, err := NewScopeReport(cs, opt)
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := WriteScope(&out, rep, FormatTable); err != nil {
		t.Fatal(err)
	}
	want := `Scope read_all_data (window 90d), as of 2026-11-23 13:00 UTC: in the catalog, deprecated, replaced by view_lab_results, sunset 2026-12-31

CLIENT      OWNER                   ROLE            GRANTS  FIRST GRANTED  LAST GRANTED  USES  LAST USED
billing     finance@clinic.example  billing         0       registered     never         0     never
ehr-sync    -                       -               3       2026-05-07     2026-11-21    2     2026-05-07
lab-portal  lab@clinic.example      lab-technician  40      2026-05-07     2026-11-21    12    2026-11-21

removing read_all_data from the catalog would break 1 client that used it within the window: lab-portal.
`
	if got := out.String(); got != want {
		t.Errorf("table:\n%s\nwant:\n%s", got, want)
	}

	opt.Scope = "patient/*.read"
	smart, err := NewScopeReport(cs, opt)
	if err != nil {
		t.Fatal(err)
	}
	out.Reset()
	if err := WriteScope(&out, smart, FormatMarkdown); err != nil {
		t.Fatal(err)
	}
	want = `# Scope patient/\*.read

- Window: 90d
- Report time: 2026-11-23 13:00 UTC
- Catalog: not in the catalog

| Client | Owner | Role | Grants | First granted | Last granted | Uses | Last used |
|---|---|---|---|---|---|---|---|
| mychart | - | - | 7 | 2026-05-07 | 2026-11-21 | 5 | 2026-11-21 |

removing patient/\*.read from the catalog would break 1 client that used it within the window: mychart.
`
	if got := out.String(); got != want {
		t.Errorf("markdown:\n%s\nwant:\n%s", got, want)
	}

	out.Reset()
	if err := WriteScope(&out, rep, FormatCSV); err != nil {
		t.Fatal(err)
	}
	rows, err := csv.NewReader(&out).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 4 || rows[1][1] != "billing" || rows[1][6] != "" || rows[3][8] != "12" || rows[3][10] != "true" {
		t.Errorf("csv rows = %q", rows)
	}

	out.Reset()
	if err := WriteScope(&out, rep, FormatJSON); err != nil {
		t.Fatal(err)
	}
	var back struct {
		ScopeReport
		Verdict string `json:"verdict"`
	}
	if err := json.Unmarshal(out.Bytes(), &back); err != nil {
		t.Fatal(err)
	}
	if back.Lifecycle != rules.Deprecated || len(back.Clients) != 3 || back.Verdict != rep.Verdict() {
		t.Errorf("json = %+v", back)
	}
	if err := WriteScope(&out, rep, "xml"); !errors.Is(err, ErrFormat) {
		t.Errorf("unknown format: err = %v, want ErrFormat", err)
	}
}
