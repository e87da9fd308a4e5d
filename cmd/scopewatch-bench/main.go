// Command scopewatch-bench measures scopewatch on one generated file of
// Keycloak token events in Quarkus JSON logging: a one-shot scan with
// every detector, the same scan recording usage only (--no-detect), a live
// tail catching up, a daemon restarted on the scanned store (loading every
// client's baseline), and a plain bufio.Scanner + encoding/json map decode
// loop, the naive baseline. It prints them side by side with their ratios.
//
// Scans and daemons run as child processes of the scopewatch binary
// (--binary, or one built from this checkout), each on a fresh store, so
// their wall time includes start-up and the final commit, and their peak
// RSS is measured. With --runs above 1 every measurement is repeated (the
// scans alternating which goes first) and medians are printed.
//
// With --kafka-instances, the same lines are also produced to an
// in-process Kafka (kfake) topic of 12 partitions, keyed by client id, and
// read by groups of that many daemons, each on its own store: lines/s of
// the group and per instance, CPU time of them all and the largest
// instance's peak RSS.
//
//	go run ./cmd/scopewatch-bench --lines 1000000 --runs 3
//	go run ./cmd/scopewatch-bench --lines 1000000 --runs 3 --kafka-instances 1,2,3
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
	"io/fs"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/scopewatch/scopewatch/internal/probe"
	"github.com/scopewatch/scopewatch/internal/traffic"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
	case errors.As(err, new(usageError)):
		fmt.Fprintln(os.Stderr, "scopewatch-bench:", err)
		os.Exit(2)
	default:
		fmt.Fprintln(os.Stderr, "scopewatch-bench:", err)
		os.Exit(1)
	}
}

// usageError is a bad flag or argument (exit 2).
type usageError struct{ error }

func usagef(format string, a ...any) error { return usageError{fmt.Errorf(format, a...)} }

// scopewatchBinary returns the binary to measure: path when set, else one
// built from the module in the working directory into dir, as the
// Makefile builds the released one (static, stripped): its mapped pages
// are part of the resident sizes measured.
func scopewatchBinary(ctx context.Context, path, dir string, stderr io.Writer) (string, error) {
	if path != "" {
		return path, nil
	}
	out := filepath.Join(dir, "scopewatch")
	build := exec.CommandContext(ctx, "go", "build", "-trimpath", "-ldflags", "-s -w", "-o", out, "github.com/scopewatch/scopewatch/cmd/scopewatch")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	build.Stdout, build.Stderr = stderr, stderr
	if err := build.Run(); err != nil {
		return "", fmt.Errorf("build the scopewatch binary (run from a checkout, or pass --binary): %w", err)
	}
	return out, nil
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("scopewatch-bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	binary := fs.String("binary", "", "the scopewatch binary to measure (default: build one from the checkout in the working directory)")
	lines := fs.Int("lines", 1_000_000, "events to generate")
	clients := fs.Int("clients", 1000, "distinct clients")
	scopes := fs.Int("scopes", 0, "scopes each client holds, each token carrying openid and 3 to 7 of them (0: 5 to 9 scopes, every token carrying all)")
	networks := fs.Int("networks", 1024, "public /24 networks the clients come from")
	useGeo := fs.Bool("geoip", true, "place addresses with generated GeoIP City and ASN databases covering the networks")
	runs := fs.Int("runs", 1, "times to repeat each measurement; medians are printed")
	dir := fs.String("dir", "", "work directory (default: a new temporary directory, removed afterwards)")
	latencyRate := fs.Int("latency-rate", 50_000, "lines/s appended to a followed file to measure append-to-commit latency, for up to 10 s (0: not measured)")
	kafkaChangelog := fs.Bool("kafka-changelog", false, "with --kafka-instances, measure each number of instances again writing the partitions' state to a changelog topic")
	kafkaInstances := fs.String("kafka-instances", "", "comma-separated numbers of instances reading the lines from an in-process Kafka topic of 12 partitions, such as 1,2,3 (empty: not measured)")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return usageError{err}
	}
	if *lines <= 0 || *clients <= 0 || *networks <= 0 || *runs <= 0 {
		return usagef("--lines, --clients, --networks and --runs must be positive")
	}
	if *latencyRate < 0 {
		return usagef("--latency-rate must be 0 (not measured) or positive")
	}
	sizes, err := parseInstances(*kafkaInstances)
	if err != nil {
		return usageError{err}
	}
	if *dir == "" {
		d, err := os.MkdirTemp("", "scopewatch-bench-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(d)
		*dir = d
	} else if err := os.MkdirAll(*dir, 0o755); err != nil {
		return err
	}
	self, err := scopewatchBinary(ctx, *binary, *dir, stderr)
	if err != nil {
		return err
	}
	opt := traffic.KeycloakLog{Lines: *lines, Clients: *clients, Scopes: *scopes, Nets: traffic.Networks(*networks)}
	logPath := filepath.Join(*dir, "keycloak.json.log")
	size, err := opt.Write(logPath)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "generated %d Keycloak events (Quarkus JSON, %d clients, %s, %d public networks), %.1f MiB, %.0f bytes/line\n",
		*lines, *clients, opt.ScopesText(), *networks, float64(size)/(1<<20), float64(size)/float64(*lines))
	var geo traffic.GeoIP
	if *useGeo {
		if geo, err = traffic.WriteGeoIP(*dir, opt.Nets); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "GeoIP City and ASN databases with the %d networks\n", len(opt.Nets))
	}

	var usage, detect, tail, restart, plain []benchRun
	var scanned string // the configuration of the newest scan with detectors
	for r := range *runs {
		scan := func(noDetect bool) error {
			name, args := fmt.Sprintf("scan%d", r), []string{"scan"}
			if noDetect {
				name, args = fmt.Sprintf("usage%d", r), append(args, "--no-detect")
			}
			cfg, err := traffic.WriteConfig(*dir, name, logPath, "127.0.0.1:1", geo)
			if err != nil {
				return err
			}
			if err := freshStore(*dir, name); err != nil {
				return err
			}
			run, err := timeChild(ctx, self, nil, append(args, "--config", cfg, "--quiet", logPath)...)
			if err != nil {
				return fmt.Errorf("%s: %w", strings.Join(args, " "), err)
			}
			if noDetect {
				usage = append(usage, run)
				return os.Remove(filepath.Join(*dir, name+".db"))
			}
			detect = append(detect, run)
			if scanned != "" {
				os.Remove(strings.TrimSuffix(scanned, ".yaml") + ".db")
			}
			scanned = cfg
			return nil
		}
		// Alternate which scan goes first, so a drift of the machine
		// weighs on both alike.
		first, second := true, false
		if r%2 == 1 {
			first, second = false, true
		}
		if err := scan(first); err != nil {
			return err
		}
		if err := scan(second); err != nil {
			return err
		}

		addr, err := probe.FreeAddr()
		if err != nil {
			return err
		}
		name := fmt.Sprintf("tail%d", r)
		tailCfg, err := traffic.WriteConfig(*dir, name, logPath, addr, geo)
		if err != nil {
			return err
		}
		if err := freshStore(*dir, name); err != nil {
			return err
		}
		run, err := timeChild(ctx, self, func(cmd *exec.Cmd) error {
			return probe.WaitCommitted(ctx, addr, *lines, cmd)
		}, "run", "--config", tailCfg)
		if err != nil {
			return fmt.Errorf("tail: %w", err)
		}
		tail = append(tail, run)
		os.Remove(filepath.Join(*dir, name+".db"))

		// The daemon restarted on the scanned store: every line is
		// already read, so it loads the baselines, sweeps and idles.
		if addr, err = probe.FreeAddr(); err != nil {
			return err
		}
		restartCfg, err := traffic.WriteConfig(*dir, strings.TrimSuffix(filepath.Base(scanned), ".yaml"), logPath, addr, geo)
		if err != nil {
			return err
		}
		run, err = timeChild(ctx, self, func(cmd *exec.Cmd) error {
			return probe.WaitSettled(ctx, addr, cmd)
		}, "run", "--config", restartCfg)
		if err != nil {
			return fmt.Errorf("restart: %w", err)
		}
		run.d -= probe.SettleQuiet
		restart = append(restart, run)

		pd, err := plainDecode(logPath)
		if err != nil {
			return err
		}
		plain = append(plain, benchRun{d: pd, cpu: pd})
	}

	var lat latency
	if *latencyRate > 0 {
		if lat, err = appendLatency(ctx, self, *dir, logPath, geo, *latencyRate, min(*lines, 10**latencyRate)); err != nil {
			return fmt.Errorf("latency: %w", err)
		}
	}

	rate := func(d time.Duration) float64 { return float64(*lines) / d.Seconds() }
	fmt.Fprintf(stdout, "\n%-48s %9s %8s %8s %10s %17s\n", "reader", "lines/s", "seconds", "CPU s", "peak RSS", "anon + file")
	row := func(what string, rs []benchRun, perLine bool) {
		m := medianRun(rs)
		perSec, mem, split := "-", "-", "-"
		if perLine {
			perSec = fmt.Sprintf("%.0f", rate(m.d))
		}
		if m.rss > 0 {
			mem = fmt.Sprintf("%.1f MiB", m.rss)
			split = fmt.Sprintf("%.0f + %.0f MiB", m.anon, m.file)
		}
		fmt.Fprintf(stdout, "%-48s %9s %8.2f %8.2f %10s %17s\n", what, perSec, m.d.Seconds(), m.cpu.Seconds(), mem, split)
	}
	row("scopewatch scan (parse, account, detect, commit)", detect, true)
	row("scopewatch scan --no-detect (usage only)", usage, true)
	row("scopewatch run, live tail catching up", tail, true)
	row("scopewatch run, restarted on the scanned store", restart, false)
	row("bufio.Scanner + encoding/json map[string]any", plain, true)
	fmt.Fprintf(stdout, "(anon + file: the largest anonymous and file-backed resident sizes sampled every %s;\n"+
		" file-backed pages are the executable's, the store's and the GeoIP databases' mapped pages)\n", probe.ResidentEvery)

	dm, um := medianRun(detect), medianRun(usage)
	pt, tt := medianRun(plain).d, medianRun(tail).d
	fmt.Fprintf(stdout, "\nratio detectors / usage only: %.3f in time (target at most 1.25), %.3f in CPU time",
		dm.d.Seconds()/um.d.Seconds(), dm.cpu.Seconds()/um.cpu.Seconds())
	if *runs > 1 {
		pairs := make([]string, *runs)
		for i := range pairs {
			pairs[i] = fmt.Sprintf("%.3f", detect[i].d.Seconds()/usage[i].d.Seconds())
		}
		fmt.Fprintf(stdout, "\n  each run in time: %s (medians of %d runs above)", strings.Join(pairs, " "), *runs)
	}
	fmt.Fprintf(stdout, "\nratio scan / plain decode: %.2f (target at least 2.0); tail / plain decode: %.2f; tail / scan: %.2f (target at least 0.8)\n",
		pt.Seconds()/dm.d.Seconds(), pt.Seconds()/tt.Seconds(), dm.d.Seconds()/tt.Seconds())
	if *latencyRate > 0 {
		fmt.Fprintf(stdout, "append to commit, %d lines appended at %.0f lines/s to a followed file: p50 %s, p99 %s (target at most 1s), max %s\n",
			min(*lines, 10**latencyRate), lat.rate, lat.p50.Round(time.Millisecond), lat.p99.Round(time.Millisecond), lat.max.Round(time.Millisecond))
	}
	if len(sizes) > 0 {
		if err := kafkaBenchmark(ctx, stdout, self, *dir, logPath, geo, sizes, *runs, *kafkaChangelog); err != nil {
			return fmt.Errorf("kafka: %w", err)
		}
	}
	return nil
}

// benchRun is one measurement: wall time, CPU time (user and system),
// peak RSS, and the largest anonymous and file-backed resident sizes
// sampled, in MiB.
type benchRun struct {
	d, cpu          time.Duration
	rss, anon, file float64
}

// medianRun returns the median of each measure of runs, each taken
// apart.
func medianRun(runs []benchRun) benchRun {
	med := func(v func(benchRun) float64) float64 { return medianOf(runs, v) }
	return benchRun{
		d:    time.Duration(med(func(r benchRun) float64 { return float64(r.d) })),
		cpu:  time.Duration(med(func(r benchRun) float64 { return float64(r.cpu) })),
		rss:  med(func(r benchRun) float64 { return r.rss }),
		anon: med(func(r benchRun) float64 { return r.anon }),
		file: med(func(r benchRun) float64 { return r.file }),
	}
}

// medianOf returns the median of v over runs.
func medianOf[R any](runs []R, v func(R) float64) float64 {
	xs := make([]float64, len(runs))
	for i, r := range runs {
		xs[i] = v(r)
	}
	slices.Sort(xs)
	n := len(xs)
	return (xs[(n-1)/2] + xs[n/2]) / 2
}

// timeChild runs the scopewatch binary self with args and returns its wall time, CPU
// time and peak RSS. With until set, the child is a daemon: until returns
// when it has done the work, and the child is then stopped with SIGTERM.
func timeChild(ctx context.Context, self string, until func(*exec.Cmd) error, args ...string) (benchRun, error) {
	cmd := exec.CommandContext(ctx, self, args...)
	var errBuf bytes.Buffer
	cmd.Stderr = &errBuf
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return benchRun{}, err
	}
	stopSampling := probe.SampleResident(cmd.Process.Pid)
	var r benchRun
	if until != nil {
		if err := until(cmd); err != nil {
			cmd.Process.Kill()
			cmd.Wait()
			stopSampling()
			return benchRun{}, fmt.Errorf("%w; stderr: %s", err, errBuf.Bytes())
		}
		r.d = time.Since(start)
		cmd.Process.Signal(syscall.SIGTERM)
	}
	err := cmd.Wait()
	r.anon, r.file = stopSampling()
	if err != nil {
		return benchRun{}, fmt.Errorf("%w; stderr: %s", err, errBuf.Bytes())
	}
	if until == nil {
		r.d = time.Since(start)
	}
	r.cpu = cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()
	if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
		r.rss = float64(ru.Maxrss) / 1024 // kilobytes on Linux
	}
	return r, nil
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

// freshStore removes the store of the reader name that an earlier bench in
// the same --dir left, so that every reader starts on a fresh store.
func freshStore(dir, name string) error {
	if err := os.Remove(filepath.Join(dir, name+".db")); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("remove the store of an earlier bench: %w", err)
	}
	return nil
}
