package alert

import (
	"context"
	"errors"
	"log/slog"
	"math/rand/v2"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/scopewatch/scopewatch/store"
)

// OutboxStore is what the Sender needs of the store.
type OutboxStore interface {
	Outbox(after uint64, limit int) ([]store.Message, error)
	Delivered(seq uint64) error
	Bury(m store.Message, reason string, at time.Time) error
}

// Poster delivers one message; a failure is a *SendError.
type Poster interface {
	Post(ctx context.Context, m store.Message) (channelID, ts string, err error)
}

// SenderOptions configures a Sender.
type SenderOptions struct {
	Store  OutboxStore
	Poster Poster
	// Rate is messages per second per channel and Burst how many may go
	// at once; defaults 1 and 3, Slack's "one message per second per
	// channel, with short bursts".
	Rate  float64
	Burst int
	// MaxBackoff caps the wait between retries of a failing channel;
	// default 5m.
	MaxBackoff time.Duration
	Now        func() time.Time
	After      func(time.Duration) <-chan time.Time
	// Jitter returns a random factor in [0, 1) for backoff; tests fix it.
	Jitter  func() float64
	Metrics *SenderMetrics
	Logger  *slog.Logger
}

// Sender delivers the outbox to Slack: each channel's messages in the
// order they were queued, paced by a token bucket per channel. A 429
// holds the channel for the Retry-After Slack gave; 5xx answers and
// network errors back off exponentially with jitter; a permanent refusal
// (channel_not_found, invalid_auth, invalid_blocks...) moves the message
// to the dead letters, with a metric and a log line, so that the queue
// behind it moves on. A message leaves the outbox only after Slack
// accepted it: a crash between the two sends it once more.
type Sender struct {
	opt     SenderOptions
	poke    chan struct{}
	chans   map[string]*channelQueue
	lastSeq uint64
}

// channelQueue is one channel's pending messages and pacing state.
type channelQueue struct {
	msgs     []store.Message
	tokens   float64
	refilled time.Time
	// notBefore holds the channel after a failure; failures counts
	// consecutive ones, for the backoff.
	notBefore time.Time
	failures  int
}

// NewSender returns a sender; Run starts it.
func NewSender(opt SenderOptions) *Sender {
	if opt.Rate <= 0 {
		opt.Rate = 1
	}
	if opt.Burst < 1 {
		opt.Burst = 3
	}
	if opt.MaxBackoff <= 0 {
		opt.MaxBackoff = 5 * time.Minute
	}
	if opt.Now == nil {
		opt.Now = time.Now
	}
	if opt.After == nil {
		opt.After = time.After
	}
	if opt.Jitter == nil {
		opt.Jitter = rand.Float64
	}
	if opt.Metrics == nil {
		opt.Metrics = NewSenderMetrics(nil)
	}
	if opt.Logger == nil {
		opt.Logger = slog.New(slog.DiscardHandler)
	}
	return &Sender{opt: opt, poke: make(chan struct{}, 1), chans: make(map[string]*channelQueue)}
}

// Queued tells the sender that messages were put in the outbox. It never
// blocks.
func (s *Sender) Queued([]store.Message) {
	select {
	case s.poke <- struct{}{}:
	default:
	}
}

// Run delivers until ctx ends. A message being sent when ctx ends stays
// in the outbox.
func (s *Sender) Run(ctx context.Context) error {
	loaded := false
	for {
		var wait time.Duration
		var err error
		if !loaded {
			err = s.load()
			loaded = err == nil
		}
		if err == nil {
			wait, err = s.sendReady(ctx)
		}
		if err != nil {
			// The store failed (a full disk, say): the outbox is intact;
			// try again in a while rather than stop delivering for good.
			s.opt.Logger.Error("slack: cannot read or update the outbox; retrying in a minute", "err", err)
			wait = time.Minute
		}
		var timer <-chan time.Time
		if wait >= 0 {
			timer = s.opt.After(wait)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-s.poke:
			loaded = false
		case <-timer:
		}
	}
}

// load reads messages queued since the last load.
func (s *Sender) load() error {
	msgs, err := s.opt.Store.Outbox(s.lastSeq, 0)
	if err != nil {
		return err
	}
	now := s.opt.Now()
	for _, m := range msgs {
		q := s.chans[m.Channel]
		if q == nil {
			q = &channelQueue{tokens: float64(s.opt.Burst), refilled: now}
			s.chans[m.Channel] = q
		}
		q.msgs = append(q.msgs, m)
		s.lastSeq = m.Seq
	}
	s.gauge()
	return nil
}

// sendReady sends every message whose channel may send now, oldest first
// across channels, and returns how long until the next may go (-1: none
// waits).
func (s *Sender) sendReady(ctx context.Context) (time.Duration, error) {
	for {
		if ctx.Err() != nil {
			return -1, nil
		}
		now := s.opt.Now()
		var best *channelQueue
		var bestName string
		wait := time.Duration(-1)
		for name, q := range s.chans {
			if len(q.msgs) == 0 {
				continue
			}
			q.refill(now, s.opt.Rate, s.opt.Burst)
			ready := q.notBefore
			if q.tokens < 1 {
				t := q.refilled.Add(time.Duration((1 - q.tokens) / s.opt.Rate * float64(time.Second)))
				if t.After(ready) {
					ready = t
				}
			}
			if ready.After(now) {
				if d := ready.Sub(now); wait < 0 || d < wait {
					wait = d
				}
				continue
			}
			if best == nil || q.msgs[0].Seq < best.msgs[0].Seq {
				best, bestName = q, name
			}
		}
		if best == nil {
			return wait, nil
		}
		if err := s.send(ctx, bestName, best); err != nil {
			return -1, err
		}
	}
}

func (q *channelQueue) refill(now time.Time, rate float64, burst int) {
	if now.After(q.refilled) {
		q.tokens = min(float64(burst), q.tokens+now.Sub(q.refilled).Seconds()*rate)
		q.refilled = now
	}
}

// send tries the head of q once and records the outcome. Only a store
// error is returned: delivery failures are handled here.
func (s *Sender) send(ctx context.Context, channel string, q *channelQueue) error {
	m := q.msgs[0]
	q.tokens--
	start := time.Now()
	_, _, err := s.opt.Poster.Post(ctx, m)
	s.opt.Metrics.Latency.Observe(time.Since(start).Seconds())
	// Waits count from Slack's answer, which can come a timeout later.
	now := s.opt.Now()
	if err == nil {
		if err := s.opt.Store.Delivered(m.Seq); err != nil {
			return err
		}
		s.opt.Metrics.Sent.Inc()
		if q.failures > 0 {
			s.opt.Logger.Info("slack: delivering again", "channel", channel, "after_failures", q.failures)
		}
		q.failures, q.notBefore = 0, time.Time{}
		q.msgs = q.msgs[1:]
		s.gauge()
		return nil
	}
	if ctx.Err() != nil {
		// Shutting down: the message stays queued.
		return nil
	}
	var se *SendError
	if !errors.As(err, &se) {
		se = &SendError{Retry: true, Reason: "network", Err: err}
	}
	if !se.Retry {
		if err := s.opt.Store.Bury(m, se.Reason, now); err != nil {
			return err
		}
		s.opt.Metrics.DeadLetters.WithLabelValues(deadReason(se.Reason)).Inc()
		s.opt.Logger.Error("slack: message refused for good, moved to the dead letters",
			"channel", channel, "seq", m.Seq, "reason", se.Reason, "hint", Hint(se.Reason, false))
		q.msgs = q.msgs[1:]
		s.gauge()
		return nil
	}
	q.failures++
	wait := se.After
	if wait <= 0 {
		wait = s.backoff(q.failures)
	}
	q.notBefore = now.Add(wait)
	s.opt.Metrics.Retries.WithLabelValues(retryReason(se.Reason)).Inc()
	if q.failures == 1 {
		// One line when a channel starts failing, one when it recovers:
		// never a line per retry.
		s.opt.Logger.Warn("slack: delivery failing, backing off", "channel", channel, "reason", se.Reason, "retry_in", wait)
	}
	return nil
}

// backoff returns the wait after n consecutive failures: 1s doubling up
// to MaxBackoff, with "full jitter" between half and all of it so that
// channels do not retry in step.
func (s *Sender) backoff(n int) time.Duration {
	d := time.Second << min(n-1, 20)
	if d > s.opt.MaxBackoff || d <= 0 {
		d = s.opt.MaxBackoff
	}
	return d/2 + time.Duration(s.opt.Jitter()*float64(d/2))
}

func (s *Sender) gauge() {
	n := 0
	var oldest time.Time
	for _, q := range s.chans {
		n += len(q.msgs)
		if len(q.msgs) > 0 && (oldest.IsZero() || q.msgs[0].Queued.Before(oldest)) {
			oldest = q.msgs[0].Queued
		}
	}
	s.opt.Metrics.Pending.Set(float64(n))
	if oldest.IsZero() {
		s.opt.Metrics.Oldest.Set(0)
	} else {
		s.opt.Metrics.Oldest.Set(float64(oldest.UnixNano()) / 1e9)
	}
}

// deadReason and retryReason map Slack's open-ended error codes onto the
// few values a metric label may take.
func deadReason(code string) string {
	switch code {
	case "channel_not_found", "not_in_channel", "is_archived", "channel_is_archived", "http_404", "http_410":
		return "channel"
	case "invalid_auth", "not_authed", "token_revoked", "token_expired", "account_inactive", "missing_scope", "http_403":
		return "auth"
	case "invalid_blocks", "msg_too_long", "no_text", "invalid_arguments", "http_400":
		return "payload"
	}
	return "other"
}

func retryReason(code string) string {
	switch {
	case code == "rate_limited" || code == "ratelimited":
		return "rate_limited"
	case code == "network":
		return "network"
	}
	return "server_error"
}

// Hint says what an operator can do about a failure with Slack's error
// code; retry tells whether the failure was one the sender retries.
func Hint(code string, retry bool) string {
	if retry {
		return "Slack is unreachable, failing or rate limiting; the daemon keeps such messages and retries"
	}
	switch deadReason(code) {
	case "channel":
		return "check the channel name and invite the bot to it (/invite @your-bot)"
	case "auth":
		return "the token is wrong or revoked, or lacks a scope (chat:write; files:write and channels:read for reports); fix it and run scopewatch alert test"
	case "payload":
		return "Slack refused the message itself; please report it"
	}
	return "see Slack's error code"
}

// SenderMetrics instrument delivery to Slack. Labels are bounded: no
// channel, client or message content.
type SenderMetrics struct {
	Pending     prometheus.Gauge
	Oldest      prometheus.Gauge
	Sent        prometheus.Counter
	Retries     *prometheus.CounterVec // reason: rate_limited, server_error, network
	DeadLetters *prometheus.CounterVec // reason: channel, auth, payload, other
	Latency     prometheus.Histogram
}

// NewSenderMetrics creates the metrics, with every label value known in
// advance at 0, and registers them with reg when it is not nil.
func NewSenderMetrics(reg prometheus.Registerer) *SenderMetrics {
	m := &SenderMetrics{
		Pending: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "scopewatch_slack_outbox_pending", Help: "Messages in the outbox waiting for Slack to accept them.",
		}),
		Oldest: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "scopewatch_slack_outbox_oldest_queued_timestamp_seconds", Help: "When the oldest message waiting in the outbox was queued; 0 when none waits.",
		}),
		Sent: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "scopewatch_slack_messages_sent_total", Help: "Messages Slack accepted.",
		}),
		Retries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "scopewatch_slack_retries_total", Help: "Failed sends that will be retried, by reason.",
		}, []string{"reason"}),
		DeadLetters: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "scopewatch_slack_dead_letters_total", Help: "Messages Slack refused for good, moved to the dead letters, by reason.",
		}, []string{"reason"}),
		Latency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "scopewatch_slack_request_duration_seconds", Help: "Time Slack took to answer a send, successful or not.",
			Buckets: []float64{.05, .1, .25, .5, 1, 2.5, 5, 10, 30},
		}),
	}
	for _, r := range []string{"rate_limited", "server_error", "network"} {
		m.Retries.WithLabelValues(r)
	}
	for _, r := range []string{"channel", "auth", "payload", "other"} {
		m.DeadLetters.WithLabelValues(r)
	}
	if reg != nil {
		reg.MustRegister(m.Pending, m.Oldest, m.Sent, m.Retries, m.DeadLetters, m.Latency)
	}
	return m
}
