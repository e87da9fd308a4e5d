package alert

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/slack-go/slack"

	"github.com/scopewatch/scopewatch/store"
)

// SendError is a failed delivery, classified for the sender: Retry says
// whether the same message may succeed later, After how long Slack asked
// to wait (0: back off by our own schedule), and Reason is Slack's error
// code or a short description, free of the message's content and the
// token.
type SendError struct {
	Retry  bool
	After  time.Duration
	Reason string
	Err    error
}

// Error says why the message was not sent.
func (e *SendError) Error() string { return e.Reason + ": " + e.Err.Error() }

// Unwrap returns the underlying error.
func (e *SendError) Unwrap() error { return e.Err }

// Slack delivers messages through the Slack Web API with a bot token, or
// through an incoming webhook.
type Slack struct {
	api     *slack.Client
	webhook string
	http    *http.Client

	mu  sync.Mutex
	ids map[string]string // channel name → id, learnt from posts
}

// SlackOptions configures a Slack poster. Exactly one of Token and
// Webhook is set.
type SlackOptions struct {
	Token   string
	Webhook string
	// APIURL is the Web API base, https://slack.com/api/ by default.
	APIURL string
	// Timeout bounds one request; default 30s.
	Timeout time.Duration
}

// NewSlack returns a poster. It makes no request.
func NewSlack(opt SlackOptions) *Slack {
	if opt.Timeout <= 0 {
		opt.Timeout = 30 * time.Second
	}
	hc := &http.Client{Timeout: opt.Timeout}
	s := &Slack{webhook: opt.Webhook, http: hc, ids: make(map[string]string)}
	if opt.Token != "" {
		opts := []slack.Option{slack.OptionHTTPClient(hc)}
		if opt.APIURL != "" {
			opts = append(opts, slack.OptionAPIURL(opt.APIURL))
		}
		// No slack-go retries: the sender owns retrying, pacing and
		// backoff across restarts.
		s.api = slack.New(opt.Token, opts...)
	}
	return s
}

// Post delivers m: a message with its blocks, or, when m has a file, the
// file with the message's text as its comment. It returns the channel id
// and timestamp Slack gave (empty for a webhook).
func (s *Slack) Post(ctx context.Context, m store.Message) (channelID, ts string, err error) {
	if s.api == nil {
		return "", "", classify(s.postWebhook(ctx, m))
	}
	if m.File != nil {
		id, err := s.channelID(ctx, m.Channel)
		if err != nil {
			return "", "", classify(err)
		}
		_, err = s.api.UploadFileContext(ctx, slack.UploadFileParameters{
			Filename:       m.File.Name,
			Title:          m.File.Title,
			Content:        string(m.File.Content),
			FileSize:       len(m.File.Content),
			Channel:        id,
			InitialComment: m.Text,
		})
		return id, "", classify(err)
	}
	opts := []slack.MsgOption{slack.MsgOptionText(m.Text, false)}
	if len(m.Blocks) > 0 {
		var blocks slack.Blocks
		if err := json.Unmarshal(m.Blocks, &blocks); err != nil {
			return "", "", &SendError{Reason: "invalid_blocks", Err: fmt.Errorf("decode stored blocks: %w", err)}
		}
		opts = append(opts, slack.MsgOptionBlocks(blocks.BlockSet...))
	}
	channelID, ts, err = s.api.PostMessageContext(ctx, m.Channel, opts...)
	if err != nil {
		return "", "", classify(err)
	}
	s.mu.Lock()
	s.ids[m.Channel] = channelID
	s.mu.Unlock()
	return channelID, ts, nil
}

func (s *Slack) postWebhook(ctx context.Context, m store.Message) error {
	msg := &slack.WebhookMessage{Text: m.Text}
	if m.File != nil {
		// A webhook cannot carry files; the text says where it is.
		return slack.PostWebhookCustomHTTPContext(ctx, s.webhook, s.http, msg)
	}
	if len(m.Blocks) > 0 {
		var blocks slack.Blocks
		if err := json.Unmarshal(m.Blocks, &blocks); err != nil {
			return &SendError{Reason: "invalid_blocks", Err: fmt.Errorf("decode stored blocks: %w", err)}
		}
		msg.Blocks = &blocks
	}
	return slack.PostWebhookCustomHTTPContext(ctx, s.webhook, s.http, msg)
}

// channelID resolves a channel name to the id files.completeUploadExternal
// needs: from an earlier post to it, or by listing the conversations the
// bot can see.
func (s *Slack) channelID(ctx context.Context, name string) (string, error) {
	s.mu.Lock()
	id, ok := s.ids[name]
	s.mu.Unlock()
	if ok {
		return id, nil
	}
	bare := strings.TrimPrefix(name, "#")
	if bare != name || strings.ToLower(bare) == bare {
		// A name, not an id: look it up.
		params := &slack.GetConversationsParameters{Types: []string{"public_channel", "private_channel"}, ExcludeArchived: true, Limit: 1000}
		for {
			chans, cursor, err := s.api.GetConversationsContext(ctx, params)
			if err != nil {
				return "", err
			}
			for _, c := range chans {
				if c.Name == bare {
					s.mu.Lock()
					s.ids[name] = c.ID
					s.mu.Unlock()
					return c.ID, nil
				}
			}
			if cursor == "" {
				return "", slack.SlackErrorResponse{Err: "channel_not_found"}
			}
			params.Cursor = cursor
		}
	}
	return name, nil
}

// Test checks the token (auth.test) and returns the workspace and bot
// user it belongs to; a webhook cannot be checked without posting.
func (s *Slack) Test(ctx context.Context) (team, user string, err error) {
	if s.api == nil {
		return "", "", nil
	}
	r, err := s.api.AuthTestContext(ctx)
	if err != nil {
		return "", "", classify(err)
	}
	return r.Team, r.User, nil
}

// retryable are the Slack error codes a later retry can cure; every other
// code is permanent.
var retryable = map[string]bool{
	"ratelimited":         true,
	"rate_limited":        true,
	"internal_error":      true,
	"fatal_error":         true,
	"service_unavailable": true,
	"request_timeout":     true,
}

// classify turns a slack-go error into a *SendError (nil stays nil).
func classify(err error) error {
	if err == nil {
		return nil
	}
	var se *SendError
	if errors.As(err, &se) {
		return se
	}
	var rl *slack.RateLimitedError
	if errors.As(err, &rl) {
		return &SendError{Retry: true, After: rl.RetryAfter, Reason: "rate_limited", Err: err}
	}
	var sc slack.StatusCodeError
	if errors.As(err, &sc) {
		switch {
		case sc.Code == http.StatusTooManyRequests:
			return &SendError{Retry: true, Reason: "rate_limited", Err: err}
		case sc.Code >= 500:
			return &SendError{Retry: true, Reason: fmt.Sprintf("http_%d", sc.Code), Err: err}
		case sc.Code == http.StatusRequestTimeout:
			return &SendError{Retry: true, Reason: "http_408", Err: err}
		}
		// A webhook's 400 (invalid_payload), 403 (action_prohibited),
		// 404 (no_service) or 410 (channel_is_archived) will not change.
		return &SendError{Reason: fmt.Sprintf("http_%d", sc.Code), Err: err}
	}
	var ser slack.SlackErrorResponse
	if errors.As(err, &ser) {
		return &SendError{Retry: retryable[ser.Err], Reason: ser.Err, Err: err}
	}
	// Network errors, timeouts and unreadable answers: try again. A
	// *url.Error names the URL, and a webhook URL is a secret: keep only
	// what went wrong.
	var ue *url.Error
	if errors.As(err, &ue) {
		err = fmt.Errorf("%s request: %w", ue.Op, ue.Err)
	}
	return &SendError{Retry: true, Reason: "network", Err: err}
}
