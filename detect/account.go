package detect

import (
	"slices"
	"strings"

	"github.com/scopewatch/scopewatch/ingest"
	"github.com/scopewatch/scopewatch/rules"
	"github.com/scopewatch/scopewatch/store"
)

// RouteMatcher maps an API call to the scopes it exercises.
type RouteMatcher interface {
	MatchRoute(source, method, path string) []string
	IsIdentityScope(scope string) bool
}

var _ RouteMatcher = (*rules.Rules)(nil)

// Accountant folds events into the clients' usage, held in a store.State,
// and into the source statistics of a store batch.
//
// Grants record requested and granted scopes, and count identity scopes
// (openid, profile, ...) as used on issuance; denials record what was
// requested; uses map through the route rules to the scopes they exercise
// and mark those used. Uses without a client are counted as unattributed
// on their source, never guessed. Events of clients that are not known
// (see KnownClients) change no client record: Apply says Unknown.
type Accountant struct {
	state     *store.State
	routes    RouteMatcher
	known     *KnownClients
	fhirBases map[string]string // source → FHIR base path
	useKeys   map[fhirUse]string
	// identity says, by the state's number of a scope, whether it is an
	// identity scope: 0 not yet asked, 1 no, 2 yes. Numbers from
	// maxScopes on are asked each time (names are input).
	identity []uint8
}

// isIdentity reports whether the scope numbered id, named s, is an
// identity scope, which a grant also counts as used.
func (a *Accountant) isIdentity(id uint32, s string) bool {
	if id >= maxScopes {
		return a.routes.IsIdentityScope(s)
	}
	if int(id) >= len(a.identity) {
		a.identity = slices.Grow(a.identity, int(id)+1-len(a.identity))[:id+1]
	}
	if a.identity[id] == 0 {
		a.identity[id] = 1
		if a.routes.IsIdentityScope(s) {
			a.identity[id] = 2
		}
	}
	return a.identity[id] == 2
}

// fhirUse is an interaction on a FHIR resource type, as seen in an API log.
type fhirUse struct {
	resource string
	in       rules.Interaction
}

// FHIRUsePrefix marks the usage records that hold FHIR interactions seen
// in API logs ("fhir:Observation.r"), as opposed to scopes. An access log
// shows the resource and the interaction but not the token's launch
// context, so the interaction is recorded as seen, and the report matches
// it against each granted SMART scope in that scope's own context.
const FHIRUsePrefix = "fhir:"

// FHIRUse is a FHIR interaction recorded for a client: "Observation.r"
// under Name, as a SMART use without context, and how often it was seen.
type FHIRUse struct {
	Name string    // as recorded, without the prefix: "Observation.r"
	Use  rules.Use // Context left empty: access logs do not show it
	Used store.Counter
}

// IsFHIRUse reports whether a usage record name holds a FHIR interaction
// rather than a scope.
func IsFHIRUse(name string) bool { return strings.HasPrefix(name, FHIRUsePrefix) }

// FHIRUses returns the FHIR interactions recorded for c that were seen:
// the one decoder of the records useKey names.
func FHIRUses(c store.Client) []FHIRUse {
	var uses []FHIRUse
	for name, u := range c.Scopes {
		if fu, ok := decodeFHIRUse(name, u); ok {
			uses = append(uses, fu)
		}
	}
	return uses
}

// decodeFHIRUse returns the FHIR interaction the usage record name holds, when
// it holds one and it was seen.
func decodeFHIRUse(name string, u store.ScopeUsage) (FHIRUse, bool) {
	rest, ok := strings.CutPrefix(name, FHIRUsePrefix)
	if !ok || u.Used.N == 0 {
		return FHIRUse{}, false
	}
	// "Observation.r" in the SMART grammar, under any context.
	g, err := rules.ParseSMART("patient/" + rest)
	if err != nil {
		return FHIRUse{}, false
	}
	return FHIRUse{Name: rest, Use: rules.Use{Resource: g.Resource, In: g.Perms}, Used: u.Used}, true
}

// NewAccountant returns an Accountant that maps API calls with routes and,
// for the sources named in fhirBases (source → base path such as /fhir),
// with the SMART-on-FHIR REST mapping. When routes is also a Registry
// (the rules are), its registered clients are known from the start. The
// usage goes into state; nil: a State of its own that loads nothing.
func NewAccountant(routes RouteMatcher, fhirBases map[string]string, state *store.State) *Accountant {
	reg, _ := routes.(Registry)
	if state == nil {
		state = store.NewState(nil, 0)
	}
	return &Accountant{state: state, routes: routes, known: NewKnownClients(reg), fhirBases: fhirBases, useKeys: make(map[fhirUse]string)}
}

// State returns the clients' usage the accountant changes: checkpoint it
// into the batches.
func (a *Accountant) State() *store.State { return a.state }

// Known returns the clients the accountant keeps usage of: load the
// stored ones into it before the first event.
func (a *Accountant) Known() *KnownClients { return a.known }

// useKey returns the record name of a FHIR use, built once per distinct use.
func (a *Accountant) useKey(resource string, in rules.Interaction) string {
	k := fhirUse{resource, in}
	if s, ok := a.useKeys[k]; ok {
		return s
	}
	if len(a.useKeys) >= 4096 {
		clear(a.useKeys) // bounded: resource types are few, but paths are input
	}
	s := FHIRUsePrefix + strings.Clone(resource) + "." + in.String()
	a.useKeys[fhirUse{strings.Clone(resource), in}] = s
	return s
}

// Outcome says what Apply did with an event, for metrics.
type Outcome uint8

// Outcomes of Apply.
const (
	Counted      Outcome = iota // folded into a client's usage
	Unattributed                // a use without a client id
	Unmapped                    // a use whose route maps to no scope
	Refused                     // a use answered with an HTTP error: no scope exercised
	BadClient                   // a client id the store cannot key (a 0 byte): skipped
	Unknown                     // a client neither registered nor issued a token: counted apart, not stored
)

// Apply folds ev into the state and b. It keeps no reference to ev, and
// does no I/O unless the client's state must be read back from the store
// (it was evicted).
func (a *Accountant) Apply(ev *ingest.Event, b *store.Batch) Outcome {
	a.known.scopes.ev = nil
	src := b.Source(ev.Source)
	src.Events.Add(1, ev.Time)
	b.Events++
	if ev.Client == "" {
		if ev.Kind == ingest.KindUse {
			src.Unattributed++
		}
		return Unattributed
	}
	if strings.IndexByte(ev.Client, 0) >= 0 {
		// Client ids come from requests anyone can send (client_id=%00);
		// one the store cannot key must not fail the batch it is in.
		return BadClient
	}
	if !a.known.Admit(ev) {
		return Unknown
	}
	c := a.state.Client(ev.Client)
	c.Seen.Add(1, ev.Time)
	if ev.Kind == ingest.KindGrant {
		c.Issued.Add(1, ev.Time)
	}
	// Where a client is used from: a refusal is not a use (Keycloak logs
	// a user's mistyped password against the client, from wherever the
	// user is), and the geography detector learns from these sets.
	if ev.Kind != ingest.KindDeny {
		if ev.IP.IsValid() {
			c.SawIP(ev.IP, ev.Time)
		}
		if ev.Country != "" {
			c.SawCountry(ev.Country, ev.Time)
		}
	}
	out := Counted
	switch ev.Kind {
	case ingest.KindGrant, ingest.KindDeny:
		// The numbers of the event's scopes go with it to the detectors
		// (KnownClients.scopes), in the order of Requested then Granted.
		ids := a.known.scopes.begin(ev)
		for _, s := range ev.Requested {
			id := store.NoScope
			switch {
			case s == "": // the store keys scopes by name
			case ev.Kind == ingest.KindGrant && slices.Contains(ev.Granted, s):
				id = c.CountScope(s, store.ScopeRequested, 1, ev.Time)
			default:
				// Asked for and not granted: a name anyone can make up,
				// which the client keeps only within its bound.
				id = c.CountAsked(s, 1, ev.Time)
			}
			ids = append(ids, id)
		}
		for _, s := range ev.Granted {
			id := store.NoScope
			switch {
			case s == "":
			case ev.Kind == ingest.KindDeny:
				// A refusal grants nothing: whatever scopes its line
				// names were asked for, whichever field the format put
				// them in. A name also asked for is counted once, and the
				// detectors skip it.
				if !slices.Contains(ev.Requested, s) {
					id = c.CountAsked(s, 1, ev.Time)
				}
			default:
				id = a.state.ScopeNumber(s)
				kinds := store.ScopeGranted
				if a.isIdentity(id, s) {
					kinds |= store.ScopeUsed
				}
				c.CountScopeNumber(id, kinds, 1, ev.Time)
			}
			ids = append(ids, id)
		}
		a.known.scopes.ids = ids
	case ingest.KindUse:
		if ev.Status >= 400 {
			// Refused or failed: the call exercised no scope (a 403 is
			// the gateway saying the token lacked one).
			return Refused
		}
		scopes := a.routes.MatchRoute(ev.Source, ev.Method, ev.Path)
		for _, s := range scopes {
			c.CountScope(s, store.ScopeUsed, 1, ev.Time)
		}
		mapped := len(scopes) > 0
		if base, ok := a.fhirBases[ev.Source]; ok {
			if res, in, ok := rules.FHIRInteraction(ev.Method, ev.Path, base); ok {
				c.CountScope(a.useKey(res, in), store.ScopeUsed, 1, ev.Time)
				mapped = true
			}
		}
		if !mapped {
			out = Unmapped
		}
	}
	return out
}
