package rules

// testFormats is the table of formats the tests load configurations
// with: the daemon's own, ingest.Formats, set by TestMain in
// main_test.go. The package's own test files cannot import ingest, which
// imports rules; the external test package can.
var testFormats Formats

// SetTestFormats sets the table of formats the tests load with.
func SetTestFormats(f Formats) { testFormats = f }
