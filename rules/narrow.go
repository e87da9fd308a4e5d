package rules

import (
	"cmp"
	"slices"
)

// Narrow returns the smallest set of v2 scopes that covers every use:
// one scope per context and resource type with the union of the
// interactions used, sorted by context and then resource type (so
// patient/* comes before patient/Condition). A typed scope whose
// interactions a wildcard scope of the same context already holds is
// left out. Uses without a context, resource or interaction are
// ignored. For uses {patient Observation r, patient Observation s,
// patient Condition r} it returns patient/Condition.r
// patient/Observation.rs.
func Narrow(uses []Use) []SMARTScope {
	var out []SMARTScope
	for _, u := range uses {
		if u.Context == "" || u.Resource == "" || u.In&AllInteractions == 0 {
			continue
		}
		i := slices.IndexFunc(out, func(s SMARTScope) bool {
			return s.Context == u.Context && s.Resource == u.Resource
		})
		if i < 0 {
			out = append(out, SMARTScope{Context: u.Context, Resource: u.Resource, Version: 2})
			i = len(out) - 1
		}
		out[i].Perms |= u.In & AllInteractions
	}
	// Drop typed scopes the context's wildcard covers.
	out = slices.DeleteFunc(out, func(s SMARTScope) bool {
		if s.Resource == "*" {
			return false
		}
		return slices.ContainsFunc(out, func(w SMARTScope) bool {
			return w.Resource == "*" && w.Context == s.Context && w.Perms&s.Perms == s.Perms
		})
	})
	slices.SortFunc(out, func(a, b SMARTScope) int {
		return cmp.Or(cmp.Compare(a.Context, b.Context), cmp.Compare(a.Resource, b.Resource))
	})
	for i := range out {
		out[i].Raw = out[i].String()
	}
	return out
}

// Replacement returns the scopes that could replace the granted scope
// given the uses it covered: Narrow of those uses, each keeping
// granted's query constraint, so a replacement is never wider than the
// grant. Uses granted does not cover (another context, resource type or
// interaction) are ignored. The result is empty when granted was never
// used, and equal to granted, in v2 form, when all of it was.
func Replacement(granted SMARTScope, uses []Use) []SMARTScope {
	var covered []Use
	for _, u := range uses {
		if u.Context == granted.Context && (granted.Resource == "*" || granted.Resource == u.Resource) &&
			granted.Perms.Has(u.In) {
			covered = append(covered, u)
		}
	}
	out := Narrow(covered)
	if granted.RawQuery == "" {
		return out
	}
	for i := range out {
		out[i].Query, out[i].RawQuery = granted.Query, granted.RawQuery
		out[i].Raw = out[i].String()
	}
	return out
}
