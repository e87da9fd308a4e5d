package main

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/scopewatch/scopewatch/alert"
	"github.com/scopewatch/scopewatch/daemon"
)

// cmdAlert runs the alert subcommands.
func cmdAlert(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if _, err := groupAction("alert", args, stdout); err != nil {
		return err
	}
	fs := newFlags("alert test")
	configPath := fs.String("config", "", configUsage)
	channel := fs.String("channel", "", "channel to post to (default: alert.slack.channel)")
	if err := parseFlags(fs, args[1:], stdout); err != nil {
		return err
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
	poster := daemon.SlackPoster(s)
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	if s.Token() != "" {
		team, user, err := poster.Test(ctx)
		if err != nil {
			return alert.Explain("auth.test", err, s)
		}
		fmt.Fprintf(stdout, "token ok: bot %s in workspace %s\n", user, team)
	}
	host, _ := os.Hostname()
	msg := alert.TestMessage(host, cfg.File, time.Now())
	msg.Channel = to
	id, _, err := poster.Post(ctx, msg)
	if err != nil {
		return alert.Explain("post to "+to, err, s)
	}
	if id != "" && id != to {
		to += " (" + id + ")"
	}
	fmt.Fprintf(stdout, "test message sent to %s\n", to)
	return nil
}
