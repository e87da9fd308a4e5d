package main

import (
	"cmp"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"time"

	"github.com/scopewatch/scopewatch/alert"
	"github.com/scopewatch/scopewatch/detect"
	"github.com/scopewatch/scopewatch/rules"
)

// delivery is the Slack side of the daemon: the notifier that turns
// marked groups into outbox messages and the sender that delivers them.
type delivery struct {
	notifier *alert.Notifier
	sender   *alert.Sender
}

// newDelivery builds the Slack delivery of p's configuration, or returns
// nil without Slack. The sender's metrics are the pipeline's, registered
// with or without Slack, so that dashboards see zeros rather than gaps.
func newDelivery(p *pipeline, log *slog.Logger) *delivery {
	m := p.senderM
	s := p.config().Alert.Slack
	if !s.Enabled() {
		return nil
	}
	log = log.With("component", "slack")
	sender := alert.NewSender(alert.SenderOptions{
		Store: p.db, Poster: newPoster(s),
		Rate: s.Rate, Burst: s.Burst, MaxBackoff: time.Duration(s.MaxBackoff),
		Metrics: m, Logger: log,
	})
	notifier := alert.NewNotifier(alert.NotifierOptions{
		Store: p.db, Slack: s, Rules: p.config().Rules,
		HideAddresses: p.config().Privacy.PseudonymiseSubjects,
		Queued:        sender.Queued, Logger: log,
	})
	return &delivery{notifier: notifier, sender: sender}
}

func newPoster(s rules.Slack) *alert.Slack {
	return alert.NewSlack(alert.SlackOptions{Token: s.Token(), Webhook: s.Webhook(), APIURL: s.APIURL})
}

// postReport returns the scheduler's hook that queues a report for Slack,
// or nil when reports are not posted.
func postReport(p *pipeline, d *delivery) func(detect.UnusedReport) error {
	s, r := p.config().Alert.Slack, p.config().Alert.Report
	if d == nil || !r.Slack {
		return nil
	}
	channel := s.Channel
	if s.Webhook() != "" {
		channel = alert.WebhookChannel
	}
	return func(rep detect.UnusedReport) error {
		msgs, err := alert.ReportMessages(rep, channel, r.Dir, s.Webhook() == "")
		if err != nil {
			return err
		}
		queued, err := p.db.Queue(msgs...)
		if err != nil {
			return err
		}
		d.sender.Queued(queued)
		return nil
	}
}

// cmdAlert runs the alert subcommands.
func cmdAlert(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] != "test" {
		return usagef("alert needs an action: test")
	}
	fs := flag.NewFlagSet("alert test", flag.ContinueOnError)
	fs.SetOutput(stderr)
	configPath := fs.String("config", "", configUsage)
	channel := fs.String("channel", "", "channel to post to (default: alert.slack.channel)")
	if err := fs.Parse(args[1:]); err != nil {
		return usageError{err}
	}
	if fs.NArg() > 0 {
		return usagef("unexpected argument %q", fs.Arg(0))
	}
	cfg, err := loadConfig(*configPath)
	if err != nil {
		return err
	}
	s := cfg.Alert.Slack
	if !s.Enabled() {
		return usagef("%s: alert.slack is not configured; see the README's Slack section", cfg.File)
	}
	to := cmp.Or(*channel, s.Channel, alert.WebhookChannel)
	poster := newPoster(s)
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	if s.Token() != "" {
		team, user, err := poster.Test(ctx)
		if err != nil {
			return explainSlack("auth.test", err)
		}
		fmt.Fprintf(stdout, "token ok: bot %s in workspace %s\n", user, team)
	}
	host, _ := os.Hostname()
	msg := alert.TestMessage(host, cfg.File, time.Now())
	msg.Channel = to
	id, _, err := poster.Post(ctx, msg)
	if err != nil {
		return explainSlack("post to "+to, err)
	}
	if id != "" && id != to {
		to += " (" + id + ")"
	}
	fmt.Fprintf(stdout, "test message sent to %s\n", to)
	return nil
}

// explainSlack turns a Slack failure into an error saying what to do.
func explainSlack(what string, err error) error {
	var se *alert.SendError
	if errors.As(err, &se) {
		return fmt.Errorf("slack %s failed: %s; %s", what, se.Reason, alert.Hint(se.Reason, se.Retry))
	}
	return fmt.Errorf("slack %s failed: %w", what, err)
}
