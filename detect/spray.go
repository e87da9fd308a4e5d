package detect

import (
	"cmp"
	"hash/maphash"
	"math"
	"math/bits"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/scopewatch/scopewatch/ingest"
	"github.com/scopewatch/scopewatch/rules"
	"github.com/scopewatch/scopewatch/store"
)

// unknownClient judges an event of a client that gets no state (neither
// registered nor issued a token): a refusal counts towards the address's
// probing, and every such event towards the source's client-id spray.
func (d *Detectors) unknownClient(ev *ingest.Event) {
	if ev.Kind == ingest.KindDeny {
		d.probing(ev, nil)
	}
	m := d.sprays[ev.Source]
	if m == nil {
		// One meter per source: source names come from the
		// configuration, not from the lines.
		m = newSprayMeter(d.cfg.ClientIDSpray, d.seed)
		d.sprays[strings.Clone(ev.Source)] = m
	}
	if !m.observe(ev) {
		return
	}
	k := store.FindingKey{Kind: KindClientIDSpray, Subject: ev.Source}
	var f *store.Finding
	if m.raised {
		// The same spray, still above the threshold: its figures are
		// brought up to date once per slot, without counting it again.
		if f = d.findings.Get(k); f == nil {
			return
		}
		if ev.Time.After(f.Last) {
			f.Last = ev.Time
		}
		d.findings.Touch(k)
	} else {
		f = d.findings.Raise(k, store.SeverityWarning, ev.Time, ev.Pos)
		m.raised = true
	}
	n, from, top := m.figures()
	window := humanDuration(m.window)
	f.Summary = "client-id spray on " + ev.Source + ": " + strconv.Itoa(n) + " distinct unknown client ids from " +
		strconv.Itoa(from) + " addresses within " + window + "; someone is trying client ids the IdP never issued a token to."
	f.Evidence.Requests, f.Evidence.Window = n, window
	f.Evidence.IP = ""
	var detail strings.Builder
	detail.WriteString(strconv.Itoa(from) + " addresses")
	for i, a := range top {
		if i == 0 {
			f.Evidence.IP = a.String()
			detail.WriteString("; most events from ")
		} else {
			detail.WriteString(", ")
		}
		detail.WriteString(a.String() + " (" + strconv.FormatUint(a.n, 10) + ")")
	}
	f.Evidence.Detail = detail.String()
}

// Forget drops what the detectors hold of a client pruned from the
// store.
func (d *Detectors) Forget(id string) {
	delete(d.clients, id)
	d.known.Forget(id)
}

// findingClient is the client a finding about ev's client is keyed by:
// "" for a client that is not known, so that invented ids do not each
// get a finding.
func (d *Detectors) findingClient(id string) string {
	if id == "" || d.known.Known(id) {
		return id
	}
	return ""
}

// The client-id spray meter: distinct counts in fixed memory.
const (
	// spraySlots divide the window: the meter counts over the newest
	// spraySlots slots, so the window it sees slides by a sixth of it.
	spraySlots = 6
	// sprayPrecision is the HyperLogLog precision: 2^12 registers of a
	// byte per slot and per sketch, a standard error of 1.6%; counts up
	// to a few thousand are near exact.
	sprayPrecision = 12
	sprayRegisters = 1 << sprayPrecision
	// sprayTop is how many of the busiest addresses each slot tracks,
	// and topShown how many the evidence names.
	sprayTop  = 8
	topShown  = 5
	sprayBits = 64 - sprayPrecision
)

// sprayMeter counts, on one source, the distinct unknown client ids and
// the distinct addresses they came from within a sliding window, and the
// busiest addresses. Its size is fixed (about 60 KiB), whatever the
// number of ids: two HyperLogLog sketches per slot of the window,
// merged into a running maximum whose estimate costs no pass over the
// registers.
type sprayMeter struct {
	distinct int
	window   time.Duration
	slot     int64 // nanoseconds a slot spans
	seed     maphash.Seed
	start    int64 // start of the newest slot, Unix nanoseconds; 0 before the first event
	cur      int   // index of the newest slot
	ids      [spraySlots]hll
	addrs    [spraySlots]hll
	top      [spraySlots]topAddrs
	allIDs   hllMax
	allAddrs hllMax
	// raised is set once the finding of this spell (the count at or
	// past the threshold) is raised; refreshed is the slot whose figures
	// the finding has.
	raised    bool
	refreshed int64
}

// hll is the registers of one HyperLogLog sketch.
type hll [sprayRegisters]uint8

// hllMax is the register-wise maximum of a meter's slots, with the sum
// of 2^-register and the count of empty registers kept up to date.
type hllMax struct {
	reg   hll
	sum   float64
	zeros int
}

// topAddrs keeps the busiest addresses of a slot (the space-saving
// algorithm: a new address takes the place of the least counted one, and
// its count).
type topAddrs struct {
	n    int
	addr [sprayTop]netip.Addr
	cnt  [sprayTop]uint64
}

// addrCount is an address and its events.
type addrCount struct {
	netip.Addr
	n uint64
}

func newSprayMeter(cfg rules.ClientIDSpray, seed maphash.Seed) *sprayMeter {
	m := &sprayMeter{distinct: cfg.Distinct, window: time.Duration(cfg.Window), seed: seed}
	if m.distinct <= 0 {
		m.distinct = rules.DefaultSprayDistinct
	}
	if m.window <= 0 {
		m.window = time.Duration(rules.DefaultSprayWindow)
	}
	m.slot = max(int64(m.window)/spraySlots, 1)
	m.allIDs.reset()
	m.allAddrs.reset()
	return m
}

// observe counts ev and reports whether the spray finding is to be
// raised or brought up to date: the count has reached the threshold, for
// the first time in this spell or for the first time in this slot.
func (m *sprayMeter) observe(ev *ingest.Event) bool {
	m.advance(ev.Time.UnixNano())
	id := maphash.String(m.seed, ev.Client)
	m.add(&m.ids[m.cur], &m.allIDs, id)
	if ev.IP.IsValid() {
		a := ev.IP.Unmap()
		if a.Is6() {
			pfx, _ := a.Prefix(64) // one host holds a /64, as in probing
			a = pfx.Addr()
		}
		b := a.As16()
		m.add(&m.addrs[m.cur], &m.allAddrs, maphash.Bytes(m.seed, b[:]))
		m.top[m.cur].add(a)
	}
	if m.allIDs.estimate() < m.distinct {
		m.raised = false // the spell is over; the next one raises again
		return false
	}
	if m.raised && m.refreshed == m.start {
		return false
	}
	m.refreshed = m.start
	return true
}

// advance moves the window so that its newest slot holds t. An event
// older than the newest slot (lines of several files interleaved) counts
// in it.
func (m *sprayMeter) advance(t int64) {
	if t <= 0 {
		return // no usable time: the newest slot
	}
	if m.start == 0 {
		m.start = t - t%m.slot
		return
	}
	if t < m.start+m.slot {
		return
	}
	steps := (t - m.start) / m.slot
	m.start += steps * m.slot
	for i := int64(0); i < min(steps, spraySlots); i++ {
		m.cur = (m.cur + 1) % spraySlots
		m.ids[m.cur] = hll{}
		m.addrs[m.cur] = hll{}
		m.top[m.cur] = topAddrs{}
	}
	m.allIDs.merge(&m.ids)
	m.allAddrs.merge(&m.addrs)
}

// add counts hash h in slot s and in the running maximum.
func (m *sprayMeter) add(s *hll, all *hllMax, h uint64) {
	j := h >> sprayBits
	r := uint8(bits.LeadingZeros64(h<<sprayPrecision|1<<(sprayPrecision-1)) + 1)
	if r > s[j] {
		s[j] = r
		all.raise(j, r)
	}
}

// figures returns the distinct ids, the distinct addresses and the
// busiest addresses of the window.
func (m *sprayMeter) figures() (ids, addrs int, top []addrCount) {
	for i := range m.top {
		t := &m.top[i]
		for k := range t.n {
			j := slices.IndexFunc(top, func(c addrCount) bool { return c.Addr == t.addr[k] })
			if j < 0 {
				top = append(top, addrCount{t.addr[k], t.cnt[k]})
			} else {
				top[j].n += t.cnt[k]
			}
		}
	}
	slices.SortFunc(top, func(a, b addrCount) int { return cmp.Or(cmp.Compare(b.n, a.n), a.Addr.Compare(b.Addr)) })
	addrs = max(m.allAddrs.estimate(), len(top))
	return m.allIDs.estimate(), addrs, top[:min(len(top), topShown)]
}

func (t *topAddrs) add(a netip.Addr) {
	least := 0
	for i := range t.n {
		if t.addr[i] == a {
			t.cnt[i]++
			return
		}
		if t.cnt[i] < t.cnt[least] {
			least = i
		}
	}
	if t.n < sprayTop {
		t.addr[t.n], t.cnt[t.n] = a, 1
		t.n++
		return
	}
	t.addr[least] = a
	t.cnt[least]++
}

func (x *hllMax) reset() {
	x.reg = hll{}
	x.sum, x.zeros = sprayRegisters, sprayRegisters
}

// raise sets register j to at least r.
func (x *hllMax) raise(j uint64, r uint8) {
	old := x.reg[j]
	if r <= old {
		return
	}
	if old == 0 {
		x.zeros--
	}
	x.sum += math.Ldexp(1, -int(r)) - math.Ldexp(1, -int(old))
	x.reg[j] = r
}

// merge recomputes x from the slots.
func (x *hllMax) merge(slots *[spraySlots]hll) {
	x.reset()
	for i := range slots {
		for j, r := range slots[i] {
			x.raise(uint64(j), r)
		}
	}
	// Recomputed, not updated: no rounding drift survives a slot.
	x.sum = 0
	for _, r := range x.reg {
		x.sum += math.Ldexp(1, -int(r))
	}
}

// estimate returns the HyperLogLog estimate of the distinct values,
// with linear counting in the small range where it is more exact.
func (x *hllMax) estimate() int {
	const m = float64(sprayRegisters)
	if x.zeros == sprayRegisters {
		return 0
	}
	e := 0.7213 / (1 + 1.079/m) * m * m / x.sum
	if e <= 2.5*m && x.zeros > 0 {
		e = m * math.Log(m/float64(x.zeros))
	}
	return int(math.Round(e))
}
