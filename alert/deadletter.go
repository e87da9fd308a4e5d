package alert

import (
	"time"

	"github.com/scopewatch/scopewatch/store"
)

// DeadLetterView is a message Slack refused for good, as the API shows it:
// where it was going, why it was refused, and its text.
type DeadLetterView struct {
	Seq     uint64    `json:"seq"`
	Channel string    `json:"channel"`
	Kind    string    `json:"kind,omitempty"`
	Client  string    `json:"client,omitempty"`
	Error   string    `json:"error"`
	Hint    string    `json:"hint"`
	Queued  time.Time `json:"queued"`
	Refused time.Time `json:"refused"`
	Text    string    `json:"text"`
	File    string    `json:"file,omitempty"`
}

// DeadLetterViews returns the API form of dead letters.
func DeadLetterViews(dl []store.DeadLetter) []DeadLetterView {
	out := make([]DeadLetterView, 0, len(dl))
	for _, d := range dl {
		v := DeadLetterView{Seq: d.Seq, Channel: d.Channel, Kind: d.Group.Kind, Client: d.Group.Client,
			Error: d.Error, Hint: Hint(d.Error, false), Queued: d.Queued, Refused: d.At, Text: d.Text}
		if d.File != nil {
			v.File = d.File.Name
		}
		out = append(out, v)
	}
	return out
}
