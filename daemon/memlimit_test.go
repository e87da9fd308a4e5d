package daemon

import (
	"bytes"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/scopewatch/scopewatch/rules"
)

// fakeCgroup writes a cgroup v2 tree under a temporary directory: the
// process's /proc/self/cgroup naming rel, and each file of files (a path
// under the mount, such as "system.slice/memory.max").
func fakeCgroup(t *testing.T, self string, files map[string]string) cgroupFiles {
	t.Helper()
	dir := t.TempDir()
	cg := cgroupFiles{self: filepath.Join(dir, "self-cgroup"), root: filepath.Join(dir, "mnt")}
	if err := os.WriteFile(cg.self, []byte(self), 0o644); err != nil {
		t.Fatal(err)
	}
	for name, content := range files {
		p := filepath.Join(cg.root, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return cg
}

func TestMemoryLimitFromCgroup(t *testing.T) {
	const svc = "system.slice/scopewatch.service/"
	for _, tt := range []struct {
		name  string
		self  string
		files map[string]string
		want  int64
		from  string // the file, under the mount; "" for none
	}{
		{"systemd unit with MemoryHigh and MemoryMax", "0::/system.slice/scopewatch.service\n",
			map[string]string{svc + "memory.high": "805306368\n", svc + "memory.max": "1073741824\n", "system.slice/memory.max": "max\n"},
			691 << 20, svc + "memory.high"},
		{"a slice above is lower", "0::/system.slice/scopewatch.service\n",
			map[string]string{svc + "memory.high": "max\n", svc + "memory.max": "1073741824\n", "system.slice/memory.high": "536870912\n"},
			460 << 20, "system.slice/memory.high"},
		{"no limit anywhere", "0::/system.slice/scopewatch.service\n",
			map[string]string{svc + "memory.high": "max\n", svc + "memory.max": "max\n"}, 0, ""},
		{"container: its own cgroup at the mount", "0::/\n",
			map[string]string{"memory.max": "268435456\n"}, 230 << 20, "memory.max"},
		{"hybrid: v1 controllers and the v2 line", "12:memory:/user.slice\n0::/user.slice\n",
			map[string]string{"user.slice/memory.max": "2147483648\n"}, 1843 << 20, "user.slice/memory.max"},
		{"cgroup v1 only", "12:memory:/user.slice\n3:cpu:/\n", nil, 0, ""},
		{"a limit too small to run in", "0::/tiny\n", map[string]string{"tiny/memory.max": "10485760\n"}, rules.MinMemoryLimit, "tiny/memory.max"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cg := fakeCgroup(t, tt.self, tt.files)
			got, from, err := memoryLimit(rules.MemoryLimit{}, cg)
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Errorf("limit %d, want %d (%s)", got, tt.want, from)
			}
			if tt.from != "" && !strings.Contains(from, filepath.Join(cg.root, tt.from)) {
				t.Errorf("from %q, want it to name %s", from, filepath.Join(cg.root, tt.from))
			}
		})
	}
	t.Run("set in the configuration, the cgroup is not read", func(t *testing.T) {
		cg := cgroupFiles{self: filepath.Join(t.TempDir(), "unreadable", "x")}
		if err := os.MkdirAll(cg.self, 0o755); err != nil { // a directory: reading it fails
			t.Fatal(err)
		}
		got, _, err := memoryLimit(rules.MemoryLimit{Bytes: 48 << 20}, cg)
		if err != nil || got != 48<<20 {
			t.Errorf("limit %d, %v; want 48 MiB", got, err)
		}
	})
	t.Run("malformed memory.max", func(t *testing.T) {
		cg := fakeCgroup(t, "0::/a\n", map[string]string{"a/memory.max": "lots\n"})
		if _, _, err := memoryLimit(rules.MemoryLimit{}, cg); err == nil || !strings.Contains(err.Error(), "memory.max") {
			t.Errorf("error %v, want one naming memory.max", err)
		}
	})
	t.Run("cgroup path escaping the mount", func(t *testing.T) {
		cg := fakeCgroup(t, "0::/../../etc\n", nil)
		if _, _, err := memoryLimit(rules.MemoryLimit{}, cg); err == nil {
			t.Error("no error for a cgroup outside the mount")
		}
	})
}

// TestApplyMemoryLimit checks what the daemon hands the runtime: the
// configured limit, the cgroup's, none (the runtime's own maximum), and
// nothing at all when GOMEMLIMIT is set for the process.
func TestApplyMemoryLimit(t *testing.T) {
	cg := fakeCgroup(t, "0::/svc\n", map[string]string{"svc/memory.max": "1073741824\n"})
	for _, tt := range []struct {
		name string
		m    rules.MemoryLimit
		env  string
		want int64 // -1: not called
		log  string
	}{
		{"configured", rules.MemoryLimit{Bytes: 40 << 20}, "", 40 << 20, "limit=40MiB from=batch.memory_limit"},
		{"auto", rules.MemoryLimit{}, "", 921 << 20, "nine tenths of"},
		{"none", rules.MemoryLimit{None: true}, "", math.MaxInt64, "no memory limit"},
		{"GOMEMLIMIT wins", rules.MemoryLimit{Bytes: 40 << 20}, "200MiB", -1, "from=\"GOMEMLIMIT"},
		{"GOMEMLIMIT=off wins", rules.MemoryLimit{}, "off", -1, "limit=off from=\"GOMEMLIMIT"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv("GOMEMLIMIT", tt.env)
			var logs bytes.Buffer
			got := int64(-1)
			d := &Daemon{log: slog.New(slog.NewTextHandler(&logs, nil)), cgroup: cg,
				o: Options{SetMemoryLimit: func(n int64) int64 { got = n; return 0 }}}
			d.applyMemoryLimit(tt.m)
			if got != tt.want {
				t.Errorf("SetMemoryLimit(%d), want %d", got, tt.want)
			}
			if !strings.Contains(logs.String(), tt.log) {
				t.Errorf("log %q, want it to contain %q", logs.String(), tt.log)
			}
		})
	}
}

// TestApplyMemoryLimitOnReload: each apply reads an auto limit's cgroup
// again, sets and logs the limit when it changed, and leaves it alone
// when it did not.
func TestApplyMemoryLimitOnReload(t *testing.T) {
	t.Setenv("GOMEMLIMIT", "")
	cg := fakeCgroup(t, "0::/svc\n", map[string]string{"svc/memory.high": "1073741824\n"})
	var logs bytes.Buffer
	var sets []int64
	d := &Daemon{log: slog.New(slog.NewTextHandler(&logs, nil)), cgroup: cg,
		o: Options{SetMemoryLimit: func(n int64) int64 { sets = append(sets, n); return 0 }}}
	d.applyMemoryLimit(rules.MemoryLimit{})
	d.applyMemoryLimit(rules.MemoryLimit{}) // a reload, nothing changed
	if err := os.WriteFile(filepath.Join(cg.root, "svc/memory.high"), []byte("2147483648\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	d.applyMemoryLimit(rules.MemoryLimit{}) // a reload after systemctl set-property MemoryHigh=2G
	d.applyMemoryLimit(rules.MemoryLimit{Bytes: 100 << 20})
	if want := []int64{921 << 20, 1843 << 20, 100 << 20}; !slices.Equal(sets, want) {
		t.Errorf("limits set %v, want %v", sets, want)
	}
	if n := strings.Count(logs.String(), "msg=\"memory limit\""); n != 3 {
		t.Errorf("%d memory limit lines logged, want 3:\n%s", n, logs.String())
	}
}
