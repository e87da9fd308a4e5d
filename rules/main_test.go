package rules_test

import (
	"os"
	"testing"

	"github.com/scopewatch/scopewatch/ingest"
	"github.com/scopewatch/scopewatch/rules"
)

// TestMain runs the tests with the table of formats the daemon loads
// configurations with, so that the fixtures and the README are checked
// against the formats there are.
func TestMain(m *testing.M) {
	rules.SetTestFormats(ingest.Formats{})
	os.Exit(m.Run())
}
