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
