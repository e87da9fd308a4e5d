package rules

import (
	"strings"
	"testing"
	"time"
)

func TestParseDuration(t *testing.T) {
	const d = 24 * time.Hour
	tests := []struct {
		in   string
		want time.Duration
	}{
		{"0", 0},
		{"0s", 0},
		{"250ms", 250 * time.Millisecond},
		{"1h30m", 90 * time.Minute},
		{"1.5h", 90 * time.Minute},
		{"90d", 90 * d},
		{"30d", 30 * d},
		{"2w", 14 * d},
		{"1d12h", 36 * time.Hour},
		{"1w2d", 9 * d},
		{"1w1d1h1m1s", 8*d + time.Hour + time.Minute + time.Second},
		{"10us", 10 * time.Microsecond},
		{"10µs", 10 * time.Microsecond},
		{"5ns", 5},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseDuration(tt.in)
			if err != nil {
				t.Fatalf("ParseDuration(%q): %v", tt.in, err)
			}
			if got.Std() != tt.want {
				t.Errorf("ParseDuration(%q) = %v, want %v", tt.in, got.Std(), tt.want)
			}
		})
	}
}

func TestParseDurationRefuses(t *testing.T) {
	tests := []struct {
		in   string
		want string
	}{
		{"", "empty duration"},
		{"-5s", `negative duration "-5s"`},
		{"-1d", `negative duration "-1d"`},
		{"90", `"90" has no unit`},
		{"1d12", `"12" has no unit`},
		{"90days", `unknown unit "days"`},
		{"3months", `unknown unit "months"`},
		{"1.5d", `"1.5d" must be a whole number of days or weeks`},
		{"d", `expected a number at "d"`},
		{"+5s", `expected a number at "+5s"`},
		{"5s-1s", `unknown unit "s-"`},
		{"1 d", `unknown unit " d"`},
		{"20000w", "too long"},
		{"106751d23h47m16s854775808ns", "too long"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseDuration(tt.in)
			if err == nil {
				t.Fatalf("ParseDuration(%q) = %v, want an error", tt.in, got)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("ParseDuration(%q) error %q, want it to contain %q", tt.in, err, tt.want)
			}
		})
	}
}

func TestDurationString(t *testing.T) {
	tests := []struct {
		in   Duration
		want string
	}{
		{0, "0s"},
		{Duration(250 * time.Millisecond), "250ms"},
		{Duration(5 * time.Second), "5s"},
		{Duration(23 * time.Hour), "23h0m0s"},
		{DefaultWindow, "90d"},
		{Duration(36 * time.Hour), "1d12h0m0s"},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			if got := tt.in.String(); got != tt.want {
				t.Errorf("String() = %q, want %q", got, tt.want)
			}
			var back Duration
			if err := back.UnmarshalText([]byte(tt.in.String())); err != nil || back != tt.in {
				t.Errorf("UnmarshalText(%q) = %v, %v; want %v", tt.in.String(), back, err, tt.in)
			}
		})
	}
}
