package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/scopewatch/scopewatch/internal/probe"
	"github.com/scopewatch/scopewatch/internal/traffic"
	"github.com/scopewatch/scopewatch/rules"
	"github.com/scopewatch/scopewatch/store"
)

// crashConfig is a two-source configuration: Keycloak in Quarkus JSON
// logging and an API gateway writing JSON.
const crashConfig = `store: %[1]s/%[2]s.db
listen: %[3]s
control_socket: %[1]s/%[2]s.sock
rules: %[1]s/rules.yaml
batch: {max_events: 1000, max_delay: 250ms}
sources:
  - {name: keycloak, path: %[1]s/kc.log, format: keycloak}
  - name: api-gateway
    path: %[1]s/api.log
    format: json
    fields: {time: time, client: client_id, method: method, path: path, status: status, ip: remote_addr}
detect: {client_retention: 3650d}  # the traffic is dated 2026: no client is pruned as the clock moves on
`

// crashLogs appends events [from, to) of a fixed generated run to the
// Keycloak and API logs in dir.
func crashLogs(t *testing.T, dir string, gen *traffic.Generator, from, to int) {
	t.Helper()
	open := func(name string) (*os.File, *bufio.Writer) {
		f, err := os.OpenFile(filepath.Join(dir, name), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
		if err != nil {
			t.Fatal(err)
		}
		return f, bufio.NewWriterSize(f, 1<<16)
	}
	kf, kw := open("kc.log")
	af, aw := open("api.log")
	var buf []byte
	for i := from; i < to; i++ {
		ev := gen.Next(i)
		if ev.Grant {
			buf = gen.KeycloakQuarkusJSON(buf[:0], ev)
			kw.Write(buf)
		} else {
			buf = gen.APIJSON(buf[:0], ev)
			aw.Write(buf)
		}
	}
	for _, w := range []*bufio.Writer{kw, aw} {
		if err := w.Flush(); err != nil {
			t.Fatal(err)
		}
	}
	kf.Close()
	af.Close()
}

// snapshot renders a store's clients and source line counts as sorted
// text, so two stores compare exactly and a difference reads well.
func snapshot(t *testing.T, path string) []string {
	t.Helper()
	db, err := store.Open(path, store.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	cs, err := db.Clients()
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	ct := func(c store.Counter) string {
		return fmt.Sprintf("%d[%d..%d]", c.N, c.First.UnixNano(), c.Last.UnixNano())
	}
	for _, c := range cs {
		out = append(out, c.ID+" seen "+ct(c.Seen))
		for s, u := range c.Scopes {
			out = append(out, c.ID+" "+s+" req "+ct(u.Requested)+" granted "+ct(u.Granted)+" used "+ct(u.Used))
		}
	}
	fs, err := db.Findings()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range fs {
		// What was found, how often and over which events is the data's
		// business and must match exactly. Whether a finding is still
		// open, and whether a source is stale, is the judging clock's:
		// the daemon judges by the wall clock, a scan by its newest event.
		if f.Kind == rules.KindStaleSource {
			continue
		}
		out = append(out, fmt.Sprintf("finding %s/%s/%s %s count %d [%d..%d] %s",
			f.Kind, f.Client, f.Subject, f.Severity, f.Count, f.First.UnixNano(), f.Last.UnixNano(), f.Evidence.Detail))
	}
	srcs, err := db.Sources()
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range srcs {
		out = append(out, fmt.Sprintf("source %s lines %d malformed %d unattributed %d events %s",
			s.Name, s.Lines, s.Malformed, s.Unattributed, ct(s.Events)))
	}
	slices.Sort(out)
	return out
}

func compareSnapshots(t *testing.T, got, want []string) {
	t.Helper()
	if slices.Equal(got, want) {
		return
	}
	gs, ws := map[string]bool{}, map[string]bool{}
	for _, s := range got {
		gs[s] = true
	}
	for _, s := range want {
		ws[s] = true
	}
	n := 0
	for _, s := range want {
		if !gs[s] && n < 10 {
			t.Errorf("missing after crashes: %s", s)
			n++
		}
	}
	for _, s := range got {
		if !ws[s] && n < 20 {
			t.Errorf("extra after crashes:   %s", s)
			n++
		}
	}
	t.Fatalf("store after crashes differs from the uninterrupted run (%d vs %d records)", len(got), len(want))
}

// registering returns rules with clients registered besides its own.
// Clients get full state from their first grant on, or from the start
// when registered; the generated traffic has uses before a client's first
// grant, which a live daemon tailing both logs at once may read before or
// after that grant. Registered, every client counts alike in whatever
// order the lines come.
func registering(rules string, clients []traffic.Client) string {
	var b strings.Builder
	b.WriteString("clients:\n")
	for _, c := range clients {
		b.WriteString("  " + c.ID + ": {owner: test@clinic.example}\n")
	}
	return strings.Replace(rules, "clients:\n", b.String(), 1)
}

func writeCrashConfig(t *testing.T, dir, name, listen string) string {
	t.Helper()
	p := filepath.Join(dir, name+".yaml")
	write(t, p, fmt.Sprintf(crashConfig, dir, name, listen))
	return p
}

func runChild(t *testing.T, bin string, args ...string) {
	t.Helper()
	out, err := exec.Command(bin, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", bin, strings.Join(args, " "), err, out)
	}
}

// TestCrashScan kills a scanning scopewatch with SIGKILL partway through
// and restarts it, several times; the final counts must equal those of one
// uninterrupted scan: positions and counts commit together, so nothing is
// lost or counted twice.
//
// The kill points are drawn from the duration of the uninterrupted scan,
// measured on this machine, and adapt as the kills land: a kill before
// the run committed anything moves later, a run that finishes before
// enough kills landed partway starts over on a new store with earlier
// kills. So the test does not depend on the machine's speed or load.
func TestCrashScan(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("crash loop: slow")
	}
	bin := scopewatchBinary(t)
	dir := t.TempDir()
	clients := traffic.GeneratedClients(11, 300)
	write(t, filepath.Join(dir, "rules.yaml"), registering(traffic.DemoRules, clients))
	const events = 150_000
	start := time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC)
	gen := traffic.New(11, clients, start, start.Add(60*24*time.Hour), events)
	crashLogs(t, dir, gen, 0, events)
	files := []string{filepath.Join(dir, "kc.log"), filepath.Join(dir, "api.log")}
	scanArgs := func(cfg string) []string { return append([]string{"scan", "--quiet", "--config", cfg}, files...) }

	ref := writeCrashConfig(t, dir, "reference", "127.0.0.1:1")
	refStart := time.Now()
	runChild(t, bin, scanArgs(ref)...)
	refTook := time.Since(refStart)

	crashed := writeCrashConfig(t, dir, "crashed", "127.0.0.1:1")
	crashedDB := filepath.Join(dir, "crashed.db")
	seed := uint64(time.Now().UnixNano())
	rng := rand.New(rand.NewPCG(seed, 1))
	const wantMidway, maxRuns = 3, 40
	scale := 1.0 // of the expected rest of the scan, adapted as kills land
	kills, midway, runs, restarts := 0, 0, 0, 0
	startOver := func() {
		if err := os.Remove(crashedDB); err != nil {
			t.Fatal(err)
		}
		restarts++
		scale /= 2
	}
loop:
	for midway < wantMidway && runs < maxRuns {
		runs++
		before := committedLines(t, crashedDB)
		if before >= events { // a kill came as the scan exited
			if midway > 0 {
				break
			}
			startOver()
			before = 0
		}
		rest := time.Duration(float64(refTook) * (1 - float64(before)/events))
		wait := time.Duration((0.1 + 0.8*rng.Float64()) * scale * float64(rest))
		cmd := exec.Command(bin, scanArgs(crashed)...)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		exited := make(chan error, 1)
		go func() { exited <- cmd.Wait() }()
		select {
		case <-time.After(wait):
			cmd.Process.Signal(syscall.SIGKILL)
			<-exited
			kills++
			switch after := committedLines(t, crashedDB); {
			case after > before && after < events:
				midway++
			case after == before:
				scale = min(scale*1.5, 4) // killed before its first commit: later
			}
		case err := <-exited:
			if err != nil {
				t.Fatalf("scan exited with %v", err)
			}
			if midway > 0 {
				break loop // finished, having been killed partway at least once
			}
			// Finished before any kill landed partway: start over, with
			// earlier kills.
			startOver()
		}
	}
	t.Logf("reference scan %s; %d runs, killed %d times, %d of them partway through the files, %d restarts (kill schedule seed %d)",
		refTook.Round(time.Millisecond), runs, kills, midway, restarts, seed)
	if midway == 0 {
		t.Fatalf("no kill landed partway through the scan in %d runs; the test proved nothing", runs)
	}
	runChild(t, bin, scanArgs(crashed)...)
	compareSnapshots(t, snapshot(t, crashedDB), snapshot(t, filepath.Join(dir, "reference.db")))
}

// committedLines is the number of lines a store says it has consumed.
func committedLines(t *testing.T, path string) uint64 {
	t.Helper()
	db, err := store.Open(path, store.Options{ReadOnly: true})
	if err != nil {
		return 0 // not created yet
	}
	defer db.Close()
	srcs, err := db.Sources()
	if err != nil {
		t.Fatal(err)
	}
	var n uint64
	for _, s := range srcs {
		n += s.Lines
	}
	return n
}

// TestCrashTail kills a tailing daemon with SIGKILL at random points while
// the logs grow and rotate, restarting it each time. Once the writer is done
// and the daemon has caught up, the counts must equal one uninterrupted scan
// of the same lines.
func TestCrashTail(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("crash loop: slow")
	}
	bin := scopewatchBinary(t)
	dir := t.TempDir()
	clients := traffic.GeneratedClients(13, 300)
	write(t, filepath.Join(dir, "rules.yaml"), registering(traffic.DemoRules, clients))
	const events, chunks = 200_000, 20
	start := time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC)
	gen := traffic.New(13, clients, start, start.Add(60*24*time.Hour), events)

	addr, err := probe.FreeAddr()
	if err != nil {
		t.Fatal(err)
	}
	cfg := writeCrashConfig(t, dir, "crashed", addr)
	seed := uint64(time.Now().UnixNano())
	t.Logf("kill schedule seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 2))

	var stderr bytes.Buffer // every daemon's log, shown when the test fails
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("daemon logs:\n%s", stderr.Bytes())
		}
	})
	startDaemon := func() (*exec.Cmd, chan error) {
		cmd := exec.Command(bin, "run", "--config", cfg)
		cmd.Stderr = &stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		exited := make(chan error, 1)
		go func() { exited <- cmd.Wait() }()
		t.Cleanup(func() { cmd.Process.Kill() }) // after a failure; harmless once it exited
		return cmd, exited
	}
	cmd, exited := startDaemon()
	kills := 0
	for c := range chunks {
		crashLogs(t, dir, gen, c*events/chunks, (c+1)*events/chunks)
		if c == chunks/2 {
			// logrotate's create mode, daemon running or not.
			for _, n := range []string{"kc.log", "api.log"} {
				if err := os.Rename(filepath.Join(dir, n), filepath.Join(dir, n+".1")); err != nil {
					t.Fatal(err)
				}
			}
		}
		if rng.IntN(3) == 0 {
			select {
			case <-time.After(time.Duration(rng.IntN(400)) * time.Millisecond):
			case err := <-exited:
				t.Fatalf("daemon exited on its own: %v", err)
			}
			cmd.Process.Signal(syscall.SIGKILL)
			<-exited
			kills++
			cmd, exited = startDaemon()
		}
	}
	// Wait until the daemon has committed every line of the live files and
	// the rotated ones.
	total := committedTarget(t, dir)
	awaitChild(t, exited, 3*time.Minute, "the daemon to catch up", func() (bool, string) {
		got, err := storedLines(filepath.Join(dir, "crashed.sock"))
		return err == nil && got >= total, fmt.Sprintf("%d of %d lines committed (%v)", got, total, err)
	})
	stopChild(t, cmd, exited)
	t.Logf("killed %d times over %d lines", kills, total)

	// Reference: one uninterrupted scan of every file the daemon saw.
	ref := writeCrashConfig(t, dir, "reference", "127.0.0.1:1")
	files := []string{
		filepath.Join(dir, "kc.log.1"), filepath.Join(dir, "kc.log"),
		filepath.Join(dir, "api.log.1"), filepath.Join(dir, "api.log"),
	}
	runChild(t, bin, append([]string{"scan", "--quiet", "--config", ref}, files...)...)
	compareSnapshots(t, snapshot(t, filepath.Join(dir, "crashed.db")), snapshot(t, filepath.Join(dir, "reference.db")))
}

// storedLines asks the daemon on the control socket sock how many lines
// its store has consumed.
// awaitChild polls cond every 50 ms until it holds, and fails the test
// when timeout has passed, with what cond last said, or when the daemon
// whose exit exited receives has exited.
func awaitChild(t *testing.T, exited <-chan error, timeout time.Duration, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		ok, state := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("waiting for %s: not within %s; %s", what, timeout, state)
		}
		select {
		case err := <-exited:
			t.Fatalf("waiting for %s: the daemon exited: %v", what, err)
		case <-time.After(50 * time.Millisecond): // polling another process's state
		}
	}
}

// stopChild stops the daemon cmd with SIGTERM and fails the test unless
// it exits cleanly.
func stopChild(t *testing.T, cmd *exec.Cmd, exited <-chan error) {
	t.Helper()
	cmd.Process.Signal(syscall.SIGTERM)
	if err := <-exited; err != nil {
		t.Fatalf("daemon did not stop cleanly on SIGTERM: %v", err)
	}
}

func storedLines(sock string) (int, error) {
	resp, err := socketClient(sock).Get("http://localhost/api/v1/sources")
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	var srcs []store.Source
	if err := json.NewDecoder(resp.Body).Decode(&srcs); err != nil {
		return 0, err
	}
	n := 0
	for _, s := range srcs {
		n += int(s.Lines)
	}
	return n, nil
}

// committedTarget counts the lines written to the logs in dir.
func committedTarget(t *testing.T, dir string) int {
	t.Helper()
	n := 0
	for _, name := range []string{"kc.log", "kc.log.1", "api.log", "api.log.1"} {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		n += strings.Count(string(b), "\n")
	}
	return n
}
