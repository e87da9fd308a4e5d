package slackfake

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/slack-go/slack"
)

const token = "xoxb-test-token"

func client(s *Server, tok string) *slack.Client {
	return slack.New(tok, slack.OptionAPIURL(s.APIURL()))
}

func noRejections(t *testing.T, s *Server) {
	t.Helper()
	if r := s.Rejections(); len(r) > 0 {
		t.Errorf("Rejections() = %q, want none", r)
	}
}

func section(text string) slack.Block {
	return slack.NewSectionBlock(slack.NewTextBlockObject(slack.MarkdownType, text, false, false), nil, nil)
}

func TestPostMessageWithBlocks(t *testing.T) {
	s := New(t, token)
	ctx := context.Background()
	c := client(s, token)
	if _, err := c.AuthTestContext(ctx); err != nil {
		t.Fatalf("AuthTest: %v", err)
	}
	header := slack.NewHeaderBlock(slack.NewTextBlockObject(slack.PlainTextType, "New finding", false, false))
	var stamps []string
	for range 2 {
		ch, ts, err := c.PostMessageContext(ctx, "#general",
			slack.MsgOptionText("new finding", false),
			slack.MsgOptionBlocks(header, section("*host* db1"), slack.NewDividerBlock()))
		if err != nil {
			t.Fatalf("PostMessage: %v", err)
		}
		if ch != s.ChannelID("general") || ts == "" {
			t.Errorf("PostMessage = %q, %q; want channel %q and a ts", ch, ts, s.ChannelID("general"))
		}
		stamps = append(stamps, ts)
	}
	if stamps[0] >= stamps[1] {
		t.Errorf("timestamps %q do not increase", stamps)
	}
	msgs := s.Messages()
	if len(msgs) != 2 {
		t.Fatalf("got %d messages, want 2", len(msgs))
	}
	m := msgs[0]
	var blocks []map[string]any
	if err := json.Unmarshal(m.Blocks, &blocks); err != nil {
		t.Fatalf("recorded blocks %s: %v", m.Blocks, err)
	}
	if m.Channel != "#general" || m.Text != "new finding" || m.Webhook || len(blocks) != 3 || blocks[0]["type"] != "header" {
		t.Errorf("message = %+v", m)
	}
	noRejections(t, s)
}

func TestAuthErrors(t *testing.T) {
	s := New(t, token)
	for tok, want := range map[string]string{"xoxb-wrong": "invalid_auth", "": "not_authed"} {
		_, _, err := client(s, tok).PostMessageContext(context.Background(), "#general", slack.MsgOptionText("hi", false))
		var se slack.SlackErrorResponse
		if !errors.As(err, &se) || se.Err != want {
			t.Errorf("token %q: err = %v, want %s", tok, err, want)
		}
	}
	if len(s.Messages()) != 0 || s.Requests() != 2 {
		t.Errorf("messages = %v, requests = %d", s.Messages(), s.Requests())
	}
	noRejections(t, s)
}

func TestChannels(t *testing.T) {
	s := New(t, token)
	c := client(s, token)
	post := func(ch string) error {
		_, _, err := c.PostMessageContext(context.Background(), ch, slack.MsgOptionText("hi", false))
		return err
	}
	var se slack.SlackErrorResponse
	if err := post("#alerts"); !errors.As(err, &se) || se.Err != "channel_not_found" {
		t.Errorf("unknown channel: err = %v, want channel_not_found", err)
	}
	s.AddChannel("alerts", "C0123ABCDE")
	for _, ch := range []string{"#alerts", "alerts", s.ChannelID("#alerts"), "C0123ABCDE"} {
		if err := post(ch); err != nil {
			t.Errorf("post to %q: %v", ch, err)
		}
	}
	noRejections(t, s)
}

func TestFaults(t *testing.T) {
	s := New(t, token)
	c := client(s, token)
	post := func() error {
		_, _, err := c.PostMessageContext(context.Background(), "#general", slack.MsgOptionText("hi", false))
		return err
	}
	s.Fail(1, Fault{Status: http.StatusTooManyRequests, RetryAfter: 7})
	s.Fail(2, Fault{Status: http.StatusInternalServerError})
	s.Fail(1, Fault{Error: "fatal_error"})

	var rl *slack.RateLimitedError
	if err := post(); !errors.As(err, &rl) || rl.RetryAfter != 7*time.Second {
		t.Errorf("429 fault: err = %v, want RateLimitedError after 7s", err)
	}
	for range 2 {
		var sc slack.StatusCodeError
		if err := post(); !errors.As(err, &sc) || sc.Code != http.StatusInternalServerError {
			t.Errorf("500 fault: err = %v, want StatusCodeError 500", err)
		}
	}
	// auth.test is not subject to faults, so the next fault is still queued.
	if _, err := c.AuthTest(); err != nil {
		t.Errorf("AuthTest: %v", err)
	}
	var se slack.SlackErrorResponse
	if err := post(); !errors.As(err, &se) || se.Err != "fatal_error" {
		t.Errorf("error fault: err = %v, want fatal_error", err)
	}
	if err := post(); err != nil {
		t.Errorf("after faults: %v", err)
	}
	if n := len(s.Messages()); n != 1 || s.Requests() != 6 {
		t.Errorf("got %d messages and %d requests, want 1 and 6", n, s.Requests())
	}
	noRejections(t, s)
}

func TestDown(t *testing.T) {
	s := New(t, token)
	c := client(s, token)
	s.Down(true)
	s.Fail(1, Fault{Error: "fatal_error"})
	var sc slack.StatusCodeError
	if _, err := c.AuthTest(); !errors.As(err, &sc) || sc.Code != http.StatusServiceUnavailable {
		t.Errorf("AuthTest while down: err = %v, want StatusCodeError 503", err)
	}
	if _, _, err := c.PostMessage("#general", slack.MsgOptionText("hi", false)); !errors.As(err, &sc) || sc.Code != 503 {
		t.Errorf("PostMessage while down: err = %v, want StatusCodeError 503", err)
	}
	if err := slack.PostWebhook(s.WebhookURL(), &slack.WebhookMessage{Text: "hi"}); !errors.As(err, &sc) || sc.Code != 503 {
		t.Errorf("webhook while down: err = %v, want StatusCodeError 503", err)
	}
	s.Down(false)
	if _, _, err := c.PostMessage("#general", slack.MsgOptionText("hi", false)); err == nil {
		t.Error("fault queued while down was not used after recovery")
	}
	if _, _, err := c.PostMessage("#general", slack.MsgOptionText("hi", false)); err != nil {
		t.Errorf("after recovery: %v", err)
	}
}

func TestTooManyBlocks(t *testing.T) {
	s := New(t, token)
	blocks := make([]slack.Block, 51)
	for i := range blocks {
		blocks[i] = section(fmt.Sprint("line ", i))
	}
	_, _, err := client(s, token).PostMessageContext(context.Background(), "#general", slack.MsgOptionBlocks(blocks...))
	var se slack.SlackErrorResponse
	if !errors.As(err, &se) || se.Err != "invalid_blocks" {
		t.Fatalf("err = %v, want invalid_blocks", err)
	}
	if r := s.Rejections(); len(r) != 1 || !strings.Contains(r[0], "51 blocks, over 50") {
		t.Errorf("Rejections() = %q", r)
	}
	if len(s.Messages()) != 0 {
		t.Errorf("rejected message was recorded")
	}
}

// TestValidation posts raw form bodies the way slack-go does, with the token
// as a form field, and checks what the server makes of them.
func TestValidation(t *testing.T) {
	long := func(n int) string { return strings.Repeat("é", n) }
	tests := []struct {
		text, blocks string
		code, why    string
	}{
		{text: "hi", code: ""},
		{text: long(40000), code: ""},
		{blocks: `[{"type":"markdown","text":"**bold**"},{"type":"rich_text","elements":[{}]}]`, code: ""},
		{text: "", code: "no_text", why: "neither text nor blocks"},
		{blocks: `[]`, code: "no_text", why: "neither text nor blocks"},
		{text: long(40001), code: "msg_too_long", why: "text is 40001 characters"},
		{blocks: `{"type":"divider"}`, code: "invalid_blocks", why: "not a JSON array"},
		{blocks: `[{"type":"divider"},{"type":"divider"},{"type":"divider"},{"type":"section","text":{"type":"mrkdwn","text":"` + long(3001) + `"}}]`,
			code: "invalid_blocks", why: "section block 3 text is 3001 characters, over 3000"},
		{blocks: `[{"type":"section","fields":[` + strings.Repeat(`{"type":"mrkdwn","text":"x"},`, 10) + `{"type":"mrkdwn","text":"x"}]}]`,
			code: "invalid_blocks", why: "has 11 fields, over 10"},
		{blocks: `[{"type":"section","fields":[{"type":"mrkdwn","text":"` + long(2001) + `"}]}]`,
			code: "invalid_blocks", why: "field 0 is 2001 characters, over 2000"},
		{blocks: `[{"type":"section","text":{"type":"markdown","text":"x"}}]`, code: "invalid_blocks", why: `type "markdown"`},
		{blocks: `[{"type":"header","text":{"type":"mrkdwn","text":"x"}}]`, code: "invalid_blocks", why: `header block 0 text has type "mrkdwn"`},
		{blocks: `[{"type":"header","text":{"type":"plain_text","text":"` + long(151) + `"}}]`, code: "invalid_blocks", why: "151 characters, over 150"},
		{blocks: `[{"type":"context","elements":[` + strings.Repeat(`{"type":"mrkdwn","text":"x"},`, 10) + `{"type":"mrkdwn","text":"x"}]}]`,
			code: "invalid_blocks", why: "context block 0 has 11 elements"},
		{blocks: `[{"type":"divider","block_id":"` + long(256) + `"}]`, code: "invalid_blocks", why: "block_id is 256 characters, over 255"},
		{blocks: `[{"type":"divider","block_id":"a"},{"type":"divider","block_id":"a"}]`, code: "invalid_blocks", why: "used twice"},
		{blocks: `[{"type":"table"}]`, code: "invalid_blocks", why: `unknown type "table"`},
		{blocks: `[{"type":"image","image_url":"https://example.com/x.png"}]`, code: "invalid_blocks", why: "no alt_text"},
	}
	for i, tt := range tests {
		s := New(t, token)
		form := url.Values{"token": {token}, "channel": {"#general"}, "text": {tt.text}}
		if tt.blocks != "" {
			form.Set("blocks", tt.blocks)
		}
		resp, err := http.PostForm(s.APIURL()+"chat.postMessage", form)
		if err != nil {
			t.Fatal(err)
		}
		var got struct {
			OK    bool
			Error string
		}
		err = json.NewDecoder(resp.Body).Decode(&got)
		resp.Body.Close()
		if err != nil || got.OK != (tt.code == "") || got.Error != tt.code {
			t.Errorf("case %d: got %+v (%v), want error %q", i, got, err, tt.code)
		}
		r := s.Rejections()
		if tt.code == "" && len(r) != 0 || tt.code != "" && (len(r) != 1 || !strings.Contains(r[0], tt.why)) {
			t.Errorf("case %d: Rejections() = %.200q, want one containing %q", i, r, tt.why)
		}
	}
}

func TestJSONBody(t *testing.T) {
	s := New(t, token)
	post := func(bearer, body string) (ok bool, code string) {
		req, _ := http.NewRequest(http.MethodPost, s.APIURL()+"chat.postMessage", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json; charset=utf-8")
		if bearer != "" {
			req.Header.Set("Authorization", "Bearer "+bearer)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var got struct {
			OK    bool
			Error string
		}
		if err := json.NewDecoder(resp.Body).Decode(&got); err != nil {
			t.Fatal(err)
		}
		return got.OK, got.Error
	}
	body := `{"channel":"general","blocks":[{"type":"divider"},{"type":"section","text":{"type":"plain_text","text":"x"}}]}`
	if ok, code := post(token, body); !ok {
		t.Errorf("JSON post: %s", code)
	}
	// Slack reads the token of a JSON request only from the Authorization header.
	if _, code := post("", `{"token":"`+token+`","channel":"general","text":"x"}`); code != "not_authed" {
		t.Errorf("token in JSON body: got %q, want not_authed", code)
	}
	m := s.Messages()
	if len(m) != 1 || string(m[0].Blocks) != `[{"type":"divider"},{"type":"section","text":{"type":"plain_text","text":"x"}}]` {
		t.Errorf("messages = %+v", m)
	}
	noRejections(t, s)
}

func TestUploadFile(t *testing.T) {
	s := New(t, token)
	var mu sync.Mutex
	var methods []string
	s.OnRequest(func(m string) {
		mu.Lock()
		defer mu.Unlock()
		methods = append(methods, m)
	})
	c := client(s, token)
	content := "host,rule\ndb1,ssh-bruteforce\n"
	sum, err := c.UploadFileContext(context.Background(), slack.UploadFileParameters{
		Filename: "findings.csv", Title: "Findings", Content: content, FileSize: len(content),
		Channel: s.ChannelID("#general"), InitialComment: "Weekly report",
	})
	if err != nil {
		t.Fatalf("UploadFile: %v", err)
	}
	if sum.ID == "" || sum.Title != "Findings" {
		t.Errorf("summary = %+v", sum)
	}
	want := []File{{Name: "findings.csv", Title: "Findings", Channel: s.ChannelID("general"), InitialComment: "Weekly report", Content: []byte(content)}}
	if got := s.Files(); len(got) != 1 || fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("Files() = %+v, want %+v", got, want)
	}
	mu.Lock()
	wantMethods := []string{"files.getUploadURLExternal", "upload", "files.completeUploadExternal"}
	if !slices.Equal(methods, wantMethods) {
		t.Errorf("methods = %q, want %q", methods, wantMethods)
	}
	mu.Unlock()
	noRejections(t, s)

	// Slack wants a channel id here, not a name.
	_, err = c.UploadFileContext(context.Background(), slack.UploadFileParameters{
		Filename: "a.txt", Content: "a", FileSize: 1, Channel: "#general"})
	var se slack.SlackErrorResponse
	if !errors.As(err, &se) || se.Err != "invalid_arguments" || len(s.Rejections()) != 1 {
		t.Errorf("upload to channel name: err = %v, rejections %q", err, s.Rejections())
	}
	_, err = c.UploadFileContext(context.Background(), slack.UploadFileParameters{
		Filename: "a.txt", Content: "a", FileSize: 1, Channel: "C999999999"})
	if !errors.As(err, &se) || se.Err != "channel_not_found" {
		t.Errorf("upload to unknown channel: err = %v", err)
	}
	_, err = c.CompleteUploadExternalContext(context.Background(), slack.CompleteUploadExternalParameters{
		Files: []slack.FileSummary{{ID: "F123456789"}}, Channel: s.ChannelID("general")})
	if !errors.As(err, &se) || se.Err != "file_not_found" {
		t.Errorf("complete unknown file: err = %v", err)
	}
	if len(s.Files()) != 1 {
		t.Errorf("failed uploads were recorded: %+v", s.Files())
	}
}

func TestWebhook(t *testing.T) {
	s := New(t, token)
	ctx := context.Background()
	hc := &http.Client{}
	msg := &slack.WebhookMessage{Text: "finding", Blocks: &slack.Blocks{BlockSet: []slack.Block{section("*db1*")}}}
	if err := slack.PostWebhookCustomHTTPContext(ctx, s.WebhookURL(), hc, msg); err != nil {
		t.Fatalf("PostWebhook: %v", err)
	}
	m := s.Messages()
	if len(m) != 1 || !m[0].Webhook || m[0].Text != "finding" || !strings.Contains(string(m[0].Blocks), "*db1*") {
		t.Errorf("messages = %+v", m)
	}

	s.Fail(1, Fault{Status: http.StatusTooManyRequests, RetryAfter: 3})
	var rl *slack.RateLimitedError
	if err := slack.PostWebhookCustomHTTPContext(ctx, s.WebhookURL(), hc, msg); !errors.As(err, &rl) || rl.RetryAfter != 3*time.Second {
		t.Errorf("429 fault: err = %v, want RateLimitedError after 3s", err)
	}

	var sc slack.StatusCodeError
	err := slack.PostWebhookCustomHTTPContext(ctx, s.WebhookURL()+"YYYY", hc, msg)
	if !errors.As(err, &sc) || sc.Code != http.StatusNotFound {
		t.Errorf("wrong path: err = %v, want 404", err)
	}
	noRejections(t, s)
	err = slack.PostWebhookCustomHTTPContext(ctx, s.WebhookURL(), hc, &slack.WebhookMessage{})
	if !errors.As(err, &sc) || sc.Code != http.StatusBadRequest || len(s.Rejections()) != 1 {
		t.Errorf("empty message: err = %v, rejections %q", err, s.Rejections())
	}
	if len(s.Messages()) != 1 {
		t.Errorf("got %d messages, want 1", len(s.Messages()))
	}
}

func TestUnknownMethod(t *testing.T) {
	s := New(t, token)
	resp, err := http.PostForm(s.APIURL()+"chat.postMesage", url.Values{"token": {token}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound || len(s.Rejections()) != 1 {
		t.Errorf("status %d, rejections %q", resp.StatusCode, s.Rejections())
	}
}

func TestConcurrentPosts(t *testing.T) {
	s := New(t, token)
	c := client(s, token)
	release := make(chan struct{})
	var arrived sync.WaitGroup
	arrived.Add(8)
	s.OnRequest(func(string) { arrived.Done(); <-release })
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			if _, _, err := c.PostMessage("#general", slack.MsgOptionText(fmt.Sprint(i), false)); err != nil {
				t.Error(err)
			}
		})
	}
	arrived.Wait() // all eight are in the server at once
	if n := s.Requests(); n != 8 {
		t.Errorf("Requests() = %d while blocked, want 8", n)
	}
	close(release)
	wg.Wait()
	if n := len(s.Messages()); n != 8 {
		t.Errorf("got %d messages, want 8", n)
	}
}
