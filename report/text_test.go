package report

import (
	"testing"
)

func TestTextEscapes(t *testing.T) {
	for in, want := range map[string]string{
		"lab-portal":          "lab-portal",
		"patient/*.read":      "patient/*.read",
		"Zoë's app":           "Zoë's app",
		"":                    "",
		"evil\x1b[31m":        `"evil\x1b[31m"`,
		"a\r\nb":              `"a\r\nb"`,
		"bell\a":              `"bell\a"`,
		"rtl\u202e":           `"rtl\u202e"`,
		"c1\u009b":            `"c1\u009b"`,
		"del\x7f":             `"del\x7f"`,
		"bad\x9b":             `"bad\x9b"`,
		"q\"uote\x1b":         `"q\"uote\x1b"`,
		"plain \"quoted\" id": "plain \"quoted\" id",
	} {
		if got := Text(in); got != want {
			t.Errorf("Text(%q) = %s, want %s", in, got, want)
		}
	}
}
