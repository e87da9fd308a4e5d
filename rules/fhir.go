package rules

import "strings"

// FHIRInteraction maps a FHIR REST call, as an access log shows it, to
// the resource type it acts on and the SMART interaction it needs. base
// is the path prefix of the FHIR API (e.g. /fhir, or "" when the API is
// served at the root); path is the request path without scheme and
// host, normally with the query stripped (a query left on it is
// ignored). ok is false for calls outside base and for calls that need
// no clinical scope or whose scope cannot be known from the log:
//
//   - GET {base}/Patient/123, .../_history/2 (vread) and .../_history
//     (instance history) are r; PUT and PATCH on an instance are u,
//     DELETE is d; POST on a type is c.
//   - GET on a type, POST {type}/_search, GET {type}/_history, GET
//     {base}/_history and {base}/_search are s; system-level calls have
//     resource "*". Compartment searches (GET /Patient/1/Observation) are
//     s on the searched type.
//   - PUT, PATCH and DELETE on a type are conditional update and delete:
//     u and d.
//   - $export at any level is s on "*": a bulk export may return every
//     type, and servers require system/*.rs (or system/*.read) for it in
//     practice; callers record it in the system context.
//   - GET or POST on {base} itself is not ok: a POST is a batch or
//     transaction Bundle whose entries are each checked on their own and
//     are not in access logs, and a system search by GET {base}?params
//     cannot be told from a bare GET once the query is stripped.
//   - /metadata and /.well-known/smart-configuration need no scope; other
//     $operations have no defined SMART mapping; neither is ok.
//
// Methods are matched in upper case, as HTTP logs write them; HEAD is
// treated as GET. FHIRInteraction does not allocate.
func FHIRInteraction(method, path, base string) (resource string, in Interaction, ok bool) {
	path, _, _ = strings.Cut(path, "?")
	base = strings.TrimRight(base, "/")
	rest, found := strings.CutPrefix(path, base)
	if !found || rest != "" && rest[0] != '/' {
		return "", 0, false
	}
	rest = strings.Trim(rest, "/")
	if method == "HEAD" {
		method = "GET"
	}

	// At most five segments name an interaction: type/id/_history/vid
	// or compartment/id/type/_search. A sixth means something else.
	var seg [5]string
	n := 0
	for rest != "" {
		if n == len(seg) {
			return "", 0, false
		}
		seg[n], rest, _ = strings.Cut(rest, "/")
		if seg[n] == "" { // an empty segment, as in /Patient//1
			return "", 0, false
		}
		n++
	}

	switch n {
	case 0:
		return "", 0, false
	case 1:
		switch s := seg[0]; {
		case s == "_history" || s == "_search":
			return systemSearch(method, s)
		case s == "$export":
			return exportCall(method)
		case isResourceType(s):
			switch method {
			case "GET":
				return s, Search, true
			case "POST":
				return s, Create, true
			case "PUT", "PATCH":
				return s, Update, true
			case "DELETE":
				return s, Delete, true
			}
		}
		return "", 0, false // metadata, .well-known, other $operations
	}

	typ := seg[0]
	if !isResourceType(typ) {
		return "", 0, false
	}
	if n == 2 {
		switch s := seg[1]; {
		case s == "_search":
			return searchOn(method, typ)
		case s == "_history":
			return getAs(method, typ, Search)
		case s == "$export":
			return exportCall(method)
		case s[0] == '$' || s[0] == '_':
			return "", 0, false
		}
		switch method {
		case "GET":
			return typ, Read, true
		case "PUT", "PATCH":
			return typ, Update, true
		case "DELETE":
			return typ, Delete, true
		}
		return "", 0, false
	}

	// Three or more segments: instance history and vread, instance
	// operations, or a compartment search.
	switch s := seg[2]; {
	case s == "_history" && n <= 4:
		return getAs(method, typ, Read)
	case s == "$export" && n == 3:
		return exportCall(method)
	case s == "*" || isResourceType(s):
		if n == 3 {
			return getAs(method, s, Search)
		}
		if n == 4 && seg[3] == "_search" {
			return searchOn(method, s)
		}
	}
	return "", 0, false
}

// systemSearch maps GET {base}/_history and GET or POST {base}/_search.
func systemSearch(method, seg string) (string, Interaction, bool) {
	if seg == "_search" {
		return searchOn(method, "*")
	}
	return getAs(method, "*", Search)
}

// searchOn maps a _search call on resource, which FHIR allows by GET or
// by POST with a form body.
func searchOn(method, resource string) (string, Interaction, bool) {
	if method == "GET" || method == "POST" {
		return resource, Search, true
	}
	return "", 0, false
}

// getAs maps a call that only GET may make to in on resource.
func getAs(method, resource string, in Interaction) (string, Interaction, bool) {
	if method == "GET" {
		return resource, in, true
	}
	return "", 0, false
}

// exportCall maps a bulk data $export kick-off, by GET or POST.
func exportCall(method string) (string, Interaction, bool) {
	return searchOn(method, "*")
}

// isResourceType reports whether seg can be a FHIR resource type name:
// letters and digits starting with an upper-case letter. Ids, _history,
// _search and $operations are not.
func isResourceType(seg string) bool {
	if seg == "" || seg[0] < 'A' || seg[0] > 'Z' {
		return false
	}
	for i := 1; i < len(seg); i++ {
		c := seg[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9') {
			return false
		}
	}
	return true
}

// HAPIOperation maps a HAPI FHIR operation type, as its logging
// interceptor's ${operationType} writes it, to the SMART interaction it
// needs. It accepts the FHIR restful-interaction codes HAPI logs
// (search-type, history-instance) and the names of HAPI's
// RestOperationTypeEnum constants (SEARCH_TYPE, HISTORY_INSTANCE), in
// any case. Batch, transaction, metadata, paging, tags, GraphQL and
// extended operations have no interaction of their own: ok is false.
func HAPIOperation(code string) (in Interaction, ok bool) {
	// Fold to lower case with - for _ into a stack buffer, so that the
	// switch below sees one spelling and nothing escapes.
	var buf [len("history-instance")]byte
	if len(code) > len(buf) {
		return 0, false
	}
	for i := range len(code) {
		c := code[i]
		switch {
		case 'A' <= c && c <= 'Z':
			c += 'a' - 'A'
		case c == '_':
			c = '-'
		}
		buf[i] = c
	}
	switch string(buf[:len(code)]) {
	case "read", "vread", "history-instance":
		return Read, true
	case "search-type", "search-system", "history-type", "history-system":
		return Search, true
	case "create":
		return Create, true
	case "update", "patch":
		return Update, true
	case "delete":
		return Delete, true
	}
	return 0, false
}
