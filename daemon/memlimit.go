package daemon

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/scopewatch/scopewatch/rules"
)

// cgroupFiles names where a process finds its cgroup (v2): the file that
// names it, and where the cgroup file system is mounted.
type cgroupFiles struct{ self, root string }

// Where the running process finds its cgroup.
const (
	procSelfCgroup = "/proc/self/cgroup"
	cgroupMount    = "/sys/fs/cgroup"
)

// applyMemoryLimit resolves batch.memory_limit and gives it to set
// (Options.SetMemoryLimit), logging what it is and where it comes from
// when that changed: it runs at start and at each reload, which reads an
// auto limit's cgroup again (systemctl set-property, or a drop-in and
// daemon-reload, change it without a restart). GOMEMLIMIT in the
// environment, "off" included, wins: the operator set it for this
// process. A cgroup that cannot be read leaves no limit, with a warning.
func (d *Daemon) applyMemoryLimit(m rules.MemoryLimit) {
	set := d.o.SetMemoryLimit
	if set == nil {
		return
	}
	if v := os.Getenv("GOMEMLIMIT"); v != "" {
		if !d.memLimit.set {
			d.memLimit.set = true
			d.log.Info("memory limit", "limit", v, "from", "GOMEMLIMIT (batch.memory_limit is not used)")
		}
		return
	}
	n, from, err := memoryLimit(m, d.cgroup)
	if err != nil {
		d.log.Warn("no memory limit: the cgroup's limits cannot be read; set batch.memory_limit", "err", err)
	}
	if d.memLimit.set && d.memLimit.bytes == n && d.memLimit.from == from {
		return
	}
	d.memLimit.set, d.memLimit.bytes, d.memLimit.from = true, n, from
	if n == 0 {
		set(math.MaxInt64) // none, as the runtime starts
		if err == nil {
			d.log.Info("no memory limit", "from", from)
		}
		return
	}
	set(n)
	d.log.Info("memory limit", "limit", rules.MemoryLimit{Bytes: n}.String(), "from", from)
}

// appliedLimit is the memory limit last given to Options.SetMemoryLimit.
type appliedLimit struct {
	set   bool
	bytes int64 // 0: none
	from  string
}

// memoryLimit resolves m into bytes (0 for none) and says where the
// figure comes from, for the log.
func memoryLimit(m rules.MemoryLimit, cg cgroupFiles) (int64, string, error) {
	switch {
	case m.None:
		return 0, "batch.memory_limit", nil
	case !m.Auto():
		return m.Bytes, "batch.memory_limit", nil
	}
	n, from, err := cgroupLimit(cg)
	switch {
	case err != nil:
		return 0, "", err
	case n == 0:
		return 0, "batch.memory_limit auto: " + from, nil
	}
	// Whole MiB, and not under the least limit a configuration may set.
	limit := max(n/10*9&^(1<<20-1), rules.MinMemoryLimit)
	return limit, fmt.Sprintf("batch.memory_limit auto: nine tenths of %s (%s)", from, rules.MemoryLimit{Bytes: n}), nil
}

// cgroupLimit returns the lowest memory.high or memory.max of the
// process's cgroup (v2) and of those above it, and the file it is read
// from; 0 when none is set ("max"), or without cgroup v2, with why.
func cgroupLimit(cg cgroupFiles) (int64, string, error) {
	data, err := os.ReadFile(cg.self)
	if errors.Is(err, fs.ErrNotExist) {
		return 0, "no " + cg.self + " (not Linux)", nil
	}
	if err != nil {
		return 0, "", fmt.Errorf("read %s: %w", cg.self, err)
	}
	var rel string
	found := false
	for sc := bufio.NewScanner(bytes.NewReader(data)); sc.Scan(); {
		if p, ok := strings.CutPrefix(sc.Text(), "0::"); ok {
			rel, found = p, true
			break
		}
	}
	if !found {
		return 0, "no cgroup v2 (" + cg.self + " names only v1 hierarchies)", nil
	}
	root := filepath.Clean(cg.root)
	dir := filepath.Join(root, rel)
	if dir != root && !strings.HasPrefix(dir, root+string(filepath.Separator)) {
		return 0, "", fmt.Errorf("%s names cgroup %q outside %s", cg.self, rel, root)
	}
	var limit int64
	var from string
	for {
		for _, name := range []string{"memory.high", "memory.max"} {
			file := filepath.Join(dir, name)
			raw, err := os.ReadFile(file)
			if errors.Is(err, fs.ErrNotExist) {
				continue // the root cgroup has neither; a cgroup without the memory controller neither
			}
			if err != nil {
				return 0, "", fmt.Errorf("read %s: %w", file, err)
			}
			v := strings.TrimSpace(string(raw))
			if v == "max" {
				continue
			}
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil || n <= 0 {
				return 0, "", fmt.Errorf("%s: %q is not a number of bytes or max", file, v)
			}
			if limit == 0 || n < limit {
				limit, from = n, file
			}
		}
		if dir == root {
			if limit == 0 {
				from = "no memory.high or memory.max set in " + filepath.Join(root, rel) + " or above"
			}
			return limit, from, nil
		}
		dir = filepath.Dir(dir)
	}
}
