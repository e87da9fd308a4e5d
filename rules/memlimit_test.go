package rules

import "testing"

func TestParseMemoryLimit(t *testing.T) {
	for _, tt := range []struct {
		in   string
		want MemoryLimit
		str  string
	}{
		{"auto", MemoryLimit{Auto: true}, "auto"},
		{"none", MemoryLimit{}, "none"},
		{"0", MemoryLimit{}, "none"},
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
