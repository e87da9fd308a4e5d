package ingest

import (
	"context"
	"log/slog"
	"math/rand/v2"
	"sync"
	"time"
)

// SuperviseOptions configure Supervise. Zero values select the defaults.
type SuperviseOptions struct {
	Logger     *slog.Logger
	MinBackoff time.Duration // first restart delay; default 1s
	MaxBackoff time.Duration // restart delay cap; default 1m
	// ResetAfter is how long a run must last for the next failure to be
	// treated as a first one again; default MaxBackoff.
	ResetAfter time.Duration
	// Sleep waits for d or until ctx ends, reporting whether the full
	// delay passed; default a timer. Tests replace it.
	Sleep func(ctx context.Context, d time.Duration) bool
	// Now returns the current time; default time.Now.
	Now func() time.Time
	// Jitter returns a number in [0, 1); default math/rand/v2.
	Jitter func() float64
}

// Supervise runs every source in its own goroutine and restarts one that
// returns an error, after a jittered exponential backoff. A failing source
// never stops the others. Supervise returns nil when ctx ends or when every
// source has returned nil (sources that finish, such as a Scan), and only
// then closes out: it is the only closer of out.
func Supervise(ctx context.Context, sources []Source, out chan<- Line, opts SuperviseOptions) error {
	defer close(out)
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.MinBackoff <= 0 {
		opts.MinBackoff = time.Second
	}
	if opts.MaxBackoff < opts.MinBackoff {
		opts.MaxBackoff = max(time.Minute, opts.MinBackoff)
	}
	if opts.ResetAfter <= 0 {
		opts.ResetAfter = opts.MaxBackoff
	}
	if opts.Sleep == nil {
		opts.Sleep = sleepCtx
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Jitter == nil {
		opts.Jitter = rand.Float64
	}
	var wg sync.WaitGroup
	for _, src := range sources {
		wg.Go(func() { supervise(ctx, src, out, &opts) })
	}
	wg.Wait()
	return nil
}

func supervise(ctx context.Context, src Source, out chan<- Line, opts *SuperviseOptions) {
	log := opts.Logger.With("source", src.Name())
	var lastErr string
	failures := 0
	for {
		started := opts.Now()
		err := src.Run(ctx, out)
		if ctx.Err() != nil {
			return
		}
		if err == nil {
			log.Info("source finished")
			return
		}
		if opts.Now().Sub(started) >= opts.ResetAfter {
			failures = 0
		}
		delay := backoff(opts.MinBackoff, opts.MaxBackoff, failures, opts.Jitter())
		failures++
		if msg := err.Error(); msg != lastErr {
			log.Error("source failed, restarting", "err", err, "retry_in", delay)
			lastErr = msg
		}
		if !opts.Sleep(ctx, delay) {
			return
		}
	}
}

// backoff returns the delay before restart number n+1: min·2ⁿ capped at
// maxDelay, then scaled into [½, 1) of itself by jitter so that sources
// failing together do not restart together.
func backoff(minDelay, maxDelay time.Duration, n int, jitter float64) time.Duration {
	d := minDelay
	for range n {
		if d >= maxDelay/2 {
			d = maxDelay
			break
		}
		d *= 2
	}
	d = min(d, maxDelay)
	return d/2 + time.Duration(jitter*float64(d/2))
}

func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
