package detect

import (
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/scopewatch/scopewatch/ingest"
	"github.com/scopewatch/scopewatch/rules"
	"github.com/scopewatch/scopewatch/store"
)

// probing raises broad_request for a client (subject "probing") or an
// address (subject "probing from ADDR") that collects
// broad_request.probing.denials refusals with one of its reasons within
// its window: it may be trying scopes it was not given. Refusals of
// clients without state (unknown, or no client at all) count for their
// address only. An IPv6 address counts as its /64.
type probing struct {
	d       *Detectors
	cfg     rules.Probing
	reasons map[string]bool
	probes  map[netip.Addr]*ring // refusals per address, at most maxProbes
}

func newProbing(d *Detectors, cfg rules.Probing) *probing {
	pr := &probing{d: d, cfg: cfg, reasons: make(map[string]bool), probes: make(map[netip.Addr]*ring)}
	for _, r := range cfg.Reasons {
		pr.reasons[r] = true
		pr.reasons[reasonCode(r)] = true
	}
	return pr
}

// counts reports whether a refusal for reason counts: a configured reason
// as it is written, or by its normalised code (lower case, words joined
// by _), alone or among other words: "Invalid Scope", "INVALID_SCOPE" and
// "invalid_scope (bad request)" all count for invalid_scope. IdPs spell
// the OAuth error codes their own way.
func (pr *probing) counts(reason string) bool {
	if reason == "" {
		return false
	}
	if pr.reasons[reason] {
		return true
	}
	code := reasonCode(reason)
	if pr.reasons[code] {
		return true
	}
	padded := "_" + code + "_"
	for r := range pr.reasons {
		if r != "" && strings.Contains(padded, "_"+r+"_") {
			return true
		}
	}
	return false
}

// reasonCode normalises a refusal reason: lower case, each run of other
// characters than letters and digits one _, none at either end.
func reasonCode(reason string) string {
	var b strings.Builder
	b.Grow(len(reason))
	sep := false
	for _, c := range strings.ToLower(reason) {
		if c >= 'a' && c <= 'z' || c >= '0' && c <= '9' {
			if sep && b.Len() > 0 {
				b.WriteByte('_')
			}
			b.WriteRune(c)
			sep = false
			continue
		}
		sep = true
	}
	return b.String()
}

// observe counts a refusal for the client (st, nil for one without
// state) and for its address.
func (pr *probing) observe(ev *ingest.Event, st *clientState) {
	if ev.Kind != ingest.KindDeny || !pr.counts(ev.Reason) {
		return
	}
	d, p := pr.d, pr.cfg
	window := time.Duration(p.Window)
	if st != nil {
		if st.denials == nil {
			st.denials = newRing(p.Denials)
		}
		if ev.IP.IsValid() {
			st.denialFrom = addLatest(st.denialFrom, ev.IP.Unmap(), maxDenialFrom)
		}
		full := st.denials.add(ev.Time, window)
		d.markWindow(winProbeClient+ev.Client, st.denials)
		if full {
			k := store.FindingKey{Kind: rules.KindBroadRequest, Client: ev.Client, Subject: "probing"}
			f := d.findings.Raise(k, store.SeverityWarning, ev.Time, ev.Pos)
			f.Summary = "The client collected " + strconv.Itoa(p.Denials) + " or more refusals (" + ev.Reason +
				") within " + humanDuration(window) + ": it may be probing for scopes it was not given."
			f.Evidence.Requests, f.Evidence.Window, f.Evidence.Detail = p.Denials, humanDuration(window), ev.Reason
			if len(st.denialFrom) > 0 {
				f.Evidence.IP = st.denialFrom[len(st.denialFrom)-1].String()
				f.Evidence.Detail += "; from " + joinAddrs(st.denialFrom)
			}
		}
	}
	if !ev.IP.IsValid() {
		return
	}
	addr := ev.IP.Unmap()
	if addr.Is6() {
		// One host holds a whole /64: count it as one address.
		pfx, _ := addr.Prefix(64)
		addr = pfx.Addr()
	}
	r := pr.probes[addr]
	if r == nil {
		if len(pr.probes) >= maxProbes {
			pr.expireProbes(ev.Time, window)
		}
		if len(pr.probes) >= maxProbes {
			return // full of addresses refused within the window: keep their counts
		}
		r = newRing(p.Denials)
		pr.probes[addr] = r
	}
	full := r.add(ev.Time, window)
	d.markWindow(winProbeAddr+addr.String(), r)
	if full {
		from := addr.String()
		if addr.Is6() {
			from += "/64"
		}
		k := store.FindingKey{Kind: rules.KindBroadRequest, Subject: "probing from " + from}
		f := d.findings.Raise(k, store.SeverityWarning, ev.Time, ev.Pos)
		f.Summary = "The address " + from + " collected " + strconv.Itoa(p.Denials) +
			" or more refusals within " + humanDuration(window) + ", across clients: it may be probing."
		f.Evidence.IP, f.Evidence.Requests, f.Evidence.Window, f.Evidence.Detail = ev.IP.String(), p.Denials, humanDuration(window), ev.Reason
	}
}

// maxDenialFrom is how many of the addresses a client was refused from
// its probing finding names, the latest.
const maxDenialFrom = 4

// addLatest moves a to the end of list, the latest, keeping at most n.
func addLatest(list []netip.Addr, a netip.Addr, n int) []netip.Addr {
	if i := slices.Index(list, a); i >= 0 {
		list = slices.Delete(list, i, i+1)
	} else if len(list) >= n {
		list = slices.Delete(list, 0, 1)
	}
	return append(list, a)
}

// joinAddrs lists addresses, oldest first, separated by ", ".
func joinAddrs(list []netip.Addr) string {
	var b strings.Builder
	for i, a := range list {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(a.String())
	}
	return b.String()
}

// maxProbes bounds the addresses whose refusals are counted at once.
const maxProbes = 1 << 16

// expireProbes forgets addresses without a refusal in the window.
func (pr *probing) expireProbes(now time.Time, window time.Duration) {
	for ip, r := range pr.probes {
		if now.Sub(r.newest()) > window {
			delete(pr.probes, ip)
			pr.d.markWindow(winProbeAddr+ip.String(), nil)
		}
	}
}
