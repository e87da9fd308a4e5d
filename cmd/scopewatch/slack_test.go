package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/scopewatch/scopewatch/alert"
	"github.com/scopewatch/scopewatch/alert/slackfake"
	"github.com/scopewatch/scopewatch/store"
)

const slackTestToken = "xoxb-4242-4242-slacktesttoken"

// slackRules registers lab-portal with its owner's channel.
const slackRules = `clients:
  lab-portal: {role: lab-technician, owner: lab-systems@clinic.example, channel: "#lab-team"}
roles:
  lab-technician: [openid, view_lab_results]
`

// slackConfig is a daemon configuration with a Keycloak source and Slack
// delivery to the fake at %[2]s; %[1]s is the directory.
const slackConfig = `store: %[1]s/scopewatch.db
listen: 127.0.0.1:0
rules: %[1]s/rules.yaml
batch: {max_events: 1000, max_delay: 50ms}
sources:
  - {name: keycloak, path: %[1]s/kc.log, format: keycloak}
alert:
  slack:
    token_file: %[1]s/slack-token
    api_url: %[2]s
    channel: "#phi-access"
    group_wait: 100ms
    group_interval: 1s
    max_backoff: 1s
`

// TestSlackSurvivesOutageAndKill runs the real daemon against a Slack that
// is down: a broad request is queued in the outbox and retried; the daemon
// is killed with SIGKILL; restarted with Slack back, it delivers the
// message exactly once, to the client's channel, and never logs the token.
func TestSlackSurvivesOutageAndKill(t *testing.T) {
	bin := scopewatchBinary(t)
	dir := t.TempDir()
	fake := slackfake.New(t, slackTestToken)
	fake.AddChannel("#phi-access", "#lab-team")
	write(t, filepath.Join(dir, "rules.yaml"), slackRules)
	write(t, filepath.Join(dir, "slack-token"), slackTestToken+"\n")
	cfg := filepath.Join(dir, "scopewatch.yaml")
	write(t, cfg, fmt.Sprintf(slackConfig, dir, fake.APIURL()))
	gt := &geoTraffic{dir: dir}

	fake.Down(true)
	d := startGeoDaemon(t, bin, cfg)
	at := time.Now().UTC().Add(-time.Hour)
	gt.append(t, "kc.log", fmt.Sprintf(`%s DEBUG [org.keycloak.events] (executor-thread-1) type="CLIENT_LOGIN", realmId="clinic", clientId="lab-portal", userId="svc-lab", ipAddress="10.0.0.5", grant_type="client_credentials", scope="openid admin"`,
		at.Format("2006-01-02 15:04:05,000")))
	d.waitCommitted(t, gt.lines)
	d.poll(t, "the message is queued and retried while Slack is down", func() (bool, string) {
		pending, s1 := d.metric("scopewatch_slack_outbox_pending")
		retries, s2 := d.metric(`scopewatch_slack_retries_total{reason="server_error"}`)
		return pending == 1 && retries >= 1, s1 + "; " + s2
	})
	if err := d.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	<-d.done
	firstLog := d.log.String()

	fake.Down(false)
	d = startGeoDaemon(t, bin, cfg)
	d.poll(t, "Slack receives the message", func() (bool, string) {
		sent, s := d.metric("scopewatch_slack_messages_sent_total")
		return sent == 1 && len(fake.Messages()) == 1, s
	})
	d.stop(t)

	msgs := fake.Messages()
	if len(msgs) != 1 {
		t.Fatalf("Slack received %d messages, want 1", len(msgs))
	}
	m := msgs[0]
	if m.Channel != "#lab-team" || !strings.Contains(m.Text, "lab-portal") || !strings.Contains(string(m.Blocks), "admin") ||
		!strings.Contains(string(m.Blocks), "lab-systems@clinic.example") || !strings.Contains(string(m.Blocks), "scopewatch silence add") {
		t.Errorf("message to %s:\n%s\n%s", m.Channel, m.Text, m.Blocks)
	}
	if r := fake.Rejections(); len(r) != 0 {
		t.Errorf("Slack rejected requests: %v", r)
	}
	for _, log := range []string{firstLog, d.log.String()} {
		if strings.Contains(log, slackTestToken) || strings.Contains(log, "slacktesttoken") {
			t.Errorf("the daemon logged the token:\n%s", log)
		}
	}
	if !strings.Contains(firstLog, "slack: delivery failing, backing off") {
		t.Errorf("no log line when delivery started failing:\n%s", firstLog)
	}
}

// TestAlertTestCommand checks `scopewatch alert test` against the fake:
// the token is checked and a message posted; a revoked token is reported
// with what to do.
func TestAlertTestCommand(t *testing.T) {
	dir := t.TempDir()
	fake := slackfake.New(t, slackTestToken)
	fake.AddChannel("#phi-access")
	write(t, filepath.Join(dir, "rules.yaml"), slackRules)
	write(t, filepath.Join(dir, "slack-token"), slackTestToken+"\n")
	cfg := filepath.Join(dir, "scopewatch.yaml")
	write(t, cfg, fmt.Sprintf(slackConfig, dir, fake.APIURL()))

	var out, errOut bytes.Buffer
	if code := dispatch(t.Context(), []string{"alert", "test", "--config", cfg}, &out, &errOut); code != 0 {
		t.Fatalf("alert test exit %d: %s", code, errOut.String())
	}
	if !strings.Contains(out.String(), "token ok: bot scopewatch in workspace Example") ||
		!strings.Contains(out.String(), "test message sent to #phi-access (C") {
		t.Errorf("output:\n%s", out.String())
	}
	if ms := fake.Messages(); len(ms) != 1 || !strings.Contains(ms[0].Text, "scopewatch test message") {
		t.Errorf("Slack received %+v", ms)
	}

	out.Reset()
	errOut.Reset()
	if code := dispatch(t.Context(), []string{"alert", "test", "--config", cfg, "--channel", "#nowhere"}, &out, &errOut); code == 0 {
		t.Error("alert test to an unknown channel succeeded")
	}
	if !strings.Contains(errOut.String(), "channel_not_found") || !strings.Contains(errOut.String(), "invite the bot") {
		t.Errorf("unknown channel error: %s", errOut.String())
	}

	write(t, filepath.Join(dir, "slack-token"), "xoxb-revoked-token\n")
	errOut.Reset()
	if code := dispatch(t.Context(), []string{"alert", "test", "--config", cfg}, &out, &errOut); code == 0 {
		t.Error("alert test with a wrong token succeeded")
	}
	if !strings.Contains(errOut.String(), "invalid_auth") || strings.Contains(errOut.String(), "revoked-token") {
		t.Errorf("wrong token error (must explain, must not echo the token): %s", errOut.String())
	}
}

// TestScheduledReportPostedToSlack checks that a scheduled report is
// posted as a summary and its CSV file.
func TestScheduledReportPostedToSlack(t *testing.T) {
	dir := t.TempDir()
	fake := slackfake.New(t, slackTestToken)
	fake.AddChannel("#phi-access")
	write(t, filepath.Join(dir, "slack-token"), slackTestToken+"\n")
	extra := fmt.Sprintf(`alert:
  slack: {token_file: %[1]s/slack-token, api_url: %[2]s, channel: "#phi-access"}
  report: {every: 168h, slack: true}
`, dir, fake.APIURL())
	_, _, stop := startDaemonWith(t, dir, extra)
	defer stop()
	// Poll the observable effect, the file Slack recorded.
	tick := time.NewTicker(geoPollEvery)
	defer tick.Stop()
	for deadline := time.Now().Add(geoPollFor); len(fake.Files()) == 0; <-tick.C {
		if time.Now().After(deadline) {
			t.Fatalf("no report uploaded; messages %+v, rejections %v", fake.Messages(), fake.Rejections())
		}
	}
	files := fake.Files()
	if len(files) != 1 || !strings.HasPrefix(files[0].Name, "unused-scopes-") || !bytes.HasPrefix(files[0].Content, []byte("client,")) ||
		files[0].Channel != fake.ChannelID("#phi-access") {
		t.Fatalf("files = %+v", files)
	}
	ms := fake.Messages()
	if len(ms) != 1 || !strings.Contains(ms[0].Text, "Unused-scope report") {
		t.Errorf("summary messages = %+v", ms)
	}
	// The report is posted before it is written (a crash between posts
	// it twice rather than never), so the upload can come before the
	// file: wait for the file too.
	path := filepath.Join(dir, "reports", files[0].Name)
	for deadline := time.Now().Add(geoPollFor); ; <-tick.C {
		_, err := os.Stat(path)
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the posted report is not on disk: %v", err)
		}
	}
}

// TestDeadLettersAPI checks that messages Slack refused are listed with
// the reason and what to do.
func TestDeadLettersAPI(t *testing.T) {
	h, p := apiFixture(t)
	at := time.Date(2026, 11, 23, 9, 0, 0, 0, time.UTC)
	ms, err := p.Store().Queue(store.Message{Channel: "#gone", Group: store.GroupKey{Kind: "broad_request", Client: "lab-portal"}, Text: "HIGH broad", Queued: at})
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Store().Bury(ms[0], "channel_not_found", at.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	rec := serve(h, http.MethodGet, "/api/v1/dead-letters", "")
	if rec.Code != http.StatusOK {
		t.Fatalf("GET /api/v1/dead-letters: %d %s", rec.Code, rec.Body)
	}
	var got []alert.DeadLetterView
	if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].Channel != "#gone" || got[0].Client != "lab-portal" || got[0].Error != "channel_not_found" ||
		!strings.Contains(got[0].Hint, "invite the bot") {
		t.Errorf("dead letters = %+v", got)
	}
}
