package rules

import (
	"path/filepath"
	"testing"
)

func TestParseMemoryLimit(t *testing.T) {
	for _, tt := range []struct {
		in   string
		want MemoryLimit
		str  string
	}{
		{"auto", MemoryLimit{}, "auto"},
		{"none", MemoryLimit{None: true}, "none"},
		{"0", MemoryLimit{None: true}, "none"},
		{"48MiB", MemoryLimit{Bytes: 48 << 20}, "48MiB"},
		{"48M", MemoryLimit{Bytes: 48 << 20}, "48MiB"},
		{"768M", MemoryLimit{Bytes: 768 << 20}, "768MiB"},
		{"1G", MemoryLimit{Bytes: 1 << 30}, "1GiB"},
		{"2GiB", MemoryLimit{Bytes: 2 << 30}, "2GiB"},
		{"1T", MemoryLimit{Bytes: 1 << 40}, "1024GiB"},
		{"65536K", MemoryLimit{Bytes: 64 << 20}, "64MiB"},
		{"100000000", MemoryLimit{Bytes: 100_000_000}, "100000000"},
		{"100000000B", MemoryLimit{Bytes: 100_000_000}, "100000000"},
	} {
		got, err := ParseMemoryLimit(tt.in)
		if err != nil || got != tt.want {
			t.Errorf("ParseMemoryLimit(%q) = %+v, %v; want %+v", tt.in, got, err, tt.want)
			continue
		}
		if s := got.String(); s != tt.str {
			t.Errorf("%+v.String() = %q, want %q", got, s, tt.str)
		}
		if back, err := ParseMemoryLimit(got.String()); err != nil || back != got {
			t.Errorf("ParseMemoryLimit(%q) = %+v, %v; want %+v back", got.String(), back, err, got)
		}
	}
	for _, in := range []string{"", "MiB", "512MB", "1GB", "12 parsecs", "-5M", "1.5G", "99999999999T", "autox"} {
		if got, err := ParseMemoryLimit(in); err == nil {
			t.Errorf("ParseMemoryLimit(%q) = %+v, want an error", in, got)
		}
	}
}

// TestMemoryLimitEmptyIsAuto: a batch.memory_limit key left empty is the
// default, auto, as a missing one is, not "none".
func TestMemoryLimitEmptyIsAuto(t *testing.T) {
	for _, v := range []string{"", " ~", " null"} {
		dir := writeFiles(t, map[string]string{
			"scopewatch.yaml": "store: sw.db\nbatch:\n  memory_limit:" + v + "\nsources:\n  - {name: api, path: logs/api.json, format: json, fields: {time: ts}}\n",
			"logs/.keep":      "",
		})
		c, err := Load(filepath.Join(dir, "scopewatch.yaml"), testFormats)
		if err != nil {
			t.Fatalf("memory_limit:%s: %v", v, err)
		}
		if !c.Batch.MemoryLimit.Auto() {
			t.Errorf("memory_limit:%s = %v, want auto", v, c.Batch.MemoryLimit)
		}
	}
}
