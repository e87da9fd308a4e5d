package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/scopewatch/scopewatch/detect/geoip/geoiptest"
)

// cmdBench measures, on one generated file of Keycloak token events in
// Quarkus JSON logging: a one-shot scan with every detector, the same
// scan recording usage only (--no-detect), a live tail catching up, a
// daemon restarted on the scanned store (loading every client's baseline),
// and a plain bufio.Scanner + encoding/json map decode loop, the naive
// baseline. Scans and daemons run as child processes of this binary, each
// on a fresh store, so their wall time includes start-up and the final
// commit, and their peak RSS is measured. With --runs above 1 every
// measurement is repeated (the scans alternating which goes first) and
// medians are printed.
func cmdBench(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("bench")
	lines := fs.Int("lines", 1_000_000, "events to generate")
	clients := fs.Int("clients", 1000, "distinct clients")
	scopes := fs.Int("scopes", 0, "scopes each client holds, each token carrying openid and 3 to 7 of them (0: 5 to 9 scopes, every token carrying all)")
	networks := fs.Int("networks", 1024, "public /24 networks the clients come from")
	useGeo := fs.Bool("geoip", true, "place addresses with generated GeoIP City and ASN databases covering the networks")
	runs := fs.Int("runs", 1, "times to repeat each measurement; medians are printed")
	dir := fs.String("dir", "", "work directory (default: a new temporary directory, removed afterwards)")
	if err := parseFlags(fs, args, stdout); err != nil {
		return err
	}
	if *lines <= 0 || *clients <= 0 || *networks <= 0 || *runs <= 0 {
		return usagef("bench: --lines, --clients, --networks and --runs must be positive")
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
	opt := benchTraffic{Lines: *lines, Clients: *clients, Scopes: *scopes, Nets: synthNetworks(*networks)}
	logPath := filepath.Join(*dir, "keycloak.json.log")
	size, err := writeBenchTraffic(logPath, opt)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "generated %d Keycloak events (Quarkus JSON, %d clients, %s, %d public networks), %.1f MiB, %.0f bytes/line\n",
		*lines, *clients, opt.scopesText(), *networks, float64(size)/(1<<20), float64(size)/float64(*lines))
	var geo benchGeoIP
	if *useGeo {
		if geo, err = writeBenchGeoIP(*dir, opt.Nets); err != nil {
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
			cfg, err := writeBenchConfigGeo(*dir, name, logPath, "127.0.0.1:1", geo)
			if err != nil {
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

		addr, err := freeAddr()
		if err != nil {
			return err
		}
		name := fmt.Sprintf("tail%d", r)
		tailCfg, err := writeBenchConfigGeo(*dir, name, logPath, addr, geo)
		if err != nil {
			return err
		}
		run, err := timeChild(ctx, self, func(cmd *exec.Cmd) error {
			return waitCommitted(ctx, addr, *lines, cmd)
		}, "run", "--config", tailCfg)
		if err != nil {
			return fmt.Errorf("tail: %w", err)
		}
		tail = append(tail, run)
		os.Remove(filepath.Join(*dir, name+".db"))

		// The daemon restarted on the scanned store: every line is
		// already read, so it loads the baselines, sweeps and idles.
		if addr, err = freeAddr(); err != nil {
			return err
		}
		restartCfg, err := writeBenchConfigGeo(*dir, strings.TrimSuffix(filepath.Base(scanned), ".yaml"), logPath, addr, geo)
		if err != nil {
			return err
		}
		run, err = timeChild(ctx, self, func(cmd *exec.Cmd) error {
			return waitSettled(ctx, addr, cmd)
		}, "run", "--config", restartCfg)
		if err != nil {
			return fmt.Errorf("restart: %w", err)
		}
		run.d -= settleQuiet
		restart = append(restart, run)

		pd, err := plainDecode(logPath)
		if err != nil {
			return err
		}
		plain = append(plain, benchRun{d: pd, cpu: pd})
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
		" file-backed pages are the executable's, the store's and the GeoIP databases' mapped pages)\n", rssEvery)

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
	fmt.Fprintf(stdout, "\nratio scan / plain decode: %.2f; tail / plain decode: %.2f\n",
		pt.Seconds()/dm.d.Seconds(), pt.Seconds()/tt.Seconds())
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
	med := func(v func(benchRun) float64) float64 {
		xs := make([]float64, len(runs))
		for i, r := range runs {
			xs[i] = v(r)
		}
		slices.Sort(xs)
		n := len(xs)
		return (xs[(n-1)/2] + xs[n/2]) / 2
	}
	return benchRun{
		d:    time.Duration(med(func(r benchRun) float64 { return float64(r.d) })),
		cpu:  time.Duration(med(func(r benchRun) float64 { return float64(r.cpu) })),
		rss:  med(func(r benchRun) float64 { return r.rss }),
		anon: med(func(r benchRun) float64 { return r.anon }),
		file: med(func(r benchRun) float64 { return r.file }),
	}
}

// benchTraffic describes the generated log of the bench.
type benchTraffic struct {
	Lines, Clients int
	Scopes         int        // per client; 0 for 5 to 9, every token carrying all
	Nets           []synthNet // the address plan
}

func (t benchTraffic) scopesText() string {
	if t.Scopes <= 0 {
		return "5-9 scopes per client and token"
	}
	return fmt.Sprintf("%d scopes per client, 4-8 per token", t.Scopes)
}

// writeBenchLog writes n token events of the given number of clients with
// the bench's default traffic.
func writeBenchLog(path string, n, clients int) (int64, error) {
	return writeBenchTraffic(path, benchTraffic{Lines: n, Clients: clients, Nets: synthNetworks(1024)})
}

// writeBenchTraffic writes t.Lines token events spread over 100 days: every
// line a token event (the heaviest Keycloak line), one in two hundred a
// refusal, each client coming from a few public networks of t.Nets.
func writeBenchTraffic(path string, t benchTraffic) (int64, error) {
	f, err := os.Create(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	bw := bufio.NewWriterSize(f, 1<<20)
	start := time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)
	gen := newSynth(7, synthScopedClients(7, t.Clients, t.Scopes), start, start.Add(100*24*time.Hour), t.Lines)
	tr := synthTraffic{Nets: t.Nets}
	if t.Scopes > 0 {
		tr.TokenScopes = 7
	}
	gen.withTraffic(7, tr)
	var buf []byte
	var size int64
	for i := range t.Lines {
		ev := gen.next(i)
		ev.Grant = true
		buf = gen.keycloakQuarkusJSON(buf[:0], ev)
		size += int64(len(buf))
		bw.Write(buf)
	}
	if err := bw.Flush(); err != nil {
		return 0, err
	}
	return size, f.Close()
}

// benchGeoIP are the paths of generated GeoIP databases; zero for none.
type benchGeoIP struct{ City, ASN string }

// writeBenchGeoIP writes a City and an ASN database placing every network
// of the plan.
func writeBenchGeoIP(dir string, nets []synthNet) (benchGeoIP, error) {
	entries := make([]geoiptest.Entry, len(nets))
	for i, n := range nets {
		entries[i] = geoiptest.Entry{Network: n.Prefix.String(), Country: n.Country, ASN: n.ASN, Org: fmt.Sprintf("Example Networks %d", n.ASN)}
	}
	g := benchGeoIP{City: filepath.Join(dir, "city.mmdb"), ASN: filepath.Join(dir, "asn.mmdb")}
	if err := geoiptest.WriteCity(g.City, entries); err != nil {
		return benchGeoIP{}, err
	}
	if err := geoiptest.WriteASN(g.ASN, entries); err != nil {
		return benchGeoIP{}, err
	}
	return g, nil
}

func writeBenchConfig(dir, name, logPath, listen string) (string, error) {
	return writeBenchConfigGeo(dir, name, logPath, listen, benchGeoIP{})
}

func writeBenchConfigGeo(dir, name, logPath, listen string, geo benchGeoIP) (string, error) {
	cfg := fmt.Sprintf("store: %s\nlisten: %s\nsources:\n  - {name: keycloak, path: %s, format: keycloak}\n",
		filepath.Join(dir, name+".db"), listen, logPath)
	if geo.City != "" {
		cfg += fmt.Sprintf("geoip: {city: %s, asn: %s}\n", geo.City, geo.ASN)
	}
	p := filepath.Join(dir, name+".yaml")
	return p, os.WriteFile(p, []byte(cfg), 0o644)
}

// timeChild runs this binary with args and returns its wall time, CPU
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
	stopSampling := sampleResident(cmd.Process.Pid)
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

// sampleResident samples the resident sizes of process pid every
// rssEvery until the returned function is called, which returns the
// largest anonymous and file-backed sizes seen, in MiB.
func sampleResident(pid int) func() (anon, file float64) {
	stop, done := make(chan struct{}), make(chan struct{})
	var maxAnon, maxFile float64
	go func() {
		defer close(done)
		tick := time.NewTicker(rssEvery)
		defer tick.Stop()
		for {
			if anon, file, err := residentSizes(pid); err == nil {
				maxAnon, maxFile = max(maxAnon, anon), max(maxFile, file)
			}
			select {
			case <-stop:
				return
			case <-tick.C:
			}
		}
	}()
	return func() (float64, float64) {
		close(stop)
		<-done
		return maxAnon, maxFile
	}
}

// rssEvery is the interval at which a child's resident sizes are sampled.
const rssEvery = 100 * time.Millisecond

// residentSizes returns the anonymous and the file-backed resident size
// of a process in MiB, from /proc.
func residentSizes(pid int) (anon, file float64, err error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0, 0, err
	}
	for line := range strings.Lines(string(b)) {
		k, v, ok := strings.Cut(line, ":")
		if !ok || (k != "RssAnon" && k != "RssFile") {
			continue
		}
		kb, err := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 64)
		if err != nil {
			return 0, 0, err
		}
		if k == "RssAnon" {
			anon = kb / 1024
		} else {
			file = kb / 1024
		}
	}
	return anon, file, nil
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

// settleQuiet is how long a daemon must use no CPU to count as settled.
const settleQuiet = 500 * time.Millisecond

// waitSettled waits until the daemon is ready and has then used no CPU
// for half a second: it has loaded the baselines and finished the sweep
// it runs at start. The quiet half second is not counted.
func waitSettled(ctx context.Context, addr string, cmd *exec.Cmd) error {
	deadline := time.Now().Add(10 * time.Minute)
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	ready := false
	var last uint64
	var since time.Time
	for time.Now().Before(deadline) {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
		if cmd.ProcessState != nil {
			return errors.New("daemon exited")
		}
		if !ready {
			resp, err := http.Get("http://" + addr + "/readyz")
			if err != nil {
				continue
			}
			resp.Body.Close()
			ready = resp.StatusCode == http.StatusOK
			continue
		}
		cpu, err := cpuTicks(cmd.Process.Pid)
		if err != nil {
			return err
		}
		if cpu != last || since.IsZero() {
			last, since = cpu, time.Now()
			continue
		}
		if time.Since(since) >= settleQuiet {
			return nil
		}
	}
	return errors.New("timed out waiting for the daemon to settle")
}

// cpuTicks returns the user and system CPU time of a process in clock
// ticks, from /proc.
func cpuTicks(pid int) (uint64, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, err
	}
	// The fields after the command name, which may hold spaces.
	f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:]))
	if len(f) < 13 {
		return 0, errors.New("short /proc stat")
	}
	u, err1 := strconv.ParseUint(f[11], 10, 64)
	s, err2 := strconv.ParseUint(f[12], 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return 0, err
	}
	return u + s, nil
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
