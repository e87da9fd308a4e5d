package alert

import (
	"cmp"
	"context"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/scopewatch/scopewatch/rules"
	"github.com/scopewatch/scopewatch/store"
)

// NotifyStore is what the Notifier needs of the store.
type NotifyStore interface {
	Groups() ([]store.Group, error)
	GroupFindings(store.GroupKey) ([]store.Finding, error)
	Notified(g store.Group, version uint64, msgs []store.Message) ([]store.Message, error)
}

// NotifierOptions configures a Notifier.
type NotifierOptions struct {
	Store NotifyStore
	// Slack holds the timers, routing and filters.
	Slack rules.Slack
	// Rules gives each client's registration: its owner, role and channel.
	Rules *rules.Rules
	// HideAddresses leaves single addresses out of messages.
	HideAddresses bool
	// Now and After are the clock; tests inject a fake one. Defaults:
	// time.Now and time.After.
	Now   func() time.Time
	After func(time.Duration) <-chan time.Time
	// Queued is called with the messages just put in the outbox, for the
	// sender to pick up.
	Queued func([]store.Message)
	Logger *slog.Logger
}

// Notifier turns finding changes into messages in the Alertmanager manner.
// Findings are grouped by kind and client. A group's first message waits
// group_wait after its first change, so that findings raised together go
// out together; a later change waits until group_interval after the
// previous message; findings still standing are repeated after
// repeat_interval; and findings told before that resolve are told once
// more as resolved. What was told is kept in the store with the group, and
// each message goes into the outbox in the same transaction, so a restart
// neither loses a change nor tells one twice.
type Notifier struct {
	opt  NotifierOptions
	poke chan struct{}
}

// NewNotifier returns a notifier; Run starts it.
func NewNotifier(opt NotifierOptions) *Notifier {
	if opt.Now == nil {
		opt.Now = time.Now
	}
	if opt.After == nil {
		opt.After = time.After
	}
	if opt.Logger == nil {
		opt.Logger = slog.New(slog.DiscardHandler)
	}
	if opt.Rules == nil {
		opt.Rules = &rules.Rules{}
	}
	return &Notifier{opt: opt, poke: make(chan struct{}, 1)}
}

// Changed tells the notifier that groups were marked in the store. It
// never blocks.
func (n *Notifier) Changed() {
	select {
	case n.poke <- struct{}{}:
	default:
	}
}

// Run tells every group when it is due until ctx ends. A store error is
// logged and retried after a minute: the changes stay marked in the store.
func (n *Notifier) Run(ctx context.Context) error {
	for {
		next, err := n.Flush()
		wait := time.Duration(-1)
		switch {
		case err != nil:
			n.opt.Logger.Error("notifications: cannot read or queue; retrying in a minute", "err", err)
			wait = time.Minute
		case !next.IsZero():
			wait = max(next.Sub(n.opt.Now()), 0)
		}
		var timer <-chan time.Time
		if wait >= 0 {
			timer = n.opt.After(wait)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-n.poke:
		case <-timer:
		}
	}
}

// Flush tells every group that is due now and returns when the next one
// will be due (zero when none waits).
func (n *Notifier) Flush() (next time.Time, err error) {
	groups, err := n.opt.Store.Groups()
	if err != nil {
		return time.Time{}, err
	}
	var firstErr error
	now := n.opt.Now()
	for _, g := range groups {
		due := n.due(g)
		if due.IsZero() {
			continue
		}
		if due.After(now) {
			if next.IsZero() || due.Before(next) {
				next = due
			}
			continue
		}
		after, err := n.tell(g, now)
		if err != nil {
			// One group's failure must not hold back the others; its
			// change stays marked and is tried again.
			n.opt.Logger.Error("notifications: cannot tell a group", "kind", g.Kind, "client", g.Client, "err", err)
			firstErr = cmp.Or(firstErr, err)
			continue
		}
		// Telling clears the group's change and restarts its repeat; a
		// change that arrived meanwhile pokes the next pass.
		if !after.IsZero() && (next.IsZero() || after.Before(next)) {
			next = after
		}
	}
	return next, firstErr
}

// due returns when group g is next to be told about, or zero.
func (n *Notifier) due(g store.Group) time.Time {
	s := n.opt.Slack
	switch {
	case !g.Changed.IsZero():
		d := g.Changed.Add(time.Duration(s.GroupWait))
		if !g.Sent.IsZero() {
			if t := g.Sent.Add(time.Duration(s.GroupInterval)); t.After(d) {
				d = t
			}
		}
		return d
	case len(g.Told) > 0:
		return g.Sent.Add(time.Duration(s.RepeatInterval))
	}
	return time.Time{}
}

// tell compares the group's findings with what was told, queues a message
// when there is something to say, records the new state, and returns when
// the group is next due (its repeat), or zero.
func (n *Notifier) tell(g store.Group, now time.Time) (time.Time, error) {
	fs, err := n.opt.Store.GroupFindings(g.GroupKey)
	if err != nil {
		return time.Time{}, err
	}
	s := n.opt.Slack
	told := make(map[string]string, len(g.Told))
	for _, t := range g.Told {
		told[t.ID] = t.Severity
	}
	reg, _ := n.opt.Rules.Registered(g.Client)
	notice := GroupNotice{Group: g.GroupKey, Client: reg, HideAddresses: n.opt.HideAddresses}
	// The findings standing now become what was told; told ones no longer
	// standing drop out (those pruned from the store resolved long ago
	// and were told then).
	next := store.Group{GroupKey: g.GroupKey, Sent: g.Sent, Channel: g.Channel}
	wanted := slices.Contains(s.Kinds, g.Kind)
	for _, f := range fs {
		id := f.ID()
		if f.State != store.StateOpen || !wanted || store.SeverityRank(f.Severity) < store.SeverityRank(s.MinSeverity) {
			if _, was := told[id]; was && f.State == store.StateResolved && s.SendResolved {
				notice.Resolved = append(notice.Resolved, f)
			}
			continue
		}
		next.Told = append(next.Told, store.Told{ID: id, Severity: f.Severity})
		if sev, was := told[id]; !was || store.SeverityRank(f.Severity) > store.SeverityRank(sev) {
			notice.New = append(notice.New, f)
		} else {
			notice.Standing = append(notice.Standing, f)
		}
	}
	repeat := len(notice.New) == 0 && len(notice.Standing) > 0 && g.Changed.IsZero() &&
		!now.Before(g.Sent.Add(time.Duration(s.RepeatInterval)))
	notice.Repeat = repeat
	var msgs []store.Message
	if len(notice.New) > 0 || len(notice.Resolved) > 0 || repeat {
		sortFindings(notice.New)
		sortFindings(notice.Standing)
		sortFindings(notice.Resolved)
		m := Render(&notice)
		m.Channel = n.route(g, notice.Severity())
		m.Queued = now
		msgs = append(msgs, m)
		next.Sent, next.Channel = now, m.Channel
	}
	queued, err := n.opt.Store.Notified(next, g.Version, msgs)
	if err != nil {
		return time.Time{}, fmt.Errorf("tell group %s/%s: %w", g.Kind, g.Client, err)
	}
	if len(queued) > 0 && n.opt.Queued != nil {
		n.opt.Queued(queued)
	}
	return n.due(next), nil
}

// route picks the channel of a message about group g whose gravest
// standing finding has severity sev ("" when everything resolved): a
// severity override first, then the client's registered channel, then
// the default. A resolved notice goes where the group was last told.
func (n *Notifier) route(g store.Group, sev string) string {
	s := n.opt.Slack
	if s.Webhook() != "" {
		// An incoming webhook posts to its own channel, whatever is named.
		return WebhookChannel
	}
	if sev == "" && g.Channel != "" {
		return g.Channel
	}
	if c := s.SeverityChannels[sev]; c != "" {
		return c
	}
	if reg, ok := n.opt.Rules.Registered(g.Client); ok && reg.Channel != "" {
		return reg.Channel
	}
	if s.Channel != "" {
		return s.Channel
	}
	// An incoming webhook posts to its own channel.
	return WebhookChannel
}

// WebhookChannel stands for the channel an incoming webhook is bound to.
const WebhookChannel = "(webhook)"
