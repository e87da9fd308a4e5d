package detect

import (
	"slices"

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

// Accountant folds events into the usage deltas of a store batch.
//
// Grants record requested and granted scopes, and count identity scopes
// (openid, profile, ...) as used on issuance; denials record what was
// requested; uses map through the route rules to the scopes they exercise
// and mark those used. Uses without a client are counted as unattributed
// on their source, never guessed.
type Accountant struct {
	routes RouteMatcher
}

// NewAccountant returns an Accountant that maps API calls with routes.
func NewAccountant(routes RouteMatcher) *Accountant {
	return &Accountant{routes: routes}
}

// Outcome says what Apply did with an event, for metrics.
type Outcome uint8

// Outcomes of Apply.
const (
	Counted      Outcome = iota // folded into a client's usage
	Unattributed                // a use without a client id
	Unmapped                    // a use whose route maps to no scope
)

// Apply folds ev into b. It does no I/O and keeps no reference to ev.
func (a *Accountant) Apply(ev *ingest.Event, b *store.Batch) Outcome {
	src := b.Source(ev.Source)
	src.Events.Add(1, ev.Time)
	b.Events++
	if ev.Client == "" {
		if ev.Kind == ingest.KindUse {
			src.Unattributed++
		}
		return Unattributed
	}
	c := b.Client(ev.Client)
	c.Seen.Add(1, ev.Time)
	if ev.IP.IsValid() {
		c.SawIP(ev.IP.String(), ev.Time)
	}
	if ev.Country != "" {
		c.SawCountry(ev.Country, ev.Time)
	}
	out := Counted
	switch ev.Kind {
	case ingest.KindGrant:
		for _, s := range ev.Requested {
			c.Scope(s).Requested.Add(1, ev.Time)
		}
		for _, s := range ev.Granted {
			u := c.Scope(s)
			u.Granted.Add(1, ev.Time)
			if a.routes.IsIdentityScope(s) {
				u.Used.Add(1, ev.Time)
			}
		}
	case ingest.KindDeny:
		// A refusal grants nothing: whatever scopes its line names were
		// asked for, whichever field the format put them in.
		for _, s := range ev.Requested {
			c.Scope(s).Requested.Add(1, ev.Time)
		}
		for _, s := range ev.Granted {
			if !slices.Contains(ev.Requested, s) {
				c.Scope(s).Requested.Add(1, ev.Time)
			}
		}
	case ingest.KindUse:
		scopes := a.routes.MatchRoute(ev.Source, ev.Method, ev.Path)
		if len(scopes) == 0 {
			out = Unmapped
		}
		for _, s := range scopes {
			c.Scope(s).Used.Add(1, ev.Time)
		}
	}
	return out
}
