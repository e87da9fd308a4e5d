package daemon

import "sync"

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
// Performance).
type checkpointGC struct {
	setPercent func(int) int // runtime/debug.SetGCPercent
	collect    func()        // runtime.GC

	restore int // the process's own percent

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
	return &checkpointGC{setPercent: setPercent, collect: collect, restore: old}
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
// gets its percent back and collects the checkpoints' garbage.
func (g *checkpointGC) release() {
	g.mu.Lock()
	g.held--
	last := g.held == 0
	if last {
		g.setPercent(g.restore)
	}
	g.mu.Unlock()
	if last {
		g.collect()
	}
}

// holding returns the engine's Options.Holding: checkpointGC's, when the
// daemon may set the collector (Options.SetGCPercent and Collect).
func (d *Daemon) holding() func() func() {
	if d.o.SetGCPercent == nil || d.o.Collect == nil {
		return nil
	}
	g := newCheckpointGC(d.o.SetGCPercent, d.o.Collect)
	if g == nil {
		return nil
	}
	return g.hold
}
