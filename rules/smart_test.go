package rules

import (
	"errors"
	"net/url"
	"strings"
	"testing"
)

func TestParseSMART(t *testing.T) {
	const labQuery = "category=http://terminology.hl7.org/CodeSystem/observation-category|laboratory"
	cases := []struct {
		name, in string
		want     string // canonical form
		ctx, res string
		perms    Interaction
		version  int
	}{
		{"v1 read", "patient/Observation.read", "patient/Observation.rs", "patient", "Observation", Read | Search, 1},
		{"v1 write", "patient/*.write", "patient/*.cud", "patient", "*", Create | Update | Delete, 1},
		{"v1 star", "user/*.*", "user/*.cruds", "user", "*", AllInteractions, 1},
		{"v1 resource star", "patient/Patient.*", "patient/Patient.cruds", "patient", "Patient", AllInteractions, 1},
		{"v1 system read", "system/*.read", "system/*.rs", "system", "*", Read | Search, 1},
		{"v2 rs", "patient/Observation.rs", "patient/Observation.rs", "patient", "Observation", Read | Search, 2},
		{"v2 cruds", "system/*.cruds", "system/*.cruds", "system", "*", AllInteractions, 2},
		{"v2 single", "user/Condition.s", "user/Condition.s", "user", "Condition", Search, 2},
		{"v2 cd", "user/Appointment.cd", "user/Appointment.cd", "user", "Appointment", Create | Delete, 2},
		{"v2 query", "patient/Observation.rs?" + labQuery, "patient/Observation.rs?" + labQuery, "patient", "Observation", Read | Search, 2},
		{"digits in type", "user/G6PDTest.r", "user/G6PDTest.r", "user", "G6PDTest", Read, 2},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := ParseSMART(c.in)
			if err != nil {
				t.Fatalf("ParseSMART(%q): %v", c.in, err)
			}
			if got.String() != c.want || got.Context != c.ctx || got.Resource != c.res ||
				got.Perms != c.perms || got.Version != c.version || got.Raw != c.in {
				t.Errorf("ParseSMART(%q) = %s %+v, want %s ctx=%s res=%s perms=%s v%d",
					c.in, got, got, c.want, c.ctx, c.res, c.perms, c.version)
			}
		})
	}
}

func TestParseSMARTQuery(t *testing.T) {
	got, err := ParseSMART("patient/Observation.rs?category=http://terminology.hl7.org/CodeSystem/observation-category|laboratory&code=1234-5")
	if err != nil {
		t.Fatal(err)
	}
	want := url.Values{
		"category": {"http://terminology.hl7.org/CodeSystem/observation-category|laboratory"},
		"code":     {"1234-5"},
	}
	if got, want := got.Query.Encode(), want.Encode(); got != want {
		t.Errorf("Query = %s, want %s", got, want)
	}
}

func TestParseSMARTMixed(t *testing.T) {
	// A granted scope string mixes identity, launch, v1 and v2 scopes;
	// only clinical ones are parsed and both versions normalise alike.
	granted := "openid fhirUser launch/patient offline_access patient/Observation.read patient/Condition.rs " +
		"user/*.write __ext_scope http://smarthealthit.org/fhir/scopes/patient/*.read"
	var got []string
	for s := range strings.FieldsSeq(granted) {
		if !IsSMART(s) {
			continue
		}
		sc, err := ParseSMART(s)
		if err != nil {
			t.Fatalf("ParseSMART(%q): %v", s, err)
		}
		got = append(got, sc.String())
	}
	if got, want := strings.Join(got, " "), "patient/Observation.rs patient/Condition.rs user/*.cud"; got != want {
		t.Errorf("clinical scopes = %q, want %q", got, want)
	}
}

func TestIsSMART(t *testing.T) {
	cases := []struct {
		in   string
		want bool
	}{
		{"patient/Observation.rs", true},
		{"user/*.*", true},
		{"system/*.read", true},
		{"patient/", true}, // malformed, to be reported by ParseSMART
		{"openid", false},
		{"fhirUser", false},
		{"profile", false},
		{"launch", false},
		{"launch/patient", false},
		{"launch/encounter", false},
		{"offline_access", false},
		{"online_access", false},
		{"__ext", false},
		{"http://smarthealthit.org/fhir/scopes/patient/*.read", false},
		{"", false},
		{"Patient/Observation.rs", false},
	}
	for _, c := range cases {
		t.Run(c.in, func(t *testing.T) {
			if got := IsSMART(c.in); got != c.want {
				t.Errorf("IsSMART(%q) = %v, want %v", c.in, got, c.want)
			}
		})
	}
}

func TestParseSMARTInvalid(t *testing.T) {
	cases := []struct {
		name, in, want string
	}{
		{"empty", "", `smart scope "": empty scope`},
		{"no slash", "openid", `smart scope "openid": no context: want patient/, user/ or system/`},
		{"bad context", "practitioner/Observation.rs", `smart scope "practitioner/Observation.rs": context "practitioner" is not patient, user or system`},
		{"launch", "launch/patient", `smart scope "launch/patient": context "launch" is not patient, user or system`},
		{"no dot", "patient/Observation", `smart scope "patient/Observation": no permissions: want resource.permissions, e.g. Observation.rs`},
		{"empty resource", "patient/.rs", `smart scope "patient/.rs": empty resource type: want a FHIR type such as Observation, or *`},
		{"lower-case resource", "patient/observation.rs", `smart scope "patient/observation.rs": resource type "observation" does not start with an upper-case letter`},
		{"odd resource", "patient/Obs-ervation.rs", `smart scope "patient/Obs-ervation.rs": resource type "Obs-ervation" has a character other than a letter or digit`},
		{"empty perms", "patient/Observation.", `smart scope "patient/Observation.": empty permissions after "Observation."`},
		{"out of order", "patient/Observation.dus", `smart scope "patient/Observation.dus": permissions "dus" out of order: want them in the order c, r, u, d, s`},
		{"repeated", "patient/Observation.rr", `smart scope "patient/Observation.rr": permission "r" repeated in "rr"`},
		{"unknown letter", "patient/Observation.x", `smart scope "patient/Observation.x": unknown permission "x" in "x": want read, write, * or a subset of cruds in that order`},
		{"upper-case letters", "patient/Observation.RS", `smart scope "patient/Observation.RS": unknown permission "R" in "RS": want read, write, * or a subset of cruds in that order`},
		{"v1 word typo", "patient/Observation.reed", `smart scope "patient/Observation.reed": unknown permission "e" in "reed": want read, write, * or a subset of cruds in that order`},
		{"v1 with query", "patient/Observation.read?category=x", `smart scope "patient/Observation.read?category=x": query constraint needs v2 permissions (cruds letters), not .read`},
		{"empty query", "patient/Observation.rs?", `smart scope "patient/Observation.rs?": empty query constraint after ?`},
		{"query without value", "patient/Observation.rs?category", `smart scope "patient/Observation.rs?category": query constraint "category" is not param=value`},
		{"query without name", "patient/Observation.rs?=x", `smart scope "patient/Observation.rs?=x": query constraint "=x" is not param=value`},
		{"bad escape", "patient/Observation.rs?code=%zz", `smart scope "patient/Observation.rs?code=%zz": query constraint: invalid URL escape "%zz"`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := ParseSMART(c.in)
			var se *SMARTError
			if !errors.As(err, &se) {
				t.Fatalf("ParseSMART(%q) error = %v, want a *SMARTError", c.in, err)
			}
			if got := err.Error(); got != c.want {
				t.Errorf("ParseSMART(%q) error\n got %s\nwant %s", c.in, got, c.want)
			}
		})
	}
}

func TestInteractionString(t *testing.T) {
	cases := []struct {
		in   Interaction
		want string
	}{
		{0, ""},
		{Read, "r"},
		{Search | Read, "rs"},
		{Delete | Create, "cd"},
		{AllInteractions, "cruds"},
	}
	for _, c := range cases {
		t.Run(c.want, func(t *testing.T) {
			if got := c.in.String(); got != c.want {
				t.Errorf("Interaction(%d).String() = %q, want %q", c.in, got, c.want)
			}
		})
	}
}

// mustSMART parses s or fails the test.
func mustSMART(t testing.TB, s string) SMARTScope {
	t.Helper()
	sc, err := ParseSMART(s)
	if err != nil {
		t.Fatal(err)
	}
	return sc
}

func TestCovers(t *testing.T) {
	const lab = "http://terminology.hl7.org/CodeSystem/observation-category|laboratory"
	labQ := url.Values{"category": {lab}}
	cases := []struct {
		name, grant   string
		ctx, resource string
		in            Interaction
		query         url.Values
		want          bool
	}{
		{"v2 exact read", "patient/Observation.rs", "patient", "Observation", Read, nil, true},
		{"v2 exact search", "patient/Observation.rs", "patient", "Observation", Search, nil, true},
		{"v2 no create", "patient/Observation.rs", "patient", "Observation", Create, nil, false},
		{"other resource", "patient/Observation.rs", "patient", "Condition", Read, nil, false},
		{"v1 read covers search", "patient/Observation.read", "patient", "Observation", Search, nil, true},
		{"v1 read no update", "patient/Observation.read", "patient", "Observation", Update, nil, false},
		{"v1 write covers create", "patient/Observation.write", "patient", "Observation", Create, nil, true},
		{"v1 write covers delete", "patient/Observation.write", "patient", "Observation", Delete, nil, true},
		{"v1 write no read", "patient/Observation.write", "patient", "Observation", Read, nil, false},
		{"v1 star covers all", "user/*.*", "user", "MedicationRequest", Delete, nil, true},
		{"wildcard covers any type", "patient/*.rs", "patient", "Immunization", Read, nil, true},
		{"wildcard covers system-wide", "system/*.rs", "system", "*", Search, nil, true},
		{"typed grant not system-wide", "system/Patient.rs", "system", "*", Search, nil, false},
		{"user grant not patient use", "user/*.cruds", "patient", "Observation", Read, nil, false},
		{"patient grant not user use", "patient/*.cruds", "user", "Observation", Read, nil, false},
		{"system grant not user use", "system/*.cruds", "user", "Observation", Read, nil, false},
		{"user grant not system use", "user/*.cruds", "system", "Observation", Search, nil, false},
		{"no interaction", "user/*.cruds", "user", "Observation", 0, nil, false},
		{"query search matches", "patient/Observation.rs?category=" + lab, "patient", "Observation", Search, labQ, true},
		{"query search extra params", "patient/Observation.rs?category=" + lab, "patient", "Observation", Search,
			url.Values{"category": {lab}, "date": {"ge2024"}}, true},
		{"query search repeated param narrows", "patient/Observation.rs?category=" + lab, "patient", "Observation", Search,
			url.Values{"category": {lab, "x|y"}}, true},
		{"query search missing param", "patient/Observation.rs?category=" + lab, "patient", "Observation", Search,
			url.Values{"code": {"1234-5"}}, false},
		{"query search no query", "patient/Observation.rs?category=" + lab, "patient", "Observation", Search, nil, false},
		{"query search other value", "patient/Observation.rs?category=" + lab, "patient", "Observation", Search,
			url.Values{"category": {"vital-signs"}}, false},
		{"query search comma widens", "patient/Observation.rs?category=" + lab, "patient", "Observation", Search,
			url.Values{"category": {lab + ",vital-signs"}}, false},
		{"query two params one missing", "patient/Observation.rs?category=" + lab + "&code=1234-5", "patient", "Observation", Search,
			labQ, false},
		{"query read unknowable", "patient/Observation.rs?category=" + lab, "patient", "Observation", Read, labQ, false},
		{"query create unknowable", "patient/Observation.crs?category=" + lab, "patient", "Observation", Create, labQ, false},
		{"query wildcard search", "patient/*.s?_security=R", "patient", "Condition", Search, url.Values{"_security": {"R"}}, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			g := mustSMART(t, c.grant)
			if got := g.Covers(c.ctx, c.resource, c.in, c.query); got != c.want {
				t.Errorf("%s covers %s/%s %s %v = %v, want %v", c.grant, c.ctx, c.resource, c.in, c.query, got, c.want)
			}
		})
	}
}

func TestCovering(t *testing.T) {
	var granted []SMARTScope
	for _, s := range []string{"patient/*.read", "patient/Observation.rs", "patient/Observation.s?category=laboratory", "user/Observation.rs", "patient/Condition.r"} {
		granted = append(granted, mustSMART(t, s))
	}
	cases := []struct {
		name  string
		use   Use
		query url.Values
		want  string
	}{
		{"read", Use{"patient", "Observation", Read}, nil, "patient/*.rs patient/Observation.rs"},
		{"lab search", Use{"patient", "Observation", Search}, url.Values{"category": {"laboratory"}},
			"patient/*.rs patient/Observation.rs patient/Observation.s?category=laboratory"},
		{"user read", Use{"user", "Observation", Read}, nil, "user/Observation.rs"},
		{"write", Use{"patient", "Observation", Update}, nil, ""},
		{"system", Use{"system", "*", Search}, nil, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var got []string
			for _, g := range Covering(granted, c.use, c.query) {
				got = append(got, g.String())
			}
			if got := strings.Join(got, " "); got != c.want {
				t.Errorf("Covering(%+v) = %q, want %q", c.use, got, c.want)
			}
		})
	}
}

func TestParseSMARTAllocs(t *testing.T) {
	for _, s := range []string{"patient/Observation.rs", "user/*.read", "system/*.cruds"} {
		if got := testing.AllocsPerRun(100, func() { _, _ = ParseSMART(s) }); got != 0 {
			t.Errorf("ParseSMART(%q) allocates %v times, want 0", s, got)
		}
	}
}

func FuzzParseSMART(f *testing.F) {
	for _, s := range []string{
		"patient/Observation.read", "user/*.*", "patient/*.write", "system/*.cruds",
		"patient/Observation.rs?category=http://terminology.hl7.org/CodeSystem/observation-category|laboratory",
		"patient/Observation.dus", "patient/.rs", "launch/patient", "user/Observation.rs?a=1&b=%zz",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		sc, err := ParseSMART(s)
		if err != nil {
			return
		}
		// The canonical form parses to the same scope, as version 2.
		again, err := ParseSMART(sc.String())
		if err != nil {
			t.Fatalf("ParseSMART(%q) ok but its canonical form %q fails: %v", s, sc.String(), err)
		}
		if again.Context != sc.Context || again.Resource != sc.Resource || again.Perms != sc.Perms ||
			again.RawQuery != sc.RawQuery || again.Version != 2 || again.String() != sc.String() {
			t.Errorf("ParseSMART(%q) = %+v, but its canonical form parses to %+v", s, sc, again)
		}
	})
}
