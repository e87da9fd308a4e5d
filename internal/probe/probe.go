// Package probe watches a running scopewatch from outside, as an operator
// would: its /metrics and /readyz, and its process's CPU time and resident
// memory from /proc. The bench and the tests use it; the daemon does not
// link it.
package probe

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"
)

// SampleResident samples the resident sizes of process pid every
// ResidentEvery until the returned function is called, which returns the
// largest anonymous and file-backed sizes seen, in MiB.
func SampleResident(pid int) func() (anon, file float64) {
	stop, done := make(chan struct{}), make(chan struct{})
	var maxAnon, maxFile float64
	go func() {
		defer close(done)
		tick := time.NewTicker(ResidentEvery)
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

// ResidentEvery is the interval at which a child's resident sizes are sampled.
const ResidentEvery = 100 * time.Millisecond

// PeakResident returns the peak resident size of process pid in MiB
// (VmHWM in /proc): of its own memory since it started its program. The
// peak a wait reports (ru_maxrss) is at least the parent's resident size
// when it forked, so it overstates a child of a large parent.
func PeakResident(pid int) (float64, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0, err
	}
	for line := range strings.Lines(string(b)) {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, err := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 64)
			if err != nil {
				return 0, fmt.Errorf("VmHWM of process %d: %w", pid, err)
			}
			return kb / 1024, nil
		}
	}
	return 0, fmt.Errorf("no VmHWM for process %d", pid)
}

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

// WaitCommitted polls the daemon's metrics until n lines are committed.
func WaitCommitted(ctx context.Context, addr string, n int, cmd *exec.Cmd) error {
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
		got, err := Counter(addr, "scopewatch_lines_committed_total")
		if err == nil && got >= float64(n) {
			return nil
		}
	}
	return errors.New("timed out waiting for the daemon to commit every line")
}

// SettleQuiet is how long a daemon must use no CPU to count as settled.
const SettleQuiet = 500 * time.Millisecond

// WaitSettled waits until the daemon is ready and has then used no CPU
// for half a second: it has loaded the baselines and finished the sweep
// it runs at start. The quiet half second is not counted.
func WaitSettled(ctx context.Context, addr string, cmd *exec.Cmd) error {
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
		if time.Since(since) >= SettleQuiet {
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

// Counter sums the samples of one metric family from /metrics.
func Counter(addr, name string) (float64, error) {
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

// FreeAddr returns a loopback address with a port free at the moment.
func FreeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}
