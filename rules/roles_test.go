package rules

import "testing"

func TestRoleAllows(t *testing.T) {
	role := []string{"view_lab_results", "patient/*.rs", "user/Medication*.rs", "system/Observation.rs?category=laboratory", "lab_*"}
	for _, tc := range []struct {
		scope string
		want  bool
	}{
		{"view_lab_results", true},
		{"view_lab_resultsx", false},
		{"patient/Observation.r", true},        // narrower than patient/*.rs
		{"patient/Observation.rsu", false},     // an interaction more
		{"patient/Observation.read", true},     // v1 read is rs
		{"user/MedicationRequest.s", true},     // within the pattern
		{"user/MedicationDispense.rs", true},   // within the pattern
		{"user/Medication.rs", true},           // * matches nothing too
		{"user/Observation.rs", false},         // outside the pattern
		{"patient/MedicationRequest.c", false}, // patient/*.rs has no c
		{"system/Observation.rs?category=laboratory", true},
		{"system/Observation.r?category=laboratory", true},
		{"system/Observation.rs", false}, // the constraint dropped
		{"lab_results", true},
		{"lab_", true},
		{"lab/results", false}, // * does not cross a /
		{"labs", false},
	} {
		var smart *SMARTScope
		if g, err := ParseSMART(tc.scope); err == nil {
			smart = &g
		}
		if got := RoleAllows(role, tc.scope, smart); got != tc.want {
			t.Errorf("RoleAllows(%q) = %v, want %v", tc.scope, got, tc.want)
		}
	}
}
