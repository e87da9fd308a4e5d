package rules

import (
	"fmt"
	"net/netip"
	"os"
	"path"
	"slices"
	"strconv"
	"strings"
	"time"
)

// checkDetect applies the detector defaults and records the problems of
// the detect section in p.
func (c *Config) checkDetect(lines map[string]int, p *problems) {
	d := &c.Detect
	positive(lines, p, "detect.unused_scope.coverage_gap", &d.UnusedScope.CoverageGap, DefaultCoverageGap)
	positive(lines, p, "detect.unused_scope.stale_after", &d.UnusedScope.StaleAfter, DefaultStaleAfter)
	positive(lines, p, "detect.unused_scope.every", &d.UnusedScope.Every, DefaultSweepEvery)
	positive(lines, p, "detect.resolve_after", &d.ResolveAfter, DefaultResolveAfter)
	positive(lines, p, "detect.retention", &d.Retention, DefaultRetention)
	// The default outlasts a longer unused_scope.window too.
	positive(lines, p, "detect.client_retention", &d.ClientRetention, max(DefaultClientRetention, d.UnusedScope.Window))
	if w := d.UnusedScope.Window; w > 0 && d.ClientRetention > 0 && d.ClientRetention < w {
		p.add(lines["detect.client_retention"], "detect.client_retention",
			"must be at least detect.unused_scope.window (%s), got %s: a client pruned sooner could not be judged over the window", w, d.ClientRetention)
	}
	atLeast(lines, p, "detect.client_id_spray.distinct", &d.ClientIDSpray.Distinct, 2, DefaultSprayDistinct)
	positive(lines, p, "detect.client_id_spray.window", &d.ClientIDSpray.Window, DefaultSprayWindow)

	atLeast(lines, p, "detect.broad_request.max_scopes", &d.BroadRequest.MaxScopes, 1, DefaultMaxScopes)
	if _, set := lines["detect.broad_request.patterns"]; !set {
		d.BroadRequest.Patterns = DefaultBroadPatterns()
	}
	for i, pat := range d.BroadRequest.Patterns {
		if _, err := path.Match(pat, ""); err != nil || pat == "" {
			fp := joinIndex("detect.broad_request.patterns", i)
			p.add(lineOf(lines, fp, "detect.broad_request.patterns"), fp, "bad pattern %q: want a scope or a shell pattern such as *:admin", pat)
		}
	}
	c.checkBaseline(lines, p, "detect.broad_request.baseline", &d.BroadRequest.Baseline)
	pr := &d.BroadRequest.Probing
	atLeast(lines, p, "detect.broad_request.probing.denials", &pr.Denials, 2, DefaultProbeDenials)
	positive(lines, p, "detect.broad_request.probing.window", &pr.Window, DefaultProbeWindow)
	if _, set := lines["detect.broad_request.probing.reasons"]; !set {
		pr.Reasons = DefaultProbeReasons()
	}

	g := &d.UnfamiliarGeo
	c.checkBaseline(lines, p, "detect.unfamiliar_geo", &g.Baseline)
	checkCountries(lines, p, "detect.unfamiliar_geo.allow_countries", g.AllowCountries)
	checkCountries(lines, p, "detect.unfamiliar_geo.deny_countries", g.DenyCountries)
	for i, cc := range g.DenyCountries {
		if slices.Contains(g.AllowCountries, cc) {
			fp := joinIndex("detect.unfamiliar_geo.deny_countries", i)
			p.add(lineOf(lines, fp), fp, "%s is also in allow_countries; a country can be allowed or denied, not both", cc)
		}
	}
	g.AllowPrefixes, g.AllowASNs = g.AllowPrefixes[:0], g.AllowASNs[:0]
	for i, n := range g.AllowNetworks {
		fp := joinIndex("detect.unfamiliar_geo.allow_networks", i)
		if asn, ok := parseASN(n); ok {
			g.AllowASNs = append(g.AllowASNs, asn)
			if c.GeoIP.ASN == "" {
				p.add(lineOf(lines, fp), fp, "%s names an AS number, which needs an ASN database: set geoip.asn", n)
			}
			continue
		}
		pfx, err := netip.ParsePrefix(n)
		if err != nil {
			if a, aerr := netip.ParseAddr(n); aerr == nil {
				pfx, err = a.Prefix(a.BitLen())
			}
		}
		if err != nil {
			p.add(lineOf(lines, fp), fp, "bad network %q: want a CIDR range such as 198.51.100.0/24 or an AS number such as AS64500", n)
			continue
		}
		g.AllowPrefixes = append(g.AllowPrefixes, pfx.Masked())
	}

	b := &d.UnfamiliarBurst
	atLeast(lines, p, "detect.unfamiliar_burst.requests", &b.Requests, 1, DefaultBurstRequests)
	positive(lines, p, "detect.unfamiliar_burst.window", &b.Window, DefaultBurstWindow)
	positive(lines, p, "detect.unfamiliar_burst.new_for", &b.NewFor, DefaultBurstNewFor)
	c.checkBaseline(lines, p, "detect.unfamiliar_burst.baseline", &b.Baseline)
	atLeast(lines, p, "detect.impossible_travel.speed_kmh", &d.ImpossibleTravel.SpeedKmh, 1, DefaultTravelSpeedKmh)

	for i := range d.Silences {
		checkSilence(lines, p, joinIndex("detect.silences", i), &d.Silences[i])
	}
}

// checkBaseline applies the defaults of a baseline at field path at.
func (c *Config) checkBaseline(lines map[string]int, p *problems, at string, b *Baseline) {
	positive(lines, p, at+".learning_period", &b.LearningPeriod, DefaultLearningPeriod)
	atLeast(lines, p, at+".min_events", &b.MinEvents, 0, DefaultMinEvents)
}

// atLeast applies the default to an absent number and refuses one below
// lowest.
func atLeast(lines map[string]int, p *problems, field string, n *int, lowest, def int) {
	line, set := lines[field]
	switch {
	case !set:
		*n = def
	case *n < lowest:
		p.add(line, field, "must be at least %d, got %d; leave it out for the default %d", lowest, *n, def)
	}
}

// checkCountries refuses what is not an ISO 3166-1 alpha-2 code.
func checkCountries(lines map[string]int, p *problems, at string, ccs []string) {
	for i, cc := range ccs {
		if !ValidCountry(cc) {
			fp := joinIndex(at, i)
			p.add(lineOf(lines, fp, at), fp, "bad country %q: want an ISO 3166-1 alpha-2 code in capitals, e.g. US or DE", cc)
		}
	}
}

// ValidCountry reports whether cc has the shape of an ISO 3166-1 alpha-2
// code: two capital letters.
func ValidCountry(cc string) bool {
	return len(cc) == 2 && cc[0] >= 'A' && cc[0] <= 'Z' && cc[1] >= 'A' && cc[1] <= 'Z'
}

// parseASN reads an AS number written AS64500 (or as64500).
func parseASN(s string) (uint32, bool) {
	if len(s) < 3 || !strings.EqualFold(s[:2], "AS") {
		return 0, false
	}
	n, err := strconv.ParseUint(s[2:], 10, 32)
	return uint32(n), err == nil
}

// checkSilence checks one configured silence and parses its expiry.
func checkSilence(lines map[string]int, p *problems, at string, s *Silence) {
	line := lineOf(lines, at)
	for _, f := range []struct{ name, pat string }{{"client", s.Client}, {"subject", s.Subject}} {
		if _, err := path.Match(f.pat, ""); err != nil {
			p.add(lineOf(lines, at+"."+f.name, at), at+"."+f.name, "bad pattern %q: %v", f.pat, err)
		}
	}
	if s.Kind != "" && !slices.Contains(FindingKinds(), s.Kind) {
		p.add(lineOf(lines, at+".kind", at), at+".kind", "unknown finding kind %q; use %s", s.Kind, strings.Join(FindingKinds(), ", "))
	}
	if s.Client == "" && s.Kind == "" && s.Subject == "" {
		p.add(line, at, "matches every finding; name at least one of client, kind and subject")
	}
	if strings.TrimSpace(s.Reason) == "" {
		p.add(lineOf(lines, at+".reason", at), at+".reason", "required: why these findings are acceptable, for the next reviewer")
	}
	if s.Until == "" {
		p.add(lineOf(lines, at+".until", at), at+".until", "required: when the silence ends, e.g. 2027-03-31; silences do not last for ever")
		return
	}
	t, err := ParseUntil(s.Until)
	if err != nil {
		p.add(lineOf(lines, at+".until", at), at+".until", "%v", err)
		return
	}
	s.Expires = t
}

// ParseUntil reads a silence expiry: a date (YYYY-MM-DD, the end of that
// day in UTC) or an RFC 3339 time.
func ParseUntil(s string) (time.Time, error) {
	if t, err := time.Parse(time.DateOnly, s); err == nil {
		return t.Add(24 * time.Hour), nil
	}
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	return time.Time{}, fmt.Errorf("bad time %q: want a date such as 2027-03-31 or an RFC 3339 time such as 2027-03-31T18:00:00Z", s)
}

// checkGeoIP checks that the configured databases can be read; their
// content is checked when they are opened.
func (c *Config) checkGeoIP(lines map[string]int, p *problems) {
	g := &c.GeoIP
	if g.City != "" && g.Country != "" {
		p.add(lineOf(lines, "geoip.country"), "geoip.country", "set city or country, not both: either gives the country")
	}
	for _, f := range []struct{ name, path string }{{"city", g.City}, {"country", g.Country}, {"asn", g.ASN}} {
		if f.path == "" {
			continue
		}
		if _, err := os.Stat(f.path); err != nil {
			fp := "geoip." + f.name
			p.add(lineOf(lines, fp), fp, "cannot read the database: %v", err)
		}
	}
	positive(lines, p, "geoip.check_every", &g.CheckEvery, DefaultGeoCheckEvery)
}
