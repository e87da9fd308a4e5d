package store

import (
	"testing"
	"time"
)

// TestApplySilences holds the rule readers see silences by, which the
// engine applies too (SilenceFor).
func TestApplySilences(t *testing.T) {
	now := time.Date(2026, 9, 2, 0, 0, 0, 0, time.UTC)
	lab := FindingKey{Kind: "unused_scope", Client: "lab-portal", Subject: "read_all_data"}
	ss := []Silence{
		{ID: "c1", Kind: "token_in_url", Expires: now.Add(time.Hour), Config: true},
		{ID: "s1", Client: "lab-*", Expires: now.Add(time.Hour)},
		{ID: "s2", Kind: "unused_scope", Expires: now.Add(time.Hour)},
		{ID: "s3", Client: "lab-portal", Expires: now}, // ends at now: no longer active
	}
	tests := []struct {
		name      string
		in        Finding
		wantState string
		wantBy    string
	}{
		{"open and matched: first match", Finding{FindingKey: lab, State: StateOpen}, StateSilenced, "s1"},
		{"silenced: the first match, as the engine does", Finding{FindingKey: lab, State: StateSilenced, Silence: "s2"}, StateSilenced, "s1"},
		{"silence expired: another one", Finding{FindingKey: lab, State: StateSilenced, Silence: "s3"}, StateSilenced, "s1"},
		{"config silence", Finding{FindingKey: FindingKey{Kind: "token_in_url", Subject: "gw"}, State: StateOpen}, StateSilenced, "c1"},
		{"silence gone: open again", Finding{FindingKey: FindingKey{Kind: "broad_request", Client: "app"}, State: StateSilenced, Silence: "s9"}, StateOpen, ""},
		{"no match stays open", Finding{FindingKey: FindingKey{Kind: "broad_request", Client: "app"}, State: StateOpen}, StateOpen, ""},
		{"resolved untouched", Finding{FindingKey: lab, State: StateResolved}, StateResolved, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fs := []Finding{tt.in}
			ApplySilences(fs, ss, now)
			if fs[0].State != tt.wantState || fs[0].Silence != tt.wantBy {
				t.Errorf("state %s by %q, want %s by %q", fs[0].State, fs[0].Silence, tt.wantState, tt.wantBy)
			}
		})
	}
}
