package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sync"
	"syscall"
	"time"

	"github.com/scopewatch/scopewatch/internal/probe"
	"github.com/scopewatch/scopewatch/internal/traffic"
)

// latencyStep is how often the latency writer appends, and how often the
// committed-lines counter is read.
const latencyStep = 10 * time.Millisecond

// latency is what appendLatency measured.
type latency struct {
	rate     float64 // lines/s the writer achieved
	p50, p99 time.Duration
	max      time.Duration
}

// appendLatency runs the daemon on an empty live file, appends to it the
// first total lines of logPath at rate lines/s (a write every
// latencyStep), and measures, for every write, the time from the append
// to the moment the daemon's committed-lines counter covers its last line.
// The counter is read every latencyStep, which bounds the resolution.
func appendLatency(ctx context.Context, self, dir, logPath string, geo traffic.GeoIP, rate, total int) (latency, error) {
	live := filepath.Join(dir, "latency.log")
	if err := os.WriteFile(live, nil, 0o644); err != nil {
		return latency{}, err
	}
	defer os.Remove(live)
	addr, err := probe.FreeAddr()
	if err != nil {
		return latency{}, err
	}
	cfg, err := traffic.WriteConfig(dir, "latency", live, addr, geo)
	if err != nil {
		return latency{}, err
	}
	if err := freshStore(dir, "latency"); err != nil {
		return latency{}, err
	}
	defer os.Remove(filepath.Join(dir, "latency.db"))
	cmd := exec.CommandContext(ctx, self, "run", "--config", cfg)
	if err := cmd.Start(); err != nil {
		return latency{}, err
	}
	defer func() {
		cmd.Process.Signal(syscall.SIGTERM)
		cmd.Wait()
	}()
	if err := probe.WaitSettled(ctx, addr, cmd); err != nil {
		return latency{}, fmt.Errorf("daemon not ready: %w", err)
	}

	var (
		mu        sync.Mutex
		committed []written // lines committed by then
	)
	pollCtx, stopPoll := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Go(func() {
		tick := time.NewTicker(latencyStep)
		defer tick.Stop()
		for {
			select {
			case <-pollCtx.Done():
				return
			case <-tick.C:
			}
			if n, err := probe.Counter(addr, "scopewatch_lines_committed_total"); err == nil {
				mu.Lock()
				committed = append(committed, written{time.Now(), int(n)})
				mu.Unlock()
			}
		}
	})
	defer func() { stopPoll(); wg.Wait() }()

	writes, start, err := paceLines(live, logPath, rate, total)
	if err != nil {
		return latency{}, err
	}
	elapsed := writes[len(writes)-1].at.Sub(start)
	if err := probe.WaitCommitted(ctx, addr, total, cmd); err != nil {
		return latency{}, err
	}
	stopPoll()
	wg.Wait()
	// The last commit may have come after the poller's last look: one
	// more look, now that every line is committed, bounds the last writes.
	if n, err := probe.Counter(addr, "scopewatch_lines_committed_total"); err == nil {
		committed = append(committed, written{time.Now(), int(n)})
	}

	var lat []time.Duration
	j := 0
	for _, w := range writes {
		for j < len(committed) && (committed[j].n < w.n || committed[j].at.Before(w.at)) {
			j++
		}
		if j == len(committed) {
			return latency{}, errors.New("the committed-lines counter never covered every write")
		}
		lat = append(lat, committed[j].at.Sub(w.at))
	}
	slices.Sort(lat)
	pick := func(q float64) time.Duration { return lat[min(len(lat)-1, int(q*float64(len(lat))))] }
	return latency{rate: float64(total) / elapsed.Seconds(), p50: pick(0.50), p99: pick(0.99), max: lat[len(lat)-1]}, nil
}

// written is how many lines were appended, or committed, by a time.
type written struct {
	at time.Time
	n  int
}

// paceLines appends the first total lines of from to path at rate lines/s,
// a write every latencyStep, and returns when each write was made.
func paceLines(path, from string, rate, total int) ([]written, time.Time, error) {
	src, err := os.Open(from)
	if err != nil {
		return nil, time.Time{}, err
	}
	defer src.Close()
	dst, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		return nil, time.Time{}, err
	}
	defer dst.Close()
	r := bufio.NewReaderSize(src, 1<<20)
	var buf []byte
	var out []written
	n := 0
	start := time.Now()
	tick := time.NewTicker(latencyStep)
	defer tick.Stop()
	for n < total {
		<-tick.C
		due := min(total, int(time.Since(start).Seconds()*float64(rate)))
		buf = buf[:0]
		for ; n < due; n++ {
			line, err := r.ReadSlice('\n')
			if err != nil {
				return nil, time.Time{}, fmt.Errorf("read %s: %w", from, err)
			}
			buf = append(buf, line...)
		}
		if len(buf) == 0 {
			continue
		}
		if _, err := dst.Write(buf); err != nil {
			return nil, time.Time{}, err
		}
		out = append(out, written{time.Now(), n})
	}
	return out, start, nil
}
