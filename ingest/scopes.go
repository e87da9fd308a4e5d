package ingest

// SplitScopes appends the scopes of the space-separated list s to dst and
// returns the extended slice. Only spaces separate scopes: SMART v2 scopes
// carry '|', ':', '/', '?', '&' and '=' in their query constraints
// (patient/Observation.rs?category=http://...|laboratory). Runs of spaces
// count as one separator and leading or trailing spaces are ignored. The
// returned strings share memory with s.
func SplitScopes(s string, dst []string) []string {
	for i := 0; i < len(s); {
		if s[i] == ' ' {
			i++
			continue
		}
		j := i + 1
		for j < len(s) && s[j] != ' ' {
			j++
		}
		dst = append(dst, s[i:j])
		i = j
	}
	return dst
}

// jsonScopeList reads a scope list from a JSON value: a space-separated
// string, or an array of such strings (Auth0 writes both, even for one
// event type). text unescapes a string value. Lists are kept in scopes
// and arrays by their text, so a repeated value costs no allocation; a
// value of another type is not ok.
func jsonScopeList(v jsonValue, text func(jsonValue) []byte, scopes, arrays *scopeLists) ([]string, bool) {
	switch v.kind {
	case jsonAbsent, jsonNull:
		return nil, true
	case jsonString:
		return scopes.split(text(v)), true
	case jsonArray:
		if l, ok := arrays.lookup(v.raw); ok {
			return l, true
		}
		var list []string
		ok := true
		arrayElems(v.raw, func(el jsonValue) bool {
			if el.kind != jsonString {
				ok = el.kind == jsonNull
				return ok
			}
			list = SplitScopes(string(text(el)), list)
			return true
		})
		if !ok {
			return nil, false
		}
		if len(list) == 0 {
			list = nil // [] and [""] grant nothing, like an absent field
		}
		return arrays.store(v.raw, list), true
	}
	return nil, false
}
