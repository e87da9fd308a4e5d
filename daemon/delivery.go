package daemon

import (
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

// newDelivery builds the Slack delivery of the configuration in force, or returns
// nil without Slack. The sender's metrics are the daemon's, registered
// with or without Slack, so that dashboards see zeros rather than gaps.
func (d *Daemon) newDelivery() *delivery {
	log := d.log
	m := d.senderM
	s := d.Config().Alert.Slack
	if !s.Enabled() {
		return nil
	}
	log = log.With("component", "slack")
	sender := alert.NewSender(alert.SenderOptions{
		Store: d.db, Poster: SlackPoster(s),
		Rate: s.Rate, Burst: s.Burst, MaxBackoff: time.Duration(s.MaxBackoff),
		Metrics: m, Logger: log,
	})
	notifier := alert.NewNotifier(alert.NotifierOptions{
		Store: d.db, Slack: s, Rules: d.Config().Rules,
		HideAddresses: d.Config().Privacy.PseudonymiseSubjects,
		Queued:        sender.Queued, Logger: log,
	})
	return &delivery{notifier: notifier, sender: sender}
}

// SlackPoster is the Slack client of s, as the daemon posts with it.
func SlackPoster(s rules.Slack) *alert.Slack {
	return alert.NewSlack(alert.SlackOptions{Token: s.Token(), Webhook: s.Webhook(), APIURL: s.APIURL})
}

// postReport returns the scheduler's hook that queues a report for Slack,
// or nil when reports are not posted.
func (d *Daemon) postReport(slack *delivery) func(detect.UnusedReport) error {
	s, r := d.Config().Alert.Slack, d.Config().Alert.Report
	if slack == nil || !r.Slack {
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
		queued, err := d.db.Queue(msgs...)
		if err != nil {
			return err
		}
		slack.sender.Queued(queued)
		return nil
	}
}
