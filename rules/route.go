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

// compiledRoute is what matching needs of a Route besides its pattern.
type compiledRoute struct {
	method  string // upper case; "" for any
	sources []string
	scopes  []string
}

// accepts reports whether the route applies to a call on source with
// method.
func (cr *compiledRoute) accepts(source, method string) bool {
	return (cr.method == "" || strings.EqualFold(cr.method, method)) &&
		(len(cr.sources) == 0 || slices.Contains(cr.sources, source))
}

// routeTable holds the compiled routes in file order and a tree of their
// patterns, one level per path segment, so that a lookup costs a map
// lookup per segment of the path rather than a comparison per route.
type routeTable struct {
	routes []compiledRoute
	root   routeNode
}

// routeNode is the set of patterns that share the segments leading to it.
// Its lists hold route indexes in ascending order, i.e. in file order.
type routeNode struct {
	lit  map[string]*routeNode // next segment literal
	one  *routeNode            // next segment {name} or *
	end  []int                 // routes whose pattern ends here
	rest []int                 // routes whose pattern ends here with **
}

// insert adds route i with the given segments to the tree.
func (t *routeTable) insert(i int, segs []segment) {
	n := &t.root
	for _, s := range segs {
		switch s.kind {
		case segRest:
			n.rest = append(n.rest, i)
			return
		case segOne:
			if n.one == nil {
				n.one = &routeNode{}
			}
			n = n.one
		case segLiteral:
			next := n.lit[s.lit]
			if next == nil {
				if n.lit == nil {
					n.lit = map[string]*routeNode{}
				}
				next = &routeNode{}
				n.lit[s.lit] = next
			}
			n = next
		}
	}
	n.end = append(n.end, i)
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
	t := &routeTable{routes: make([]compiledRoute, 0, len(r.Routes))}
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
		t.insert(i, segs)

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
	r.routes = t

	r.identity = make(map[string]struct{}, len(r.IdentityScopes))
	for _, s := range r.IdentityScopes {
		r.identity[s] = struct{}{}
	}
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
	if i := t.find(&t.root, path, path != "", source, method, -1); i >= 0 {
		return t.routes[i].scopes
	}
	return nil
}

// find returns the lowest index, below best when best is not -1, of a
// route under n that accepts the call and whose remaining pattern matches
// path; else best. more says whether path holds another segment (the
// root path has none, "a/" holds an empty one).
func (t *routeTable) find(n *routeNode, path string, more bool, source, method string, best int) int {
	best = t.first(n.rest, source, method, best)
	if !more {
		return t.first(n.end, source, method, best)
	}
	seg, rest, more := strings.Cut(path, "/")
	if next := n.lit[seg]; next != nil {
		best = t.find(next, rest, more, source, method, best)
	}
	if n.one != nil && seg != "" {
		best = t.find(n.one, rest, more, source, method, best)
	}
	return best
}

// first returns the first route of list, below best when best is not -1,
// that accepts the call; else best.
func (t *routeTable) first(list []int, source, method string, best int) int {
	for _, i := range list {
		if best >= 0 && i >= best {
			break
		}
		if t.routes[i].accepts(source, method) {
			return i
		}
	}
	return best
}
