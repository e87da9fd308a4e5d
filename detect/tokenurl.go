package detect

import (
	"strings"

	"github.com/scopewatch/scopewatch/ingest"
	"github.com/scopewatch/scopewatch/rules"
	"github.com/scopewatch/scopewatch/store"
)

// tokenInURL raises token_in_url for a bearer token sent in a query
// string (RFC 6750 §2.3 allows it, and every access log then holds the
// token), for any client, known or not. The token itself is never kept:
// only the parameter's name. It has no parameters.
type tokenInURL struct{ d *Detectors }

func (t *tokenInURL) observe(ev *ingest.Event, _ *clientState) {
	if ev.Kind != ingest.KindUse || ev.Query == "" {
		return
	}
	d := t.d
	name := leakedParam(ev.Query)
	if name == "" {
		return
	}
	k := store.FindingKey{Kind: rules.KindTokenInURL, Client: d.findingClient(ev.Client), Subject: ev.Source}
	f := d.findings.Raise(k, store.SeverityHigh, ev.Time, ev.Pos)
	f.Summary = "A " + name + " was sent in a URL query string and is now in the " + ev.Source +
		" access log; rotate the token and make the client send it in the Authorization header."
	f.Evidence.Detail = name + " in the query string of a " + ev.Method + " request (value redacted)"
}

// leakedParam returns the name of the first query parameter that carries
// a token, or "".
func leakedParam(q string) string {
	for q != "" {
		var kv string
		kv, q, _ = strings.Cut(q, "&")
		k, v, _ := strings.Cut(kv, "=")
		if v == "" {
			continue
		}
		switch k {
		case "access_token", "id_token", "refresh_token":
			return k
		}
	}
	return ""
}
