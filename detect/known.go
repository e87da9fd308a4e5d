package detect

import (
	"iter"
	"maps"
	"strings"

	"github.com/scopewatch/scopewatch/ingest"
	"github.com/scopewatch/scopewatch/rules"
	"github.com/scopewatch/scopewatch/store"
)

// Registry tells the clients registered in the rules.
type Registry interface {
	Registered(id string) (rules.Client, bool)
}

var _ Registry = (*rules.Rules)(nil)

// KnownClients are the clients that get full state: a store record, a
// baseline, findings of their own. A client is known when it is
// registered in the rules or the IdP issued it a token (a grant event,
// read now or recorded in its stored record). Anyone can make a token
// endpoint or a gateway log any client id, so the others are only
// counted, in fixed-size aggregates: the set grows with the clients the
// IdP serves, never with the ids a requester invents.
//
// A client is known from its first grant on: its uses and refusals read
// before that grant count as unknown. It is used from the engine's
// goroutine only.
type KnownClients struct {
	reg Registry
	// issued are the clients issued a token, each with the state that
	// holder, the detectors sharing the set, keep of it (nil until they
	// keep one, and always without detectors): the detectors find it in
	// the lookup that admits the client's event, where the accountant's
	// lookup of the same event has just brought the map into the caches.
	issued map[string]*clientState
	holder *Detectors
	// admitted is the outcome of the last Admit, which the holder's
	// admission of the same event takes instead of a lookup of its own
	// (admitHeld). Any change to issued clears it.
	admitted admission
	// scopes are the store's numbers of the scopes of the grant or
	// refusal the accountant last counted, which the holder's detectors,
	// observing the same event next, key the scopes' verdicts by.
	scopes eventScopes
}

// eventScopes holds the store's number of each scope an event names:
// ids[i] for ev.Requested[i], then ids[len(ev.Requested)+j] for
// ev.Granted[j]; store.NoScope for a name not counted.
type eventScopes struct {
	ev  *ingest.Event
	ids []uint32
}

// begin starts the numbers of ev's scopes, returning the buffer to append
// them to.
func (e *eventScopes) begin(ev *ingest.Event) []uint32 {
	e.ev = ev
	return e.ids[:0]
}

// of returns the numbers of ev's scopes, nil when the accountant did not
// count ev last.
func (e *eventScopes) of(ev *ingest.Event) []uint32 {
	if e.ev != ev || len(e.ids) != len(ev.Requested)+len(ev.Granted) {
		return nil
	}
	return e.ids
}

// admission is the outcome of admitting a client's event; valid is false
// once taken or cleared.
type admission struct {
	client            string
	st                *clientState
	issued, ok, valid bool
}

// NewKnownClients returns a set that knows the clients reg registers
// (none when reg is nil) and those later issued a token.
func NewKnownClients(reg Registry) *KnownClients {
	return &KnownClients{reg: reg, issued: make(map[string]*clientState)}
}

// Known reports whether client id gets full state.
func (k *KnownClients) Known(id string) bool {
	if _, ok := k.issued[id]; ok {
		return true
	}
	return k.registered(id)
}

func (k *KnownClients) registered(id string) bool {
	if k.reg == nil {
		return false
	}
	_, ok := k.reg.Registered(id)
	return ok
}

// Issue records that the IdP issued client id a token.
func (k *KnownClients) Issue(id string) {
	if _, ok := k.issued[id]; !ok {
		k.issued[strings.Clone(id)] = nil
		k.admitted = admission{}
	}
}

// admitHeld is Admit for the holder: it also returns the state kept with
// the client (nil when none is) and whether the client was issued a
// token, so that a state can be kept with it (hold).
func (k *KnownClients) admitHeld(ev *ingest.Event) (st *clientState, issued, ok bool) {
	if a := k.admitted; a.valid && a.client == ev.Client {
		k.admitted = admission{}
		return a.st, a.issued, a.ok
	}
	return k.lookup(ev)
}

// lookup is admitHeld without the outcome of Admit.
func (k *KnownClients) lookup(ev *ingest.Event) (st *clientState, issued, ok bool) {
	if st, ok := k.issued[ev.Client]; ok {
		return st, true, true
	}
	if ev.Kind == ingest.KindGrant {
		k.Issue(ev.Client)
		return nil, true, true
	}
	return nil, false, k.registered(ev.Client)
}

// isIssued reports whether client id was issued a token.
func (k *KnownClients) isIssued(id string) bool {
	_, ok := k.issued[id]
	return ok
}

// hold keeps the holder's state st with client id, which was issued a
// token. key must be a string of its own: a map assignment keeps the
// key it is given.
func (k *KnownClients) hold(key string, st *clientState) {
	k.issued[key] = st
	k.admitted = admission{}
}

// Admit reports whether ev's client gets full state, learning it from a
// grant; ev.Client must not be empty.
func (k *KnownClients) Admit(ev *ingest.Event) bool {
	st, issued, ok := k.lookup(ev)
	k.admitted = admission{client: ev.Client, st: st, issued: issued, ok: ok, valid: true}
	return ok
}

// Load learns a stored client and reports whether it qualifies for full
// state; one that does not (a record written before unknown clients were
// kept apart) is left to the sweeps to prune.
func (k *KnownClients) Load(c store.Client) bool {
	if Issued(c) {
		k.Issue(c.ID)
		return true
	}
	return k.Known(c.ID)
}

// Forget drops a client pruned from the store; a registered one stays
// known.
func (k *KnownClients) Forget(id string) {
	delete(k.issued, id)
	k.admitted = admission{}
}

// Len returns how many clients are known by a token issued to them.
func (k *KnownClients) Len() int { return len(k.issued) }

// Issued reports whether a stored client was issued a token: its record
// counts one, or (a record of schema 3, which did not count tokens) it
// holds a granted scope.
func Issued(c store.Client) bool { return issued(c.Issued, maps.Values(c.Scopes)) }

// issuedUsage is Issued for a client's usage read by a walk.
func issuedUsage(c *store.ClientUsage) bool {
	return issued(c.Issued, func(yield func(store.ScopeUsage) bool) {
		for i := range c.Scopes {
			if !yield(c.Scopes[i].ScopeUsage) {
				return
			}
		}
	})
}

// issued is the rule of Issued, for a client's tokens and scopes.
func issued(tokens store.Counter, scopes iter.Seq[store.ScopeUsage]) bool {
	if tokens.N > 0 {
		return true
	}
	for u := range scopes {
		if u.Granted.N > 0 {
			return true
		}
	}
	return false
}
