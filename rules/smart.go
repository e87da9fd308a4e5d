package rules

import (
	"net/url"
	"slices"
	"strconv"
	"strings"
)

// Interaction is a set of SMART permission letters. A single FHIR REST
// call is one of the constants below; a SMARTScope's Perms may hold
// several.
type Interaction byte

// The SMART permission letters, in the order the v2 grammar requires
// (HL7 SMART App Launch v2, scopes-and-launch-context: "a subset of the
// in-order string .cruds").
const (
	// Create is c: create (type level).
	Create Interaction = 1 << iota
	// Read is r: read, vread and instance-level history.
	Read
	// Update is u: update, including update-as-create, and patch.
	Update
	// Delete is d: delete (instance level).
	Delete
	// Search is s: type- and system-level search and history.
	Search

	// AllInteractions is the set cruds, what v1's .* means.
	AllInteractions = Create | Read | Update | Delete | Search
)

// permLetters lists the letters in the order of the Interaction bits.
const permLetters = "cruds"

// String returns the letters of the set in cruds order, e.g. "rs", or ""
// for the empty set.
func (in Interaction) String() string {
	var b [len(permLetters)]byte
	n := 0
	for i := range len(permLetters) {
		if in&(1<<i) != 0 {
			b[n] = permLetters[i]
			n++
		}
	}
	return string(b[:n])
}

// Has reports whether every interaction of want is in the set.
func (in Interaction) Has(want Interaction) bool {
	return want != 0 && in&want == want
}

// SMARTScope is a parsed SMART App Launch clinical scope such as
// patient/Observation.rs or user/*.read.
type SMARTScope struct {
	// Context is "patient", "user" or "system".
	Context string
	// Resource is a FHIR resource type such as Observation, or "*" for
	// every type, including types added to FHIR later.
	Resource string
	// Perms is the set of permitted interactions, with v1 suffixes
	// normalised: .read is rs, .write is cud and .* is cruds.
	Perms Interaction
	// Query holds the v2 query constraint's parameters, or nil when the
	// scope is unconstrained.
	Query url.Values
	// RawQuery is the query constraint as written, without the "?".
	RawQuery string
	// Version is 1 for a v1 suffix (read, write, *) and 2 for cruds
	// letters.
	Version int
	// Raw is the scope as it was parsed.
	Raw string
}

// SMARTError is a scope that looks like a SMART clinical scope (it
// starts with a context and a slash) but does not follow the grammar.
type SMARTError struct {
	Scope string // the scope as given
	Msg   string // what is wrong with it
}

// Error formats the problem as: smart scope "patient/x.rs": msg.
func (e *SMARTError) Error() string {
	return "smart scope " + strconv.Quote(e.Scope) + ": " + e.Msg
}

// IsSMART reports whether s has the prefix of a SMART clinical scope:
// patient/, user/ or system/. Identity and launch scopes (openid,
// fhirUser, launch, launch/patient, offline_access, online_access),
// extension scopes (full URIs, names starting with __) and every other
// name are not. A scope for which IsSMART is true may still fail
// ParseSMART; that is a malformed scope to report, not an unknown one.
func IsSMART(s string) bool {
	return strings.HasPrefix(s, "patient/") || strings.HasPrefix(s, "user/") || strings.HasPrefix(s, "system/")
}

// ParseSMART parses a SMART App Launch v1 or v2 clinical scope:
// context/resource.permissions[?query]. Both versions' suffixes are
// accepted, including system/ with a v1 suffix, which bulk-data clients
// of the v1 era send (system/*.read). A query constraint is accepted
// only with v2 letters. Anything else is a *SMARTError saying what is
// wrong; servers MAY ignore bad scopes, but a scope report should show
// them.
func ParseSMART(s string) (SMARTScope, error) {
	sc := SMARTScope{Raw: s}
	bad := func(msg string) (SMARTScope, error) {
		return SMARTScope{}, &SMARTError{Scope: s, Msg: msg}
	}
	if s == "" {
		return bad("empty scope")
	}
	ctx, rest, ok := strings.Cut(s, "/")
	if !ok {
		return bad("no context: want patient/, user/ or system/")
	}
	switch ctx {
	case "patient", "user", "system":
		sc.Context = ctx
	default:
		return bad("context " + strconv.Quote(ctx) + " is not patient, user or system")
	}
	body, query, hasQuery := strings.Cut(rest, "?")
	dot := strings.LastIndexByte(body, '.')
	if dot < 0 {
		return bad("no permissions: want resource.permissions, e.g. Observation.rs")
	}
	res, perms := body[:dot], body[dot+1:]
	if msg := checkResource(res); msg != "" {
		return bad(msg)
	}
	sc.Resource = res
	switch perms {
	case "":
		return bad("empty permissions after " + strconv.Quote(res+"."))
	case "read":
		sc.Perms, sc.Version = Read|Search, 1
	case "write":
		sc.Perms, sc.Version = Create|Update|Delete, 1
	case "*":
		sc.Perms, sc.Version = AllInteractions, 1
	default:
		p, msg := parsePerms(perms)
		if msg != "" {
			return bad(msg)
		}
		sc.Perms, sc.Version = p, 2
	}
	if hasQuery {
		if sc.Version == 1 {
			return bad("query constraint needs v2 permissions (cruds letters), not ." + perms)
		}
		q, msg := parseConstraint(query)
		if msg != "" {
			return bad(msg)
		}
		sc.Query, sc.RawQuery = q, query
	}
	return sc, nil
}

// checkResource returns what is wrong with a scope's resource type, or
// "" if nothing is. FHIR resource type names are letters and digits
// starting with an upper-case letter.
func checkResource(res string) string {
	if res == "" {
		return "empty resource type: want a FHIR type such as Observation, or *"
	}
	if res == "*" {
		return ""
	}
	if c := res[0]; c < 'A' || c > 'Z' {
		return "resource type " + strconv.Quote(res) + " does not start with an upper-case letter"
	}
	if !isResourceType(res) {
		return "resource type " + strconv.Quote(res) + " has a character other than a letter or digit"
	}
	return ""
}

// parsePerms parses v2 permission letters, which must be a non-empty
// subset of cruds in that order, each at most once. It returns the set,
// or what is wrong.
func parsePerms(perms string) (Interaction, string) {
	var set Interaction
	last := -1
	for i := range len(perms) {
		pos := strings.IndexByte(permLetters, perms[i])
		switch {
		case pos < 0:
			return 0, "unknown permission " + strconv.Quote(perms[i:i+1]) + " in " + strconv.Quote(perms) +
				": want read, write, * or a subset of cruds in that order"
		case pos == last:
			return 0, "permission " + strconv.Quote(perms[i:i+1]) + " repeated in " + strconv.Quote(perms)
		case pos < last:
			return 0, "permissions " + strconv.Quote(perms) + " out of order: want them in the order c, r, u, d, s"
		}
		last = pos
		set |= 1 << pos
	}
	return set, ""
}

// parseConstraint parses a v2 query constraint, param=value pairs joined
// by &, each with a name and an =. It returns the parameters, or what is
// wrong.
func parseConstraint(query string) (url.Values, string) {
	if query == "" {
		return nil, "empty query constraint after ?"
	}
	for pair := range strings.SplitSeq(query, "&") {
		name, _, ok := strings.Cut(pair, "=")
		if !ok || name == "" {
			return nil, "query constraint " + strconv.Quote(pair) + " is not param=value"
		}
	}
	q, err := url.ParseQuery(query)
	if err != nil {
		return nil, "query constraint: " + err.Error()
	}
	return q, ""
}

// String returns the scope in canonical v2 form: v1 suffixes become
// letters, e.g. patient/Observation.read is patient/Observation.rs. A
// query constraint is kept as written.
func (g SMARTScope) String() string {
	s := g.Context + "/" + g.Resource + "." + g.Perms.String()
	if g.RawQuery != "" {
		s += "?" + g.RawQuery
	}
	return s
}

// Covers reports whether the granted scope g permits interaction in on
// resource in context ctx.
//
// Context must match exactly. A call is made with one token, and the
// caller decides the context it was made in (patient when the token
// carries a patient launch context, system for client credentials, user
// otherwise); a user/ grant does not cover a patient/ use, since
// reporting it as used would hide the patient/ scope that should
// replace it.
//
// A wildcard grant covers every resource type; resource "*" (system
// history, bulk export) is covered only by a wildcard grant.
//
// A query-constrained grant covers only a search whose query carries
// every constraint parameter with every constrained value among the
// request's values for it (repeated parameters narrow a FHIR search, so
// extra ones keep it within the constraint; a comma list such as
// laboratory,vital-signs widens it and is not equal). Reads, writes and
// deletes are never covered by a constrained grant: whether the
// resource matches the constraint depends on its content, which a log
// does not show.
func (g SMARTScope) Covers(ctx string, resource string, in Interaction, query url.Values) bool {
	if g.Context != ctx || !g.Perms.Has(in) {
		return false
	}
	if g.Resource != "*" && g.Resource != resource {
		return false
	}
	if len(g.Query) == 0 {
		return true
	}
	if in != Search {
		return false
	}
	for name, want := range g.Query {
		have := query[name]
		for _, v := range want {
			if !slices.Contains(have, v) {
				return false
			}
		}
	}
	return true
}

// Use is one observed use of a FHIR API: an interaction on a resource
// type (or "*" for system-wide calls) in a launch context.
type Use struct {
	Context  string // patient, user or system
	Resource string // a FHIR resource type, or "*"
	In       Interaction
}

// Covering returns the granted scopes that cover use u with the
// request's query parameters (nil when it had none), in the order of
// granted, or nil when none does. See SMARTScope.Covers for what covers
// what.
func Covering(granted []SMARTScope, u Use, query url.Values) []SMARTScope {
	var out []SMARTScope
	for _, g := range granted {
		if g.Covers(u.Context, u.Resource, u.In, query) {
			out = append(out, g)
		}
	}
	return out
}
