package main

import (
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"time"
)

// synth generates realistic Keycloak token events and API gateway access
// lines for the demo, the bench command and the crash tests. Output is a
// pure function of the seed, so runs are reproducible.
type synth struct {
	rng     *rand.Rand
	clients []synthClient
	start   time.Time
	step    time.Duration
	n       int
	seq     int64
}

// synthClient is one generated OAuth client: the scopes it is granted and
// the API routes it calls (each exercising one of its scopes).
type synthClient struct {
	ID      string
	Granted []string
	Calls   []synthCall
	// Since delays the client's first event, as a fraction of the run.
	Since float64
}

// synthCall is an API route a client calls.
type synthCall struct {
	Method string
	Path   string  // fmt pattern with one %d for an id, or a literal path
	Until  float64 // fraction of the run after which the call stops; 0 = never stops
}

// synthScopePool is the catalog generated clients draw scopes from.
var synthScopePool = []string{
	"view_lab_results", "view_billing", "write_orders", "view_schedule", "write_schedule",
	"view_imaging", "view_notes", "write_notes", "view_meds", "write_meds",
	"patient/Observation.read", "patient/Patient.read", "patient/Condition.read",
	"user/Practitioner.read", "system/Group.read", "read_all_data", "admin",
}

// synthRouteFor maps each non-identity pool scope to the API route that
// exercises it; the generated rules file lists the same mapping.
var synthRouteFor = map[string]synthCall{
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

// newSynth returns a generator of n events spread evenly from start to end
// over the given clients.
func newSynth(seed uint64, clients []synthClient, start, end time.Time, n int) *synth {
	step := time.Duration(0)
	if n > 1 {
		step = end.Sub(start) / time.Duration(n)
	}
	return &synth{rng: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)), clients: clients, start: start, step: step, n: n}
}

// generatedClients makes n clients, each granted openid and profile plus 3
// to 7 pool scopes, of which it calls the routes of about half.
func generatedClients(seed uint64, n int) []synthClient {
	rng := rand.New(rand.NewPCG(seed, 7))
	cs := make([]synthClient, n)
	for i := range cs {
		c := synthClient{ID: fmt.Sprintf("client-%04d", i), Granted: []string{"openid", "profile"}}
		k := 3 + rng.IntN(5)
		for _, j := range rng.Perm(len(synthScopePool))[:k] {
			s := synthScopePool[j]
			c.Granted = append(c.Granted, s)
			if rng.IntN(2) == 0 {
				c.Calls = append(c.Calls, synthRouteFor[s])
			}
		}
		if len(c.Calls) == 0 {
			c.Calls = append(c.Calls, synthRouteFor[c.Granted[2]])
		}
		cs[i] = c
	}
	return cs
}

// synthEvent is one generated event before formatting.
type synthEvent struct {
	Time   time.Time
	Client *synthClient
	Grant  bool // a token event; otherwise an API call
	Call   synthCall
	ID     int
	IP     string
	User   string
	Error  string
}

// next returns the i-th event. Roughly one event in eight is a token
// grant, one in two hundred a refused request; the rest are API calls.
func (s *synth) next(i int) synthEvent {
	t := s.start.Add(time.Duration(i) * s.step)
	frac := float64(i) / float64(max(s.n, 1))
	var c *synthClient
	for {
		c = &s.clients[s.rng.IntN(len(s.clients))]
		if c.Since <= frac {
			break
		}
	}
	ev := synthEvent{
		Time:   t,
		Client: c,
		ID:     1000 + s.rng.IntN(90000),
		IP:     "10." + strconv.Itoa(s.rng.IntN(4)) + "." + strconv.Itoa(s.rng.IntN(256)) + "." + strconv.Itoa(1+s.rng.IntN(254)),
		User:   fmt.Sprintf("8f%06x-1c2d-4e5f-9a0b-%012x", s.rng.IntN(1<<24), s.rng.Int64N(1<<40)),
	}
	r := s.rng.IntN(200)
	switch {
	case r == 0:
		ev.Grant, ev.Error = true, "invalid_client_credentials"
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

// keycloakQuarkusJSON appends ev as Keycloak's jboss-logging event inside
// Quarkus JSON console logging (new quoted style).
func (s *synth) keycloakQuarkusJSON(dst []byte, ev synthEvent) []byte {
	s.seq++
	dst = append(dst, `{"timestamp":"`...)
	dst = ev.Time.UTC().AppendFormat(dst, "2006-01-02T15:04:05.000Z07:00")
	dst = append(dst, `","sequence":`...)
	dst = strconv.AppendInt(dst, 8000+s.seq, 10)
	dst = append(dst, `,"loggerClassName":"org.jboss.logging.Logger","loggerName":"org.keycloak.events","level":"`...)
	if ev.Error != "" {
		dst = append(dst, "WARN"...)
	} else {
		dst = append(dst, "DEBUG"...)
	}
	dst = append(dst, `","message":"`...)
	dst = s.keycloakMessage(dst, ev, `\"`)
	dst = append(dst, `","threadName":"executor-thread-3","threadId":41,"mdc":{},"ndc":"","hostName":"kc-0.iam.svc","processName":"QuarkusEntryPoint","processId":1}`...)
	return append(dst, '\n')
}

// keycloakText appends ev as a jboss-logging text line in the new quoted
// style with Keycloak's default console prefix.
func (s *synth) keycloakText(dst []byte, ev synthEvent) []byte {
	dst = ev.Time.UTC().AppendFormat(dst, "2006-01-02 15:04:05,000")
	if ev.Error != "" {
		dst = append(dst, " WARN  [org.keycloak.events] (executor-thread-3) "...)
	} else {
		dst = append(dst, " DEBUG [org.keycloak.events] (executor-thread-3) "...)
	}
	dst = s.keycloakMessage(dst, ev, `"`)
	return append(dst, '\n')
}

func (s *synth) keycloakMessage(dst []byte, ev synthEvent, q string) []byte {
	kv := func(k, v string) {
		dst = append(dst, k...)
		dst = append(dst, '=')
		dst = append(dst, q...)
		dst = append(dst, v...)
		dst = append(dst, q...)
	}
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
	kv("type", typ)
	dst = append(dst, ", "...)
	kv("realmId", "4c1e7f0a-2b9d-4e61-8f3a-clinic")
	dst = append(dst, ", "...)
	kv("realmName", "clinic")
	dst = append(dst, ", "...)
	kv("clientId", ev.Client.ID)
	dst = append(dst, ", "...)
	kv("userId", ev.User)
	dst = append(dst, ", "...)
	kv("sessionId", "5d2b9c1e-7a44-4f0e-b3c2-"+strconv.Itoa(ev.ID))
	dst = append(dst, ", "...)
	kv("ipAddress", ev.IP)
	if ev.Error != "" {
		dst = append(dst, ", "...)
		kv("error", ev.Error)
		dst = append(dst, ", "...)
		kv("grant_type", grantType)
		return dst
	}
	dst = append(dst, ", "...)
	kv("token_id", "onrtac:"+strconv.Itoa(ev.ID)+"-5e6f-4a7b-8c9d")
	dst = append(dst, ", "...)
	kv("grant_type", grantType)
	dst = append(dst, ", scope="...)
	dst = append(dst, q...)
	for i, sc := range ev.Client.Granted {
		if i > 0 {
			dst = append(dst, ' ')
		}
		dst = append(dst, sc...)
	}
	dst = append(dst, q...)
	dst = append(dst, ", "...)
	kv("client_auth_method", "client-secret")
	return dst
}

// apiJSON appends ev as an API gateway JSON access line with the client id
// the gateway took from the token.
func (s *synth) apiJSON(dst []byte, ev synthEvent) []byte {
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
