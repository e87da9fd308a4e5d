package traffic

import (
	"bufio"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/scopewatch/scopewatch/detect/geoip/geoiptest"
	"github.com/scopewatch/scopewatch/ingest"
	"github.com/scopewatch/scopewatch/store"
)

// This file generates the thirty_days scenario of the scenario test: a month of Keycloak token
// events and nginx API access logs for a few hundred clients of a
// hospital's FHIR and REST APIs, with a known set of injected problems.
// Everything comes from one seeded generator, so the logs, the rules and
// the expected findings are the same on every run.

// Scenario settings.
const (
	scenarioDays  = 30
	scenarioClean = 220 // clients with nothing to find
	// The seed of the generator; changing it changes every line and
	// needs -update.
	scenarioSeed1, scenarioSeed2 = 0x5c0be, 30
)

var scenarioStart = time.Date(2026, 9, 1, 0, 0, 0, 0, time.UTC)

// nginxZone is the zone of the API gateway's time_local: the hospital is
// on the US east coast, on daylight saving time all of September.
var nginxZone = time.FixedZone("EDT", -4*60*60)

const (
	kcRealmID   = "7e0f7d4b-2c1a-4f3e-9b8d-6a5c4b3a2f1e"
	kcRealmName = "clinic"
	// ScenarioAPI and ScenarioKeycloak are the names of the scenario's
	// sources.
	ScenarioAPI      = "api"
	ScenarioKeycloak = "keycloak"
)

// geoNet is one network of the scenario's GeoIP databases.
type geoNet struct {
	prefix  string
	country string
	asn     uint32
	org     string
}

// homeNets are where the clients normally run: hospital data centres,
// clinics and cloud regions, in documentation address space mapped to
// documentation and private-use AS numbers.
var homeNets = []geoNet{
	{"198.51.100.0/26", "US", 64496, "Mercy General Hospital"},
	{"198.51.100.64/26", "US", 64497, "Northwind Cloud us-east"},
	{"198.51.100.128/27", "US", 64498, "Lakeside Clinics"},
	{"192.0.2.0/26", "DE", 64499, "Klinikum Nord"},
	{"192.0.2.64/26", "DE", 64500, "Rhein Cloud"},
	{"203.0.113.0/26", "GB", 64501, "Thames Health Trust"},
	{"203.0.113.64/26", "CA", 64502, "Maple Health Network"},
	{"2001:db8:a::/48", "NL", 64503, "Polder Hosting"},
	{"2001:db8:b::/48", "FR", 64504, "Santé Cloud"},
}

// Networks that appear only in the injected problems.
var (
	burstNet = geoNet{"198.51.100.224/28", "US", 64512, "Quickbox VPS"}
	// A burst split over two networks, neither over the threshold alone.
	splitNetA = geoNet{"198.51.100.240/29", "US", 64513, "Fastbox VPS"}
	splitNetB = geoNet{"198.51.100.248/29", "US", 64514, "Nimbus VPS"}
	brNet     = geoNet{"203.0.113.192/28", "BR", 64530, "Rio Fibra Telecom"}
	kpNet     = geoNet{"203.0.113.224/28", "KP", 64540, "Star Joint Venture"}
)

// scenarioGeoEntries are the entries of both test databases.
func ScenarioGeoEntries() []geoiptest.Entry {
	var out []geoiptest.Entry
	for _, n := range append(slices.Clone(homeNets), burstNet, splitNetA, splitNetB, brNet, kpNet) {
		out = append(out, geoiptest.Entry{Network: n.prefix, Country: n.country, ASN: n.asn, Org: n.org})
	}
	return out
}

// clientKind is how a client gets its tokens.
type clientKind int

const (
	kindService clientKind = iota // client_credentials: CLIENT_LOGIN
	kindWebApp                    // a clinician web app with a back end: CODE_TO_TOKEN, REFRESH_TOKEN
	kindSMART                     // a SMART patient app with a back end
)

// roleDef is a role of the rules file and what clients in it hold.
type roleDef struct {
	name   string
	kind   clientKind
	slug   string   // client id stem
	allows []string // the role in rules.yaml
	menu   []string // scopes a client of the role may hold, each within allows
}

var scenarioRoles = []roleDef{
	{"clinical-viewer", kindWebApp, "chart-viewer",
		[]string{"user/Patient.rs", "user/Observation.rs", "user/Condition.rs", "user/Encounter.rs", "user/AllergyIntolerance.rs", "user/DiagnosticReport.rs", "user/DocumentReference.rs", "labs.read", "imaging.read"},
		[]string{"user/Patient.r", "user/Observation.rs", "user/Condition.rs", "user/Encounter.rs", "user/AllergyIntolerance.rs", "user/DiagnosticReport.rs", "user/DocumentReference.rs", "labs.read", "imaging.read"}},
	{"care-team", kindWebApp, "care-portal",
		[]string{"user/Patient.rs", "user/Encounter.rs", "user/Condition.rs", "user/CarePlan.cruds", "appointments.read", "appointments.write", "messaging.send"},
		[]string{"user/Patient.rs", "user/Encounter.rs", "user/Condition.rs", "user/CarePlan.cru", "appointments.read", "messaging.send"}},
	{"patient-app", kindSMART, "patient-app",
		[]string{"patient/*.read", "patient/Patient.r", "patient/Observation.rs", "patient/Condition.rs", "patient/AllergyIntolerance.rs", "patient/Immunization.rs", "patient/MedicationRequest.rs"},
		[]string{"patient/Patient.r", "patient/Observation.rs", "patient/Condition.rs", "patient/AllergyIntolerance.rs", "patient/Immunization.rs", "patient/MedicationRequest.rs"}},
	{"lab-integration", kindService, "lab-interface",
		[]string{"system/Observation.cruds", "system/DiagnosticReport.cruds", "system/ServiceRequest.rs", "system/Patient.r", "labs.read", "labs.order"},
		[]string{"system/Observation.cru", "system/DiagnosticReport.cr", "system/ServiceRequest.rs", "system/Patient.r", "labs.read", "labs.order"}},
	{"scheduling", kindService, "scheduler",
		[]string{"appointments.read", "appointments.write", "messaging.send", "system/Patient.r", "system/Appointment.cruds"},
		[]string{"appointments.read", "appointments.write", "messaging.send", "system/Patient.r", "system/Appointment.rs"}},
	{"billing", kindService, "claims-sync",
		[]string{"billing.read", "billing.submit", "system/Coverage.rs", "system/Encounter.rs", "system/Patient.r"},
		[]string{"billing.read", "billing.submit", "system/Coverage.rs", "system/Encounter.rs", "system/Patient.r"}},
	{"reporting", kindService, "reporting-job",
		[]string{"reports.export", "system/Observation.rs", "system/Condition.rs", "system/Encounter.rs"},
		[]string{"reports.export", "system/Observation.rs", "system/Condition.rs", "system/Encounter.rs"}},
	{"pharmacy", kindService, "pharmacy-interface",
		[]string{"system/MedicationRequest.rs", "system/MedicationDispense.cruds", "system/Patient.r"},
		[]string{"system/MedicationRequest.rs", "system/MedicationDispense.cru", "system/Patient.r"}},
	{"imaging", kindWebApp, "pacs-viewer",
		[]string{"imaging.read", "user/ImagingStudy.rs", "user/Patient.r", "user/DiagnosticReport.rs"},
		[]string{"imaging.read", "user/ImagingStudy.rs", "user/Patient.r", "user/DiagnosticReport.rs"}},
	{"population-health", kindService, "registry-export",
		[]string{"system/Patient.rs", "system/Observation.rs", "system/Condition.rs"},
		[]string{"system/Patient.rs", "system/Observation.rs", "system/Condition.rs"}},
	// Only the injected legacy client has this role: its scope is retired.
	{"legacy-records", kindWebApp, "",
		[]string{"legacy_chart_read", "user/Patient.r", "user/DocumentReference.rs"}, nil},
}

func roleByName(name string) roleDef {
	for _, r := range scenarioRoles {
		if r.name == name {
			return r
		}
	}
	panic("no role " + name)
}

// catalogScope is an entry of the rules file's scope catalog.
type catalogScope struct {
	name, description, sensitivity, lifecycle, replacedBy string
}

var scenarioCatalog = []catalogScope{
	{"labs.read", "Read lab results", "phi", "", ""},
	{"labs.order", "Place lab orders", "phi", "", ""},
	{"appointments.read", "Read appointments", "moderate", "", ""},
	{"appointments.write", "Book, move and cancel appointments", "moderate", "", ""},
	{"billing.read", "Read claims", "high", "", ""},
	{"billing.submit", "Submit claims", "high", "", ""},
	{"messaging.send", "Send messages to patients", "moderate", "", ""},
	{"imaging.read", "Read imaging studies from the PACS", "phi", "", ""},
	{"reports.export", "Download quality reports", "high", "", ""},
	{"user/DocumentReference.rs", "Read and search clinical documents", "phi", "", ""},
	{"legacy_chart_read", "Read scanned charts through the old chart API", "phi", "retired", "user/DocumentReference.rs"},
}

// scenarioRoutes are the REST routes of the API gateway and the scope
// each needs; FHIR calls map through fhir_base instead.
var scenarioRoutes = []struct{ method, path, scope string }{
	{"GET", "/api/labs", "labs.read"},
	{"GET", "/api/labs/{id}", "labs.read"},
	{"POST", "/api/labs/orders", "labs.order"},
	{"GET", "/api/appointments", "appointments.read"},
	{"GET", "/api/appointments/{id}", "appointments.read"},
	{"POST", "/api/appointments", "appointments.write"},
	{"PUT", "/api/appointments/{id}", "appointments.write"},
	{"GET", "/api/billing/claims/**", "billing.read"},
	{"POST", "/api/billing/claims", "billing.submit"},
	{"POST", "/api/messages", "messaging.send"},
	{"GET", "/api/imaging/studies/**", "imaging.read"},
	{"GET", "/api/reports/**", "reports.export"},
	{"GET", "/api/legacy/charts/**", "legacy_chart_read"},
}

// ScenarioFinding is a finding the scenario injects, as expected.json
// lists it.
type ScenarioFinding struct {
	Kind     string `json:"kind"`
	Client   string `json:"client"`
	Subject  string `json:"subject"`
	Severity string `json:"severity"`
	Why      string `json:"why"`
}

// ScenarioTruth is expected.json: what was generated and what the
// pipeline must find in it.
type ScenarioTruth struct {
	Scenario     string            `json:"scenario"`
	Start        time.Time         `json:"start"`
	Days         int               `json:"days"`
	Clients      int               `json:"clients"`
	CleanClients int               `json:"clean_clients"`
	Lines        map[string]int    `json:"lines"`
	Events       map[string]string `json:"events"` // per source, as validate --sample counts them
	Findings     []ScenarioFinding `json:"findings"`
}

// simClient is one simulated client.
type simClient struct {
	id     string
	role   roleDef
	owner  string
	kind   clientKind
	scopes []string     // the scope parameter of every token request
	sites  []netip.Addr // egress addresses, all in use from day 0
	agent  string       // User-Agent of its API calls
	subs   []string     // user ids of its users (web and SMART apps)
	svcID  string       // service account id (services)
	// sessions is how many times a day it gets a token and calls the API.
	sessions int
	// Injected behaviour; zero for clean clients.
	neverUses  string            // a held scope it never calls
	stopsUsing string            // a held scope it calls only in the first days
	stopAfter  int               // the last day it calls stopsUsing
	escalates  string            // a scope it starts asking for on day escalateOn
	escalateOn int               // the first day it asks for escalates
	calls      func() []apiOp    // replaces the calls its scopes imply
	expect     []ScenarioFinding // the findings its problem must raise
}

func (c *simClient) injected() bool { return len(c.expect) > 0 }

// scopesOn returns the scopes the client asks for on day d.
func (c *simClient) scopesOn(d int) []string {
	if c.escalates != "" && d >= c.escalateOn {
		return append(slices.Clone(c.scopes), c.escalates)
	}
	return c.scopes
}

// apiOp is one kind of API call a client makes.
type apiOp struct {
	method string
	path   func(r *rand.Rand) string
	status int
}

// logEntry is one line of a generated log, rendered once the log is in
// time order (Keycloak numbers its lines).
type logEntry struct {
	t      time.Time
	render func(seq int) string
	kind   string // event kind the line yields, "" when ignored
}

// Scenario is the generated thirty_days scenario: its clients and the
// lines of its two logs, in time order.
type Scenario struct {
	rng     *rand.Rand
	clients []*simClient
	kc, api []logEntry
}

// identityScopes are the identity scopes of the rules file (the defaults).
var scenarioIdentity = map[clientKind][]string{
	kindService: nil,
	kindWebApp:  {"openid", "profile", "fhirUser"},
	kindSMART:   {"openid", "fhirUser", "launch/patient", "offline_access"},
}

var departments = []string{
	"cardiology", "oncology", "radiology", "pediatrics", "pharmacy", "billing", "lab", "emergency",
	"orthopedics", "neurology", "primary-care", "behavioral-health", "maternity", "dermatology",
}

// NewScenario builds the whole scenario. It is the same on every call.
func NewScenario() *Scenario {
	s := &Scenario{rng: rand.New(rand.NewPCG(scenarioSeed1, scenarioSeed2))}
	s.makeClients()
	for _, c := range s.clients {
		for d := range scenarioDays {
			s.clientDay(c, d)
		}
	}
	s.injectEvents()
	s.background()
	for _, l := range [][]logEntry{s.kc, s.api} {
		slices.SortStableFunc(l, func(a, b logEntry) int { return a.t.Compare(b.t) })
	}
	return s
}

func (s *Scenario) uuid() string {
	r := s.rng
	var b [36]byte
	hex := func(dst []byte, v uint64) {
		for i := len(dst) - 1; i >= 0; i-- {
			dst[i] = "0123456789abcdef"[v&0xf]
			v >>= 4
		}
	}
	v, w := r.Uint64(), r.Uint64()
	hex(b[0:8], v>>32)
	b[8] = '-'
	hex(b[9:13], v>>16)
	b[13] = '-'
	hex(b[14:18], 0x4000|v&0x0fff)
	b[18] = '-'
	hex(b[19:23], 0x8000|w>>48&0x3fff)
	b[23] = '-'
	hex(b[24:36], w)
	return string(b[:])
}

// host returns a random host address of prefix p.
func (s *Scenario) host(p string) netip.Addr {
	pfx := netip.MustParsePrefix(p)
	a := pfx.Addr()
	if a.Is4() {
		b := a.As4()
		size := 1 << (32 - pfx.Bits())
		n := 1 + s.rng.IntN(size-2)
		b[3] += byte(n)
		return netip.AddrFrom4(b)
	}
	b := a.As16()
	b[14], b[15] = byte(s.rng.IntN(256)), byte(1+s.rng.IntN(254))
	return netip.AddrFrom16(b)
}

func (s *Scenario) pick(n int) int { return s.rng.IntN(n) }

// makeClients creates the clean clients and the injected ones.
func (s *Scenario) makeClients() {
	used := map[string]bool{}
	var clean []roleDef
	for _, r := range scenarioRoles {
		if r.menu != nil {
			clean = append(clean, r)
		}
	}
	for i := range scenarioClean {
		role := clean[i%len(clean)]
		var id, dept string
		for {
			dept = departments[s.pick(len(departments))]
			id = fmt.Sprintf("%s-%s-%02d", dept, role.slug, 1+s.pick(40))
			if !used[id] {
				break
			}
		}
		used[id] = true
		c := s.newClient(id, role, s.menuPick(role))
		c.owner = dept + "-it@clinic.example"
		s.clients = append(s.clients, c)
	}
	s.clients = append(s.clients, s.injectedClients()...)
	slices.SortFunc(s.clients, func(a, b *simClient) int { return strings.Compare(a.id, b.id) })
}

// menuPick picks two to five scopes of the role's menu, in menu order.
func (s *Scenario) menuPick(r roleDef) []string {
	n := 2 + s.pick(min(4, len(r.menu)-1))
	idx := s.rng.Perm(len(r.menu))[:n]
	slices.Sort(idx)
	var out []string
	for _, i := range idx {
		out = append(out, r.menu[i])
	}
	return out
}

var agents = map[clientKind][]string{
	kindService: {"Apache-HttpClient/5.2.1 (Java/17.0.9)", "python-requests/2.31.0", "Go-http-client/2.0", "okhttp/4.12.0", "Mirth Connect/4.4.1"},
	kindWebApp:  {"axios/1.6.7", "okhttp/4.12.0", "Apache-HttpClient/5.2.1 (Java/21.0.2)", "node-fetch/1.0"},
	kindSMART:   {"okhttp/4.12.0", "node-fetch/1.0", "python-httpx/0.27.0"},
}

// newClient returns a client of role holding the non-identity scopes own,
// with one or two stable sites.
func (s *Scenario) newClient(id string, role roleDef, own []string) *simClient {
	c := &simClient{
		id: id, role: role, kind: role.kind,
		owner:    "integration-team@clinic.example",
		scopes:   append(slices.Clone(scenarioIdentity[role.kind]), own...),
		agent:    agents[role.kind][s.pick(len(agents[role.kind]))],
		sessions: 2 + s.pick(3),
		svcID:    s.uuid(),
	}
	// A fifth of the services run inside the hospital and call from
	// private addresses; the others from one or two public sites.
	if role.kind == kindService && s.pick(5) == 0 {
		c.sites = []netip.Addr{netip.AddrFrom4([4]byte{10, 20, byte(s.pick(8)), byte(10 + s.pick(200))})}
	} else {
		n := homeNets[s.pick(len(homeNets))]
		c.sites = []netip.Addr{s.host(n.prefix)}
		if s.pick(3) == 0 {
			m := homeNets[s.pick(len(homeNets))]
			c.sites = append(c.sites, s.host(m.prefix))
		}
	}
	if role.kind != kindService {
		for range 3 + s.pick(6) {
			c.subs = append(c.subs, s.uuid())
		}
	}
	return c
}

// injectedClients are the clients with a problem to find, each its own.
func (s *Scenario) injectedClients() []*simClient {
	var out []*simClient
	add := func(c *simClient, site geoNet, expect ...ScenarioFinding) *simClient {
		c.sites = []netip.Addr{s.host(site.prefix)}
		c.sessions = 3
		c.expect = expect
		out = append(out, c)
		return c
	}
	us, de, gb := homeNets[0], homeNets[3], homeNets[5]

	// A scope granted in every token and never called.
	c := s.newClient("referral-inbox", roleByName("scheduling"), []string{"appointments.read", "messaging.send", "system/Patient.r"})
	c.neverUses = "messaging.send"
	add(c, us, ScenarioFinding{"unused_scope", c.id, "messaging.send", store.SeverityWarning,
		"granted in every token for 30 days, never called (never_used)"})

	// A scope called in the first six days only.
	c = s.newClient("discharge-summary", roleByName("care-team"), []string{"user/Encounter.rs", "user/Condition.rs", "appointments.read", "appointments.write"})
	c.stopsUsing, c.stopAfter = "appointments.write", 5
	add(c, de, ScenarioFinding{"unused_scope", c.id, "appointments.write", store.SeverityWarning,
		"called on days 0-5 only, still granted; idle for more than the 14d window (unused)"})

	// A SMART wildcard used only for Observations.
	c = s.newClient("mychart-patient", roleByName("patient-app"), []string{"patient/*.read"})
	c.calls = func() []apiOp { return []apiOp{fhirOp("Observation", 'r'), fhirOp("Observation", 's')} }
	add(c, homeNets[1],
		ScenarioFinding{"unused_scope", c.id, "patient/*.read", store.SeverityInfo,
			"only Observation reads and searches: patient/Observation.rs would do (broader_than_used)"},
		ScenarioFinding{"broad_request", c.id, "patient/*.read", store.SeverityWarning,
			"asks for a wildcard read scope in every token"})

	// A system-wide wildcard of a bulk exporter.
	c = s.newClient("population-export", roleByName("population-health"), []string{"system/*.read"})
	c.calls = func() []apiOp {
		return []apiOp{
			{"GET", func(r *rand.Rand) string { return "/fhir/Patient/$export?_type=Patient,Observation,Condition" }, 202},
			{"GET", func(r *rand.Rand) string {
				return "/fhir/$export-poll-status?_jobId=" + strconv.Itoa(1000+r.IntN(9000))
			}, 200},
			{"GET", func(r *rand.Rand) string {
				return "/fhir/bulkfiles/" + strconv.Itoa(1000+r.IntN(9000)) + "/Observation.ndjson"
			}, 200},
		}
	}
	add(c, homeNets[1],
		ScenarioFinding{"broad_request", c.id, "system/*.read", store.SeverityHigh,
			"asks for a system-wide wildcard (outside its role) in every token"},
		ScenarioFinding{"unused_scope", c.id, "system/*.read", store.SeverityInfo,
			"used only for $export (search on *): system/*.s would do (broader_than_used)"})

	// A retired scope, still asked for and used.
	c = s.newClient("legacy-charts", roleByName("legacy-records"), []string{"legacy_chart_read", "user/Patient.r"})
	add(c, us, ScenarioFinding{"broad_request", c.id, "legacy_chart_read", store.SeverityHigh,
		"asks for a scope the catalog marks retired"})

	// An escalation: a scope outside its role, asked for from day 12.
	c = s.newClient("care-coordination", roleByName("care-team"), []string{"user/Patient.rs", "user/Encounter.rs", "appointments.read"})
	c.escalates, c.escalateOn = "user/MedicationRequest.rs", 12
	add(c, gb, ScenarioFinding{"broad_request", c.id, "user/MedicationRequest.rs", store.SeverityWarning,
		"from day 12 asks for a scope it never asked for in its baseline, outside its role care-team"})

	// A new country (and so a new network) after the baseline formed.
	c = s.newClient("telehealth-bridge", roleByName("scheduling"), []string{"appointments.read", "appointments.write", "system/Patient.r"})
	add(c, us,
		ScenarioFinding{"unfamiliar_geo", c.id, "BR", store.SeverityWarning,
			"day 18: a token and API calls from Brazil, a country outside its baseline (US)"},
		ScenarioFinding{"unfamiliar_geo", c.id, "AS64530", store.SeverityInfo,
			"day 18: the same calls came from AS64530, a network outside its baseline"},
		ScenarioFinding{"impossible_travel", c.id, c.svcID, store.SeverityHigh,
			"day 18: its service account's token came from Brazil under two hours after a use from the US"},
		ScenarioFinding{"impossible_travel", c.id, "client " + c.id, store.SeverityHigh,
			"day 18: the same trip, seen in the API calls, which carry no subject"})

	// One call from a denied country.
	c = s.newClient("pharmacy-sync", roleByName("pharmacy"), []string{"system/MedicationRequest.rs", "system/Patient.r"})
	add(c, homeNets[2], ScenarioFinding{"unfamiliar_geo", c.id, "KP", store.SeverityHigh,
		"day 22: one API call from KP, a denied country"})

	// A burst from a new network.
	c = s.newClient("imaging-viewer", roleByName("imaging"), []string{"imaging.read", "user/ImagingStudy.rs", "user/Patient.r"})
	add(c, us,
		ScenarioFinding{"unfamiliar_burst", c.id, "AS64512", store.SeverityWarning,
			"day 20: a token refresh and 80 API calls within 3 minutes from AS64512, new to the client"},
		ScenarioFinding{"unfamiliar_geo", c.id, "AS64512", store.SeverityInfo,
			"day 20: AS64512 is a network outside its baseline (same country)"})

	// Probing: refusals for a scope it was never given.
	c = s.newClient("claims-gateway", roleByName("billing"), []string{"billing.read", "billing.submit", "system/Coverage.rs"})
	add(c, us).expect = []ScenarioFinding{ // the per-address finding names the site add picked
		{"broad_request", c.id, "probing", store.SeverityWarning,
			"day 16: six invalid_scope refusals within 5 minutes"},
		{"broad_request", "", "probing from " + c.sites[0].String(), store.SeverityWarning,
			"day 16: the same six refusals, counted per address"},
		{"broad_request", c.id, "system/*.*", store.SeverityHigh,
			"day 16: the refused requests asked for a system-wide wildcard, outside its role"},
	}

	// A bearer token in a query string.
	c = s.newClient("patient-reminders", roleByName("scheduling"), []string{"appointments.read", "messaging.send", "system/Patient.r"})
	add(c, gb, ScenarioFinding{"token_in_url", c.id, ScenarioAPI, store.SeverityHigh,
		"day 14: one call with ?access_token= in its URL"})

	// A burst split over two new networks: 45 calls from each, under the
	// threshold of 50, 90 in all within 3 minutes.
	c = s.newClient("imaging-archive", roleByName("imaging"), []string{"imaging.read", "user/ImagingStudy.rs", "user/Patient.r"})
	add(c, us,
		ScenarioFinding{"unfamiliar_burst", c.id, "new networks", store.SeverityWarning,
			"day 21: 90 API calls within 3 minutes alternating between AS64513 and AS64514, both new to the client, 45 from each"},
		ScenarioFinding{"unfamiliar_geo", c.id, "AS64513", store.SeverityInfo,
			"day 21: AS64513 is a network outside its baseline (same country)"},
		ScenarioFinding{"unfamiliar_geo", c.id, "AS64514", store.SeverityInfo,
			"day 21: AS64514 is a network outside its baseline (same country)"})
	return out
}

// fhirOp is one FHIR call needing interaction in ('c', 'r', 'u', 'd',
// 's') on resource.
func fhirOp(resource string, in byte) apiOp {
	id := func(r *rand.Rand) string { return strconv.Itoa(10000 + r.IntN(90000)) }
	switch in {
	case 'r':
		return apiOp{"GET", func(r *rand.Rand) string { return "/fhir/" + resource + "/" + id(r) }, 200}
	case 's':
		return apiOp{"GET", func(r *rand.Rand) string {
			if resource == "Patient" {
				return "/fhir/Patient?identifier=urn:oid:2.16.840.1.113883.3.4424%7C" + id(r)
			}
			return "/fhir/" + resource + "?patient=Patient/" + id(r) + "&_count=50"
		}, 200}
	case 'c':
		return apiOp{"POST", func(r *rand.Rand) string { return "/fhir/" + resource }, 201}
	case 'u':
		return apiOp{"PUT", func(r *rand.Rand) string { return "/fhir/" + resource + "/" + id(r) }, 200}
	case 'd':
		return apiOp{"DELETE", func(r *rand.Rand) string { return "/fhir/" + resource + "/" + id(r) }, 204}
	}
	panic("interaction " + string(in))
}

// routeOps are the calls that exercise a REST scope.
func routeOps(scope string) []apiOp {
	id := func(r *rand.Rand) string { return strconv.Itoa(100000 + r.IntN(900000)) }
	fixed := func(p string) func(*rand.Rand) string { return func(*rand.Rand) string { return p } }
	switch scope {
	case "labs.read":
		return []apiOp{{"GET", func(r *rand.Rand) string { return "/api/labs/" + id(r) }, 200},
			{"GET", func(r *rand.Rand) string { return "/api/labs?patient=" + id(r) }, 200}}
	case "labs.order":
		return []apiOp{{"POST", fixed("/api/labs/orders"), 201}}
	case "appointments.read":
		return []apiOp{{"GET", func(r *rand.Rand) string { return "/api/appointments?date=2026-09-" + strconv.Itoa(10+r.IntN(20)) }, 200},
			{"GET", func(r *rand.Rand) string { return "/api/appointments/" + id(r) }, 200}}
	case "appointments.write":
		return []apiOp{{"POST", fixed("/api/appointments"), 201},
			{"PUT", func(r *rand.Rand) string { return "/api/appointments/" + id(r) }, 200}}
	case "billing.read":
		return []apiOp{{"GET", func(r *rand.Rand) string { return "/api/billing/claims/" + id(r) }, 200}}
	case "billing.submit":
		return []apiOp{{"POST", fixed("/api/billing/claims"), 202}}
	case "messaging.send":
		return []apiOp{{"POST", fixed("/api/messages"), 202}}
	case "imaging.read":
		return []apiOp{{"GET", func(r *rand.Rand) string { return "/api/imaging/studies/1.2.840.113619.2." + id(r) + "/series" }, 200}}
	case "reports.export":
		return []apiOp{{"GET", func(r *rand.Rand) string { return "/api/reports/quality/2026-Q3?format=csv&unit=" + id(r) }, 200}}
	case "legacy_chart_read":
		return []apiOp{{"GET", func(r *rand.Rand) string { return "/api/legacy/charts/" + id(r) + "/pages/1" }, 200}}
	}
	panic("no route for " + scope)
}

// opsFor returns the calls that exercise scope: one per interaction of a
// SMART scope, the routes of a REST scope, none for an identity scope.
func opsFor(scope string) []apiOp {
	if slices.Contains(scenarioIdentity[kindSMART], scope) || slices.Contains(scenarioIdentity[kindWebApp], scope) {
		return nil
	}
	ctx, rest, ok := strings.Cut(scope, "/")
	if ok && (ctx == "patient" || ctx == "user" || ctx == "system") {
		res, perms, _ := strings.Cut(rest, ".")
		var ops []apiOp
		for _, in := range []byte(perms) {
			ops = append(ops, fhirOp(res, in))
		}
		return ops
	}
	return routeOps(scope)
}

// opsOn returns every call the client needs on day d to exercise the
// scopes it uses.
func (c *simClient) opsOn(d int) []apiOp {
	if c.calls != nil {
		return c.calls()
	}
	var ops []apiOp
	for _, sc := range c.scopesOn(d) {
		if sc == c.neverUses || sc == c.stopsUsing && d > c.stopAfter {
			continue
		}
		ops = append(ops, opsFor(sc)...)
	}
	return ops
}

// clientDay generates a client's ordinary traffic on day d: a few
// sessions, each a token from one of its sites followed by API calls from
// the same site. The first session makes every call the client's scopes
// need; the others a few of them.
func (s *Scenario) clientDay(c *simClient, d int) {
	day := scenarioStart.Add(time.Duration(d) * 24 * time.Hour)
	slot := 24 * time.Hour / time.Duration(c.sessions)
	for i := range c.sessions {
		t := day.Add(time.Duration(i)*slot + time.Duration(s.rng.Int64N(int64(slot-time.Hour))))
		site := c.sites[i%len(c.sites)]
		s.token(c, t, site, d, i > 0)
		ops := c.opsOn(d)
		if i > 0 {
			s.rng.Shuffle(len(ops), func(a, b int) { ops[a], ops[b] = ops[b], ops[a] })
			ops = ops[:min(len(ops), 1+s.pick(4))]
		}
		at := t.Add(time.Duration(1+s.pick(5)) * time.Second)
		if c.kind == kindSMART && s.pick(2) == 0 {
			s.call(c, at, site, "GET", "/fhir/metadata", 200)
		}
		for _, op := range ops {
			at = at.Add(time.Duration(500+s.pick(40000)) * time.Millisecond)
			s.call(c, at, site, op.method, op.path(s.rng), op.status)
		}
		if i > 0 && s.pick(20) == 0 {
			// A stale link: the gateway answers 404 and no scope is used.
			at = at.Add(time.Duration(1+s.pick(30)) * time.Second)
			s.call(c, at, site, "GET", "/fhir/DocumentReference/"+strconv.Itoa(s.pick(1000)), 404)
		}
	}
}

// token writes the token event of a session, preceded by the user's
// login for apps that have users.
func (s *Scenario) token(c *simClient, t time.Time, site netip.Addr, d int, later bool) {
	scope := strings.Join(c.scopesOn(d), " ")
	switch c.kind {
	case kindService:
		if s.pick(100) == 0 {
			s.kcEvent(t.Add(-2*time.Second), "WARN", "deny", []kv{
				{"type", "CLIENT_LOGIN_ERROR"}, {"realmId", kcRealmID}, {"realmName", kcRealmName},
				{"clientId", c.id}, {"userId", "null"}, {"sessionId", "null"}, {"ipAddress", site.String()},
				{"error", "invalid_client_credentials"}, {"grant_type", "client_credentials"}, {"client_auth_method", "client-secret"},
			})
		}
		s.kcEvent(t, "INFO", "grant", []kv{
			{"type", "CLIENT_LOGIN"}, {"realmId", kcRealmID}, {"realmName", kcRealmName},
			{"clientId", c.id}, {"userId", c.svcID}, {"sessionId", s.uuid()}, {"ipAddress", site.String()},
			{"token_id", "trrtcc:" + s.uuid()}, {"grant_type", "client_credentials"}, {"scope", scope},
			{"client_auth_method", "client-jwt"}, {"username", "service-account-" + c.id},
		})
	default:
		user := c.subs[s.pick(len(c.subs))]
		session := s.uuid()
		if later && s.pick(2) == 0 {
			if s.pick(30) == 0 {
				s.kcEvent(t.Add(-time.Second), "WARN", "deny", []kv{
					{"type", "REFRESH_TOKEN_ERROR"}, {"realmId", kcRealmID}, {"realmName", kcRealmName},
					{"clientId", c.id}, {"userId", "null"}, {"sessionId", "null"}, {"ipAddress", site.String()},
					{"error", "invalid_token"}, {"reason", "Token is not active"}, {"grant_type", "refresh_token"},
					{"client_auth_method", "client-secret"},
				})
			}
			s.kcEvent(t, "INFO", "grant", []kv{
				{"type", "REFRESH_TOKEN"}, {"realmId", kcRealmID}, {"realmName", kcRealmName},
				{"clientId", c.id}, {"userId", user}, {"sessionId", session}, {"ipAddress", site.String()},
				{"token_id", s.uuid()}, {"grant_type", "refresh_token"}, {"refresh_token_type", "Refresh"},
				{"scope", scope}, {"refresh_token_id", s.uuid()}, {"updated_refresh_token_id", s.uuid()},
				{"client_auth_method", "client-secret"},
			})
			return
		}
		// The user signs in at the IdP from a browser: for clinician apps
		// on the hospital's network (the client's site), for patient apps
		// from anywhere. LOGIN carries no scope and grants nothing.
		browser := site
		if c.kind == kindSMART {
			browser = netip.AddrFrom4([4]byte{byte(20 + s.pick(200)), byte(s.pick(256)), byte(s.pick(256)), byte(1 + s.pick(254))})
		}
		redirect := "https://" + c.id + ".apps.clinic.example/callback"
		code := s.uuid()
		if c.kind == kindWebApp && s.pick(25) == 0 {
			s.kcEvent(t.Add(-40*time.Second), "WARN", "deny", []kv{
				{"type", "LOGIN_ERROR"}, {"realmId", kcRealmID}, {"realmName", kcRealmName},
				{"clientId", c.id}, {"userId", user}, {"sessionId", "null"}, {"ipAddress", browser.String()},
				{"error", "invalid_user_credentials"}, {"auth_method", "openid-connect"}, {"auth_type", "code"},
				{"redirect_uri", redirect}, {"code_id", code}, {"username", "u" + user[:8]},
			})
		}
		s.kcEvent(t.Add(-3*time.Second), "INFO", "", []kv{
			{"type", "LOGIN"}, {"realmId", kcRealmID}, {"realmName", kcRealmName},
			{"clientId", c.id}, {"userId", user}, {"sessionId", session}, {"ipAddress", browser.String()},
			{"auth_method", "openid-connect"}, {"auth_type", "code"}, {"redirect_uri", redirect},
			{"consent", "no_consent_required"}, {"code_id", code}, {"username", "u" + user[:8]},
		})
		s.kcEvent(t, "INFO", "grant", []kv{
			{"type", "CODE_TO_TOKEN"}, {"realmId", kcRealmID}, {"realmName", kcRealmName},
			{"clientId", c.id}, {"userId", user}, {"sessionId", session}, {"ipAddress", site.String()},
			{"token_id", "onrtac:" + s.uuid()}, {"grant_type", "authorization_code"}, {"refresh_token_type", "Refresh"},
			{"scope", scope}, {"refresh_token_id", s.uuid()}, {"code_id", code}, {"client_auth_method", "client-secret"},
		})
	}
}

type kv struct{ k, v string }

// jsonLine builds one JSON object with its keys in the order written, as
// the loggers write them.
type jsonLine struct{ b []byte }

func newJSONLine() *jsonLine { return &jsonLine{b: make([]byte, 0, 1024)} }

func (j *jsonLine) key(k string) {
	if len(j.b) == 0 {
		j.b = append(j.b, '{')
	} else {
		j.b = append(j.b, ',')
	}
	j.b = appendJSONString(j.b, k)
	j.b = append(j.b, ':')
}

func (j *jsonLine) str(k, v string) *jsonLine { j.key(k); j.b = appendJSONString(j.b, v); return j }
func (j *jsonLine) String() string            { return string(append(j.b, '}')) }

// kcEvent adds an org.keycloak.events line in the quoted jboss-logging
// style; kind is the event kind it yields, "" for an ignored event.
func (s *Scenario) kcEvent(t time.Time, level, kind string, fields []kv) {
	var msg []byte
	for i, f := range fields {
		msg = appendEventField(msg, i == 0, f.k, f.v)
	}
	s.kcLog(t, "org.keycloak.events", level, string(msg), kind)
}

// kcLog adds a Keycloak log line of any category, in Quarkus JSON logging.
func (s *Scenario) kcLog(t time.Time, logger, level, msg, kind string) {
	thread := 1 + s.pick(16)
	s.kc = append(s.kc, logEntry{t: t, kind: kind, render: func(seq int) string {
		return string(appendQuarkusJSON(nil, quarkusRecord{
			time: t, seq: int64(seq), logger: logger, level: level, message: []byte(msg), thread: thread, host: "kc-0",
		}))
	}})
}

// call adds an API call of client c from address from, as the gateway's
// log_format … escape=json writes it, with the client id the gateway
// takes from the token.
func (s *Scenario) call(c *simClient, t time.Time, from netip.Addr, method, path string, status int) {
	j := newJSONLine()
	j.str("time_local", t.In(nginxZone).Format("02/Jan/2006:15:04:05 -0700")).
		str("remote_addr", "10.0.0."+strconv.Itoa(2+s.pick(2))).str("remote_user", "").
		str("request", method+" "+path+" HTTP/1.1").str("status", strconv.Itoa(status)).
		str("body_bytes_sent", strconv.Itoa(200+s.pick(40000))).
		str("request_time", "0."+strconv.Itoa(1005 + s.pick(400))[1:]).str("http_referrer", "").
		str("http_user_agent", c.agent).str("http_x_forwarded_for", from.String()).
		str("client_id", c.id).str("request_id", strings.ReplaceAll(s.uuid(), "-", ""))
	line := j.String()
	s.api = append(s.api, logEntry{t: t, kind: "use", render: func(int) string { return line }})
}

func (s *Scenario) client(id string) *simClient {
	for _, c := range s.clients {
		if c.id == id {
			return c
		}
	}
	panic("no client " + id)
}

// at returns the time of day d at hh:mm.
func at(d, hh, mm int) time.Time {
	return scenarioStart.Add(time.Duration(d)*24*time.Hour + time.Duration(hh)*time.Hour + time.Duration(mm)*time.Minute)
}

// injectEvents adds the injected events that are not part of a client's
// daily routine.
func (s *Scenario) injectEvents() {
	// telehealth-bridge: on day 18 its credentials are used from Brazil.
	c := s.client("telehealth-bridge")
	br := s.host(brNet.prefix)
	t := at(18, 3, 12)
	s.kcEvent(t, "INFO", "grant", []kv{
		{"type", "CLIENT_LOGIN"}, {"realmId", kcRealmID}, {"realmName", kcRealmName},
		{"clientId", c.id}, {"userId", c.svcID}, {"sessionId", s.uuid()}, {"ipAddress", br.String()},
		{"token_id", "trrtcc:" + s.uuid()}, {"grant_type", "client_credentials"}, {"scope", strings.Join(c.scopes, " ")},
		{"client_auth_method", "client-jwt"}, {"username", "service-account-" + c.id},
	})
	for i, op := range []apiOp{fhirOp("Patient", 'r'), routeOps("appointments.read")[0], routeOps("appointments.read")[1], fhirOp("Patient", 'r')} {
		s.call(c, t.Add(time.Duration(20+i*45)*time.Second), br, op.method, op.path(s.rng), op.status)
	}

	// pharmacy-sync: one call from a denied country on day 22.
	c = s.client("pharmacy-sync")
	op := fhirOp("MedicationRequest", 's')
	s.call(c, at(22, 14, 41), s.host(kpNet.prefix), op.method, op.path(s.rng), op.status)

	// imaging-viewer: on day 20 a refresh token is redeemed from a VPS and
	// the API is scraped: 80 calls within 3 minutes.
	c = s.client("imaging-viewer")
	vps := s.host(burstNet.prefix)
	t = at(20, 10, 5)
	s.kcEvent(t, "INFO", "grant", []kv{
		{"type", "REFRESH_TOKEN"}, {"realmId", kcRealmID}, {"realmName", kcRealmName},
		{"clientId", c.id}, {"userId", c.subs[0]}, {"sessionId", s.uuid()}, {"ipAddress", vps.String()},
		{"token_id", s.uuid()}, {"grant_type", "refresh_token"}, {"refresh_token_type", "Refresh"},
		{"scope", strings.Join(c.scopes, " ")}, {"refresh_token_id", s.uuid()}, {"updated_refresh_token_id", s.uuid()},
		{"client_auth_method", "client-secret"},
	})
	scrape := []apiOp{fhirOp("ImagingStudy", 's'), fhirOp("ImagingStudy", 'r'), fhirOp("Patient", 'r')}
	for i := range 80 {
		op := scrape[i%len(scrape)]
		s.call(c, t.Add(5*time.Second+time.Duration(i)*2*time.Second), vps, op.method, op.path(s.rng), op.status)
	}

	// claims-gateway: on day 16, six refused requests for system/*.*
	// within five minutes, from its usual address.
	c = s.client("claims-gateway")
	t = at(16, 2, 40)
	for i := range 6 {
		s.kcEvent(t.Add(time.Duration(i)*50*time.Second), "WARN", "deny", []kv{
			{"type", "CLIENT_LOGIN_ERROR"}, {"realmId", kcRealmID}, {"realmName", kcRealmName},
			{"clientId", c.id}, {"userId", "null"}, {"sessionId", "null"}, {"ipAddress", c.sites[0].String()},
			{"error", "invalid_scope"}, {"reason", "Invalid scopes: system/*.*"}, {"grant_type", "client_credentials"},
			{"scope", "system/*.*"}, {"client_auth_method", "client-jwt"},
		})
	}

	// patient-reminders: one call on day 14 with the token in the URL.
	c = s.client("patient-reminders")
	s.call(c, at(14, 9, 30), c.sites[0], "GET",
		"/fhir/Patient/48213?access_token=eyJhbGciOiJSUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJwYXRpZW50LXJlbWluZGVycyJ9.c2lnbmF0dXJl", 200)

	// imaging-archive: on day 21, 90 calls within 3 minutes, alternating
	// between two networks it has never used.
	c = s.client("imaging-archive")
	split := []netip.Addr{s.host(splitNetA.prefix), s.host(splitNetB.prefix)}
	t = at(21, 15, 20)
	for i := range 90 {
		op := scrape[i%len(scrape)]
		s.call(c, t.Add(time.Duration(i)*2*time.Second), split[i%2], op.method, op.path(s.rng), op.status)
	}
}

// background adds the lines that belong to no client: Keycloak's own
// messages and the load balancer's health checks.
func (s *Scenario) background() {
	for _, d := range []int{0, 15} {
		t := at(d, 0, 0)
		if d > 0 {
			t = at(d, 4, 30)
			s.kcLog(t.Add(-2*time.Second), "io.quarkus", "INFO", "Keycloak stopped in 0.512s", "")
		}
		s.kcLog(t, "io.quarkus", "INFO", "Keycloak 26.0.5 on JVM (powered by Quarkus 3.15.1) started in 11.482s. Listening on: http://0.0.0.0:8080. Management interface listening on http://0.0.0.0:9000.", "")
		s.kcLog(t.Add(time.Millisecond), "io.quarkus", "INFO", "Profile prod activated.", "")
	}
	for d := range scenarioDays {
		s.kcLog(at(d, 3, 0), "org.keycloak.services.scheduled", "INFO", "ClearExpiredEvents took 41 ms", "")
	}
	// Health checks every ten minutes from the load balancer: no client.
	lb := &simClient{id: "", agent: "ELB-HealthChecker/2.0"}
	for m := 0; m < scenarioDays*24*60; m += 10 {
		s.call(lb, scenarioStart.Add(time.Duration(m)*time.Minute+7*time.Second), netip.MustParseAddr("10.0.0.2"), "GET", "/healthz", 200)
	}
}

// rulesYAML renders the rules file of the scenario.
// RulesYAML returns the scenario's rules file.
func (s *Scenario) RulesYAML() string {
	var b strings.Builder
	q := strconv.Quote
	b.WriteString("# Rules of the thirty_days scenario, written by TestScenarioThirtyDays -update\n" +
		"# from cmd/scopewatch/scenario_gen_test.go: do not edit by hand.\n\n")
	b.WriteString("scopes:\n")
	for _, sc := range scenarioCatalog {
		fmt.Fprintf(&b, "  %s: {description: %s, sensitivity: %s", q(sc.name), q(sc.description), sc.sensitivity)
		if sc.lifecycle != "" {
			fmt.Fprintf(&b, ", lifecycle: %s, replaced_by: %s", sc.lifecycle, q(sc.replacedBy))
		}
		b.WriteString("}\n")
	}
	b.WriteString("\nroles:\n")
	for _, r := range scenarioRoles {
		fmt.Fprintf(&b, "  %s: [%s]\n", r.name, quoteAll(r.allows))
	}
	b.WriteString("\nclients:\n")
	for _, c := range s.clients {
		fmt.Fprintf(&b, "  %s: {role: %s, owner: %s}\n", c.id, c.role.name, c.owner)
	}
	b.WriteString("\nroutes:\n")
	for _, r := range scenarioRoutes {
		fmt.Fprintf(&b, "  - {method: %s, path: %s, scopes: [%s]}\n", r.method, q(r.path), q(r.scope))
	}
	return b.String()
}

func quoteAll(ss []string) string {
	q := make([]string, len(ss))
	for i, s := range ss {
		q[i] = strconv.Quote(s)
	}
	return strings.Join(q, ", ")
}

// Truth returns what expected.json holds for the scenario.
func (s *Scenario) Truth() ScenarioTruth {
	t := ScenarioTruth{
		Scenario: "thirty_days", Start: scenarioStart, Days: scenarioDays,
		Clients: len(s.clients), Lines: map[string]int{ScenarioKeycloak: len(s.kc), ScenarioAPI: len(s.api)},
		Events: map[string]string{ScenarioKeycloak: eventSummary(s.kc), ScenarioAPI: eventSummary(s.api)},
	}
	for _, c := range s.clients {
		if !c.injected() {
			t.CleanClients++
		}
		t.Findings = append(t.Findings, c.expect...)
	}
	slices.SortFunc(t.Findings, func(a, b ScenarioFinding) int {
		return strings.Compare(a.Kind+"\x00"+a.Client+"\x00"+a.Subject, b.Kind+"\x00"+b.Client+"\x00"+b.Subject)
	})
	return t
}

// eventSummary is how validate --sample would count the lines of a log:
// "N lines: P parsed into E events (kind n, ...), I ignored, 0 malformed".
func eventSummary(l []logEntry) string {
	byKind := map[string]int{}
	ignored := 0
	for _, e := range l {
		if e.kind == "" {
			ignored++
			continue
		}
		byKind[e.kind]++
	}
	return fmt.Sprintf("%d lines: %d parsed into %d events (%s), %d ignored, 0 malformed",
		len(l), len(l)-ignored, len(l)-ignored, ingest.Counts(byKind), ignored)
}

// WriteLogs writes the two logs into dir and returns their paths.
func (s *Scenario) WriteLogs(dir string) (kc, api string, err error) {
	kc, api = dir+"/keycloak.log", dir+"/api_access.json"
	for _, f := range []struct {
		path string
		l    []logEntry
	}{{kc, s.kc}, {api, s.api}} {
		if err := writeEntries(f.path, f.l); err != nil {
			return "", "", err
		}
	}
	return kc, api, nil
}

func writeEntries(path string, l []logEntry) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	w := bufio.NewWriterSize(f, 1<<16)
	for i, e := range l {
		w.WriteString(e.render(100000 + i))
		w.WriteByte('\n')
	}
	if err := w.Flush(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// maxGap returns the longest time between two consecutive event lines
// of l, and the newest time.
func maxGap(l []logEntry) (gap time.Duration, newest time.Time) {
	var last time.Time
	for _, e := range l {
		if e.kind == "" {
			continue
		}
		if !last.IsZero() && e.t.Sub(last) > gap {
			gap = e.t.Sub(last)
		}
		last = e.t
	}
	return gap, last
}

// MaxGap returns the longest time between two consecutive event lines of
// the log of source (ScenarioKeycloak or ScenarioAPI).
func (s *Scenario) MaxGap(source string) time.Duration {
	l := s.kc
	if source == ScenarioAPI {
		l = s.api
	}
	gap, _ := maxGap(l)
	return gap
}

// CleanClients returns the ids of the clients with nothing injected.
func (s *Scenario) CleanClients() map[string]bool {
	clean := map[string]bool{}
	for _, c := range s.clients {
		if !c.injected() {
			clean[c.id] = true
		}
	}
	return clean
}
