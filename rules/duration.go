package rules

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"time"
)

const (
	day  = 24 * time.Hour
	week = 7 * day
)

// ParseDuration parses a duration written as Go's time.ParseDuration
// accepts it ("250ms", "1h30m"), extended with whole days ("90d") and
// weeks ("2w") that may be combined with the other units ("1w2d",
// "1d12h"). Negative durations are refused: every duration in the
// configuration is a length of time.
func ParseDuration(s string) (Duration, error) {
	if s == "" {
		return 0, errors.New("empty duration")
	}
	if s[0] == '-' {
		return 0, fmt.Errorf("negative duration %q", s)
	}
	if s == "0" {
		return 0, nil
	}
	var total time.Duration
	for rest := s; rest != ""; {
		// One component: a number, then its unit (everything up to the
		// next digit; time.ParseDuration judges the units it knows).
		i := 0
		for i < len(rest) && isNumberByte(rest[i]) {
			i++
		}
		if i == 0 {
			return 0, fmt.Errorf("duration %q: expected a number at %q", s, rest)
		}
		j := i
		for j < len(rest) && !isNumberByte(rest[j]) {
			j++
		}
		num, unit, comp := rest[:i], rest[i:j], rest[:j]
		rest = rest[j:]
		if unit == "" {
			return 0, fmt.Errorf("duration %q: %q has no unit (use w, d, h, m, s, ms, us or ns)", s, comp)
		}
		var d time.Duration
		switch unit {
		case "d", "w":
			n, err := strconv.ParseInt(num, 10, 64)
			if err != nil {
				return 0, fmt.Errorf("duration %q: %q must be a whole number of days or weeks", s, comp)
			}
			per := day
			if unit == "w" {
				per = week
			}
			if n > math.MaxInt64/int64(per) {
				return 0, fmt.Errorf("duration %q is too long", s)
			}
			d = time.Duration(n) * per
		default:
			var err error
			d, err = time.ParseDuration(comp)
			if err != nil {
				return 0, fmt.Errorf("duration %q: unknown unit %q (use w, d, h, m, s, ms, us or ns)", s, unit)
			}
			if d < 0 {
				return 0, fmt.Errorf("negative duration %q", s)
			}
		}
		if total > math.MaxInt64-d {
			return 0, fmt.Errorf("duration %q is too long", s)
		}
		total += d
	}
	return Duration(total), nil
}

// Std returns d as a time.Duration.
func (d Duration) Std() time.Duration { return time.Duration(d) }

// String formats d the way ParseDuration reads it, with whole days
// written as "d": "90d", "1d12h0m0s", "250ms".
func (d Duration) String() string {
	t := time.Duration(d)
	if t < day && t > -day {
		return t.String()
	}
	days := t / day
	rest := t - days*day
	s := strconv.FormatInt(int64(days), 10) + "d"
	if rest != 0 {
		s += rest.String()
	}
	return s
}

// MarshalText implements encoding.TextMarshaler.
func (d Duration) MarshalText() ([]byte, error) { return []byte(d.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler with ParseDuration.
func (d *Duration) UnmarshalText(text []byte) error {
	v, err := ParseDuration(string(text))
	if err != nil {
		return err
	}
	*d = v
	return nil
}

func isNumberByte(c byte) bool { return c >= '0' && c <= '9' || c == '.' }
