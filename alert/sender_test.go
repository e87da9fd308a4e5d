package alert

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/scopewatch/scopewatch/alert/slackfake"
	"github.com/scopewatch/scopewatch/store"
)

const testToken = "xoxb-test-0000-token"

func newTestSender(t *testing.T, db OutboxStore, fake *slackfake.Server, clk *handClock) *Sender {
	t.Helper()
	return NewSender(SenderOptions{
		Store:  db,
		Poster: NewSlack(SlackOptions{Token: testToken, APIURL: fake.APIURL()}),
		Now:    clk.Now, Jitter: func() float64 { return 0.5 },
	})
}

// step loads the outbox and sends what may go now, returning the wait
// until more may.
func step(t *testing.T, s *Sender) time.Duration {
	t.Helper()
	if err := s.load(); err != nil {
		t.Fatal(err)
	}
	wait, err := s.sendReady(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return wait
}

func queueTexts(t *testing.T, db *store.DB, channel string, texts ...string) {
	t.Helper()
	for _, text := range texts {
		if _, err := db.Queue(store.Message{Channel: channel, Text: text, Queued: t0}); err != nil {
			t.Fatal(err)
		}
	}
}

func sentTo(fake *slackfake.Server, channel string) []string {
	var out []string
	for _, m := range fake.Messages() {
		if m.Channel == channel {
			out = append(out, m.Text)
		}
	}
	return out
}

// TestSenderPacesEachChannel checks the token bucket: a burst of three,
// then one a second, per channel, and each channel in queue order.
func TestSenderPacesEachChannel(t *testing.T) {
	db := openStore(t, filepath.Join(t.TempDir(), "s.db"))
	fake := slackfake.New(t, testToken)
	fake.AddChannel("#a", "#b")
	clk := &handClock{t: t0}
	s := newTestSender(t, db, fake, clk)
	queueTexts(t, db, "#a", "a1", "a2", "a3", "a4", "a5", "a6")
	queueTexts(t, db, "#b", "b1", "b2")

	if wait := step(t, s); wait != time.Second {
		t.Errorf("wait after the burst = %v, want 1s", wait)
	}
	if got := strings.Join(sentTo(fake, "#a"), " "); got != "a1 a2 a3" {
		t.Errorf("#a after the burst: %s", got)
	}
	if got := strings.Join(sentTo(fake, "#b"), " "); got != "b1 b2" {
		t.Errorf("#b: %s", got)
	}
	clk.Advance(500 * time.Millisecond)
	step(t, s)
	if n := len(sentTo(fake, "#a")); n != 3 {
		t.Errorf("%d sent to #a half a second later, want still 3", n)
	}
	clk.Advance(500 * time.Millisecond)
	step(t, s)
	clk.Advance(2 * time.Second)
	if wait := step(t, s); wait != -1 {
		t.Errorf("wait with nothing queued = %v, want -1", wait)
	}
	if got := strings.Join(sentTo(fake, "#a"), " "); got != "a1 a2 a3 a4 a5 a6" {
		t.Errorf("#a: %s", got)
	}
	if left, _ := db.Outbox(0, 0); len(left) != 0 {
		t.Errorf("outbox still holds %d", len(left))
	}
	if got := testutil.ToFloat64(s.opt.Metrics.Sent); got != 8 {
		t.Errorf("sent counter = %v", got)
	}
}

// TestSenderRetries checks Retry-After on a 429, jittered exponential
// backoff on 5xx, and that the channel's later messages wait their turn.
func TestSenderRetries(t *testing.T) {
	db := openStore(t, filepath.Join(t.TempDir(), "s.db"))
	fake := slackfake.New(t, testToken)
	clk := &handClock{t: t0}
	s := newTestSender(t, db, fake, clk)
	queueTexts(t, db, "#general", "m1", "m2")

	fake.Fail(1, slackfake.Fault{Status: 429, RetryAfter: 7})
	if wait := step(t, s); wait != 7*time.Second {
		t.Errorf("wait after 429 Retry-After 7 = %v", wait)
	}
	if len(fake.Messages()) != 0 {
		t.Fatal("m2 overtook m1")
	}
	clk.Advance(7 * time.Second)
	fake.Fail(3, slackfake.Fault{Status: 500})
	// The 429 was the first failure; then 2s, 4s, 8s doubling, at the
	// jitter's middle: 0.75 of each.
	for i, want := range []time.Duration{1500 * time.Millisecond, 3 * time.Second, 6 * time.Second} {
		if wait := step(t, s); wait != want {
			t.Errorf("backoff %d = %v, want %v", i+1, wait, want)
		}
		clk.Advance(want)
	}
	step(t, s)
	clk.Advance(time.Second)
	step(t, s)
	if got := strings.Join(sentTo(fake, "#general"), " "); got != "m1 m2" {
		t.Errorf("delivered %q, want m1 m2 in order", got)
	}
	m := s.opt.Metrics
	if r, e := testutil.ToFloat64(m.Retries.WithLabelValues("rate_limited")), testutil.ToFloat64(m.Retries.WithLabelValues("server_error")); r != 1 || e != 3 {
		t.Errorf("retries: rate_limited %v, server_error %v; want 1 and 3", r, e)
	}

	// The backoff is capped.
	if d := s.backoff(30); d > s.opt.MaxBackoff || d < s.opt.MaxBackoff/2 {
		t.Errorf("backoff after 30 failures = %v, want within the 5m cap", d)
	}
}

// TestSenderDeadLetters checks that a permanent refusal moves the message
// to the dead letters and lets the channel's next message go.
func TestSenderDeadLetters(t *testing.T) {
	db := openStore(t, filepath.Join(t.TempDir(), "s.db"))
	fake := slackfake.New(t, testToken)
	clk := &handClock{t: t0}
	s := newTestSender(t, db, fake, clk)
	queueTexts(t, db, "#general", "first")
	queueTexts(t, db, "#nowhere", "lost")
	queueTexts(t, db, "#general", "second")
	fake.Fail(1, slackfake.Fault{Error: "invalid_auth"})

	step(t, s)
	clk.Advance(time.Second)
	step(t, s)
	dl, err := db.DeadLetters()
	if err != nil || len(dl) != 2 {
		t.Fatalf("dead letters = %+v, %v", dl, err)
	}
	reasons := dl[0].Error + " " + dl[1].Error
	if !strings.Contains(reasons, "channel_not_found") || !strings.Contains(reasons, "invalid_auth") {
		t.Errorf("dead letter reasons = %q", reasons)
	}
	if got := strings.Join(sentTo(fake, "#general"), " "); got != "second" {
		t.Errorf("delivered %q, want the message after the refused one", got)
	}
	m := s.opt.Metrics
	if c, a := testutil.ToFloat64(m.DeadLetters.WithLabelValues("channel")), testutil.ToFloat64(m.DeadLetters.WithLabelValues("auth")); c != 1 || a != 1 {
		t.Errorf("dead letter metrics: channel %v auth %v", c, a)
	}
	if p := testutil.ToFloat64(m.Pending); p != 0 {
		t.Errorf("pending = %v", p)
	}
}

// crashingStore fails Delivered once, as a process killed between Slack's
// answer and the outbox update would.
type crashingStore struct {
	*store.DB
	crash bool
}

var errCrash = errors.New("killed")

func (c *crashingStore) Delivered(seq uint64) error {
	if c.crash {
		c.crash = false
		return errCrash
	}
	return c.DB.Delivered(seq)
}

// TestOutageWithRestarts runs an hour of findings against a Slack that is
// down, with two restarts of the notifier and sender in the middle (the
// store closed and opened again), one of them a crash right after Slack
// accepted a message. When Slack returns, every notification arrives, in
// order per channel, and the only duplicate is the message of the crash
// window.
func TestOutageWithRestarts(t *testing.T) {
	path := filepath.Join(t.TempDir(), "s.db")
	db, err := store.Open(path, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	fake := slackfake.New(t, testToken)
	fake.AddChannel("#phi-access", "#lab-team", "#sec-oncall")
	clk := &handClock{t: t0}
	cs := &crashingStore{DB: db}
	start := func() (*Notifier, *Sender) {
		n := NewNotifier(NotifierOptions{Store: cs.DB, Slack: testSlackConfig(), Rules: testRules(), Now: clk.Now})
		return n, newTestSender(t, cs, fake, clk)
	}
	restart := func() (*Notifier, *Sender) {
		if err := cs.DB.Close(); err != nil {
			t.Fatal(err)
		}
		db, err := store.Open(path, store.Options{})
		if err != nil {
			t.Fatal(err)
		}
		cs.DB = db
		return start()
	}
	n, s := start()
	run := func() {
		t.Helper()
		if _, err := n.Flush(); err != nil {
			t.Fatal(err)
		}
		if err := s.load(); err != nil {
			t.Fatal(err)
		}
		if _, err := s.sendReady(context.Background()); err != nil && !errors.Is(err, errCrash) {
			t.Fatal(err)
		}
	}

	// Before the outage one message goes through and the next crashes
	// right after Slack took it.
	change(t, cs.DB, clk.t, broad("admin", store.SeverityHigh, store.StateOpen, clk.t))
	clk.Advance(time.Minute)
	run()
	if len(fake.Messages()) != 1 {
		t.Fatalf("before the outage: %d messages", len(fake.Messages()))
	}
	other := store.Finding{FindingKey: store.FindingKey{Kind: "unused_scope", Client: "billing", Subject: "user/*.*"},
		Severity: store.SeverityWarning, State: store.StateOpen, Summary: "billing holds user/*.* and has never used it.", Opened: clk.t}
	change(t, cs.DB, clk.t, other)
	clk.Advance(time.Minute)
	cs.crash = true
	run()
	n, s = restart()

	// The outage: a new finding on another client every five minutes,
	// restarted once more halfway.
	fake.Down(true)
	for i := range 12 {
		f := store.Finding{FindingKey: store.FindingKey{Kind: "unfamiliar_geo", Client: fmt.Sprintf("client-%02d", i), Subject: "KP"},
			Severity: store.SeverityWarning, State: store.StateOpen, Summary: fmt.Sprintf("client-%02d was used from KP.", i), Opened: clk.t}
		change(t, cs.DB, clk.t, f)
		for range 30 {
			clk.Advance(10 * time.Second)
			run()
		}
		if i == 6 {
			n, s = restart()
		}
	}
	if got := len(fake.Messages()); got != 2 {
		t.Fatalf("%d messages during the outage", got)
	}
	queued, _ := cs.DB.Outbox(0, 0)
	if len(queued) != 13 {
		t.Fatalf("outbox holds %d messages after the outage, want 12 and the one of the crash window", len(queued))
	}

	fake.Down(false)
	for range 60 {
		clk.Advance(5 * time.Second)
		run()
	}
	if left, _ := cs.DB.Outbox(0, 0); len(left) != 0 {
		t.Fatalf("%d messages still queued after Slack returned", len(left))
	}
	var got []string
	seen := map[string]int{}
	for _, m := range fake.Messages() {
		got = append(got, m.Channel+" "+firstLine(m.Text))
		seen[m.Text]++
	}
	want := []string{"#sec-oncall :red_circle: HIGH · broad scope request · lab-portal",
		"#phi-access :large_orange_circle: WARNING · unused scope · billing",
		"#phi-access :large_orange_circle: WARNING · unused scope · billing"}
	for i := range 12 {
		want = append(want, fmt.Sprintf("#phi-access :large_orange_circle: WARNING · unfamiliar geography · client-%02d", i))
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("delivered:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	for text, k := range seen {
		if k > 1 && !strings.Contains(text, "billing") {
			t.Errorf("duplicated outside the crash window: %q", firstLine(text))
		}
	}
	if r := fake.Rejections(); len(r) != 0 {
		t.Errorf("Slack rejected: %v", r)
	}
	if err := cs.DB.Close(); err != nil {
		t.Fatal(err)
	}
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\n")
	return line
}

// TestWebhookPoster checks delivery through an incoming webhook: blocks
// arrive, a 429 is retried after Retry-After, a wrong URL is permanent,
// and no error repeats the webhook URL, which is a secret.
func TestWebhookPoster(t *testing.T) {
	fake := slackfake.New(t, testToken)
	p := NewSlack(SlackOptions{Webhook: fake.WebhookURL()})
	m := Render(&GroupNotice{Group: store.GroupKey{Kind: "broad_request", Client: "lab-portal"},
		New: []store.Finding{broad("admin", store.SeverityHigh, store.StateOpen, t0)}})
	m.Channel = WebhookChannel
	if _, _, err := p.Post(t.Context(), m); err != nil {
		t.Fatal(err)
	}
	got := fake.Messages()
	if len(got) != 1 || !got[0].Webhook || !strings.Contains(string(got[0].Blocks), "lab-portal") {
		t.Fatalf("webhook messages = %+v", got)
	}

	fake.Fail(1, slackfake.Fault{Status: 429, RetryAfter: 3})
	_, _, err := p.Post(t.Context(), m)
	var se *SendError
	if !errors.As(err, &se) || !se.Retry || se.After != 3*time.Second {
		t.Errorf("429 from the webhook: %#v", err)
	}

	wrong := NewSlack(SlackOptions{Webhook: fake.WebhookURL() + "x"})
	_, _, err = wrong.Post(t.Context(), m)
	if !errors.As(err, &se) || se.Retry || se.Reason != "http_404" {
		t.Errorf("a wrong webhook URL: %#v", err)
	}
	if strings.Contains(err.Error(), "/services/") {
		t.Errorf("the error repeats the webhook URL: %v", err)
	}
	if r := fake.Rejections(); len(r) != 0 {
		t.Errorf("rejections: %v", r)
	}

	// Nothing listens on port 9 of localhost: a network error, retried,
	// without the URL.
	down := NewSlack(SlackOptions{Webhook: "http://127.0.0.1:9/services/T000/B000/secretpath"})
	_, _, err = down.Post(t.Context(), m)
	if !errors.As(err, &se) || !se.Retry || se.Reason != "network" || strings.Contains(err.Error(), "secretpath") {
		t.Errorf("an unreachable webhook: %v", err)
	}
}
