package main

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/scopewatch/scopewatch/ingest"
	"github.com/scopewatch/scopewatch/rules"
)

// TestDistConfig loads the configuration the packages install as
// /etc/scopewatch/scopewatch.yaml and rules.yaml, with its absolute paths
// moved into a temporary directory, so that an example which drifts from
// what rules.Load accepts fails here rather than on an operator's host.
// The second case also uncomments the other formats' sources and the alert
// section, which operators are expected to copy.
func TestDistConfig(t *testing.T) {
	tests := []struct {
		name        string
		edit        func(string) string
		wantSources []string
		wantSlack   bool
	}{
		{
			name:        "as shipped",
			edit:        func(s string) string { return s },
			wantSources: []string{"keycloak", "fhir-gw"},
		},
		{
			name: "examples uncommented",
			edit: uncommentExamples,
			wantSources: []string{"keycloak", "fhir-gw", "okta", "auth0", "entra",
				"envoy", "kong", "apigw", "traefik", "hapi"},
			wantSlack: true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root := t.TempDir()
			cfg, err := rules.Load(installDistConfig(t, root, tt.edit), ingest.Formats{})
			if err != nil {
				t.Fatalf("dist/scopewatch.yaml does not load:\n%v", err)
			}
			var got []string
			for _, s := range cfg.Sources {
				got = append(got, s.Name)
			}
			if strings.Join(got, " ") != strings.Join(tt.wantSources, " ") {
				t.Errorf("sources = %v, want %v", got, tt.wantSources)
			}
			if want := filepath.Join(root, "/var/lib/scopewatch/scopewatch.db"); cfg.Store != want {
				t.Errorf("store = %s, want %s", cfg.Store, want)
			}
			if cfg.Listen != rules.DefaultListen {
				t.Errorf("listen = %s, want %s", cfg.Listen, rules.DefaultListen)
			}
			if !cfg.Privacy.PseudonymiseSubjects || len(cfg.Privacy.Key) == 0 {
				t.Errorf("privacy: pseudonymise_subjects %v with a %d-byte key, want on with the key file read",
					cfg.Privacy.PseudonymiseSubjects, len(cfg.Privacy.Key))
			}
			if got := cfg.Alert.Slack.Enabled(); got != tt.wantSlack {
				t.Errorf("slack enabled = %v, want %v", got, tt.wantSlack)
			}
			if len(cfg.Rules.Routes) == 0 {
				t.Error("dist/rules.yaml has no routes")
			}
		})
	}
}

// installedPath matches the absolute paths of an installed host in the
// example configuration.
var installedPath = regexp.MustCompile(`(/etc/scopewatch|/var/lib/scopewatch|/var/log)/[^\s"',\]}]*`)

// installDistConfig writes dist/scopewatch.yaml, changed by edit, and
// dist/rules.yaml under root as they are installed under /, with every
// absolute path moved under root; creates the log directories and the
// secrets the package or the operator would create; and returns the path
// of the configuration.
func installDistConfig(t *testing.T, root string, edit func(string) string) string {
	t.Helper()
	cfg, err := os.ReadFile(filepath.Join("dist", "scopewatch.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	ruleFile, err := os.ReadFile(filepath.Join("dist", "rules.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	etc := filepath.Join(root, "etc", "scopewatch")
	for _, d := range []string{etc, filepath.Join(root, "var", "lib", "scopewatch")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	var logDirs []string
	text := installedPath.ReplaceAllStringFunc(edit(string(cfg)), func(p string) string {
		if strings.HasPrefix(p, "/var/log/") {
			logDirs = append(logDirs, filepath.Join(root, filepath.Dir(p)))
		}
		return filepath.Join(root, p)
	})
	for _, d := range logDirs {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	files := map[string]string{
		"scopewatch.yaml": text,
		"rules.yaml":      string(ruleFile),
		"pseudonym.key":   "0123456789abcdef0123456789abcdef\n", // the package writes a random one
		"slack-token":     "xoxb-0000-test\n",                   // the operator's, when Slack is on
	}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(etc, name), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return filepath.Join(etc, "scopewatch.yaml")
}

// commentedSource matches the lines of a commented-out source example:
// "  # - name: x" and its "  #   key: value" lines.
var commentedSource = regexp.MustCompile(`(?m)^  # (- name: |  [a-z_]+: )`)

// uncommentExamples turns the commented-out source examples and the
// commented-out alert section (the file's last block) into live YAML,
// leaving the comments inside them as comments.
func uncommentExamples(s string) string {
	s = commentedSource.ReplaceAllString(s, "  $1")
	head, alert, ok := strings.Cut(s, "\n# alert:\n")
	if !ok {
		return s
	}
	var b strings.Builder
	b.WriteString(head + "\nalert:\n")
	for _, line := range strings.Split(alert, "\n") {
		if strings.HasPrefix(line, "#   #") {
			continue // a comment about the setting below it
		}
		b.WriteString(strings.TrimPrefix(line, "# ") + "\n")
	}
	return b.String()
}
