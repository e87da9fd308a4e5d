package detect

import (
	"encoding/json"
	"maps"
	"net/netip"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/scopewatch/scopewatch/ingest"
	"github.com/scopewatch/scopewatch/rules"
	"github.com/scopewatch/scopewatch/store"
)

var t0 = time.Date(2026, 9, 1, 0, 0, 0, 0, time.UTC)

// testDetect returns the detector settings Load gives an empty detect
// section.
func testDetect() rules.Detect {
	base := rules.Baseline{LearningPeriod: rules.DefaultLearningPeriod, MinEvents: rules.DefaultMinEvents}
	return rules.Detect{
		UnusedScope: rules.UnusedScope{
			Window: rules.DefaultWindow, MinObservation: rules.DefaultMinObservation,
			CoverageGap: rules.DefaultCoverageGap, StaleAfter: rules.DefaultStaleAfter, Every: rules.DefaultSweepEvery,
		},
		BroadRequest: rules.BroadRequest{
			MaxScopes: rules.DefaultMaxScopes, Patterns: rules.DefaultBroadPatterns(), Baseline: base,
			Probing: rules.Probing{Denials: rules.DefaultProbeDenials, Window: rules.DefaultProbeWindow, Reasons: rules.DefaultProbeReasons()},
		},
		UnfamiliarGeo: rules.UnfamiliarGeo{Baseline: base},
		UnfamiliarBurst: rules.UnfamiliarBurst{
			Requests: rules.DefaultBurstRequests, Window: rules.DefaultBurstWindow, NewFor: rules.DefaultBurstNewFor, Baseline: base,
		},
		ResolveAfter: rules.DefaultResolveAfter,
		Retention:    rules.DefaultRetention,
	}
}

func policyRules(t testing.TB) *rules.Rules {
	t.Helper()
	r := &rules.Rules{
		Scopes: map[string]rules.Scope{
			"read_all_data": {Lifecycle: rules.Deprecated, ReplacedBy: "view_lab_results"},
			"legacy_admin":  {Lifecycle: rules.Retired},
			"old_reports":   {Lifecycle: rules.Deprecated},
			"manage_users":  {Admin: true},
		},
		Roles: map[string][]string{
			"lab":      {"view_lab_results", "order_lab_tests", "patient/*.rs"},
			"chart":    {"patient/Observation.rs"},
			"pharmacy": {"patient/Medication*.rs", "rx_*", "manage_users"},
		},
		Clients: map[string]rules.Client{
			"lab-portal":  {Role: "lab", ExpectedCountries: []string{"US"}},
			"mychart-app": {Role: "chart", ExpectedCountries: []string{"US", "CA"}},
			"rx-app":      {Role: "pharmacy"},
		},
		IdentityScopes: rules.DefaultIdentityScopes(),
	}
	if err := r.Compile(); err != nil {
		t.Fatal(err)
	}
	return r
}

// harness drives detectors with events and a clock it controls.
type harness struct {
	t   *testing.T
	now time.Time
	fs  *Findings
	d   *Detectors
	n   int64 // line counter for positions
}

func newHarness(t *testing.T, cfg rules.Detect, loc Locator) *harness {
	h := &harness{t: t, now: t0}
	h.fs = NewFindings(nil, nil, func() time.Time { return h.now }, nil)
	h.d = NewDetectors(DetectorOptions{Config: cfg, Rules: policyRules(t), Locator: loc, ByASN: loc != nil}, h.fs)
	return h
}

func (h *harness) observe(ev ingest.Event) {
	h.n++
	if ev.Source == "" {
		ev.Source = "keycloak"
	}
	ev.Pos = ingest.Position{Source: ev.Source, Line: h.n, Offset: h.n * 100}
	if ev.Time.After(h.now) {
		h.now = ev.Time
	}
	h.d.Enrich(&ev)
	h.d.Observe(&ev)
}

func grant(client string, at time.Time, scopes ...string) ingest.Event {
	return ingest.Event{Kind: ingest.KindGrant, Client: client, Time: at, Requested: scopes, Granted: scopes}
}

// warm gives client a formed baseline: MinEvents grants over the
// learning period with scopes.
func (h *harness) warm(client string, scopes ...string) time.Time {
	n := rules.DefaultMinEvents
	step := time.Duration(rules.DefaultLearningPeriod) / time.Duration(n-1)
	at := t0
	for i := range n {
		at = t0.Add(time.Duration(i) * step)
		h.observe(grant(client, at, scopes...))
	}
	return at.Add(time.Hour)
}

// keys returns the standing findings as kind/client/subject → severity.
func (h *harness) keys() map[string]string {
	out := map[string]string{}
	h.fs.Each(func(f *store.Finding) {
		if f.State != store.StateResolved {
			out[f.Kind+"/"+f.Client+"/"+f.Subject] = f.Severity
		}
	})
	return out
}

func (h *harness) want(want map[string]string) {
	h.t.Helper()
	got := h.keys()
	for k, sev := range want {
		if got[k] != sev {
			h.t.Errorf("finding %s: severity %q, want %q", k, got[k], sev)
		}
	}
	for k := range got {
		if _, ok := want[k]; !ok {
			h.t.Errorf("unexpected finding %s (%s)", k, got[k])
		}
	}
}

func TestBroadRequest(t *testing.T) {
	tests := []struct {
		name   string
		client string
		scopes []string
		want   map[string]string
	}{
		{"in role", "lab-portal", []string{"openid", "view_lab_results", "patient/Observation.rs"}, nil},
		{"patient wildcard read", "lab-portal", []string{"patient/*.read"}, map[string]string{
			"broad_request/lab-portal/patient/*.read": store.SeverityWarning}},
		{"user wildcard write", "lab-portal", []string{"user/*.*"}, map[string]string{
			"broad_request/lab-portal/user/*.*": store.SeverityHigh}},
		{"system wildcard read", "unregistered", []string{"system/*.rs"}, map[string]string{
			"broad_request/unregistered/system/*.rs": store.SeverityHigh}},
		{"configured pattern", "unregistered", []string{"tenant:admin"}, map[string]string{
			"broad_request/unregistered/tenant:admin": store.SeverityHigh}},
		{"deprecated and outside role", "lab-portal", []string{"old_reports"}, map[string]string{
			"broad_request/lab-portal/old_reports": store.SeverityWarning}},
		{"deprecated pattern", "unregistered", []string{"read_all_data"}, map[string]string{
			"broad_request/unregistered/read_all_data": store.SeverityHigh}},
		{"retired", "unregistered", []string{"legacy_admin"}, map[string]string{
			"broad_request/unregistered/legacy_admin": store.SeverityHigh}},
		{"outside role", "mychart-app", []string{"openid", "patient/Condition.rs"}, map[string]string{
			"broad_request/mychart-app/patient/Condition.rs": store.SeverityWarning}},
		{"narrower than role", "mychart-app", []string{"patient/Observation.r"}, nil},
		{"in a role pattern", "rx-app", []string{"patient/MedicationRequest.r", "patient/MedicationDispense.rs", "rx_refills"}, nil},
		{"outside a role pattern", "rx-app", []string{"patient/Observation.r", "patient/MedicationRequest.rsu", "lab_results"}, map[string]string{
			"broad_request/rx-app/patient/Observation.r":         store.SeverityWarning,
			"broad_request/rx-app/patient/MedicationRequest.rsu": store.SeverityWarning,
			"broad_request/rx-app/lab_results":                   store.SeverityWarning,
		}},
		{"admin in the catalog, even in role", "rx-app", []string{"manage_users"}, map[string]string{
			"broad_request/rx-app/manage_users": store.SeverityHigh}},
		{"too many", "unregistered", []string{"a", "b", "c", "d", "e", "f", "g", "h", "i", "j", "k", "l", "m", "n", "o", "p"}, map[string]string{
			"broad_request/unregistered/max_scopes": store.SeverityWarning}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, testDetect(), nil)
			h.observe(grant(tt.client, t0, tt.scopes...))
			h.want(tt.want)
		})
	}
}

func TestBroadRequestReasonsMerge(t *testing.T) {
	h := newHarness(t, testDetect(), nil)
	h.observe(grant("lab-portal", t0, "read_all_data"))
	h.observe(grant("lab-portal", t0.Add(time.Minute), "read_all_data"))
	f := h.fs.Get(store.FindingKey{Kind: rules.KindBroadRequest, Client: "lab-portal", Subject: "read_all_data"})
	if f == nil {
		t.Fatal("no finding")
	}
	if f.Count != 2 || f.Severity != store.SeverityHigh || f.Evidence.ReplacedBy != "view_lab_results" {
		t.Errorf("finding = %+v; want count 2, high, replaced by view_lab_results", f)
	}
	for _, r := range []string{"broad pattern read_all_data", "deprecated, replaced by view_lab_results", "outside role lab"} {
		if !strings.Contains(f.Evidence.Detail, r) {
			t.Errorf("detail %q lacks %q", f.Evidence.Detail, r)
		}
	}
	if len(f.Evidence.Lines) != 2 || f.Evidence.Lines[1].Line != 2 {
		t.Errorf("evidence lines = %+v, want lines 1 and 2", f.Evidence.Lines)
	}
}

func TestEscalationNeedsBaseline(t *testing.T) {
	h := newHarness(t, testDetect(), nil)
	// Within the learning period a new scope is part of the baseline.
	h.observe(grant("lab-portal", t0, "view_lab_results"))
	h.observe(grant("lab-portal", t0.Add(day), "order_lab_tests"))
	h.want(nil)
	// Past the learning period but short of min_events: still learning.
	h.observe(grant("lab-portal", t0.Add(15*day), "patient/Patient.rs"))
	h.want(nil)
	at := h.warm("lab-portal", "view_lab_results")
	h.observe(grant("lab-portal", at.Add(15*day), "view_lab_results", "patient/Encounter.rs"))
	h.want(map[string]string{"broad_request/lab-portal/patient/Encounter.rs": store.SeverityWarning})
	// Once asked for, it is part of the history: no second finding.
	h.observe(grant("lab-portal", at.Add(16*day), "patient/Encounter.rs"))
	if f := h.fs.Get(store.FindingKey{Kind: rules.KindBroadRequest, Client: "lab-portal", Subject: "patient/Encounter.rs"}); f.Count != 1 {
		t.Errorf("count = %d, want 1", f.Count)
	}
}

func TestProbing(t *testing.T) {
	ip := netip.MustParseAddr("203.0.113.9")
	deny := func(client string, at time.Time, reason string) ingest.Event {
		return ingest.Event{Kind: ingest.KindDeny, Client: client, Time: at, Reason: reason, IP: ip, Requested: []string{"openid"}}
	}
	t.Run("four refusals", func(t *testing.T) {
		h := newHarness(t, testDetect(), nil)
		for i := range 4 {
			h.observe(deny("lab-portal", t0.Add(time.Duration(i)*time.Minute), "invalid_scope"))
		}
		h.want(nil)
	})
	t.Run("five within the window", func(t *testing.T) {
		h := newHarness(t, testDetect(), nil)
		for i := range 5 {
			h.observe(deny("lab-portal", t0.Add(time.Duration(i)*2*time.Minute), "invalid_scope"))
		}
		h.want(map[string]string{
			"broad_request/lab-portal/probing":        store.SeverityWarning,
			"broad_request//probing from 203.0.113.9": store.SeverityWarning,
		})
	})
	t.Run("the client's finding names its addresses", func(t *testing.T) {
		h := newHarness(t, testDetect(), nil)
		from := []string{"198.51.100.1", "198.51.100.2", "198.51.100.3", "198.51.100.4", "198.51.100.5", "198.51.100.2"}
		for i, a := range from {
			ev := deny("lab-portal", t0.Add(time.Duration(i)*time.Minute), "invalid_scope")
			ev.IP = netip.MustParseAddr(a)
			h.observe(ev)
		}
		f := h.fs.Get(store.FindingKey{Kind: rules.KindBroadRequest, Client: "lab-portal", Subject: "probing"})
		if f == nil {
			t.Fatal("no probing finding for the client")
		}
		// The latest four distinct addresses, oldest first; the newest
		// is the evidence's address.
		if want := "invalid_scope; from 198.51.100.3, 198.51.100.4, 198.51.100.5, 198.51.100.2"; f.Evidence.Detail != want {
			t.Errorf("detail = %q, want %q", f.Evidence.Detail, want)
		}
		if f.Evidence.IP != "198.51.100.2" {
			t.Errorf("evidence IP = %q, want the latest, 198.51.100.2", f.Evidence.IP)
		}
	})
	t.Run("five spread out", func(t *testing.T) {
		h := newHarness(t, testDetect(), nil)
		for i := range 5 {
			h.observe(deny("lab-portal", t0.Add(time.Duration(i)*3*time.Minute), "invalid_scope"))
		}
		h.want(nil)
	})
	t.Run("reasons by their normalised code", func(t *testing.T) {
		h := newHarness(t, testDetect(), nil)
		for i, r := range []string{"Invalid Scope", "INVALID_SCOPE", "invalid-scope", "Client error: invalid_scope (bad request)", "invalid scope"} {
			h.observe(deny("lab-portal", t0.Add(time.Duration(i)*time.Second), r))
		}
		h.want(map[string]string{
			"broad_request/lab-portal/probing":        store.SeverityWarning,
			"broad_request//probing from 203.0.113.9": store.SeverityWarning,
		})
	})
	t.Run("a code is a whole word", func(t *testing.T) {
		h := newHarness(t, testDetect(), nil)
		for i := range 8 {
			h.observe(deny("lab-portal", t0.Add(time.Duration(i)*time.Second), "not_invalid_scopes"))
		}
		h.want(nil)
	})
	t.Run("other reasons", func(t *testing.T) {
		h := newHarness(t, testDetect(), nil)
		for i := range 8 {
			h.observe(deny("lab-portal", t0.Add(time.Duration(i)*time.Second), "expired_code"))
		}
		h.want(nil)
	})
	t.Run("one address across clients", func(t *testing.T) {
		h := newHarness(t, testDetect(), nil)
		for i := range 5 {
			h.observe(deny("client-"+string(rune('a'+i)), t0.Add(time.Duration(i)*time.Second), "invalid_client"))
		}
		h.want(map[string]string{"broad_request//probing from 203.0.113.9": store.SeverityWarning})
	})
}

func TestTokenInURL(t *testing.T) {
	h := newHarness(t, testDetect(), nil)
	secret := "eyJhbGciOiJSUzI1NiJ9.c2VjcmV0.sig"
	h.observe(ingest.Event{Kind: ingest.KindUse, Source: "fhir-gw", Client: "mychart-app", Time: t0,
		Method: "GET", Path: "/fhir/Patient/123", Query: "_format=json&access_token=" + secret})
	h.observe(ingest.Event{Kind: ingest.KindUse, Source: "fhir-gw", Client: "mychart-app", Time: t0,
		Method: "GET", Path: "/fhir/Patient", Query: "access_token=&name=x"})
	h.want(map[string]string{"token_in_url/mychart-app/fhir-gw": store.SeverityHigh})
	f := h.fs.Get(store.FindingKey{Kind: rules.KindTokenInURL, Client: "mychart-app", Subject: "fhir-gw"})
	out, _ := json.Marshal(f)
	if strings.Contains(string(out), secret) || strings.Contains(string(out), "/Patient/123") {
		t.Errorf("finding holds the token or the path: %s", out)
	}
	if f.Count != 1 {
		t.Errorf("count = %d: an empty access_token is no leak", f.Count)
	}
}

// places is a Locator over a fixed table, standing in for a GeoIP
// database (the geoip package is tested against real databases).
type places map[netip.Prefix]Place

func (p places) Locate(ip netip.Addr) Place {
	for pfx, pl := range p {
		if pfx.Contains(ip) {
			pl.Network = pfx
			return pl
		}
	}
	return Place{}
}

var world = places{
	netip.MustParsePrefix("198.51.100.0/24"): {Country: "US", ASN: 64500},
	netip.MustParsePrefix("192.0.2.0/24"):    {Country: "US", ASN: 64501},
	netip.MustParsePrefix("203.0.113.0/24"):  {Country: "DE", ASN: 64502},
	netip.MustParsePrefix("175.45.176.0/22"): {Country: "KP", ASN: 64503},
	netip.MustParsePrefix("93.184.0.0/16"):   {Country: "FR", ASN: 64504},
}

func use(client, ip string, at time.Time) ingest.Event {
	return ingest.Event{Kind: ingest.KindUse, Source: "fhir-gw", Client: client, Time: at, Method: "GET",
		Path: "/fhir/Observation", IP: netip.MustParseAddr(ip), Subject: "p-3f2a"}
}

func TestUnfamiliarGeo(t *testing.T) {
	cfg := testDetect()
	cfg.UnfamiliarGeo.DenyCountries = []string{"KP"}
	cfg.UnfamiliarGeo.AllowCountries = []string{"FR"}
	cfg.UnfamiliarGeo.AllowPrefixes = []netip.Prefix{netip.MustParsePrefix("203.0.113.128/25")}
	h := newHarness(t, cfg, world)
	h.observe(grant("billing", t0)) // issued a token: the client is known
	h.observe(use("billing", "198.51.100.7", t0))
	h.observe(use("billing", "203.0.113.5", t0.Add(day)))  // DE while learning: baseline
	h.observe(use("billing", "175.45.176.1", t0.Add(day))) // denied even while learning
	h.want(map[string]string{"unfamiliar_geo/billing/KP": store.SeverityHigh})

	at := h.warm("billing")
	for _, ip := range []string{
		"198.51.100.8",     // US, a known network
		"203.0.113.77",     // DE, learned
		"10.1.2.3",         // internal
		"93.184.216.34",    // FR: allowed everywhere
		"203.0.113.200",    // allowlisted egress range
		"::ffff:127.0.0.1", // mapped loopback
	} {
		h.observe(use("billing", ip, at))
	}
	h.want(map[string]string{"unfamiliar_geo/billing/KP": store.SeverityHigh})

	h.observe(use("billing", "192.0.2.10", at)) // US, but a new AS
	h.want(map[string]string{
		"unfamiliar_geo/billing/KP":      store.SeverityHigh,
		"unfamiliar_geo/billing/AS64501": store.SeverityInfo,
	})
	f := h.fs.Get(store.FindingKey{Kind: rules.KindUnfamiliarGeo, Client: "billing", Subject: "AS64501"})
	if f.Evidence.Country != "US" || f.Evidence.IP != "192.0.2.10" || f.Evidence.Subject != "p-3f2a" {
		t.Errorf("evidence = %+v", f.Evidence)
	}
}

func TestUnfamiliarGeoExpectedCountriesAndLogCountry(t *testing.T) {
	h := newHarness(t, testDetect(), nil) // no database: the log's own country
	at := h.warm("mychart-app")
	ev := func(cc string) ingest.Event {
		return ingest.Event{Kind: ingest.KindGrant, Source: "okta", Client: "mychart-app", Time: at, Country: cc}
	}
	h.observe(ev("CA")) // registered as expected
	h.observe(ev("US"))
	h.want(nil)
	h.observe(ev("BR"))
	h.want(map[string]string{"unfamiliar_geo/mychart-app/BR": store.SeverityWarning})
}

func TestUnfamiliarBurst(t *testing.T) {
	cfg := testDetect()
	cfg.UnfamiliarBurst.Requests = 10
	h := newHarness(t, cfg, nil) // networks by /24
	h.observe(use("lab-portal", "198.51.100.7", t0))
	at := h.warm("lab-portal")
	// A known network may be as busy as it likes.
	for i := range 50 {
		h.observe(use("lab-portal", "198.51.100.9", at.Add(time.Duration(i)*time.Second)))
	}
	h.want(nil)
	// Ten requests from a new network within the window are allowed; the
	// eleventh is a burst.
	for i := range 10 {
		h.observe(use("lab-portal", "192.0.2.1", at.Add(time.Duration(i)*time.Second)))
	}
	h.want(nil)
	h.observe(use("lab-portal", "192.0.2.2", at.Add(20*time.Second)))
	h.want(map[string]string{"unfamiliar_burst/lab-portal/192.0.2.0/24": store.SeverityWarning})

	// Spread over more than the window, or once the network is no longer
	// new, the same volume is no burst.
	h2 := newHarness(t, cfg, nil)
	at = h2.warm("lab-portal")
	for i := range 30 {
		h2.observe(use("lab-portal", "203.0.113.1", at.Add(time.Duration(i)*time.Minute)))
	}
	later := at.Add(2 * day)
	for i := range 30 {
		h2.observe(use("lab-portal", "203.0.113.1", later.Add(time.Duration(i)*time.Second)))
	}
	h2.want(nil)
}

// TestUnfamiliarBurstAcrossNetworks spreads a burst over two new
// networks, neither over the threshold alone: one finding names both. The
// same requests spread over more than the window raise nothing.
func TestUnfamiliarBurstAcrossNetworks(t *testing.T) {
	cfg := testDetect()
	cfg.UnfamiliarBurst.Requests = 10
	h := newHarness(t, cfg, nil) // networks by /24
	h.observe(use("lab-portal", "198.51.100.7", t0))
	at := h.warm("lab-portal")
	for i := range 16 {
		from := "192.0.2.1"
		if i%2 == 1 {
			from = "203.0.113.1"
		}
		h.observe(use("lab-portal", from, at.Add(time.Duration(i)*time.Second)))
	}
	h.want(map[string]string{"unfamiliar_burst/lab-portal/new networks": store.SeverityWarning})
	f := h.fs.Get(store.FindingKey{Kind: rules.KindUnfamiliarBurst, Client: "lab-portal", Subject: "new networks"})
	if want := "192.0.2.0/24, 203.0.113.0/24"; f.Evidence.Detail != want {
		t.Errorf("networks = %q, want %q", f.Evidence.Detail, want)
	}
	if f.Count != 6 {
		t.Errorf("count = %d, want 6: one per request past the threshold, in one finding", f.Count)
	}

	h2 := newHarness(t, cfg, nil)
	h2.observe(use("lab-portal", "198.51.100.7", t0))
	at = h2.warm("lab-portal")
	for i := range 16 {
		from := "192.0.2.1"
		if i%2 == 1 {
			from = "203.0.113.1"
		}
		h2.observe(use("lab-portal", from, at.Add(time.Duration(i)*time.Minute)))
	}
	h2.want(nil)
}

func TestBurstDuringLearningIsBaseline(t *testing.T) {
	cfg := testDetect()
	cfg.UnfamiliarBurst.Requests = 10
	h := newHarness(t, cfg, nil)
	for i := range 40 {
		h.observe(use("lab-portal", "192.0.2.1", t0.Add(time.Duration(i)*time.Second)))
	}
	h.want(nil)
}

func TestLoadRebuildsBaseline(t *testing.T) {
	h := newHarness(t, testDetect(), nil)
	h.d.Load(store.Client{
		ID:        "lab-portal",
		Seen:      store.Counter{N: 500, First: t0, Last: t0.Add(20 * day)},
		Scopes:    map[string]store.ScopeUsage{"view_lab_results": {Requested: store.Counter{N: 3, First: t0, Last: t0}}},
		Countries: map[string]store.Counter{"DE": {N: 3, First: t0.Add(day), Last: t0.Add(day)}},
		IPs:       map[string]store.Counter{"203.0.113.5": {N: 3, First: t0.Add(day), Last: t0.Add(day)}},
	})
	at := t0.Add(21 * day)
	h.observe(grant("lab-portal", at, "view_lab_results"))
	h.observe(ingest.Event{Kind: ingest.KindGrant, Client: "lab-portal", Time: at, Country: "DE", IP: netip.MustParseAddr("203.0.113.9")})
	h.want(nil)
	h.observe(grant("lab-portal", at, "order_lab_tests"))
	h.want(map[string]string{"broad_request/lab-portal/order_lab_tests": store.SeverityWarning})
}

func TestRefusalsSayNothingAboutGeography(t *testing.T) {
	cfg := testDetect()
	cfg.UnfamiliarGeo.DenyCountries = []string{"KP"}
	h := newHarness(t, cfg, world)
	at := h.warm("billing")
	for _, ip := range []string{"93.184.216.34", "175.45.176.1", "203.0.113.1"} {
		h.observe(ingest.Event{Kind: ingest.KindDeny, Client: "billing", Time: at, IP: netip.MustParseAddr(ip), Reason: "invalid_user_credentials"})
	}
	h.want(nil)
}

// reloadable is a Locator whose answers change, as a reloaded database's do.
type reloadable struct{ cc string }

func (r *reloadable) Locate(netip.Addr) Place { return Place{Country: r.cc} }

func TestPlacesAreNotRememberedAcrossEvents(t *testing.T) {
	loc := &reloadable{cc: "US"}
	h := newHarness(t, testDetect(), loc)
	at := h.warm("billing")
	h.observe(use("billing", "198.51.100.7", at))
	loc.cc = "BR" // the database was reloaded
	h.observe(use("billing", "198.51.100.7", at.Add(time.Minute)))
	if f := h.fs.Get(store.FindingKey{Kind: rules.KindUnfamiliarGeo, Client: "billing", Subject: "BR"}); f == nil {
		t.Error("the address was placed with the database from before the reload")
	}
}

func TestRefusalsOfUnknownClientsRaiseNothingOfTheirOwn(t *testing.T) {
	h := newHarness(t, testDetect(), nil)
	ip := netip.MustParseAddr("203.0.113.9")
	for i := range 3 {
		h.observe(ingest.Event{Kind: ingest.KindDeny, Client: "random-" + strconv.Itoa(i), Time: t0, IP: ip,
			Reason: "invalid_client", Requested: []string{"system/*.*"}})
	}
	h.want(nil)
	if len(h.d.clients) != 0 {
		t.Errorf("%d clients remembered from refusals of unknown clients", len(h.d.clients))
	}
	// A client that was issued a token is judged on its refusals too.
	h.observe(grant("billing", t0, "openid"))
	h.observe(ingest.Event{Kind: ingest.KindDeny, Client: "billing", Time: t0, IP: ip,
		Reason: "invalid_scope", Requested: []string{"system/*.*"}})
	h.want(map[string]string{"broad_request/billing/system/*.*": store.SeverityHigh})
}

func TestRefusalsCannotFloodFindings(t *testing.T) {
	h := newHarness(t, testDetect(), nil)
	h.observe(grant("lab-portal", t0, "view_lab_results"))
	for i := range 1000 {
		h.observe(ingest.Event{Kind: ingest.KindDeny, Client: "lab-portal", Time: t0.Add(time.Duration(i) * time.Hour),
			Reason: "invalid_scope", Requested: []string{"invented-" + strconv.Itoa(i) + ":admin", "x\x00y"}})
	}
	h.want(nil)
	if n := len(h.d.broad.scopes); n > 2 {
		t.Errorf("%d scope names remembered from refusals", n)
	}
}

func TestProbingSurvivesAnAddressSpray(t *testing.T) {
	h := newHarness(t, testDetect(), nil)
	deny := func(ip string, at time.Time) ingest.Event {
		return ingest.Event{Kind: ingest.KindDeny, Time: at, IP: netip.MustParseAddr(ip), Reason: "invalid_client"}
	}
	for i := range 4 {
		h.observe(deny("203.0.113.9", t0.Add(time.Duration(i)*time.Second)))
	}
	// One IPv6 host spraying from its /64 counts as one address.
	for i := range 5 {
		h.observe(deny("2001:db8::"+strconv.Itoa(i+1), t0.Add(4*time.Second)))
	}
	// A spray of addresses fills the table; the counts in it stay.
	for i := range maxProbes + 10 {
		a := netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)})
		h.observe(deny(a.String(), t0.Add(5*time.Second)))
	}
	h.observe(deny("203.0.113.9", t0.Add(7*time.Second)))
	got := h.keys()
	for _, k := range []string{"broad_request//probing from 203.0.113.9", "broad_request//probing from 2001:db8::/64"} {
		if got[k] == "" {
			t.Errorf("no finding %s", k)
		}
	}
}

// TestSawScope checks the client's scope set on both sides of its bit
// set's bound, against a map: learning adds, looking does not.
func TestSawScope(t *testing.T) {
	var st clientState
	model := map[uint32]bool{}
	for i, id := range []uint32{0, 63, 64, 127, 128, 129, 1000, 5, 127, 1000, 200, 0} {
		learn := i%3 != 2
		if got := st.sawScope(id, learn); got != model[id] {
			t.Fatalf("step %d: sawScope(%d) = %v, want %v", i, id, got, model[id])
		}
		if learn {
			model[id] = true
		}
	}
	if st.sawScope(noScope, true) || st.sawScope(noScope, false) {
		t.Error("noScope counted as seen")
	}
}

// guardedLocator fails the test when an address is looked up while
// allowed is false.
type guardedLocator struct {
	t       *testing.T
	loc     Locator
	allowed bool
}

func (g *guardedLocator) Locate(ip netip.Addr) Place {
	if !g.allowed {
		g.t.Errorf("%v looked up by the detectors, whose events came placed", ip)
	}
	return g.loc.Locate(ip)
}

// TestPlacedEventsNeedNoLookup drives the same events through detectors
// that look the addresses up and through detectors whose events come
// placed by NewPlacer, as the engine's parse stage places them: the
// second look nothing up themselves, and raise the same findings.
func TestPlacedEventsNeedNoLookup(t *testing.T) {
	cfg := testDetect()
	cfg.UnfamiliarGeo.DenyCountries = []string{"KP"}
	events := []ingest.Event{grant("billing", t0), use("billing", "198.51.100.7", t0), use("billing", "203.0.113.5", t0.Add(day))}
	at := t0.Add(time.Duration(rules.DefaultLearningPeriod) + day)
	for i := range rules.DefaultMinEvents {
		events = append(events, use("billing", "198.51.100.9", t0.Add(day+time.Duration(i)*time.Minute)))
	}
	for _, ip := range []string{"175.45.176.1", "192.0.2.10", "10.1.2.3", "::ffff:198.51.100.8", "93.184.216.34"} {
		events = append(events, use("billing", ip, at))
	}

	looking := newHarness(t, cfg, world)
	guard := &guardedLocator{t: t, loc: world}
	placed := newHarness(t, cfg, guard)
	placer := NewPlacer(guard)
	for _, ev := range events {
		looking.observe(ev)
		guard.allowed = true
		p, ok := placer(ev.IP)
		guard.allowed = false
		if ok {
			placed.d.Placed(ev.IP, p)
		}
		placed.observe(ev)
	}
	if got, want := placed.keys(), looking.keys(); !maps.Equal(got, want) || len(want) == 0 {
		t.Errorf("findings of placed events %v, looked up %v", got, want)
	}
}

// TestAdmissionFollowsChanges checks that the holder's admission of an
// event takes the outcome of the accountant's Admit of it only while no
// change to the known clients came between.
func TestAdmissionFollowsChanges(t *testing.T) {
	k := NewKnownClients(nil)
	st := newClientState()
	a := grant("a", t0)
	if !k.Admit(&a) {
		t.Fatal("a grant's client not admitted")
	}
	k.hold("a", st)
	if got, issued, ok := k.admitHeld(&a); got != st || !issued || !ok {
		t.Errorf("after hold: %p, %v, %v; want the held state", got, issued, ok)
	}
	b := use("b", "198.51.100.7", t0)
	if k.Admit(&b) {
		t.Fatal("a client never issued a token admitted")
	}
	k.Issue("b")
	if _, issued, ok := k.admitHeld(&b); !issued || !ok {
		t.Errorf("after Issue: issued %v, ok %v; want both", issued, ok)
	}
	u := use("a", "198.51.100.7", t0)
	if !k.Admit(&u) {
		t.Fatal("an issued client's use not admitted")
	}
	k.Forget("a")
	if got, issued, ok := k.admitHeld(&u); got != nil || issued || ok {
		t.Errorf("after Forget: %p, %v, %v; want nothing", got, issued, ok)
	}
}
