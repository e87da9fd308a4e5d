package rules

import (
	"os"
	"slices"
	"strings"
	"testing"
)

// TestKindsTable: the table is sorted, its names unique and titled, and
// the README's table of findings has a row for each kind and no other.
func TestKindsTable(t *testing.T) {
	names := FindingKinds()
	if !slices.IsSorted(names) || len(slices.Compact(slices.Clone(names))) != len(names) {
		t.Errorf("kinds %v: want sorted and unique", names)
	}
	for _, k := range Kinds() {
		if k.Title == "" || KindTitle(k.Name) != k.Title {
			t.Errorf("kind %s: title %q", k.Name, k.Title)
		}
	}
	if KindTitle("no_such_kind") != "" {
		t.Error("an unknown kind has a title")
	}
	b, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	readme := string(b)
	for _, n := range names {
		if !strings.Contains(readme, "\n| `"+n+"` |") {
			t.Errorf("README's table of findings has no row for %s", n)
		}
	}
}
