package detect

import (
	"hash/maphash"
	"path"
	"slices"
	"strconv"
	"strings"

	"github.com/scopewatch/scopewatch/ingest"
	"github.com/scopewatch/scopewatch/rules"
	"github.com/scopewatch/scopewatch/store"
)

// broadRequest raises broad_request for a grant or a refusal whose scopes
// are broad: a SMART wildcard (warning for read, high for write or
// system-wide), a scope matching broad_request.patterns, a deprecated or
// retired scope of the catalog, a scope outside the client's role, a scope
// new for a client whose baseline has formed (broad_request.baseline), and
// more than broad_request.max_scopes scopes in one request. A refusal is
// judged only on names from a bounded set (see boundedName).
type broadRequest struct {
	d      *Detectors
	cfg    rules.BroadRequest
	scopes map[string]*scopeInfo // per distinct scope name, at most maxScopes
	// byNumber holds the same by the store's number of the scope
	// (store.ClientState.CountScope), for the events whose numbers the
	// accountant passes on: a slice index, not a string hash and compare.
	// Numbers are dense and never reused, and only those below
	// maxScopes are kept.
	byNumber []*scopeInfo
}

// scopeListHash identifies a request's scope lists, to tell a repeat of a
// clean request without judging each scope again.
func (b *broadRequest) scopeListHash(ev *ingest.Event) uint64 {
	var h maphash.Hash
	h.SetSeed(b.d.seed)
	for _, s := range ev.Requested {
		h.WriteString(s)
		h.WriteByte(0)
	}
	h.WriteByte(1)
	for _, s := range ev.Granted {
		h.WriteString(s)
		h.WriteByte(0)
	}
	return h.Sum64()
}

// boundedName reports whether a scope name comes from a set the
// requester cannot grow: the catalog, or a SMART wildcard without a query
// constraint.
func (b *broadRequest) boundedName(s string) bool {
	if _, ok := b.d.rules.Scopes[s]; ok {
		return true
	}
	g, err := rules.ParseSMART(s)
	return err == nil && g.Resource == "*" && g.RawQuery == ""
}

// observe judges the scopes of a grant or a refusal. A request with the
// same scope lists as the client's last request that raised nothing is
// clean again: what its scopes are, the client's role, and (every scope
// now being familiar) escalation cannot have changed.
func (b *broadRequest) observe(ev *ingest.Event, st *clientState) {
	if st == nil || (ev.Kind != ingest.KindGrant && ev.Kind != ingest.KindDeny) {
		return
	}
	d := b.d
	hash := b.scopeListHash(ev)
	if st.clean != 0 && st.clean == hash {
		return
	}
	cfg := b.cfg
	formed := st.formed(cfg.Baseline, ev.Time)
	reg, registered := d.rules.Registered(ev.Client)
	var role []string
	if registered && reg.Role != "" {
		role = d.rules.Roles[reg.Role]
	}
	refused := ev.Kind == ingest.KindDeny
	distinct, raised := 0, false
	// verb says how the event shows the scope: asked for (requested), or
	// only granted (a token event that lists what it issued).
	numbers := d.known.scopes.of(ev)
	judge := func(s, verb string, at int) {
		if s == "" || strings.IndexByte(s, 0) >= 0 {
			return // not a scope the store can key
		}
		distinct++
		number := store.NoScope
		if numbers != nil {
			number = numbers[at]
		}
		if refused && !b.boundedName(s) {
			// A refused request got nothing, and its scope names are
			// the requester's to invent: only names from a bounded set
			// (the catalog, unconstrained SMART wildcards) are judged,
			// so a spray of invented names cannot fill memory with
			// findings. Probing counts the refusals.
			return
		}
		if numbers != nil && number == store.NoScope && at < len(ev.Requested) && !b.boundedName(s) {
			// Asked for, not granted, and not kept by the accountant:
			// the client holds store.MaxAskedOnly names it was only
			// asked for, and this one is the requester's to make up
			// too (scopewatch_scopes_not_kept_total counts them).
			return
		}
		si := b.scopeInfoNumbered(s, number)
		seenBefore := st.sawScope(si.id, !refused)
		sev, reasons := si.severity, si.reasons
		if refused {
			reasons = slices.Clip(reasons) // outside the role or new: moot for a refusal
			if sev == "" {
				return
			}
		}
		if !refused && role != nil && !si.identity && !si.allows(reg.Role, role, s) {
			reasons = append(slices.Clip(reasons), "outside role "+reg.Role)
			if sev == "" {
				sev = store.SeverityWarning
			}
		}
		if !refused && formed && !seenBefore {
			reasons = append(slices.Clip(reasons), "new for this client")
			if sev == "" {
				sev = store.SeverityWarning
			}
		}
		if sev == "" {
			return
		}
		raised = true
		k := store.FindingKey{Kind: rules.KindBroadRequest, Client: ev.Client, Subject: s}
		f := d.findings.Raise(k, sev, ev.Time, ev.Pos)
		f.Evidence.Detail = mergeReasons(f.Evidence.Detail, reasons)
		if cs, ok := d.rules.Scopes[s]; ok && cs.ReplacedBy != "" {
			f.Evidence.ReplacedBy = cs.ReplacedBy
		}
		f.Summary = "The client " + verb + " " + s + " (" + f.Evidence.Detail + ")."
	}
	for i, s := range ev.Requested {
		if !slices.Contains(ev.Requested[:i], s) {
			judge(s, "asked for", i)
		}
	}
	for j, s := range ev.Granted {
		if !slices.Contains(ev.Requested, s) {
			judge(s, "was granted", len(ev.Requested)+j)
		}
	}
	if distinct > cfg.MaxScopes && !refused {
		raised = true
		k := store.FindingKey{Kind: rules.KindBroadRequest, Client: ev.Client, Subject: "max_scopes"}
		f := d.findings.Raise(k, store.SeverityWarning, ev.Time, ev.Pos)
		what := "asked for " + strconv.Itoa(distinct) + " scopes in one request"
		if len(ev.Requested) == 0 {
			what = "was granted " + strconv.Itoa(distinct) + " scopes in one token"
		}
		f.Summary = "The client " + what + "; the limit is " + strconv.Itoa(cfg.MaxScopes) + "."
		f.Evidence.Scopes = append(f.Evidence.Scopes[:0], ev.Requested...)
		for _, s := range ev.Granted {
			if !slices.Contains(f.Evidence.Scopes, s) {
				f.Evidence.Scopes = append(f.Evidence.Scopes, s)
			}
		}
	}
	st.clean = 0
	if !raised {
		st.clean = hash
	}
}

// mergeReasons adds the reasons not yet in have, a list separated by "; ".
func mergeReasons(have string, reasons []string) string {
	for _, r := range reasons {
		if !slices.Contains(strings.Split(have, "; "), r) {
			if have != "" {
				have += "; "
			}
			have += r
		}
	}
	return have
}

// scopeInfo is what a scope's name alone says about its breadth, with the
// scope's number for the clients' scope sets.
type scopeInfo struct {
	id       uint32
	severity string // of the broadest reason, "" when none
	reasons  []string
	smart    *rules.SMARTScope
	identity bool            // an identity scope (rules.IsIdentityScope): in every role
	inRole   map[string]bool // role name → whether the role allows the scope
}

// noScope is the id of a scope beyond maxScopes: it is judged, but not
// remembered in any client's set.
const noScope = ^uint32(0)

// maxScopes bounds the distinct scope names remembered. Scope names are
// input (anyone can ask for any scope and be refused), so past the bound
// a new name is judged afresh each time and never becomes familiar.
const maxScopes = 1 << 18

// scopeInfoNumbered is scopeInfo for a scope the store numbered number
// (store.NoScope for none).
func (b *broadRequest) scopeInfoNumbered(s string, number uint32) *scopeInfo {
	if number < uint32(len(b.byNumber)) {
		if si := b.byNumber[number]; si != nil {
			return si
		}
	}
	si := b.scopeInfo(s)
	if number < maxScopes && si.id != noScope {
		if int(number) >= len(b.byNumber) {
			b.byNumber = slices.Grow(b.byNumber, int(number)+1-len(b.byNumber))[:number+1]
		}
		b.byNumber[number] = si
	}
	return si
}

func (b *broadRequest) scopeInfo(s string) *scopeInfo {
	if si, ok := b.scopes[s]; ok {
		return si
	}
	si := &scopeInfo{id: noScope, identity: b.d.rules.IsIdentityScope(s)}
	raise := func(sev, reason string) {
		if store.SeverityRank(sev) > store.SeverityRank(si.severity) || si.severity == "" {
			si.severity = sev
		}
		si.reasons = append(si.reasons, reason)
	}
	if g, err := rules.ParseSMART(s); err == nil {
		si.smart = &g
		if g.Resource == "*" {
			switch {
			case g.Context == "system":
				raise(store.SeverityHigh, "system-wide wildcard")
			case g.Perms.Has(rules.Create) || g.Perms.Has(rules.Update) || g.Perms.Has(rules.Delete):
				raise(store.SeverityHigh, "wildcard with write access")
			default:
				raise(store.SeverityWarning, "wildcard read access")
			}
		}
	}
	for _, p := range b.cfg.Patterns {
		if ok, _ := path.Match(p, s); ok {
			raise(store.SeverityHigh, "broad pattern "+p)
			break
		}
	}
	if cs, ok := b.d.rules.Scopes[s]; ok {
		if cs.Admin {
			raise(store.SeverityHigh, "admin scope")
		}
		switch cs.Lifecycle {
		case rules.Deprecated:
			r := "deprecated"
			if cs.ReplacedBy != "" {
				r += ", replaced by " + cs.ReplacedBy
			}
			raise(store.SeverityWarning, r)
		case rules.Retired:
			raise(store.SeverityHigh, "retired")
		}
	}
	if len(b.scopes) < maxScopes {
		si.id = uint32(len(b.scopes))
		b.scopes[strings.Clone(s)] = si
	}
	return si
}

// allows reports whether the role named name, allowing scopes role,
// permits the scope; the answer is kept per role.
func (si *scopeInfo) allows(name string, role []string, s string) bool {
	if ok, known := si.inRole[name]; known {
		return ok
	}
	ok := rules.RoleAllows(role, s, si.smart)
	if si.id != noScope {
		if si.inRole == nil {
			si.inRole = make(map[string]bool)
		}
		si.inRole[name] = ok
	}
	return ok
}
