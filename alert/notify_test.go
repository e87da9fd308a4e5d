package alert

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/scopewatch/scopewatch/rules"
	"github.com/scopewatch/scopewatch/store"
)

var updateGolden = flag.Bool("update", false, "rewrite the golden Slack messages in testdata/slack")

// handClock is a clock tests move by hand.
type handClock struct{ t time.Time }

// t0 is the time the notifier tests start at.
var t0 = time.Date(2026, 3, 1, 10, 15, 42, 0, time.UTC)

func (c *handClock) Now() time.Time          { return c.t }
func (c *handClock) Advance(d time.Duration) { c.t = c.t.Add(d) }

func openStore(t *testing.T, path string) *store.DB {
	t.Helper()
	db, err := store.Open(path, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	return db
}

// change commits findings and marks their groups at, as detect does.
func change(t *testing.T, db *store.DB, at time.Time, fs ...store.Finding) {
	t.Helper()
	b := store.NewBatch()
	for _, f := range fs {
		b.Findings[f.FindingKey] = f
		b.Notify[store.Of(f.FindingKey)] = at
	}
	if err := db.Commit(b); err != nil {
		t.Fatal(err)
	}
}

func testSlackConfig() rules.Slack {
	return rules.Slack{
		Channel:          "#phi-access",
		SeverityChannels: map[string]string{"high": "#sec-oncall"},
		MinSeverity:      "info",
		Kinds:            rules.FindingKinds(),
		GroupWait:        rules.DefaultGroupWait,
		GroupInterval:    rules.DefaultGroupInterval,
		RepeatInterval:   rules.DefaultRepeatInterval,
		SendResolved:     true,
	}
}

func testRules() *rules.Rules {
	return &rules.Rules{Clients: map[string]rules.Client{
		"lab-portal": {Role: "lab-technician", Owner: "lab-team", Channel: "#lab-team"},
	}}
}

func broad(subject, sev, state string, at time.Time) store.Finding {
	return store.Finding{
		FindingKey: store.FindingKey{Kind: "broad_request", Client: "lab-portal", Subject: subject},
		Severity:   sev, State: state, Summary: "The client asked for " + subject + ".",
		First: at, Last: at, Count: 1, Opened: at, Changed: at,
	}
}

// outboxTexts returns channel and header of every queued message.
func outbox(t *testing.T, db *store.DB) []store.Message {
	t.Helper()
	ms, err := db.Outbox(0, 0)
	if err != nil {
		t.Fatal(err)
	}
	return ms
}

// TestNotifierTimers walks one group through Alertmanager's timers: the
// first message after group_wait with everything raised meanwhile, a
// graver finding after group_interval and routed by severity, a repeat
// after repeat_interval, a resolved notice, and silence.
func TestNotifierTimers(t *testing.T) {
	db := openStore(t, filepath.Join(t.TempDir(), "s.db"))
	clk := &handClock{t: t0}
	var queued int
	n := NewNotifier(NotifierOptions{Store: db, Slack: testSlackConfig(), Rules: testRules(), Now: clk.Now,
		Queued: func(ms []store.Message) { queued += len(ms) }})
	flush := func() time.Time {
		t.Helper()
		next, err := n.Flush()
		if err != nil {
			t.Fatal(err)
		}
		return next
	}

	wild := broad("patient/*.read", store.SeverityWarning, store.StateOpen, t0)
	change(t, db, t0, wild)
	if next := flush(); !next.Equal(t0.Add(30 * time.Second)) {
		t.Errorf("next due = %v, want group_wait after the change", next)
	}
	clk.Advance(10 * time.Second)
	many := broad("too many scopes", store.SeverityWarning, store.StateOpen, clk.t)
	change(t, db, clk.t, many)
	flush()
	if got := outbox(t, db); len(got) != 0 {
		t.Fatalf("%d messages before group_wait", len(got))
	}
	clk.Advance(20 * time.Second)
	if next := flush(); !next.Equal(clk.t.Add(4 * time.Hour)) {
		// Without a poke from a commit, the reminder must still be timed.
		t.Errorf("next due after the first message = %v, want its repeat at %v", next, clk.t.Add(4*time.Hour))
	}
	ms := outbox(t, db)
	if len(ms) != 1 || ms[0].Channel != "#lab-team" || queued != 1 {
		t.Fatalf("after group_wait: %d messages (queued %d), want 1 to the owner's channel: %+v", len(ms), queued, ms)
	}
	if !strings.Contains(ms[0].Text, "patient/*.read") || !strings.Contains(ms[0].Text, "too many scopes") {
		t.Errorf("first message does not tell both findings:\n%s", ms[0].Text)
	}

	// Graver: held until group_interval after the first message, then
	// routed to the high-severity channel.
	clk.Advance(time.Minute)
	wild.Severity = store.SeverityHigh
	change(t, db, clk.t, wild)
	if next := flush(); !next.Equal(t0.Add(30*time.Second + 5*time.Minute)) {
		t.Errorf("next due after a change = %v, want group_interval after the last message", next)
	}
	clk.t = t0.Add(30*time.Second + 5*time.Minute)
	flush()
	ms = outbox(t, db)
	if len(ms) != 2 || ms[1].Channel != "#sec-oncall" || !strings.Contains(ms[1].Text, "HIGH") {
		t.Fatalf("after the severity rose: %+v", ms)
	}
	var blocks []map[string]any
	if err := json.Unmarshal(ms[1].Blocks, &blocks); err != nil {
		t.Fatal(err)
	}
	if b, _ := json.Marshal(blocks); !strings.Contains(string(b), "1 more finding(s) of this group still open") {
		t.Errorf("second message does not mention the standing finding: %s", b)
	}

	// Nothing changes: a reminder after repeat_interval, not before.
	if next := flush(); !next.Equal(clk.t.Add(4 * time.Hour)) {
		t.Errorf("next due with standing findings = %v, want repeat_interval later", next)
	}
	clk.Advance(4 * time.Hour)
	flush()
	ms = outbox(t, db)
	if len(ms) != 3 || !strings.Contains(ms[2].Text, "still open") {
		t.Fatalf("after repeat_interval: %+v", ms)
	}

	// One resolves: a resolved notice; then the other is silenced: said
	// nothing, and the group is forgotten.
	clk.Advance(time.Hour)
	many.State, many.Resolved = store.StateResolved, clk.t
	change(t, db, clk.t, many)
	clk.Advance(5 * time.Minute)
	flush()
	ms = outbox(t, db)
	if len(ms) != 4 || !strings.Contains(ms[3].Text, "too many scopes") {
		t.Fatalf("after resolving: %+v", ms)
	}
	clk.Advance(time.Hour)
	wild.State, wild.Silence = store.StateSilenced, "s1"
	change(t, db, clk.t, wild)
	clk.Advance(5 * time.Minute)
	if next := flush(); !next.IsZero() {
		t.Errorf("next due after the last finding was silenced = %v, want none", next)
	}
	if len(outbox(t, db)) != 4 {
		t.Errorf("a silenced finding was told")
	}
	if gs, _ := db.Groups(); len(gs) != 0 {
		t.Errorf("groups left = %+v", gs)
	}
}

// TestNotifierFilters checks min_severity, kinds and send_resolved, and
// that a finding opened and resolved within group_wait is never told.
func TestNotifierFilters(t *testing.T) {
	db := openStore(t, filepath.Join(t.TempDir(), "s.db"))
	clk := &handClock{t: t0}
	cfg := testSlackConfig()
	cfg.MinSeverity = "warning"
	cfg.Kinds = []string{"broad_request", "unfamiliar_geo"}
	cfg.SendResolved = false
	n := NewNotifier(NotifierOptions{Store: db, Slack: cfg, Rules: testRules(), Now: clk.Now})

	info := broad("openid", store.SeverityInfo, store.StateOpen, t0)
	unused := store.Finding{FindingKey: store.FindingKey{Kind: "unused_scope", Client: "lab-portal", Subject: "admin"},
		Severity: store.SeverityWarning, State: store.StateOpen, Summary: "unused", Opened: t0}
	blip := store.Finding{FindingKey: store.FindingKey{Kind: "unfamiliar_geo", Client: "lab-portal", Subject: "KP"},
		Severity: store.SeverityHigh, State: store.StateOpen, Summary: "KP", Opened: t0}
	change(t, db, t0, info, unused, blip)
	clk.Advance(10 * time.Second)
	blip.State = store.StateResolved
	change(t, db, clk.t, blip)
	clk.Advance(time.Minute)
	if _, err := n.Flush(); err != nil {
		t.Fatal(err)
	}
	if ms := outbox(t, db); len(ms) != 0 {
		t.Errorf("told %d messages, want none (info below min, kind not chosen, resolved before group_wait): %+v", len(ms), ms)
	}

	// A told finding that resolves is not told again with send_resolved off.
	warn := broad("admin", store.SeverityWarning, store.StateOpen, clk.t)
	change(t, db, clk.t, warn)
	clk.Advance(time.Minute)
	n.Flush()
	warn.State = store.StateResolved
	change(t, db, clk.t, warn)
	clk.Advance(time.Hour)
	n.Flush()
	if ms := outbox(t, db); len(ms) != 1 {
		t.Errorf("with send_resolved off: %d messages, want the opening only", len(ms))
	}
}

// TestRenderGolden compares the Block Kit JSON of a representative
// message with testdata/slack; -update rewrites it.
func TestRenderGolden(t *testing.T) {
	at := time.Date(2026, 11, 20, 14, 3, 0, 0, time.UTC)
	geo := store.Finding{
		FindingKey: store.FindingKey{Kind: "unfamiliar_geo", Client: "lab-portal", Subject: "KP"},
		Severity:   store.SeverityHigh, State: store.StateOpen, Count: 3, First: at, Last: at.Add(2 * time.Hour),
		Summary: "The client was used from KP, a denied country.",
		Evidence: store.Evidence{Country: "KP", ASN: 131279, Network: "175.45.176.0/24", IP: "175.45.176.9",
			Subject: "p-3f2a9c0d1e7b4a5c6d8e9f0a1b2c3d4e", Lines: []store.LineRef{{Source: "keycloak", Path: "/var/log/keycloak/keycloak.log", Line: 48213}}},
	}
	other := geo
	other.Subject, other.Severity, other.Summary = "BR", store.SeverityWarning, "The client was used from BR, a country outside the client's baseline <new>."
	other.Evidence.Country, other.Evidence.Network, other.Evidence.IP = "BR", "", ""
	gone := geo
	gone.Subject, gone.State, gone.Summary = "RU", store.StateResolved, "The client was used from RU, a country outside the client's baseline."
	unused := store.Finding{
		FindingKey: store.FindingKey{Kind: "unused_scope", Client: "billing app", Subject: "patient/*.read"},
		Severity:   store.SeverityInfo, State: store.StateOpen, Count: 1, First: at, Last: at,
		Summary:  "billing app uses only part of patient/*.read; patient/Observation.rs would do.",
		Evidence: store.Evidence{Narrower: []string{"patient/Observation.rs"}, LastGrant: at, LastUse: at.Add(-24 * time.Hour)},
	}
	cases := map[string]*GroupNotice{
		"geo": {Group: store.Of(geo.FindingKey), Client: rules.Client{Owner: "lab-team", Role: "lab-technician"},
			New: []store.Finding{geo, other}, Resolved: []store.Finding{gone}, HideAddresses: true},
		"unused": {Group: store.Of(unused.FindingKey), New: []store.Finding{unused}},
	}
	for name, n := range cases {
		t.Run(name, func(t *testing.T) {
			m := Render(n)
			var pretty bytes.Buffer
			if err := json.Indent(&pretty, m.Blocks, "", "  "); err != nil {
				t.Fatal(err)
			}
			got := "text: " + m.Text + "\n\n" + pretty.String() + "\n"
			path := filepath.Join("..", "testdata", "slack", name+".golden")
			if *updateGolden {
				if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if got != string(want) {
				t.Errorf("message differs from %s (rerun with -update after checking):\n%s", path, got)
			}
			if strings.Contains(got, "175.45.176.9") && n.HideAddresses {
				t.Error("the address is shown although addresses are hidden")
			}
		})
	}
}

// TestRenderLimits checks that a group too big for one message stays
// within Slack's block and text limits.
func TestRenderLimits(t *testing.T) {
	var fs []store.Finding
	for i := range 200 {
		f := broad(strings.Repeat("x", 5000)+string(rune('a'+i%26)), store.SeverityWarning, store.StateOpen, t0)
		f.Summary = strings.Repeat("long summary ", 400)
		fs = append(fs, f)
	}
	m := Render(&GroupNotice{Group: store.Of(fs[0].FindingKey), New: fs, Resolved: fs[:50]})
	var blocks []struct {
		Type string `json:"type"`
		Text *struct {
			Text string `json:"text"`
		} `json:"text"`
	}
	if err := json.Unmarshal(m.Blocks, &blocks); err != nil {
		t.Fatal(err)
	}
	if len(blocks) > maxBlocks {
		t.Errorf("%d blocks, over Slack's %d", len(blocks), maxBlocks)
	}
	for i, b := range blocks {
		if b.Text != nil && len([]rune(b.Text.Text)) > maxSectionText {
			t.Errorf("block %d (%s) has %d characters", i, b.Type, len([]rune(b.Text.Text)))
		}
	}
	if len([]rune(m.Text)) > maxText {
		t.Errorf("text has %d characters, over %d", len([]rune(m.Text)), maxText)
	}
	if !strings.Contains(string(m.Blocks), "and 190 more") {
		t.Errorf("the findings beyond the first %d are not counted", maxListed)
	}
}

// TestRenderEscapesLogData checks that a client id or summary from a log
// cannot inject Slack markup (mentions, links) into a message.
func TestRenderEscapesLogData(t *testing.T) {
	f := broad("admin", store.SeverityHigh, store.StateOpen, t0)
	f.Client = "<!here|x>&"
	f.Summary = "The client <!channel> asked for admin."
	m := Render(&GroupNotice{Group: store.Of(f.FindingKey), New: []store.Finding{f}})
	var blocks []map[string]any
	if err := json.Unmarshal(m.Blocks, &blocks); err != nil {
		t.Fatal(err)
	}
	var texts []string
	for _, b := range blocks {
		if b["type"] == "header" {
			continue // plain text: Slack does not parse markup there
		}
		raw, _ := json.Marshal(b)
		var decoded any
		_ = json.Unmarshal(raw, &decoded)
		texts = append(texts, fmt.Sprint(decoded))
	}
	for _, s := range append(texts, m.Text) {
		if strings.Contains(s, "<!here") || strings.Contains(s, "<!channel>") {
			t.Errorf("unescaped markup in %q", s)
		}
	}
}
