package rules

import (
	"fmt"
	"slices"
	"strings"
)

// Methods returns the HTTP methods a route may name, besides "" and "*"
// for any method.
func Methods() []string {
	return []string{"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE", "CONNECT"}
}

type segKind uint8

const (
	segLiteral segKind = iota // matches its text exactly
	segOne                    // {name} or *: any one non-empty segment
	segRest                   // a final **: any remainder, including none
)

type segment struct {
	kind segKind
	lit  string
}

// compiledRoute is a Route ready for matching.
type compiledRoute struct {
	method  string // upper case; "" for any
	sources []string
	segs    []segment
	scopes  []string
}

// routeTable holds the compiled routes in file order, indexed by their
// first path segment so that a lookup tries only the routes that can
// match.
type routeTable struct {
	routes []compiledRoute
	// byFirst maps a literal first segment to the routes, in file order,
	// that start with it or with a wildcard.
	byFirst map[string][]int
	// wild lists the routes, in file order, that start with a wildcard or
	// have no segments: the candidates for any other first segment.
	wild []int
}

// Compile checks the routes and prepares them, and the identity scopes,
// for MatchRoute and IsIdentityScope. LoadRules calls it; Rules built in
// code must call it before MatchRoute, and again after changing Routes.
// On error the previous compilation, if any, stays in place.
func (r *Rules) Compile() error {
	p := &problems{file: r.File}
	r.compile(p)
	return joinProblems(p.list)
}

// compile records route problems in p and installs the compiled routes
// when there were none.
func (r *Rules) compile(p *problems) {
	before := len(p.list)
	t := &routeTable{routes: make([]compiledRoute, 0, len(r.Routes)), byFirst: map[string][]int{}}
	for i, rt := range r.Routes {
		at := joinIndex("routes", i)
		line := func(field string) (int, string) {
			fp := joinField(at, field)
			if l, ok := r.lines[fp]; ok {
				return l, fp
			}
			if rt.Line > 0 {
				return rt.Line, fp
			}
			return lineOf(r.lines, at), fp
		}
		cr := compiledRoute{sources: rt.Sources, scopes: rt.Scopes}

		switch m := strings.ToUpper(rt.Method); {
		case m == "" || m == "*":
		case slices.Contains(Methods(), m):
			cr.method = m
		default:
			l, fp := line("method")
			p.add(l, fp, "unknown method %q; use %s, or * for any", rt.Method, strings.Join(Methods(), ", "))
		}

		segs, msg := compilePattern(rt.Path)
		if msg != "" {
			l, fp := line("path")
			p.add(l, fp, "%s", msg)
		}
		cr.segs = segs

		if len(rt.Scopes) == 0 {
			l, fp := line("scopes")
			p.add(l, fp, "required: the scopes a call to %s exercises", rt.Path)
		}
		for j, s := range rt.Scopes {
			fp := joinIndex(joinField(at, "scopes"), j)
			checkScopeName(p, lineOf(r.lines, fp, at), fp, s)
		}
		t.routes = append(t.routes, cr)
	}
	if len(p.list) > before {
		return
	}

	for i, cr := range t.routes {
		if first, ok := cr.literalFirst(); ok {
			t.byFirst[first] = nil
		} else {
			t.wild = append(t.wild, i)
		}
	}
	for first := range t.byFirst {
		var list []int
		for i, cr := range t.routes {
			if f, ok := cr.literalFirst(); !ok || f == first {
				list = append(list, i)
			}
		}
		t.byFirst[first] = list
	}
	r.routes = t

	r.identity = make(map[string]struct{}, len(r.IdentityScopes))
	for _, s := range r.IdentityScopes {
		r.identity[s] = struct{}{}
	}
}

// literalFirst returns the route's first segment when it is a literal.
func (cr *compiledRoute) literalFirst() (string, bool) {
	if len(cr.segs) > 0 && cr.segs[0].kind == segLiteral {
		return cr.segs[0].lit, true
	}
	return "", false
}

// compilePattern splits a route pattern into segments, or says what is
// wrong with it.
func compilePattern(pattern string) ([]segment, string) {
	switch {
	case pattern == "":
		return nil, "required: a path pattern such as /api/labs/{id}"
	case pattern[0] != '/':
		return nil, fmt.Sprintf("pattern %q must start with /", pattern)
	case strings.ContainsAny(pattern, "?#"):
		return nil, fmt.Sprintf("pattern %q holds a query string or fragment; patterns match the path only", pattern)
	}
	rest := strings.TrimSuffix(pattern[1:], "/")
	if rest == "" {
		return nil, "" // the root
	}
	parts := strings.Split(rest, "/")
	segs := make([]segment, len(parts))
	for i, s := range parts {
		switch {
		case s == "":
			return nil, fmt.Sprintf("pattern %q has an empty segment (//)", pattern)
		case s == "**":
			if i != len(parts)-1 {
				return nil, fmt.Sprintf("pattern %q: ** may only end a pattern", pattern)
			}
			segs[i] = segment{kind: segRest}
		case s == "*":
			segs[i] = segment{kind: segOne}
		case len(s) > 2 && s[0] == '{' && s[len(s)-1] == '}' && !strings.ContainsAny(s[1:len(s)-1], "{}*"):
			segs[i] = segment{kind: segOne}
		case strings.ContainsAny(s, "{}*"):
			return nil, fmt.Sprintf("pattern %q: segment %q must be a literal, {name}, * or a final **", pattern, s)
		default:
			segs[i] = segment{kind: segLiteral, lit: s}
		}
	}
	return segs, ""
}

// MatchRoute returns the scopes of the first route, in file order, that
// matches an API call to path with method on the named source, or nil
// when none does. path must not hold the query string; a trailing slash
// is ignored. The returned slice is shared: callers must not modify it.
// MatchRoute does not allocate and is safe for concurrent use once the
// routes are compiled; it panics if Routes were never compiled.
func (r *Rules) MatchRoute(source, method, path string) []string {
	t := r.routes
	if t == nil {
		if len(r.Routes) == 0 {
			return nil
		}
		panic("rules: MatchRoute before Compile")
	}
	path = strings.TrimSuffix(strings.TrimPrefix(path, "/"), "/")
	first := path
	if i := strings.IndexByte(path, '/'); i >= 0 {
		first = path[:i]
	}
	candidates, ok := t.byFirst[first]
	if !ok {
		candidates = t.wild
	}
	for _, i := range candidates {
		cr := &t.routes[i]
		if cr.method != "" && !strings.EqualFold(cr.method, method) {
			continue
		}
		if len(cr.sources) > 0 && !slices.Contains(cr.sources, source) {
			continue
		}
		if cr.match(path) {
			return cr.scopes
		}
	}
	return nil
}

// match reports whether path, without its leading and trailing slash,
// matches the route's segments.
func (cr *compiledRoute) match(path string) bool {
	more := path != "" // whether a segment is left; the root has none
	for _, s := range cr.segs {
		if s.kind == segRest {
			return true
		}
		if !more {
			return false
		}
		var seg string
		if i := strings.IndexByte(path, '/'); i >= 0 {
			seg, path = path[:i], path[i+1:]
		} else {
			seg, path, more = path, "", false
		}
		switch s.kind {
		case segLiteral:
			if seg != s.lit {
				return false
			}
		case segOne:
			if seg == "" {
				return false
			}
		}
	}
	return !more
}
