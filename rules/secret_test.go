package rules

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestFloatFields checks that a number field takes whole numbers as well
// as decimals, as the README's rate: 1 is written, and refuses what is not
// a finite number.
func TestFloatFields(t *testing.T) {
	for _, tc := range []struct {
		rate string
		want float64
		err  string
	}{
		{"1", 1, ""},
		{"2", 2, ""},
		{"0.5", 0.5, ""},
		{"1e-1", 0.1, ""},
		{`"1"`, 0, `alert.slack.rate: want a number such as 1 or 0.5, got "1"`},
		{"fast", 0, `alert.slack.rate: want a number such as 1 or 0.5, got "fast"`},
		{".inf", 0, `alert.slack.rate: want a number such as 1 or 0.5, got ".inf"`},
		{".nan", 0, `alert.slack.rate: want a number such as 1 or 0.5, got ".nan"`},
		{"[1]", 0, "alert.slack.rate: want a number such as 1 or 0.5, got a list"},
		{"0", 0, "alert.slack.rate: must be more than 0"},
	} {
		dir := writeFiles(t, map[string]string{
			"token":       "xoxb-1-2-3\n",
			"config.yaml": slackBase + "    token_file: token\n    channel: \"#c\"\n    rate: " + tc.rate + "\n",
		})
		if err := os.Chmod(filepath.Join(dir, "token"), 0o600); err != nil {
			t.Fatal(err)
		}
		c, err := Load(filepath.Join(dir, "config.yaml"), testFormats)
		switch {
		case tc.err == "" && err != nil:
			t.Errorf("rate: %s: %v", tc.rate, err)
		case tc.err == "" && c.Alert.Slack.Rate != tc.want:
			t.Errorf("rate: %s = %v, want %v", tc.rate, c.Alert.Slack.Rate, tc.want)
		case tc.err != "" && (err == nil || !strings.Contains(err.Error(), "config.yaml:8: "+tc.err)):
			t.Errorf("rate: %s: error %v, want config.yaml:8: %s", tc.rate, err, tc.err)
		}
	}
}

// TestSecretFileModes checks, with real files and modes, that a key or
// token file others may write is refused, naming file, line, field and
// mode, and that one others may read loads with a warning that says so.
func TestSecretFileModes(t *testing.T) {
	configs := []struct {
		field, file, content string
		config               string
		line                 int
	}{
		{"privacy.key_file", "pseudonym.key", "0123456789abcdef\n",
			"store: state.db\nprivacy: {pseudonymise_subjects: true, key_file: pseudonym.key}\nsources:\n  - {name: keycloak, path: keycloak.log, format: keycloak}\n", 2},
		{"alert.slack.token_file", "slack-token", "xoxb-1-2-3\n",
			slackBase + "    token_file: slack-token\n    channel: \"#c\"\n", 6},
		{"alert.slack.webhook_url_file", "webhook", "https://hooks.slack.com/services/T/B/x\n",
			slackBase + "    webhook_url_file: webhook\n", 6},
	}
	for _, cf := range configs {
		for _, tc := range []struct {
			mode    os.FileMode
			refused string // in the error
			warning string // in the one warning
		}{
			{mode: 0o600},
			{mode: 0o400},
			{mode: 0o640, warning: "is readable by its group "},
			{mode: 0o604, warning: "is readable by everyone (mode 0604)"},
			{mode: 0o644, warning: " and everyone (mode 0644), and it holds a secret; chmod o-r "},
			{mode: 0o620, refused: "is writable by its group "},
			{mode: 0o602, refused: "is writable by everyone (mode 0602): whoever can write it can replace the secret; chmod go-w "},
			{mode: 0o666, refused: " and everyone (mode 0666)"},
		} {
			dir := writeFiles(t, map[string]string{"config.yaml": cf.config, cf.file: cf.content})
			secret := filepath.Join(dir, cf.file)
			if err := os.Chmod(secret, tc.mode); err != nil {
				t.Fatal(err)
			}
			path := filepath.Join(dir, "config.yaml")
			c, err := Load(path, testFormats)
			name := cf.field + " " + tc.mode.String()
			at := path + ":" + strconv.Itoa(cf.line) + ": " + cf.field + ": " + secret + " "
			if tc.refused != "" {
				if err == nil {
					t.Errorf("%s: loaded, want it refused", name)
				} else if msg := err.Error(); !strings.Contains(msg, at) || !strings.Contains(msg, tc.refused) {
					t.Errorf("%s: error\n%v\nwant %q ... %q", name, msg, at, tc.refused)
				}
				if err != nil && strings.Contains(err.Error(), strings.TrimSpace(cf.content)) {
					t.Errorf("%s: the error shows the secret: %v", name, err)
				}
				continue
			}
			if err != nil {
				t.Errorf("%s: %v", name, err)
				continue
			}
			switch {
			case tc.warning == "" && len(c.Warnings) > 0:
				t.Errorf("%s: warnings %v, want none", name, c.Warnings)
			case tc.warning != "" && len(c.Warnings) != 1:
				t.Errorf("%s: warnings %v, want one", name, c.Warnings)
			case tc.warning != "":
				if w := c.Warnings[0].Error(); !strings.Contains(w, at) || !strings.Contains(w, tc.warning) {
					t.Errorf("%s: warning\n%s\nwant %q ... %q", name, w, at, tc.warning)
				}
			}
		}
	}
}

// TestSecretReadThroughGroup checks that a key the process reads through
// its group (root:scopewatch 0640 read by the daemon) is no warning. It
// needs root, to give the file to another owner.
func TestSecretReadThroughGroup(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to chown the key file to another user")
	}
	dir := writeFiles(t, map[string]string{
		"config.yaml":   "store: state.db\nprivacy: {key_file: pseudonym.key}\nsources:\n  - {name: keycloak, path: keycloak.log, format: keycloak}\n",
		"pseudonym.key": "0123456789abcdef\n",
	})
	key := filepath.Join(dir, "pseudonym.key")
	if err := os.Chown(key, 65534, os.Getegid()); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(key, 0o640); err != nil {
		t.Fatal(err)
	}
	c, err := Load(filepath.Join(dir, "config.yaml"), testFormats)
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Warnings) > 0 {
		t.Errorf("warnings %v, want none: the process reads the key through its group", c.Warnings)
	}
	if err := os.Chmod(key, 0o644); err != nil {
		t.Fatal(err)
	}
	if c, err = Load(filepath.Join(dir, "config.yaml"), testFormats); err != nil {
		t.Fatal(err)
	}
	if len(c.Warnings) != 1 {
		t.Errorf("world-readable: warnings %v, want one", c.Warnings)
	}
}
