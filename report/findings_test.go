package report

import (
	"bytes"
	"encoding/json"
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/scopewatch/scopewatch/rules"
	"github.com/scopewatch/scopewatch/store"
)

var t0 = time.Date(2026, 3, 1, 10, 15, 42, 0, time.UTC)

func sampleFindings() []store.Finding {
	f1 := store.Finding{
		FindingKey: store.FindingKey{Kind: "unused_scope", Client: "lab-portal", Subject: "read_all_data"},
		Severity:   store.SeverityWarning, State: store.StateOpen,
		Summary: "lab-portal holds read_all_data but has not used it in 90d",
		First:   t0, Last: t0.Add(48 * time.Hour), Count: 3, Opened: t0, Changed: t0,
		Evidence: store.Evidence{LastGrant: t0.Add(48 * time.Hour), ReplacedBy: "view_lab_results"},
	}
	f1.Evidence.AddLine(store.LineRef{Source: "keycloak", Path: "/var/log/keycloak.log", Line: 7, Offset: 700})
	return []store.Finding{
		f1,
		{
			FindingKey: store.FindingKey{Kind: "token_in_url", Subject: "fhir-gw"},
			Severity:   store.SeverityHigh, State: store.StateSilenced, Silence: "s1",
			Summary: "access tokens appear in request URLs of fhir-gw",
			First:   t0, Last: t0, Count: 1, Opened: t0, Changed: t0,
		},
		{
			FindingKey: store.FindingKey{Kind: "unfamiliar_geo", Client: "evil\x1b[2Jclient", Subject: "KP"},
			Severity:   store.SeverityHigh, State: store.StateResolved,
			Summary: "first use from KP\twith a tab",
			First:   t0, Last: t0.In(time.FixedZone("CET", 3600)), Count: 12, Opened: t0, Resolved: t0.Add(time.Hour), Changed: t0.Add(time.Hour),
		},
	}
}

func sampleSilences() []store.Silence {
	return []store.Silence{
		{ID: "c1", Kind: "token_in_url", Subject: "fhir-gw", Expires: t0.AddDate(0, 1, 0), Reason: "gateway fix scheduled", Config: true},
		{ID: "s1", Client: "lab-*", Kind: "unused_scope", Expires: t0.Add(30 * 24 * time.Hour), Reason: "quarterly review pending",
			Author: "alice", Created: t0},
		{ID: "s2", Subject: "KP", Expires: t0.Add(time.Hour), Reason: "pen test\nfrom KP", Author: "bob", Created: t0},
	}
}

func TestWriteFindingsTable(t *testing.T) {
	all := sampleFindings()
	tests := []struct {
		name string
		fs   []store.Finding
		want string
	}{
		{"three states, hostile client id", all, `ID            KIND            SEVERITY  STATE     CLIENT               SUBJECT        COUNT  FIRST              LAST               SUMMARY
251137f8b85d  unused_scope    warning   open      lab-portal           read_all_data  3      2026-03-01T10:15Z  2026-03-03T10:15Z  lab-portal holds read_all_data but has not used it in 90d
549f72ab60b5  token_in_url    high      silenced  -                    fhir-gw        1      2026-03-01T10:15Z  2026-03-01T10:15Z  access tokens appear in request URLs of fhir-gw
8a8c8a697220  unfamiliar_geo  high      resolved  "evil\x1b[2Jclient"  KP             12     2026-03-01T10:15Z  2026-03-01T10:15Z  "first use from KP\twith a tab"

3 findings (1 open, 1 silenced, 1 resolved)
`},
		{"one", all[:1], `ID            KIND          SEVERITY  STATE  CLIENT      SUBJECT        COUNT  FIRST              LAST               SUMMARY
251137f8b85d  unused_scope  warning   open   lab-portal  read_all_data  3      2026-03-01T10:15Z  2026-03-03T10:15Z  lab-portal holds read_all_data but has not used it in 90d

1 finding (1 open, 0 silenced, 0 resolved)
`},
		{"none", nil, "No findings.\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out bytes.Buffer
			if err := WriteFindings(&out, tt.fs, FormatTable); err != nil {
				t.Fatal(err)
			}
			if got := out.String(); got != tt.want {
				t.Errorf("got:\n%s\nwant:\n%s", got, tt.want)
			}
		})
	}
}

func TestWriteFindingsJSON(t *testing.T) {
	fs := sampleFindings()[:2]
	var out bytes.Buffer
	if err := WriteFindings(&out, fs, FormatJSON); err != nil {
		t.Fatal(err)
	}
	want := `[
  {
    "id": "251137f8b85d",
    "kind": "unused_scope",
    "client": "lab-portal",
    "subject": "read_all_data",
    "severity": "warning",
    "state": "open",
    "summary": "lab-portal holds read_all_data but has not used it in 90d",
    "first": "2026-03-01T10:15:42Z",
    "last": "2026-03-03T10:15:42Z",
    "count": 3,
    "opened": "2026-03-01T10:15:42Z",
    "changed": "2026-03-01T10:15:42Z",
    "silence": "",
    "evidence": {
      "lines": [
        {
          "source": "keycloak",
          "path": "/var/log/keycloak.log",
          "line": 7,
          "offset": 700
        }
      ],
      "last_grant": "2026-03-03T10:15:42Z",
      "replaced_by": "view_lab_results"
    }
  },
  {
    "id": "549f72ab60b5",
    "kind": "token_in_url",
    "client": "",
    "subject": "fhir-gw",
    "severity": "high",
    "state": "silenced",
    "summary": "access tokens appear in request URLs of fhir-gw",
    "first": "2026-03-01T10:15:42Z",
    "last": "2026-03-01T10:15:42Z",
    "count": 1,
    "opened": "2026-03-01T10:15:42Z",
    "changed": "2026-03-01T10:15:42Z",
    "silence": "s1",
    "evidence": {}
  }
]
`
	if got := out.String(); got != want {
		t.Errorf("got:\n%s\nwant:\n%s", got, want)
	}

	// What the API serves reads back into the same findings.
	var views []FindingView
	if err := json.Unmarshal(out.Bytes(), &views); err != nil {
		t.Fatal(err)
	}
	for i, v := range views {
		if got := v.Finding(); !reflect.DeepEqual(got, fs[i]) {
			t.Errorf("finding %d read back as\n%+v\nwant\n%+v", i, got, fs[i])
		}
	}

	out.Reset()
	if err := WriteFindings(&out, nil, FormatJSON); err != nil || out.String() != "[]\n" {
		t.Errorf("no findings as JSON: %q, %v; want an empty array", out.String(), err)
	}
}

func TestWriteSilences(t *testing.T) {
	now := t0.Add(24 * time.Hour)
	tests := []struct {
		name   string
		ss     []store.Silence
		format string
		want   string
	}{
		{"table", sampleSilences(), FormatTable, `ID  CLIENT  KIND          SUBJECT  EXPIRES            ACTIVE  ORIGIN  REASON
c1  *       token_in_url  fhir-gw  2026-04-01T10:15Z  yes     config  gateway fix scheduled
s1  lab-*   unused_scope  *        2026-03-31T10:15Z  yes     store   quarterly review pending
s2  *       *             KP       2026-03-01T11:15Z  no      store   "pen test\nfrom KP"
`},
		{"table empty", nil, FormatTable, "No silences.\n"},
		{"json", sampleSilences()[:2], FormatJSON, `[
  {
    "id": "c1",
    "client": "",
    "kind": "token_in_url",
    "subject": "fhir-gw",
    "expires": "2026-04-01T10:15:42Z",
    "active": true,
    "origin": "config",
    "reason": "gateway fix scheduled",
    "author": ""
  },
  {
    "id": "s1",
    "client": "lab-*",
    "kind": "unused_scope",
    "subject": "",
    "expires": "2026-03-31T10:15:42Z",
    "active": true,
    "origin": "store",
    "reason": "quarterly review pending",
    "author": "alice",
    "created": "2026-03-01T10:15:42Z"
  }
]
`},
		{"json empty", nil, FormatJSON, "[]\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out bytes.Buffer
			if err := WriteSilences(&out, tt.ss, now, tt.format); err != nil {
				t.Fatal(err)
			}
			if got := out.String(); got != tt.want {
				t.Errorf("got:\n%s\nwant:\n%s", got, tt.want)
			}
		})
	}
}

func TestSilenceViewReadsBack(t *testing.T) {
	for _, s := range sampleSilences() {
		b, err := json.Marshal(NewSilenceView(s, t0))
		if err != nil {
			t.Fatal(err)
		}
		var v SilenceView
		if err := json.Unmarshal(b, &v); err != nil {
			t.Fatal(err)
		}
		if got := v.Silence(); !reflect.DeepEqual(got, s) {
			t.Errorf("silence read back as %+v, want %+v", got, s)
		}
	}
}

func TestWriteUnknownFormat(t *testing.T) {
	if err := WriteFindings(&bytes.Buffer{}, nil, "csv"); !errors.Is(err, ErrFormat) {
		t.Errorf("WriteFindings(csv) = %v, want ErrFormat", err)
	}
	if err := WriteSilences(&bytes.Buffer{}, nil, t0, "yaml"); !errors.Is(err, ErrFormat) {
		t.Errorf("WriteSilences(yaml) = %v, want ErrFormat", err)
	}
}

func TestConfigSilences(t *testing.T) {
	exp := t0.AddDate(1, 0, 0)
	got := ConfigSilences([]rules.Silence{
		{Client: "lab-*", Reason: "r1", Until: "2027-03-01", Expires: exp, Line: 9},
		{Kind: "token_in_url", Subject: "gw", Reason: "r2", Until: "2027-03-01", Expires: exp, Line: 12},
	})
	want := []store.Silence{
		{ID: "c1", Client: "lab-*", Expires: exp, Reason: "r1", Config: true},
		{ID: "c2", Kind: "token_in_url", Subject: "gw", Expires: exp, Reason: "r2", Config: true},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("ConfigSilences = %+v\nwant %+v", got, want)
	}
}
