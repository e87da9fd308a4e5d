package rules

import (
	"fmt"
	"maps"
	"os"
	"slices"
	"strings"
	"time"
)

// DefaultIdentityScopes returns the scopes that count as used when a
// token carrying them is issued, for rules files that do not list their
// own identity_scopes.
func DefaultIdentityScopes() []string {
	return []string{
		"openid", "profile", "email", "fhirUser", "offline_access", "online_access",
		"launch", "launch/patient", "launch/encounter",
	}
}

// Sensitivities returns the values a catalog scope's sensitivity may take.
func Sensitivities() []string {
	return []string{"low", "moderate", "high", "phi"}
}

// LoadRules reads and checks the rules file at path and compiles its
// routes. Problems are returned all at once, joined with errors.Join, each
// a *ConfigError naming file, line and field. Route sources cannot be
// checked here, as the configured sources are unknown; Load checks them.
func LoadRules(path string) (*Rules, error) {
	r, p, err := loadRules(path)
	if err != nil {
		return nil, fmt.Errorf("read rules %s: %w", path, err)
	}
	if err := joinProblems(p.list); err != nil {
		return nil, err
	}
	return r, nil
}

// loadRules reads, decodes, checks and compiles the rules file at path.
// The error is for a file that cannot be read; problems in it are in the
// returned problems.
func loadRules(path string) (*Rules, *problems, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, err
	}
	r := &Rules{File: path}
	lines, p, ok := decodeFile(path, data, r)
	r.lines = lines
	if !ok {
		return r, p, nil
	}
	r.check(p)
	r.compile(p)
	return r, p, nil
}

// check applies defaults and records the problems of the catalog, roles
// and clients in p. Routes are checked by compile.
func (r *Rules) check(p *problems) {
	lines := r.lines
	if _, set := lines["identity_scopes"]; !set {
		r.IdentityScopes = DefaultIdentityScopes()
	}
	for i, s := range r.IdentityScopes {
		fp := joinIndex("identity_scopes", i)
		checkScopeName(p, lineOf(lines, fp), fp, s)
	}

	for _, name := range slices.Sorted(maps.Keys(r.Scopes)) {
		sc := r.Scopes[name]
		at := joinKey("scopes", name)
		field := func(f string) (int, string) {
			fp := joinField(at, f)
			return lineOf(lines, fp, at), fp
		}
		checkScopeName(p, lineOf(lines, at), at, name)
		switch sc.Lifecycle {
		case "":
			sc.Lifecycle = Active
		case Active, Deprecated, Retired:
		default:
			line, fp := field("lifecycle")
			p.add(line, fp, "unknown lifecycle %q; use %s, %s or %s", sc.Lifecycle, Active, Deprecated, Retired)
		}
		if sc.Sensitivity != "" && !slices.Contains(Sensitivities(), sc.Sensitivity) {
			line, fp := field("sensitivity")
			p.add(line, fp, "unknown sensitivity %q; use %s", sc.Sensitivity, strings.Join(Sensitivities(), ", "))
		}
		if sc.ReplacedBy != "" {
			line, fp := field("replaced_by")
			next, ok := r.Scopes[sc.ReplacedBy]
			switch {
			case sc.ReplacedBy == name:
				p.add(line, fp, "scope %q cannot replace itself", name)
			case !ok:
				p.add(line, fp, "replaced_by %q is not in the scope catalog; add it under scopes", sc.ReplacedBy)
			case next.Lifecycle == Retired:
				p.add(line, fp, "replaced_by %q is itself retired; name the scope that replaces it", sc.ReplacedBy)
			}
		}
		if sc.Sunset != "" {
			if _, err := time.Parse(time.DateOnly, sc.Sunset); err != nil {
				line, fp := field("sunset")
				p.add(line, fp, "bad sunset date %q; write YYYY-MM-DD, e.g. 2026-06-30", sc.Sunset)
			}
		}
		r.Scopes[name] = sc
	}

	for _, role := range slices.Sorted(maps.Keys(r.Roles)) {
		at := joinKey("roles", role)
		for i, s := range r.Roles[role] {
			fp := joinIndex(at, i)
			checkRoleEntry(p, lineOf(lines, fp, at), fp, s)
		}
	}

	for _, id := range slices.Sorted(maps.Keys(r.Clients)) {
		cl := r.Clients[id]
		at := joinKey("clients", id)
		if _, ok := r.Roles[cl.Role]; cl.Role != "" && !ok {
			fp := joinField(at, "role")
			p.add(lineOf(lines, fp, at), fp, "role %q is not in roles; %s", cl.Role, knownList("known roles", "the rules file defines no roles", slices.Sorted(maps.Keys(r.Roles))))
		}
		for i, c := range cl.ExpectedCountries {
			if !isCountryCode(c) {
				fp := joinIndex(joinField(at, "expected_countries"), i)
				p.add(lineOf(lines, fp, at), fp, "bad country %q; write an ISO 3166-1 alpha-2 code in capitals, e.g. US or DE", c)
			}
		}
		for i, s := range cl.Scopes {
			fp := joinIndex(joinField(at, "scopes"), i)
			checkScopeName(p, lineOf(lines, fp, at), fp, s)
		}
	}
}

// checkRouteSources records in p every route source that names none of
// the configured sources.
func (r *Rules) checkRouteSources(sources []Source, p *problems) {
	names := make([]string, 0, len(sources))
	for _, s := range sources {
		names = append(names, s.Name)
	}
	slices.Sort(names)
	names = slices.Compact(names)
	for i, rt := range r.Routes {
		for j, s := range rt.Sources {
			if !slices.Contains(names, s) {
				fp := joinIndex(joinIndex("routes", i)+".sources", j)
				p.add(lineOf(r.lines, fp, joinIndex("routes", i)), fp, "unknown source %q; %s", s, knownList("configured sources", "no sources are configured", names))
			}
		}
	}
}

// checkScopeName records a problem when s cannot be one scope.
func checkScopeName(p *problems, line int, field, s string) {
	switch {
	case s == "":
		p.add(line, field, "empty scope")
	case strings.ContainsAny(s, " \t\r\n"):
		p.add(line, field, "scope %q holds whitespace; list each scope as its own entry", s)
	case IsSMART(s):
		// A SMART scope with a bad suffix would silently never match.
		if _, err := ParseSMART(s); err != nil {
			p.add(line, field, "%v", err)
		}
	}
}

func isCountryCode(c string) bool {
	return len(c) == 2 && c[0] >= 'A' && c[0] <= 'Z' && c[1] >= 'A' && c[1] <= 'Z'
}

// knownList renders "what: a, b, c", or none when there are no names.
func knownList(what, none string, names []string) string {
	if len(names) == 0 {
		return none
	}
	return what + ": " + strings.Join(names, ", ")
}

// IsIdentityScope reports whether s is one of the identity scopes, which
// count as used when a token carrying them is issued.
func (r *Rules) IsIdentityScope(s string) bool {
	if r.identity == nil {
		return slices.Contains(r.IdentityScopes, s)
	}
	_, ok := r.identity[s]
	return ok
}

// Registered returns the registration of the client with the given id,
// and whether there is one.
func (r *Rules) Registered(client string) (Client, bool) {
	c, ok := r.Clients[client]
	return c, ok
}
