package ingest

import (
	"net/netip"
	"strings"
)

// ClientIP returns the address of the client that reached the first proxy
// we trust, from an X-Forwarded-For value and the address of the peer that
// sent the request (remote, invalid when unknown).
//
// It walks the chain from the right, skipping addresses inside trusted, and
// returns the first one that is not trusted: entries further left were
// written by the client itself and can be forged, so the left-most address
// is only used when every hop is trusted. With no trusted ranges
// configured, private, loopback and link-local addresses are trusted: the
// proxies in front of an API are almost always on such networks, and a
// public client address is what geography and burst detection need.
// Entries may carry ports
// ("1.2.3.4:5678", "[2001:db8::1]:443"), brackets, spaces or be "unknown";
// those that do not parse are skipped. With no usable entry, remote is
// returned.
func ClientIP(xff string, remote netip.Addr, trusted []netip.Prefix) netip.Addr {
	if remote.IsValid() && !isTrusted(remote, trusted) {
		return remote // the peer itself is the client: its header is hearsay
	}
	var leftmost netip.Addr
	for rest := xff; rest != ""; {
		i := strings.LastIndexByte(rest, ',')
		entry := rest[i+1:]
		if i < 0 {
			rest = ""
		} else {
			rest = rest[:i]
		}
		a, ok := parseHostAddr(strings.TrimSpace(entry))
		if !ok {
			continue
		}
		if !isTrusted(a, trusted) {
			return a
		}
		leftmost = a
	}
	if leftmost.IsValid() {
		return leftmost
	}
	return remote
}

func isTrusted(a netip.Addr, trusted []netip.Prefix) bool {
	a = a.Unmap()
	if len(trusted) == 0 {
		return a.IsPrivate() || a.IsLoopback() || a.IsLinkLocalUnicast()
	}
	for _, p := range trusted {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// parseHostAddr parses an address that may carry a port or brackets.
func parseHostAddr(s string) (netip.Addr, bool) {
	if s == "" || s == "-" {
		return netip.Addr{}, false
	}
	if a, err := netip.ParseAddr(s); err == nil {
		return a.Unmap(), true
	}
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return ap.Addr().Unmap(), true
	}
	if strings.HasPrefix(s, "[") && strings.HasSuffix(s, "]") {
		if a, err := netip.ParseAddr(s[1 : len(s)-1]); err == nil {
			return a.Unmap(), true
		}
	}
	return netip.Addr{}, false
}
