package rules

import (
	"path/filepath"
	"strings"
	"testing"
	"time"
)

const slackBase = `store: state.db
sources:
  - {name: keycloak, path: keycloak.log, format: keycloak}
alert:
  slack:
`

// TestSlackSecrets checks that the token is read from its file or
// variable, that the defaults are Alertmanager's, and that a wrong secret
// is refused without echoing it.
func TestSlackSecrets(t *testing.T) {
	const token = "xoxb-111-222-secretsecret"
	dir := writeFiles(t, map[string]string{
		"token":     token + "\n",
		"notatoken": "hunter2-secretsecret\n",
		"config.yaml": slackBase + `    token_file: token
    channel: "#phi-access"
    severity_channels: {high: "#sec-oncall"}
`,
		"env.yaml": slackBase + `    token_env: SCOPEWATCH_TEST_SLACK_TOKEN
    channel: "#phi-access"
    send_resolved: false
    group_wait: 1m
`,
		"bad.yaml": slackBase + `    token_file: notatoken
    channel: "#phi-access"
`,
	})
	c, err := Load(filepath.Join(dir, "config.yaml"), testFormats)
	if err != nil {
		t.Fatal(err)
	}
	s := c.Alert.Slack
	if !s.Enabled() || s.Token() != token || s.Webhook() != "" {
		t.Errorf("token file: Enabled %v, token read %v", s.Enabled(), s.Token() == token)
	}
	if s.GroupWait != DefaultGroupWait || s.GroupInterval != DefaultGroupInterval || s.RepeatInterval != DefaultRepeatInterval ||
		!s.SendResolved || s.Rate != 1 || s.Burst != 3 || s.MinSeverity != "info" || len(s.Kinds) != len(FindingKinds()) ||
		s.APIURL != DefaultSlackAPIURL {
		t.Errorf("defaults = %+v", s)
	}

	t.Setenv("SCOPEWATCH_TEST_SLACK_TOKEN", token)
	c, err = Load(filepath.Join(dir, "env.yaml"), testFormats)
	if err != nil {
		t.Fatal(err)
	}
	if c.Alert.Slack.Token() != token || c.Alert.Slack.SendResolved || c.Alert.Slack.GroupWait != Duration(time.Minute) {
		t.Errorf("token env: %+v", c.Alert.Slack)
	}

	_, err = Load(filepath.Join(dir, "bad.yaml"), testFormats)
	if err == nil || !strings.Contains(err.Error(), "alert.slack.token_file: does not hold a Slack token") {
		t.Errorf("a file without a token: %v", err)
	}
	if err != nil && strings.Contains(err.Error(), "secretsecret") {
		t.Errorf("the error echoes the secret: %v", err)
	}
	if strings.Contains(c.Summary(), "secretsecret") {
		t.Error("the summary shows the token")
	}
}

// TestSlackInlineTokenNotEchoed checks that a token written into the file
// is refused without repeating it.
func TestSlackInlineTokenNotEchoed(t *testing.T) {
	_, err := Load(filepath.Join(invalidDir, "slack_inline_token.yaml"), testFormats)
	if err == nil || strings.Contains(err.Error(), "abcdefghijkl") {
		t.Errorf("Load = %v; want a refusal that does not repeat the token", err)
	}
}
