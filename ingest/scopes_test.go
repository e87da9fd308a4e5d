package ingest

import (
	"slices"
	"testing"
)

func TestSplitScopes(t *testing.T) {
	tests := []struct {
		in   string
		want []string
	}{
		{"", nil},
		{"   ", nil},
		{"openid", []string{"openid"}},
		{"openid profile", []string{"openid", "profile"}},
		{"  openid   profile  ", []string{"openid", "profile"}},
		{"patient/Observation.rs?category=http://terminology.hl7.org/CodeSystem/observation-category|laboratory launch/patient",
			[]string{"patient/Observation.rs?category=http://terminology.hl7.org/CodeSystem/observation-category|laboratory", "launch/patient"}},
		{"read:logs,read:users", []string{"read:logs,read:users"}},
		{"a\tb", []string{"a\tb"}},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got := SplitScopes(tt.in, nil)
			if !slices.Equal(got, tt.want) {
				t.Errorf("SplitScopes(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

func TestSplitScopesAppends(t *testing.T) {
	got := SplitScopes("b c", []string{"a"})
	if want := []string{"a", "b", "c"}; !slices.Equal(got, want) {
		t.Errorf("SplitScopes = %q, want %q", got, want)
	}
}

func TestScopeListsShared(t *testing.T) {
	var c scopeLists
	l1 := c.split([]byte("openid profile"))
	l2 := c.split([]byte("openid profile"))
	if &l1[0] != &l2[0] {
		t.Error("equal scope strings were split twice")
	}
	if cap(l1) != len(l1) {
		t.Errorf("cap %d != len %d: an append by a consumer would write into the shared array", cap(l1), len(l1))
	}
	if got := c.split([]byte("   ")); got != nil {
		t.Errorf("split(spaces) = %q, want nil", got)
	}
}
