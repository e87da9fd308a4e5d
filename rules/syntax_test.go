package rules

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestSyntaxErrorLines checks that YAML syntax errors name the line a
// person would look at, for scanner and parser problems alike.
func TestSyntaxErrorLines(t *testing.T) {
	tests := []struct {
		name string
		yaml string
		want string // line: message prefix
	}{
		{"unclosed flow mapping", "store: x\nsources:\n  - {name: a, path: b\n", "3: did not find expected ',' or '}'"},
		{"unclosed flow sequence", "store: x\nsources: [a, b\nlisten: c\n", "2: did not find expected ',' or ']'"},
		{"list item in mapping", "store: x\nlisten: y\n- z\n", "3: did not find expected key"},
		{"nested mapping value", "store: x\nlisten: y: z\n", "2: mapping values are not allowed in this context"},
		{"tab indentation", "store: x\nsources:\n\t- a\n", "3: found character that cannot start any token"},
		{"unclosed quote", "store: \"x\nlisten: y\n", "3: found unexpected end of stream"},
		// yaml.v3 names the line of the enclosing list item (4) or mapping
		// (6); the line to fix is the mis-indented one.
		{"mis-indented key in a list item", "store: x\nlisten: y\nsources:\n  - name: kc\n    path: a.log\n    format: keycloak\n   timezone: UTC\n  - name: api\n", "7: did not find expected '-' indicator"},
		{"mis-indented key in a nested mapping", "store: x\nsources:\n  - name: api\n    path: a.log\n    format: json\n    fields:\n      time: ts\n     client: cid\n", "8: did not find expected key"},
		{"mis-indented top-level key", "store: x\nbatch:\n  max_events: 10\n max_delay: 1s\nsources: []\n", "4: did not find expected key"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "scopewatch.yaml")
			if err := os.WriteFile(path, []byte(tt.yaml), 0o644); err != nil {
				t.Fatal(err)
			}
			_, err := Load(path, testFormats)
			if want := path + ":" + tt.want; err == nil || !strings.HasPrefix(err.Error(), want) {
				t.Errorf("Load = %v, want an error starting %q", err, want)
			}
		})
	}
}
