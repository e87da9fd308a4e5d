package detect

import (
	"net/netip"
	"strings"
	"time"

	"github.com/scopewatch/scopewatch/store"
)

// The detectors' time windows are saved with the batch whose events
// changed them (store.Batch.Windows) and loaded at start, so that a
// restart, or a crash, resumes probing and bursts where the last commit
// left them: the lines replayed after a crash are those after that
// commit, counted again into the windows as they were then.
//
// A window's key names its detector, what it counts for, and whom:
const (
	winProbeClient = "probe\x00c\x00" // + client: refusals of a client
	winProbeAddr   = "probe\x00a\x00" // + address: refusals from an address
	winBurstNet    = "burst\x00n\x00" // + client + "\x00" + network: requests from a new network
	winBurstAcross = "burst\x00c\x00" // + client: requests from all its new networks
	// impossible travel: winTravelSubject and winTravelClient (travel.go)
)

// WindowClient returns the client whose window key is key, false for a
// window of no one client (an address's refusals, a shard of travellers):
// a partition's changelog carries its clients' windows.
func WindowClient(key string) (string, bool) {
	for _, prefix := range []string{winProbeClient, winBurstAcross} {
		if id, ok := strings.CutPrefix(key, prefix); ok {
			return id, id != ""
		}
	}
	if rest, ok := strings.CutPrefix(key, winBurstNet); ok {
		id, _, ok := strings.Cut(rest, "\x00")
		return id, ok && id != ""
	}
	return "", false
}

// markWindow records that the window under key changed; nil deletes it.
func (d *Detectors) markWindow(key string, r *ring) {
	if d.windows == nil {
		d.windows = make(map[string]*ring)
	}
	d.windows[key] = r
}

// FlushWindows moves the windows changed since the last flush into b.
func (d *Detectors) FlushWindows(b *store.Batch) {
	for k, r := range d.windows {
		if r == nil {
			b.Windows[k] = nil
			continue
		}
		b.Windows[k] = r.encode()
	}
	clear(d.windows)
	d.geo.travel.flush(b)
}

// LoadWindows restores stored windows, after the clients are loaded.
// Windows whose newest time is more than their length before now are
// deleted instead (the zero now keeps every window: a scan judges as of
// its data). Windows of clients without state are dropped.
func (d *Detectors) LoadWindows(windows map[string][]int64, now time.Time) {
	probeWin, burstWin := time.Duration(d.cfg.BroadRequest.Probing.Window), time.Duration(d.cfg.UnfamiliarBurst.Window)
	for key, times := range windows {
		if len(times) == 0 {
			continue
		}
		stale := func(window time.Duration) bool {
			return !now.IsZero() && now.Sub(time.Unix(0, times[len(times)-1])) > window
		}
		switch {
		case strings.HasPrefix(key, winProbeClient):
			st := d.clients[key[len(winProbeClient):]]
			if st == nil || stale(probeWin) {
				d.markWindow(key, nil)
				continue
			}
			st.denials = newRing(d.cfg.BroadRequest.Probing.Denials)
			st.denials.restore(times)
		case strings.HasPrefix(key, winProbeAddr):
			a, err := netip.ParseAddr(key[len(winProbeAddr):])
			if err != nil || stale(probeWin) || len(d.probes.probes) >= maxProbes {
				d.markWindow(key, nil)
				continue
			}
			r := newRing(d.cfg.BroadRequest.Probing.Denials)
			r.restore(times)
			d.probes.probes[a] = r
		case strings.HasPrefix(key, winBurstAcross):
			st := d.clients[key[len(winBurstAcross):]]
			if st == nil || stale(burstWin) {
				d.markWindow(key, nil)
				continue
			}
			r := newRing(d.cfg.UnfamiliarBurst.Requests + 1)
			r.restore(times)
			st.across = &acrossNets{recent: r, key: key}
		case strings.HasPrefix(key, winBurstNet):
			client, network, _ := strings.Cut(key[len(winBurstNet):], "\x00")
			st := d.clients[client]
			var ns *netState
			if st != nil && !stale(burstWin) {
				for i := range st.nets {
					if st.nets[i].key.String() == network {
						ns = &st.nets[i].netState
						break
					}
				}
			}
			if ns == nil {
				d.markWindow(key, nil)
				continue
			}
			ns.recent = newRing(d.cfg.UnfamiliarBurst.Requests + 1)
			ns.recent.restore(times)
			ns.wkey = key
		case strings.HasPrefix(key, winTravelSubject):
			if !d.geo.travel.subjects.restore(key[len(winTravelSubject):], times) {
				d.markWindow(key, nil)
			}
		case strings.HasPrefix(key, winTravelClient):
			if !d.geo.travel.clients.restore(key[len(winTravelClient):], times) {
				d.markWindow(key, nil)
			}
		default:
			d.markWindow(key, nil) // a window this version does not keep
		}
	}
}
