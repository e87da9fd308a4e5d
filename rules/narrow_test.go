package rules

import (
	"strings"
	"testing"
)

// scopeStrings renders scopes as their v2 forms joined by spaces, and
// checks that each one's Raw is that form.
func scopeStrings(t *testing.T, scopes []SMARTScope) string {
	t.Helper()
	var s []string
	for _, sc := range scopes {
		if sc.Raw != sc.String() || sc.Version != 2 {
			t.Errorf("scope %s: Raw %q, Version %d; want Raw = String() and Version 2", sc, sc.Raw, sc.Version)
		}
		s = append(s, sc.String())
	}
	return strings.Join(s, " ")
}

func TestNarrow(t *testing.T) {
	cases := []struct {
		name string
		uses []Use
		want string
	}{
		{"none", nil, ""},
		{"brief example", []Use{
			{"patient", "Observation", Read},
			{"patient", "Observation", Search},
			{"patient", "Condition", Read},
		}, "patient/Condition.r patient/Observation.rs"},
		{"repeats", []Use{
			{"patient", "Observation", Read},
			{"patient", "Observation", Read},
		}, "patient/Observation.r"},
		{"letters in cruds order", []Use{
			{"user", "Appointment", Delete},
			{"user", "Appointment", Create},
			{"user", "Appointment", Search},
			{"user", "Appointment", Update},
			{"user", "Appointment", Read},
		}, "user/Appointment.cruds"},
		{"contexts kept apart", []Use{
			{"user", "Observation", Read},
			{"patient", "Observation", Read},
			{"system", "Observation", Search},
		}, "patient/Observation.r system/Observation.s user/Observation.r"},
		{"system wide use needs wildcard", []Use{
			{"system", "*", Search},
			{"system", "Patient", Read},
		}, "system/*.s system/Patient.r"},
		{"typed scope inside wildcard dropped", []Use{
			{"system", "*", Search},
			{"system", "Patient", Search},
			{"user", "Patient", Search},
		}, "system/*.s user/Patient.s"},
		{"invalid uses ignored", []Use{
			{"", "Observation", Read},
			{"patient", "", Read},
			{"patient", "Observation", 0},
			{"patient", "Condition", Read},
		}, "patient/Condition.r"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := scopeStrings(t, Narrow(c.uses)); got != c.want {
				t.Errorf("Narrow(%v) = %q, want %q", c.uses, got, c.want)
			}
		})
	}
}

func TestReplacement(t *testing.T) {
	cases := []struct {
		name, granted string
		uses          []Use
		want          string
	}{
		{"never used", "patient/*.read", nil, ""},
		{"wildcard read", "patient/*.read", []Use{
			{"patient", "Observation", Read},
			{"patient", "Observation", Search},
			{"patient", "Condition", Read},
		}, "patient/Condition.r patient/Observation.rs"},
		{"v1 star", "user/*.*", []Use{
			{"user", "MedicationRequest", Create},
			{"user", "MedicationRequest", Read},
		}, "user/MedicationRequest.cr"},
		{"fully used", "patient/Observation.rs", []Use{
			{"patient", "Observation", Read},
			{"patient", "Observation", Search},
		}, "patient/Observation.rs"},
		{"partly used typed", "patient/Observation.cruds", []Use{
			{"patient", "Observation", Read},
		}, "patient/Observation.r"},
		{"uses outside the grant ignored", "patient/*.rs", []Use{
			{"user", "Observation", Read},
			{"patient", "Observation", Create},
			{"patient", "Condition", Search},
		}, "patient/Condition.s"},
		{"other type ignored", "patient/Observation.rs", []Use{
			{"patient", "Condition", Read},
		}, ""},
		{"bulk export", "system/*.cruds", []Use{
			{"system", "*", Search},
		}, "system/*.s"},
		{"query constraint kept", "patient/Observation.rs?category=laboratory", []Use{
			{"patient", "Observation", Search},
		}, "patient/Observation.s?category=laboratory"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			g := mustSMART(t, c.granted)
			if got := scopeStrings(t, Replacement(g, c.uses)); got != c.want {
				t.Errorf("Replacement(%s, %v) = %q, want %q", c.granted, c.uses, got, c.want)
			}
		})
	}
}

func TestReplacementCovers(t *testing.T) {
	// Every use the grant covered is covered by its replacement.
	g := mustSMART(t, "patient/*.cruds")
	uses := []Use{
		{"patient", "Observation", Read},
		{"patient", "Observation", Search},
		{"patient", "Condition", Update},
		{"patient", "AllergyIntolerance", Create},
	}
	repl := Replacement(g, uses)
	for _, u := range uses {
		if len(Covering(repl, u, nil)) != 1 {
			t.Errorf("use %+v covered by %d replacement scopes, want 1", u, len(Covering(repl, u, nil)))
		}
	}
}
