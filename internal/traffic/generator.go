// Package traffic generates realistic OAuth traffic (Keycloak token
// events and API gateway access lines, from reproducible seeds) for the
// demo, the bench and the tests, and writes it as log files with the
// config, rules and GeoIP databases to read it with. The daemon does not
// link it.
package traffic

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"strconv"
	"strings"
	"time"
)

// Generator generates realistic Keycloak token events and API gateway access
// lines for the demo, the bench command and the crash tests. Output is a
// pure function of the seed, so runs are reproducible.
type Generator struct {
	rng     *rand.Rand
	clients []Client
	start   time.Time
	step    time.Duration
	n       int
	seq     int64
	msg     []byte // scratch: the message of the line being written
	traffic Traffic
	// homes holds, per client, the indexes of its home networks in
	// traffic.Nets; nil when the traffic has no network plan.
	homes [][]int
	trng  *rand.Rand // draws for the optional traits, apart from rng
	buf   []string   // the scopes of the last token, when tokens carry a subset
}

// Client is one generated OAuth client: the scopes it is granted and
// the API routes it calls (each exercising one of its scopes).
type Client struct {
	ID      string
	Granted []string
	Calls   []Call
	// Since delays the client's first event, as a fraction of the run.
	Since float64
}

// Call is an API route a client calls.
type Call struct {
	Method string
	Path   string  // fmt pattern with one %d for an id, or a literal path
	Until  float64 // fraction of the run after which the call stops; 0 = never stops
}

// scopePool is the catalog generated clients draw scopes from.
var scopePool = []string{
	"view_lab_results", "view_billing", "write_orders", "view_schedule", "write_schedule",
	"view_imaging", "view_notes", "write_notes", "view_meds", "write_meds",
	"patient/Observation.read", "patient/Patient.read", "patient/Condition.read",
	"user/Practitioner.read", "system/Group.read", "read_all_data", "admin",
}

// routeFor maps each non-identity pool scope to the API route that
// exercises it; the generated rules file lists the same mapping.
var routeFor = map[string]Call{
	"view_lab_results":         {Method: "GET", Path: "/api/labs/%d"},
	"view_billing":             {Method: "GET", Path: "/api/billing/invoices/%d"},
	"write_orders":             {Method: "POST", Path: "/api/orders"},
	"view_schedule":            {Method: "GET", Path: "/api/schedule/%d"},
	"write_schedule":           {Method: "PUT", Path: "/api/schedule/%d"},
	"view_imaging":             {Method: "GET", Path: "/api/imaging/studies/%d"},
	"view_notes":               {Method: "GET", Path: "/api/notes/%d"},
	"write_notes":              {Method: "POST", Path: "/api/notes"},
	"view_meds":                {Method: "GET", Path: "/api/meds/%d"},
	"write_meds":               {Method: "POST", Path: "/api/meds"},
	"patient/Observation.read": {Method: "GET", Path: "/fhir/Observation/%d"},
	"patient/Patient.read":     {Method: "GET", Path: "/fhir/Patient/%d"},
	"patient/Condition.read":   {Method: "GET", Path: "/fhir/Condition/%d"},
	"user/Practitioner.read":   {Method: "GET", Path: "/fhir/Practitioner/%d"},
	"system/Group.read":        {Method: "GET", Path: "/fhir/Group/%d"},
	"read_all_data":            {Method: "GET", Path: "/api/export/all"},
	"admin":                    {Method: "POST", Path: "/api/admin/clients"},
}

// New returns a generator of n events spread evenly from start to end
// over the given clients.
func New(seed uint64, clients []Client, start, end time.Time, n int) *Generator {
	step := time.Duration(0)
	if n > 1 {
		step = end.Sub(start) / time.Duration(n)
	}
	return &Generator{rng: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)), clients: clients, start: start, step: step, n: n}
}

// GeneratedClients makes n clients, each granted openid and profile plus 3
// to 7 pool scopes, of which it calls the routes of about half.
func GeneratedClients(seed uint64, n int) []Client {
	rng := rand.New(rand.NewPCG(seed, 7))
	cs := make([]Client, n)
	for i := range cs {
		c := Client{ID: fmt.Sprintf("client-%04d", i), Granted: []string{"openid", "profile"}}
		k := 3 + rng.IntN(5)
		for _, j := range rng.Perm(len(scopePool))[:k] {
			s := scopePool[j]
			c.Granted = append(c.Granted, s)
			if rng.IntN(2) == 0 {
				c.Calls = append(c.Calls, routeFor[s])
			}
		}
		if len(c.Calls) == 0 {
			c.Calls = append(c.Calls, routeFor[c.Granted[2]])
		}
		cs[i] = c
	}
	return cs
}

// Event is one generated event before formatting.
type Event struct {
	Time   time.Time
	Client *Client
	Grant  bool // a token event; otherwise an API call
	Call   Call
	ID     int
	IP     string
	User   string
	Error  string
	// Scopes are the scopes of the token when it carries only some of the
	// client's; nil for all of Client.Granted. Valid until the next event.
	Scopes []string
}

// Next returns the i-th event. Roughly one event in eight is a token
// grant, one in two hundred a refused request; the rest are API calls.
func (s *Generator) Next(i int) Event {
	t := s.start.Add(time.Duration(i) * s.step)
	frac := float64(i) / float64(max(s.n, 1))
	var c *Client
	var ci int
	for {
		ci = s.rng.IntN(len(s.clients))
		c = &s.clients[ci]
		if c.Since <= frac {
			break
		}
	}
	ev := Event{Time: t, Client: c, ID: 1000 + s.rng.IntN(90000)}
	if s.homes == nil {
		ev.IP = "10." + strconv.Itoa(s.rng.IntN(4)) + "." + strconv.Itoa(s.rng.IntN(256)) + "." + strconv.Itoa(1+s.rng.IntN(254))
	} else {
		ev.IP = s.publicAddr(ci)
	}
	ev.User = fmt.Sprintf("8f%06x-1c2d-4e5f-9a0b-%012x", s.rng.IntN(1<<24), s.rng.Int64N(1<<40))
	if k := s.traffic.TokenScopes; k > 0 && len(c.Granted) > k+1 {
		ev.Scopes = s.tokenScopes(c.Granted, k)
	}
	r := s.rng.IntN(200)
	switch {
	case r == 0:
		ev.Grant, ev.Error = true, "invalid_client_credentials"
		if s.traffic.Nets != nil && s.trng.IntN(2) == 0 {
			ev.Error = "invalid_scope" // a reason the probing detector counts
		}
	case r < 25:
		ev.Grant = true
	default:
		call := c.Calls[s.rng.IntN(len(c.Calls))]
		if call.Until > 0 && frac > call.Until {
			ev.Grant = true // the call has stopped; the client still renews tokens
		} else {
			ev.Call = call
		}
	}
	return ev
}

// KeycloakQuarkusJSON appends ev as Keycloak's jboss-logging event inside
// Quarkus JSON console logging (new quoted style).
func (s *Generator) KeycloakQuarkusJSON(dst []byte, ev Event) []byte {
	s.seq++
	s.msg = s.keycloakMessage(s.msg[:0], ev)
	dst = appendQuarkusJSON(dst, quarkusRecord{
		time: ev.Time, seq: 8000 + s.seq, logger: "org.keycloak.events", level: eventLevel(ev),
		message: s.msg, thread: 3, host: "kc-0.iam.svc",
	})
	return append(dst, '\n')
}

// KeycloakText appends ev as a jboss-logging text line in the new quoted
// style with Keycloak's default console prefix.
func (s *Generator) KeycloakText(dst []byte, ev Event) []byte {
	s.msg = s.keycloakMessage(s.msg[:0], ev)
	dst = appendKeycloakText(dst, ev.Time, eventLevel(ev), "org.keycloak.events", 3, s.msg)
	return append(dst, '\n')
}

// eventLevel is the level Keycloak logs ev at: WARN for an error, DEBUG
// otherwise (events-logging-success-level).
func eventLevel(ev Event) string {
	if ev.Error != "" {
		return "WARN"
	}
	return "DEBUG"
}

func (s *Generator) keycloakMessage(dst []byte, ev Event) []byte {
	typ := "CODE_TO_TOKEN"
	grantType := "authorization_code"
	if ev.Client.ID[len(ev.Client.ID)-1]%3 == 0 {
		typ, grantType = "CLIENT_LOGIN", "client_credentials"
	} else if ev.ID%4 == 0 {
		typ, grantType = "REFRESH_TOKEN", "refresh_token"
	}
	if ev.Error != "" {
		typ += "_ERROR"
	}
	dst = appendEventField(dst, true, "type", typ)
	dst = appendEventField(dst, false, "realmId", "4c1e7f0a-2b9d-4e61-8f3a-clinic")
	dst = appendEventField(dst, false, "realmName", "clinic")
	dst = appendEventField(dst, false, "clientId", ev.Client.ID)
	dst = appendEventField(dst, false, "userId", ev.User)
	dst = appendEventField(dst, false, "sessionId", "5d2b9c1e-7a44-4f0e-b3c2-"+strconv.Itoa(ev.ID))
	dst = appendEventField(dst, false, "ipAddress", ev.IP)
	if ev.Error != "" {
		dst = appendEventField(dst, false, "error", ev.Error)
		return appendEventField(dst, false, "grant_type", grantType)
	}
	dst = appendEventField(dst, false, "token_id", "onrtac:"+strconv.Itoa(ev.ID)+"-5e6f-4a7b-8c9d")
	dst = appendEventField(dst, false, "grant_type", grantType)
	dst = append(dst, `, scope="`...)
	scopes := ev.Scopes
	if scopes == nil {
		scopes = ev.Client.Granted
	}
	for i, sc := range scopes {
		if i > 0 {
			dst = append(dst, ' ')
		}
		dst = append(dst, sc...)
	}
	dst = append(dst, '"')
	return appendEventField(dst, false, "client_auth_method", "client-secret")
}

// APIJSON appends ev as an API gateway JSON access line with the client id
// the gateway took from the token.
func (s *Generator) APIJSON(dst []byte, ev Event) []byte {
	dst = append(dst, `{"time":"`...)
	dst = ev.Time.UTC().AppendFormat(dst, "2006-01-02T15:04:05.000Z07:00")
	dst = append(dst, `","remote_addr":"`...)
	dst = append(dst, ev.IP...)
	dst = append(dst, `","method":"`...)
	dst = append(dst, ev.Call.Method...)
	dst = append(dst, `","path":"`...)
	if pre, post, ok := strings.Cut(ev.Call.Path, "%d"); ok {
		dst = append(dst, pre...)
		dst = strconv.AppendInt(dst, int64(ev.ID), 10)
		dst = append(dst, post...)
	} else {
		dst = append(dst, ev.Call.Path...)
	}
	dst = append(dst, `","status":200,"client_id":"`...)
	dst = append(dst, ev.Client.ID...)
	dst = append(dst, `","request_time":0.012,"bytes_sent":1834}`...)
	return append(dst, '\n')
}

// Traffic are optional traits of the generated traffic. The zero
// value is the traffic the demo and the crash tests were written against:
// private addresses, tokens carrying all of a client's scopes.
type Traffic struct {
	// Nets, when set, places clients on public networks: each client comes
	// from two to four home networks in one country (one client in ten
	// also from one abroad), and one event in a thousand comes from any
	// network of the plan (travel, a new egress). One refusal in two is
	// then invalid_scope, which the probing detector counts.
	Nets []Net
	// TokenScopes, when positive, makes each token carry the client's
	// first (identity) scope and 3 to TokenScopes others drawn from the
	// rest of its scopes, rather than all of them.
	TokenScopes int
}

// WithTraffic sets the optional traits of the traffic; the seed drives
// their draws, apart from those of the base traffic.
func (s *Generator) WithTraffic(seed uint64, t Traffic) *Generator {
	s.traffic = t
	s.trng = rand.New(rand.NewPCG(seed, seed^0x5851f42d4c957f2d))
	if len(t.Nets) == 0 {
		s.traffic.Nets, s.homes = nil, nil
		return s
	}
	byCountry := map[string][]int{}
	for i, n := range t.Nets {
		byCountry[n.Country] = append(byCountry[n.Country], i)
	}
	s.homes = make([][]int, len(s.clients))
	for ci := range s.clients {
		local := byCountry[t.Nets[s.trng.IntN(len(t.Nets))].Country]
		k := min(2+s.trng.IntN(3), len(local))
		for _, j := range s.trng.Perm(len(local))[:k] {
			s.homes[ci] = append(s.homes[ci], local[j])
		}
		if s.trng.IntN(10) == 0 {
			s.homes[ci] = append(s.homes[ci], s.trng.IntN(len(t.Nets)))
		}
	}
	return s
}

// publicAddr draws the address of an event of client ci.
func (s *Generator) publicAddr(ci int) string {
	var n Net
	if s.trng.IntN(1000) == 0 {
		n = s.traffic.Nets[s.trng.IntN(len(s.traffic.Nets))]
	} else {
		h := s.homes[ci]
		n = s.traffic.Nets[h[s.trng.IntN(len(h))]]
	}
	a := n.Prefix.Addr().As4()
	a[3] = byte(1 + s.trng.IntN(254))
	return netip.AddrFrom4(a).String()
}

// tokenScopes draws the scopes of one token: granted[0] and 3 to k of the
// others, in the client's order.
func (s *Generator) tokenScopes(granted []string, k int) []string {
	s.buf = append(s.buf[:0], granted[0])
	n := 3 + s.trng.IntN(k-2)
	rest := len(granted) - 1
	for i, sc := range granted[1:] {
		// Selection sampling keeps the client's order.
		if s.trng.IntN(rest-i) < n {
			s.buf = append(s.buf, sc)
			n--
		}
	}
	return s.buf
}

// Net is one network of the generated address plan, with the
// country and autonomous system a GeoIP database places it in.
type Net struct {
	Prefix  netip.Prefix // a /24
	Country string       // ISO 3166-1 alpha-2
	ASN     uint32
}

// countries are the countries of the address plan.
var countries = []string{"US", "CA", "GB", "DE", "FR", "NL", "BR", "IN", "JP", "AU", "ZA", "SE"}

// firstOctets are public, unreserved first octets of the plan.
var firstOctets = []byte{5, 31, 37, 46, 62, 77, 81, 85, 88, 91, 95, 109, 146, 151, 176, 178, 185, 188, 193, 195, 212, 213, 217}

// Networks returns an address plan of n public /24 networks, spread
// over countries, eight autonomous systems per country.
func Networks(n int) []Net {
	nets := make([]Net, n)
	for i := range nets {
		l := len(firstOctets)
		a := [4]byte{firstOctets[i%l], byte(i / l), byte(i * 37), 0}
		c := i % len(countries)
		nets[i] = Net{
			Prefix:  netip.PrefixFrom(netip.AddrFrom4(a), 24),
			Country: countries[c],
			ASN:     uint32(64512 + c*8 + (i/len(countries))%8),
		}
	}
	return nets
}

// widePool is a catalog of narrow scopes for clients that hold many:
// the pool's scopes that no detector calls broad, and SMART v1 read and
// write scopes on FHIR resources.
var widePool = func() []string {
	var pool []string
	for _, s := range scopePool {
		if s != "admin" && s != "read_all_data" {
			pool = append(pool, s)
		}
	}
	for _, r := range []string{"Encounter", "MedicationRequest", "AllergyIntolerance", "Immunization", "Procedure",
		"DiagnosticReport", "DocumentReference", "CarePlan", "Goal", "Device", "Coverage", "Appointment",
		"ServiceRequest", "Specimen", "FamilyMemberHistory", "QuestionnaireResponse", "Consent", "Claim"} {
		pool = append(pool, "patient/"+r+".read", "user/"+r+".read", "user/"+r+".write")
	}
	return pool
}()

// ScopedClients makes n clients each holding openid, profile and
// scopes-2 scopes of widePool (3 to 7 when scopes is 0); one client
// in fifty also holds a broad scope (admin or read_all_data), which every
// one of its grants is flagged for.
func ScopedClients(seed uint64, n, scopes int) []Client {
	rng := rand.New(rand.NewPCG(seed, 13))
	cs := make([]Client, n)
	for i := range cs {
		c := Client{ID: fmt.Sprintf("client-%04d", i), Granted: []string{"openid", "profile"}}
		k := scopes - 2
		if scopes <= 0 {
			k = 3 + rng.IntN(5)
		}
		k = min(max(k, 1), len(widePool))
		for _, j := range rng.Perm(len(widePool))[:k] {
			c.Granted = append(c.Granted, widePool[j])
		}
		if rng.IntN(50) == 0 {
			c.Granted[len(c.Granted)-1] = []string{"admin", "read_all_data"}[rng.IntN(2)]
		}
		for _, s := range c.Granted[2:] {
			if call, ok := routeFor[s]; ok {
				c.Calls = append(c.Calls, call)
			}
		}
		if len(c.Calls) == 0 {
			c.Calls = append(c.Calls, Call{Method: "GET", Path: "/fhir/metadata"})
		}
		cs[i] = c
	}
	return cs
}
