package detect

import (
	"net/netip"
	"runtime"
	"strconv"
	"testing"
	"time"

	"github.com/scopewatch/scopewatch/ingest"
	"github.com/scopewatch/scopewatch/rules"
	"github.com/scopewatch/scopewatch/store"
)

// BenchmarkSprayMemory sprays 1,000,000 distinct client ids (half
// Keycloak client_not_found refusals, half API calls, from 256
// addresses) through the accountant and the detectors, the batch
// emptied every 1,000 events as the engine's commits do, and reports the
// Go heap still held afterwards (after a GC) as retained-MiB.
func BenchmarkSprayMemory(b *testing.B) {
	const ids = 1_000_000
	r := &rules.Rules{IdentityScopes: rules.DefaultIdentityScopes()}
	if err := r.Compile(); err != nil {
		b.Fatal(err)
	}
	at := time.Date(2026, 10, 1, 10, 0, 0, 0, time.UTC)
	addrs := make([]netip.Addr, 256)
	for i := range addrs {
		addrs[i] = netip.AddrFrom4([4]byte{203, 0, 113, byte(i)})
	}
	var retained float64
	for b.Loop() {
		runtime.GC()
		var before runtime.MemStats
		runtime.ReadMemStats(&before)
		acc := NewAccountant(r, nil, nil)
		fs := NewFindings(nil, nil, func() time.Time { return at }, nil)
		dets := NewDetectors(DetectorOptions{Config: testDetect(), Rules: r}, fs)
		batch := store.NewBatch()
		for i := range ids {
			ev := ingest.Event{Time: at.Add(time.Duration(i) * time.Millisecond), Client: "spray-" + strconv.Itoa(i), IP: addrs[i%len(addrs)]}
			if i%2 == 0 {
				ev.Source, ev.Kind, ev.Reason = "keycloak", ingest.KindDeny, "client_not_found"
			} else {
				ev.Source, ev.Kind, ev.Method, ev.Path, ev.Status = "api", ingest.KindUse, "GET", "/api/labs/1", 200
			}
			acc.Apply(&ev, batch)
			dets.Observe(&ev)
			if batch.Events >= 1000 {
				fs.Flush(batch)
				batch.Reset()
			}
		}
		fs.Flush(batch)
		batch.Reset()
		runtime.GC()
		var after runtime.MemStats
		runtime.ReadMemStats(&after)
		retained = float64(int64(after.HeapAlloc)-int64(before.HeapAlloc)) / (1 << 20)
		runtime.KeepAlive(acc)
		runtime.KeepAlive(dets)
		runtime.KeepAlive(batch)
	}
	b.ReportMetric(retained, "retained-MiB")
}
