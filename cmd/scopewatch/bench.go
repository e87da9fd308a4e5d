package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"time"
)

// cmdBench measures, on one generated file of Keycloak token events in
// Quarkus JSON logging: a one-shot scan, a live tail catching up, and a
// plain bufio.Scanner + encoding/json map decode loop, the naive baseline.
// Scan and tail run as child processes of this binary so their wall time
// includes start-up and the final commit, and their peak RSS is measured.
func cmdBench(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	lines := fs.Int("lines", 1_000_000, "events to generate")
	clients := fs.Int("clients", 1000, "distinct clients")
	dir := fs.String("dir", "", "work directory (default: a new temporary directory, removed afterwards)")
	if err := fs.Parse(args); err != nil {
		return usageError{err}
	}
	if *dir == "" {
		d, err := os.MkdirTemp("", "scopewatch-bench-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(d)
		*dir = d
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}
	logPath := filepath.Join(*dir, "keycloak.json.log")
	size, err := writeBenchLog(logPath, *lines, *clients)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "generated %d Keycloak events (Quarkus JSON, %d clients), %.1f MiB, %.0f bytes/line\n",
		*lines, *clients, float64(size)/(1<<20), float64(size)/float64(*lines))

	scanCfg, err := writeBenchConfig(*dir, "scan", logPath, "127.0.0.1:1")
	if err != nil {
		return err
	}
	scanTime, scanRSS, err := timeChild(ctx, self, nil, "scan", "--config", scanCfg, "--quiet", logPath)
	if err != nil {
		return fmt.Errorf("scan: %w", err)
	}

	addr, err := freeAddr()
	if err != nil {
		return err
	}
	tailCfg, err := writeBenchConfig(*dir, "tail", logPath, addr)
	if err != nil {
		return err
	}
	tailTime, tailRSS, err := timeChild(ctx, self, func(cmd *exec.Cmd) error {
		return waitCommitted(ctx, addr, *lines, cmd)
	}, "run", "--config", tailCfg)
	if err != nil {
		return fmt.Errorf("tail: %w", err)
	}

	plainTime, err := plainDecode(logPath)
	if err != nil {
		return err
	}
	rate := func(d time.Duration) float64 { return float64(*lines) / d.Seconds() }
	fmt.Fprintf(stdout, "\n%-44s %12s %10s %10s\n", "reader", "lines/s", "seconds", "peak RSS")
	fmt.Fprintf(stdout, "%-44s %12.0f %10.2f %7.1f MiB\n", "scopewatch scan (parse, account, commit)", rate(scanTime), scanTime.Seconds(), scanRSS)
	fmt.Fprintf(stdout, "%-44s %12.0f %10.2f %7.1f MiB\n", "scopewatch run, live tail catching up", rate(tailTime), tailTime.Seconds(), tailRSS)
	fmt.Fprintf(stdout, "%-44s %12.0f %10.2f %10s\n", "bufio.Scanner + encoding/json map[string]any", rate(plainTime), plainTime.Seconds(), "-")
	fmt.Fprintf(stdout, "\nratio scan / plain decode: %.2f; tail / plain decode: %.2f\n",
		plainTime.Seconds()/scanTime.Seconds(), plainTime.Seconds()/tailTime.Seconds())
	return nil
}

func writeBenchLog(path string, n, clients int) (int64, error) {
	f, err := os.Create(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	bw := bufio.NewWriterSize(f, 1<<20)
	start := time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)
	gen := newSynth(7, generatedClients(7, clients), start, start.Add(100*24*time.Hour), n)
	var buf []byte
	var size int64
	for i := range n {
		ev := gen.next(i)
		ev.Grant = true // every line a token event: the heaviest Keycloak line
		buf = gen.keycloakQuarkusJSON(buf[:0], ev)
		size += int64(len(buf))
		bw.Write(buf)
	}
	if err := bw.Flush(); err != nil {
		return 0, err
	}
	return size, f.Close()
}

func writeBenchConfig(dir, name, logPath, listen string) (string, error) {
	cfg := fmt.Sprintf("store: %s\nlisten: %s\nsources:\n  - {name: keycloak, path: %s, format: keycloak}\n",
		filepath.Join(dir, name+".db"), listen, logPath)
	p := filepath.Join(dir, name+".yaml")
	return p, os.WriteFile(p, []byte(cfg), 0o644)
}

// timeChild runs this binary with args and returns its wall time and peak
// RSS in MiB. With until set, the child is a daemon: until returns when it
// has done the work, and the child is then stopped with SIGTERM.
func timeChild(ctx context.Context, self string, until func(*exec.Cmd) error, args ...string) (time.Duration, float64, error) {
	cmd := exec.CommandContext(ctx, self, args...)
	var errBuf bytes.Buffer
	cmd.Stderr = &errBuf
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return 0, 0, err
	}
	var el time.Duration
	if until != nil {
		if err := until(cmd); err != nil {
			cmd.Process.Kill()
			cmd.Wait()
			return 0, 0, fmt.Errorf("%w; stderr: %s", err, errBuf.Bytes())
		}
		el = time.Since(start)
		cmd.Process.Signal(syscall.SIGTERM)
	}
	if err := cmd.Wait(); err != nil {
		return 0, 0, fmt.Errorf("%w; stderr: %s", err, errBuf.Bytes())
	}
	if until == nil {
		el = time.Since(start)
	}
	rss := 0.0
	if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
		rss = float64(ru.Maxrss) / 1024 // kilobytes on Linux
	}
	return el, rss, nil
}

// waitCommitted polls the daemon's metrics until n lines are committed.
func waitCommitted(ctx context.Context, addr string, n int, cmd *exec.Cmd) error {
	deadline := time.Now().Add(10 * time.Minute)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for time.Now().Before(deadline) {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
		if cmd.ProcessState != nil {
			return errors.New("daemon exited")
		}
		got, err := scrapeCounter(addr, "scopewatch_lines_committed_total")
		if err == nil && got >= float64(n) {
			return nil
		}
	}
	return errors.New("timed out waiting for the daemon to commit every line")
}

// scrapeCounter sums the samples of one metric family from /metrics.
func scrapeCounter(addr, name string) (float64, error) {
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sum := 0.0
	for sc.Scan() {
		line := sc.Bytes()
		if !bytes.HasPrefix(line, []byte(name)) {
			continue
		}
		rest := line[len(name):]
		if len(rest) == 0 || (rest[0] != '{' && rest[0] != ' ') {
			continue
		}
		i := bytes.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(string(line[i+1:]), 64)
		if err == nil {
			sum += v
		}
	}
	return sum, sc.Err()
}

func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// plainDecode is what a naive tool does: scan lines and decode each into a
// map with encoding/json.
func plainDecode(path string) (time.Duration, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	start := time.Now()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	n := 0
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			return 0, err
		}
		if _, ok := m["message"]; ok {
			n++
		}
	}
	if err := sc.Err(); err != nil {
		return 0, err
	}
	if n == 0 {
		return 0, errors.New("plain decode found no messages")
	}
	return time.Since(start), nil
}
