package alert

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/scopewatch/scopewatch/ingest"
	"github.com/scopewatch/scopewatch/rules"
)

// TestExplainRedacts: an error text that holds the webhook URL, or its
// path, is shown with both cut out.
func TestExplainRedacts(t *testing.T) {
	const secret = "T000/B000/XXXXXXXXXXXXXXXXXXXXXXXX"
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "webhook"), []byte("https://hooks.slack.com/services/"+secret+"?x=1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(dir, "scopewatch.yaml")
	conf := fmt.Sprintf("store: %[1]s/scopewatch.db\nsources:\n  - {name: keycloak, path: %[1]s/kc.log, format: keycloak}\nalert:\n  slack: {webhook_url_file: %[1]s/webhook}\n", dir)
	if err := os.WriteFile(cfg, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := rules.Load(cfg, ingest.Formats{})
	if err != nil {
		t.Fatal(err)
	}
	failure := errors.New(`Post "https://hooks.slack.com/services/` + secret + `?x=1": EOF; path /services/` + secret)
	got := Explain("post to #c", failure, c.Alert.Slack).Error()
	if want := `slack post to #c failed: Post "[redacted]": EOF; path [redacted]`; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}
