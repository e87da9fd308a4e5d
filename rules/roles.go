package rules

import (
	"errors"
	"path"
	"strconv"
	"strings"
)

// A role lists the scopes its clients may hold. Each entry is one of:
//
//   - a scope, allowed as it is written;
//   - a SMART scope, which also allows every narrower SMART scope: the
//     same context, the same resource type (any type for *), a subset of
//     its interactions, and the same query constraint if it has one
//     (patient/*.rs allows patient/Observation.r);
//   - a SMART pattern, whose resource type is a shell pattern, with the
//     same subset rule (patient/Medication*.rs allows
//     patient/MedicationRequest.r and patient/MedicationDispense.rs);
//   - any other shell pattern (path.Match) over the whole scope name
//     (lab_* allows lab_results; * and ? do not cross a /).

// RoleAllows reports whether a role with the given entries allows scope
// s. smart is s parsed as a SMART scope, nil when it is not one.
func RoleAllows(entries []string, s string, smart *SMARTScope) bool {
	for _, e := range entries {
		if e == s {
			return true
		}
		if IsSMART(e) {
			if smart != nil && smartAllows(e, smart) {
				return true
			}
			continue
		}
		if hasGlob(e) {
			if ok, _ := path.Match(e, s); ok {
				return true
			}
		}
	}
	return false
}

// smartAllows applies the SMART subset rule of a role entry, whose
// resource type may be a pattern, to s.
func smartAllows(entry string, s *SMARTScope) bool {
	g, resource, err := parseSMARTPattern(entry)
	if err != nil || g.Context != s.Context || s.Perms&^g.Perms != 0 || (g.RawQuery != "" && g.RawQuery != s.RawQuery) {
		return false
	}
	if resource == "*" {
		return true
	}
	ok, _ := path.Match(resource, s.Resource)
	return ok
}

// parseSMARTPattern parses a SMART role entry whose resource type may be
// a shell pattern: the entry with its resource type as written, which
// must be letters and digits and the pattern characters * ? [ ] -,
// starting with an upper-case letter or a pattern character.
func parseSMARTPattern(entry string) (SMARTScope, string, error) {
	ctx, rest, _ := strings.Cut(entry, "/")
	body, query, hasQuery := strings.Cut(rest, "?")
	dot := strings.LastIndexByte(body, '.')
	if dot < 0 || !hasGlob(body[:dot]) {
		g, err := ParseSMART(entry)
		return g, g.Resource, err
	}
	resource := body[:dot]
	if _, err := path.Match(resource, ""); err != nil {
		return SMARTScope{}, "", &SMARTError{Scope: entry, Msg: "resource pattern " + strconv.Quote(resource) + " is not a valid shell pattern"}
	}
	for _, c := range resource {
		if !(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || strings.ContainsRune("*?[]-^", c)) {
			return SMARTScope{}, "", &SMARTError{Scope: entry, Msg: "resource pattern " + strconv.Quote(resource) + " has a character other than a letter, a digit or * ? [ ] -"}
		}
	}
	if c := resource[0]; c >= 'a' && c <= 'z' {
		return SMARTScope{}, "", &SMARTError{Scope: entry, Msg: "resource pattern " + strconv.Quote(resource) + " does not start with an upper-case letter"}
	}
	whole := ctx + "/*." + body[dot+1:]
	if hasQuery {
		whole += "?" + query
	}
	g, err := ParseSMART(whole)
	if se := (*SMARTError)(nil); errors.As(err, &se) {
		return SMARTScope{}, "", &SMARTError{Scope: entry, Msg: se.Msg}
	} else if err != nil {
		return SMARTScope{}, "", err
	}
	g.Raw = entry
	return g, resource, nil
}

// hasGlob reports whether s holds a shell pattern character.
func hasGlob(s string) bool { return strings.ContainsAny(s, "*?[") }

// checkRoleEntry records what is wrong with a role entry in p: a pattern
// must be a valid one, anything else a valid scope name.
func checkRoleEntry(p *problems, line int, field, e string) {
	switch {
	case strings.ContainsAny(e, " \t\r\n") || !hasGlob(e):
		checkScopeName(p, line, field, e)
	case IsSMART(e):
		if _, _, err := parseSMARTPattern(e); err != nil {
			p.add(line, field, "%v", err)
		}
	default:
		if _, err := path.Match(e, ""); err != nil {
			p.add(line, field, "bad pattern %q: want a scope or a shell pattern such as lab_*", e)
		}
	}
}
