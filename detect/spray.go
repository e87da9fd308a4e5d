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
	"unsafe"

	"github.com/scopewatch/scopewatch/ingest"
	"github.com/scopewatch/scopewatch/rules"
	"github.com/scopewatch/scopewatch/store"
)

// clientIDSpray raises client_id_spray, once per source, when the events
// of clients that get no state (neither registered nor issued a token)
// name client_id_spray.distinct or more distinct client ids within its
// window: someone is trying client ids. It counts them in fixed memory
// per source (sprayMeter), whatever the number of ids.
type clientIDSpray struct {
	d      *Detectors
	cfg    rules.ClientIDSpray
	meters map[string]*sprayMeter // per source
}

// observe counts an event of a client without state.
func (c *clientIDSpray) observe(ev *ingest.Event, st *clientState) {
	if st != nil || ev.Client == "" {
		return
	}
	d := c.d
	m := c.meters[ev.Source]
	if m == nil {
		// One meter per source: source names come from the
		// configuration, not from the lines.
		m = newSprayMeter(c.cfg, d.seed)
		c.meters[strings.Clone(ev.Source)] = m
	}
	if !m.observe(ev) {
		return
	}
	k := store.FindingKey{Kind: rules.KindClientIDSpray, Subject: ev.Source}
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
	if st := d.clients[id]; st != nil {
		if st.denials != nil {
			d.markWindow(winProbeClient+id, nil)
		}
		if st.across != nil {
			d.markWindow(st.across.key, nil)
		}
		for i := range st.nets {
			if wkey := st.nets[i].wkey; wkey != "" {
				d.markWindow(wkey, nil)
			}
		}
	}
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
	// idPrecision and addrPrecision are the HyperLogLog precisions:
	// 2^13 registers of a byte per slot for the ids (a standard error of
	// 1.2%), 2^10 for the addresses (3.3%, and exact while each slot sees
	// at most sprayTop addresses).
	idPrecision   = 13
	addrPrecision = 10
	// sprayTop is how many of the busiest addresses each slot counts
	// (exactly, up to that many addresses), and topShown how many the
	// evidence names.
	sprayTop = 64
	topShown = 5
)

// sprayMeter counts, on one source, the distinct unknown client ids and
// the distinct addresses they came from within a sliding window, and the
// busiest addresses. Its size is fixed (about 76 KiB, see bytes),
// whatever the number of ids: two HyperLogLog sketches per slot of the
// window, merged into a running maximum whose estimate costs no pass over
// the registers.
type sprayMeter struct {
	distinct int
	window   time.Duration
	slot     int64 // nanoseconds a slot spans
	seed     maphash.Seed
	start    int64 // start of the newest slot, Unix nanoseconds; 0 before the first event
	cur      int   // index of the newest slot
	ids      sketch
	addrs    sketch
	top      [spraySlots]topAddrs
	// raised is set once the finding of this spell (the count at or
	// past the threshold) is raised; shown is the count and slot its
	// figures were last brought up to date with.
	raised     bool
	shown      int
	shownStart int64
}

// sketch is a HyperLogLog sketch per slot, and their register-wise
// maximum with the sum of 2^-register and the count of empty registers
// kept up to date, so that an estimate costs no pass over the registers.
type sketch struct {
	precision uint
	slots     [spraySlots][]uint8
	all       []uint8
	sum       float64
	zeros     int
}

// topAddrs counts the busiest addresses of a slot (the space-saving
// algorithm: past sprayTop addresses a new one takes the place of the
// least counted one, and its count).
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

func newSketch(precision uint) sketch {
	s := sketch{precision: precision, all: make([]uint8, 1<<precision)}
	for i := range s.slots {
		s.slots[i] = make([]uint8, 1<<precision)
	}
	s.merge()
	return s
}

// bytes returns the memory the meter holds, which does not change.
func (m *sprayMeter) bytes() int {
	return int(unsafe.Sizeof(*m)) + (spraySlots+1)*(len(m.ids.all)+len(m.addrs.all))
}

func newSprayMeter(cfg rules.ClientIDSpray, seed maphash.Seed) *sprayMeter {
	m := &sprayMeter{distinct: cfg.Distinct, window: time.Duration(cfg.Window), seed: seed,
		ids: newSketch(idPrecision), addrs: newSketch(addrPrecision)}
	if m.distinct <= 0 {
		m.distinct = rules.DefaultSprayDistinct
	}
	if m.window <= 0 {
		m.window = time.Duration(rules.DefaultSprayWindow)
	}
	m.slot = max(int64(m.window)/spraySlots, 1)
	return m
}

// observe counts ev and reports whether the spray finding is to be
// raised or brought up to date: the count has reached the threshold for
// the first time in this spell, or has grown by 1% or moved to a new
// slot since the finding last showed it.
func (m *sprayMeter) observe(ev *ingest.Event) bool {
	m.advance(ev.Time.UnixNano())
	m.ids.add(m.cur, maphash.String(m.seed, ev.Client))
	if ev.IP.IsValid() {
		a := ev.IP.Unmap()
		if a.Is6() {
			pfx, _ := a.Prefix(64) // one host holds a /64, as in probing
			a = pfx.Addr()
		}
		b := a.As16()
		m.addrs.add(m.cur, maphash.Bytes(m.seed, b[:]))
		m.top[m.cur].add(a)
	}
	n := m.ids.estimate()
	if n < m.distinct {
		m.raised = false // the spell is over; the next one raises again
		return false
	}
	if m.raised && m.shownStart == m.start && n < m.shown+m.shown/100 {
		return false
	}
	m.shown, m.shownStart = n, m.start
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
		m.ids.clearSlot(m.cur)
		m.addrs.clearSlot(m.cur)
		m.top[m.cur] = topAddrs{}
	}
	m.ids.merge()
	m.addrs.merge()
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
	addrs = len(top) // exact while no slot saw more addresses than it counts
	if slices.ContainsFunc(m.top[:], func(t topAddrs) bool { return t.n == sprayTop }) {
		addrs = max(m.addrs.estimate(), len(top))
	}
	return m.ids.estimate(), addrs, top[:min(len(top), topShown)]
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

// add counts hash h in slot i and in the maximum.
func (s *sketch) add(i int, h uint64) {
	j := h >> (64 - s.precision)
	r := uint8(bits.LeadingZeros64(h<<s.precision|1<<(s.precision-1)) + 1)
	if r > s.slots[i][j] {
		s.slots[i][j] = r
		s.raise(j, r)
	}
}

// raise sets register j of the maximum to at least r.
func (s *sketch) raise(j uint64, r uint8) {
	old := s.all[j]
	if r <= old {
		return
	}
	if old == 0 {
		s.zeros--
	}
	s.sum += math.Ldexp(1, -int(r)) - math.Ldexp(1, -int(old))
	s.all[j] = r
}

func (s *sketch) clearSlot(i int) { clear(s.slots[i]) }

// merge recomputes the maximum from the slots; recomputed rather than
// updated, no rounding drift outlives a slot.
func (s *sketch) merge() {
	clear(s.all)
	for i := range s.slots {
		for j, r := range s.slots[i] {
			s.all[j] = max(s.all[j], r)
		}
	}
	s.sum, s.zeros = 0, 0
	for _, r := range s.all {
		s.sum += math.Ldexp(1, -int(r))
		if r == 0 {
			s.zeros++
		}
	}
}

// estimate returns the HyperLogLog estimate of the distinct values,
// with linear counting in the small range where it is more exact.
func (s *sketch) estimate() int {
	m := float64(len(s.all))
	if s.zeros == len(s.all) {
		return 0
	}
	e := 0.7213 / (1 + 1.079/m) * m * m / s.sum
	if e <= 2.5*m && s.zeros > 0 {
		e = m * math.Log(m/float64(s.zeros))
	}
	return int(math.Round(e))
}

// Footprint is what the detectors hold, in entries: every part is bounded
// whatever the number of distinct client ids logged.
type Footprint struct {
	Clients    int            // clients with full state
	Probes     int            // addresses whose refusals are counted
	SprayBytes map[string]int // per source, the spray meter's size
}

// Footprint returns what the detectors hold now.
func (d *Detectors) Footprint() Footprint {
	f := Footprint{Clients: len(d.clients), Probes: len(d.probes.probes), SprayBytes: make(map[string]int, len(d.spray.meters))}
	for src, m := range d.spray.meters {
		f.SprayBytes[src] = m.bytes()
	}
	return f
}

// Holds reports whether the detectors keep state for client id.
func (d *Detectors) Holds(id string) bool { return d.clients[id] != nil }
