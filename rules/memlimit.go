package rules

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
)

// MemoryLimit is batch.memory_limit: the soft limit of the daemon's
// memory that Go's garbage collector works to stay under (what GOMEMLIMIT
// sets), written as a size ("48MiB", "1G"), "none", or "auto" (the
// default): nine tenths of the lowest memory.high or memory.max of the
// daemon's cgroup and those above it (systemd's MemoryHigh= and
// MemoryMax=), or none when no cgroup sets one. It is soft: a daemon
// whose live data outgrows it goes on, collecting more often. The zero
// value is auto, so a key left empty means the default, as a missing one
// does.
type MemoryLimit struct {
	None  bool  // no limit
	Bytes int64 // the limit; 0 (and not None) for auto
}

// Auto reports whether the limit is to be taken from the cgroup.
func (m MemoryLimit) Auto() bool { return !m.None && m.Bytes == 0 }

// MinMemoryLimit is the smallest limit batch.memory_limit may set: below
// it the collector would run all the time for the daemon's own code and
// buffers.
const MinMemoryLimit = 16 << 20

// memoryUnits are the units a size may carry: K, M, G and T are powers of
// 1024, as systemd reads them, and so are Go's KiB, MiB, GiB and TiB.
var memoryUnits = map[string]int64{
	"": 1, "B": 1,
	"K": 1 << 10, "KiB": 1 << 10,
	"M": 1 << 20, "MiB": 1 << 20,
	"G": 1 << 30, "GiB": 1 << 30,
	"T": 1 << 40, "TiB": 1 << 40,
}

// ParseMemoryLimit parses batch.memory_limit: "auto", "none" (or 0), or
// a whole number of bytes with an optional unit of memoryUnits. "MB" and
// "GB" are refused rather than guessed at (powers of 1000 or of 1024).
func ParseMemoryLimit(s string) (MemoryLimit, error) {
	switch s {
	case "auto":
		return MemoryLimit{}, nil
	case "none", "0":
		return MemoryLimit{None: true}, nil
	case "":
		return MemoryLimit{}, errors.New(`empty memory limit (write a size such as 512MiB, "auto" or "none")`)
	}
	i := 0
	for i < len(s) && s[i] >= '0' && s[i] <= '9' {
		i++
	}
	num, unit := s[:i], strings.TrimSpace(s[i:])
	per, ok := memoryUnits[unit]
	switch {
	case num == "":
		return MemoryLimit{}, fmt.Errorf(`memory limit %q: expected a whole number of bytes with an optional unit (K, M, G, T or KiB, MiB, GiB, TiB), "auto" or "none"`, s)
	case unit == "KB" || unit == "MB" || unit == "GB" || unit == "TB":
		return MemoryLimit{}, fmt.Errorf("memory limit %q: %s is ambiguous; write %siB (powers of 1024)", s, unit, unit[:1])
	case !ok:
		return MemoryLimit{}, fmt.Errorf("memory limit %q: unknown unit %q (use K, M, G, T or KiB, MiB, GiB, TiB)", s, unit)
	}
	n, err := strconv.ParseInt(num, 10, 64)
	if err != nil || n > math.MaxInt64/per {
		return MemoryLimit{}, fmt.Errorf("memory limit %q is too large", s)
	}
	return MemoryLimit{Bytes: n * per}, nil
}

// String writes m the way ParseMemoryLimit reads it, in the largest unit
// of MiB or GiB that divides it, else in bytes.
func (m MemoryLimit) String() string {
	switch {
	case m.None:
		return "none"
	case m.Bytes == 0:
		return "auto"
	case m.Bytes%(1<<30) == 0:
		return strconv.FormatInt(m.Bytes>>30, 10) + "GiB"
	case m.Bytes%(1<<20) == 0:
		return strconv.FormatInt(m.Bytes>>20, 10) + "MiB"
	}
	return strconv.FormatInt(m.Bytes, 10)
}

// MarshalText implements encoding.TextMarshaler.
func (m MemoryLimit) MarshalText() ([]byte, error) { return []byte(m.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler with ParseMemoryLimit.
func (m *MemoryLimit) UnmarshalText(text []byte) error {
	v, err := ParseMemoryLimit(string(text))
	if err != nil {
		return err
	}
	*m = v
	return nil
}
