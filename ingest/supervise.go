package ingest

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"time"
)

// SuperviseOptions configure Supervise. Zero values select the defaults.
type SuperviseOptions struct {
	Logger *slog.Logger
	// NoRestart leaves a failed source stopped and returns its error: for
	// one-shot reads, where a retry would only fail the same way.
	NoRestart  bool
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
// returns an error, after a jittered exponential backoff (unless
// NoRestart). A failing source never stops the others. Supervise returns
// when ctx ends or every source has returned for good (sources that finish,
// such as a Scan), and only then closes out: it is the only closer of out.
// Its error joins those of the sources it did not restart.
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
		opts.Sleep = Sleep
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Jitter == nil {
		opts.Jitter = rand.Float64
	}
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		errs []error
	)
	for _, src := range sources {
		wg.Go(func() {
			if err := supervise(ctx, src, out, &opts); err != nil {
				mu.Lock()
				errs = append(errs, fmt.Errorf("source %s: %w", src.Name(), err))
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

func supervise(ctx context.Context, src Source, out chan<- Line, opts *SuperviseOptions) error {
	log := opts.Logger.With("source", src.Name())
	var lastErr string
	failures := 0
	for {
		started := opts.Now()
		err := src.Run(ctx, out)
		if ctx.Err() != nil {
			return nil
		}
		if err == nil {
			log.Info("source finished")
			return nil
		}
		if opts.NoRestart {
			log.Error("source failed", "err", err)
			return err
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
			return nil
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

// Sleep waits for d, or until ctx ends, and reports whether d passed.
func Sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
