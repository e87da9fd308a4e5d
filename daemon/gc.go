package daemon

import (
	"context"
	"sync"
)

// checkpointGCPercent is the collector's target while a large checkpoint
// is held (engine.Options.Holding): GOGC=25 for that span.
const checkpointGCPercent = 25

// checkpointGC has the garbage collector work harder while a large
// checkpoint is in memory, and collect once it is gone.
//
// A checkpoint's records are encoded in memory and copied again into
// bbolt's pages; both are garbage once the commit ends. Left alone, the
// collector sets its next goal at twice the live heap it marks, and a
// cycle that ends during the commit counts the checkpoint twice in it:
// the heap then grows to twice the steady state plus the checkpoint,
// twice over. Held at checkpointGCPercent while the checkpoint lives, it
// grows by a quarter over that instead, and a collection when the last
// checkpoint is committed starts the next goal from what stays (README,
// Performance). The collection runs on a goroutine of its own
// (collector), so that no commit waits for it.
type checkpointGC struct {
	setPercent func(int) int // runtime/debug.SetGCPercent
	collect    func()        // runtime.GC
	restore    int           // the process's own percent
	due        chan struct{} // a collection is due (buffered: at most one waits)

	mu   sync.Mutex
	held int // checkpoints held
}

// newCheckpointGC returns the checkpointGC of a process whose collector
// setPercent and collect set, or nil when its collector is off (GOGC=off)
// or already at checkpointGCPercent or tighter: that is left as it is.
func newCheckpointGC(setPercent func(int) int, collect func()) *checkpointGC {
	old := setPercent(checkpointGCPercent) // the only way to read it
	setPercent(old)
	if old < 0 || old <= checkpointGCPercent {
		return nil
	}
	return &checkpointGC{setPercent: setPercent, collect: collect, restore: old, due: make(chan struct{}, 1)}
}

// hold starts the span of one checkpoint and returns its end, to be
// called once.
func (g *checkpointGC) hold() (released func()) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.held == 0 {
		g.setPercent(checkpointGCPercent)
	}
	g.held++
	return g.release
}

// release ends the span of one checkpoint: after the last, the collector
// gets its percent back, and a collection of the checkpoints' garbage is
// due.
func (g *checkpointGC) release() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.held--
	if g.held == 0 {
		g.setPercent(g.restore)
		select {
		case g.due <- struct{}{}:
		default: // one is due already
		}
	}
}

// collector runs the collections that come due until ctx ends.
func (g *checkpointGC) collector(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-g.due:
			g.collect()
		}
	}
}

// checkpointGC returns the daemon's checkpointGC, nil when it may not set
// the collector (Options.SetGCPercent and Collect) or should not.
func (d *Daemon) checkpointGC() *checkpointGC {
	if d.o.SetGCPercent == nil || d.o.Collect == nil {
		return nil
	}
	return newCheckpointGC(d.o.SetGCPercent, d.o.Collect)
}
