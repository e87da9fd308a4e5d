package rules

import (
	"bufio"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

const readmePath = "../README.md"

// readmeBlock is one ```yaml block of the README.
type readmeBlock struct {
	line int    // line of the opening fence
	text string // the block, its indentation (a block inside a list item) removed
}

// readmeYAML returns every ```yaml block of the README, in order.
func readmeYAML(t *testing.T) []readmeBlock {
	t.Helper()
	f, err := os.Open(readmePath)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var (
		out    []readmeBlock
		cur    *readmeBlock
		indent string
		body   []string
	)
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		trimmed := strings.TrimLeft(line, " ")
		switch {
		case cur == nil && strings.HasPrefix(trimmed, "```yaml"):
			cur, indent, body = &readmeBlock{line: n}, line[:len(line)-len(trimmed)], nil
		case cur != nil && strings.HasPrefix(trimmed, "```"):
			cur.text = strings.Join(body, "\n") + "\n"
			out = append(out, *cur)
			cur = nil
		case cur != nil:
			body = append(body, strings.TrimPrefix(line, indent))
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if cur != nil {
		t.Fatalf("README.md:%d: a ```yaml block that never ends", cur.line)
	}
	return out
}

// How a README block is checked.
const (
	// asConfig: the block is a whole configuration; Load must take it.
	asConfig = iota
	// asRules: the block is a whole rules file; LoadRules must take it.
	asRules
	// asSection: the block is top-level sections of a configuration
	// (alert, cluster); Load must take it inside a minimal configuration.
	asSection
	// asSources: the block is items of a configuration's sources list;
	// Load must take them as the sources of a minimal configuration.
	asSources
	// asOther: the block configures another program (a gateway, the web
	// server's TLS): it must parse as YAML, and scopewatch does not load
	// it.
	asOther
)

// readmeBlocks says how each ```yaml block of the README that is not a
// whole configuration or rules file is checked, by its first line. A new
// block must load as it is, as a configuration or a rules file, or be
// listed here.
var readmeBlocks = map[string]int{
	"identity_scopes: [openid, profile, fhirUser, offline_access, launch/patient]  # used when issued": asRules,
	"alert:":                    asSection,
	"# /etc/scopewatch/web.yml": asOther, // exporter-toolkit's web configuration
	"- name: keycloak":          asSources,
	"- {name: okta, path: /var/log/okta/system-log.json, format: okta}": asSources,
	"- name: fhir-gw":        asSources,
	"http_filters:":          asOther, // Envoy
	"- name: envoy":          asSources,
	"plugins:":               asOther, // Kong
	"- name: kong":           asSources,
	"- name: apigw":          asSources,
	"hapi:":                  asOther, // HAPI FHIR's application.yaml
	"- name: hapi":           asSources,
	"# static configuration": asOther, // Traefik
	"- name: traefik":        asSources,
	"- name: keycloak-fleet": asSources,
	"# on scopewatch-a; scopewatch-b and -c name the other two":             asSection,
	"# /etc/vector/vector.yaml":                                             asOther, // Vector
	"store: /var/lib/scopewatch/scopewatch.db   # bbolt file, created 0600": asConfig,
}

// absPath finds the absolute paths of a README example, with the key they
// are the value of.
var absPath = regexp.MustCompile(`([A-Za-z_]+):\s*(/(?:var|etc|usr|srv)/[^\s,}\]#]*)`)

// readmeRoot makes the absolute paths of text (the README's /etc, /var,
// /usr ones) paths under a new temporary directory, and creates there what
// Load looks at: the directories of logs and the store, and the key,
// token, rules and GeoIP files, secrets readable by their owner only. The
// rules file is rules, the README's own rules example.
func readmeRoot(t *testing.T, text, rules string) string {
	t.Helper()
	root := t.TempDir()
	for _, m := range absPath.FindAllStringSubmatch(text, -1) {
		key, p := m[1], filepath.Join(root, m[2])
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		var content string
		mode := os.FileMode(0o600)
		switch key {
		case "key_file":
			content = "0123456789abcdef0123456789abcdef\n"
		case "token_file":
			content = "xoxb-0000-readme\n"
		case "webhook_url_file":
			content = "https://hooks.slack.com/services/T0/B0/readme\n"
		case "rules":
			content, mode = rules, 0o644
		case "city", "country", "asn", "ca", "cert":
			content, mode = "", 0o644 // Load only checks that the file is there
		case "password_file":
			content = "readme-password\n"
		default:
			continue // a log, the store, a directory: its directory is enough
		}
		if err := os.WriteFile(p, []byte(content), mode); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

// TestReadmeYAML loads every ```yaml example of the README as what it is
// (a configuration, a rules file, an alert section, source entries), so
// that the README never shows a configuration that scopewatch refuses.
func TestReadmeYAML(t *testing.T) {
	blocks := readmeYAML(t)
	if len(blocks) == 0 {
		t.Fatal("no ```yaml block in README.md")
	}
	var rules string
	for _, b := range blocks {
		if first, _, _ := strings.Cut(b.text, "\n"); readmeBlocks[first] == asRules {
			rules = b.text
		}
	}
	if rules == "" {
		t.Fatal("README.md has no rules example")
	}
	seen := map[string]bool{}
	for _, b := range blocks {
		first, _, _ := strings.Cut(b.text, "\n")
		seen[first] = true
		how, listed := readmeBlocks[first]
		if !listed {
			how = asConfig
		}
		t.Run("line"+strconv.Itoa(b.line), func(t *testing.T) {
			at := func(err error) {
				t.Helper()
				if !listed {
					t.Errorf("README.md:%d: the block starting %q does not load as a configuration (%v); "+
						"fix it, or list it in readmeBlocks with what it is", b.line, first, err)
					return
				}
				t.Errorf("README.md:%d: %v\nblock:\n%s", b.line, err, b.text)
			}
			if how == asOther {
				var v any
				if err := yaml.Unmarshal([]byte(b.text), &v); err != nil {
					at(err)
				}
				return
			}
			loadRules := func() error {
				p := filepath.Join(t.TempDir(), "rules.yaml")
				if err := os.WriteFile(p, []byte(b.text), 0o644); err != nil {
					t.Fatal(err)
				}
				_, err := LoadRules(p)
				return err
			}
			if how == asRules {
				if err := loadRules(); err != nil {
					at(err)
				}
				return
			}
			var config string
			switch how {
			case asConfig:
				config = b.text
			case asSection:
				config = "store: state.db\nsources:\n  - {name: keycloak, path: keycloak.log, format: keycloak}\n" + b.text
			case asSources:
				config = "store: state.db\nsources:\n" + indent(b.text, "  ")
			}
			root := readmeRoot(t, config, rules)
			config = absPath.ReplaceAllString(config, "${1}: "+root+"${2}")
			p := filepath.Join(root, "scopewatch.yaml")
			if err := os.WriteFile(p, []byte(config), 0o644); err != nil {
				t.Fatal(err)
			}
			c, err := Load(p, testFormats)
			if err != nil && !listed && loadRules() == nil {
				return // a new block that is a whole rules file
			}
			if err != nil {
				at(err)
				return
			}
			for _, w := range c.Warnings {
				t.Errorf("README.md:%d: warning: %v", b.line, w)
			}
		})
	}
	for first := range readmeBlocks {
		if !seen[first] {
			t.Errorf("readmeBlocks lists %q, which no ```yaml block of README.md starts with any more", first)
		}
	}
}

// indent puts prefix before every line of s that is not empty.
func indent(s, prefix string) string {
	lines := strings.Split(s, "\n")
	for i, l := range lines {
		if l != "" {
			lines[i] = prefix + l
		}
	}
	return strings.Join(lines, "\n")
}
