package store

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"
)

// GroupKey names a notification group: one kind of finding on one client,
// told about together.
type GroupKey struct {
	Kind   string
	Client string
}

// Of returns the group a finding belongs to.
func Of(k FindingKey) GroupKey { return GroupKey{Kind: k.Kind, Client: k.Client} }

func (g GroupKey) bytes() []byte {
	b := make([]byte, 0, len(g.Kind)+len(g.Client)+1)
	b = append(b, g.Kind...)
	b = append(b, 0)
	return append(b, g.Client...)
}

// Group is the notification state of one group. A finding change marks
// its group in the same transaction as the finding itself, so no change
// is lost between detection and delivery; the notifier reads the group,
// queues a message and records what it told.
type Group struct {
	GroupKey
	// Changed is the time of the first change not yet told; zero when
	// nothing waits.
	Changed time.Time `json:",omitzero"`
	// Version counts the changes. A notifier's update clears Changed only
	// when no change arrived after the version it read.
	Version uint64
	// Sent is when the last message about the group was queued, Channel
	// where it went.
	Sent    time.Time `json:",omitzero"`
	Channel string    `json:",omitempty"`
	// Told are the findings of the group that the last message reported
	// as standing, with the severity it gave them.
	Told []Told `json:",omitempty"`
}

// Told is one finding as a notification last described it.
type Told struct {
	ID       string
	Severity string
}

// Message is a notification queued for delivery: the outbox holds them in
// the order they were queued, and a sender removes each once Slack has
// accepted it.
type Message struct {
	Seq     uint64 // assigned when queued
	Channel string
	// Group is the group the message tells about; zero for a report or a
	// test message.
	Group  GroupKey        `json:",omitzero"`
	Text   string          // the fallback text, shown in notifications
	Blocks json.RawMessage `json:",omitempty"`
	// File, when set, is uploaded with Text as its comment.
	File   *File `json:",omitempty"`
	Queued time.Time
}

// File is a file attached to a message.
type File struct {
	Name    string
	Title   string
	Content []byte
}

// DeadLetter is a message Slack refused for good, kept for an operator.
type DeadLetter struct {
	Message
	Error string
	At    time.Time
}

// Bucket names of schema version 3.
var (
	bucketGroups     = []byte("notify_groups")
	bucketOutbox     = []byte("outbox")
	bucketDeadLetter = []byte("dead_letters")
)

// markGroups records the batch's finding changes in their groups.
func markGroups(tx *bolt.Tx, marks map[GroupKey]time.Time) error {
	gb := tx.Bucket(bucketGroups)
	for k, at := range marks {
		if k.Kind == "" || strings.ContainsRune(k.Kind+k.Client, 0) {
			return fmt.Errorf("notification group %q/%q: %w", k.Kind, k.Client, ErrInvalid)
		}
		g, err := getGroup(gb, k)
		if err != nil {
			return err
		}
		if g.Changed.IsZero() || at.Before(g.Changed) {
			g.Changed = at
		}
		g.Version++
		if err := putGroup(gb, g); err != nil {
			return err
		}
	}
	return nil
}

// markStanding marks the group of every open finding as changed when it
// opened: findings raised before notifications existed are told once.
func markStanding(tx *bolt.Tx) error {
	marks := make(map[GroupKey]time.Time)
	err := tx.Bucket(bucketFindings).ForEach(func(k, v []byte) error {
		var f Finding
		if err := json.Unmarshal(v, &f); err != nil {
			return fmt.Errorf("finding %q: %w: %v", k, ErrCorrupt, err)
		}
		if f.State != StateOpen {
			return nil
		}
		g := Of(f.FindingKey)
		if t, ok := marks[g]; !ok || f.Opened.Before(t) {
			marks[g] = f.Opened
		}
		return nil
	})
	if err != nil {
		return err
	}
	return markGroups(tx, marks)
}

func getGroup(gb *bolt.Bucket, k GroupKey) (Group, error) {
	g := Group{GroupKey: k}
	v := gb.Get(k.bytes())
	if v == nil {
		return g, nil
	}
	if err := json.Unmarshal(v, &g); err != nil {
		return g, fmt.Errorf("notification group %s/%s: %w: %v", k.Kind, k.Client, ErrCorrupt, err)
	}
	g.GroupKey = k
	return g, nil
}

func putGroup(gb *bolt.Bucket, g Group) error {
	if g.Changed.IsZero() && len(g.Told) == 0 {
		// Nothing waits and nothing stands: the group has no state.
		return gb.Delete(g.bytes())
	}
	v, err := json.Marshal(&g)
	if err != nil {
		return fmt.Errorf("encode notification group %s/%s: %w", g.Kind, g.Client, err)
	}
	return gb.Put(g.bytes(), v)
}

// Groups returns the state of every notification group that has a change
// waiting or standing findings told.
func (db *DB) Groups() ([]Group, error) {
	var out []Group
	err := db.view(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketGroups).ForEach(func(k, v []byte) error {
			var g Group
			if err := json.Unmarshal(v, &g); err != nil {
				return fmt.Errorf("notification group %q: %w: %v", k, ErrCorrupt, err)
			}
			kind, client, _ := strings.Cut(string(k), "\x00")
			g.GroupKey = GroupKey{Kind: kind, Client: client}
			out = append(out, g)
			return nil
		})
	})
	if err != nil {
		return nil, failed(err, fmt.Sprintf("read notification groups from %s", db.path))
	}
	return out, nil
}

// GroupFindings returns the stored findings of one group.
func (db *DB) GroupFindings(k GroupKey) ([]Finding, error) {
	var out []Finding
	prefix := append(k.bytes(), 0)
	err := db.view(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketFindings).Cursor()
		for fk, v := c.Seek(prefix); fk != nil && bytes.HasPrefix(fk, prefix); fk, v = c.Next() {
			var f Finding
			if err := json.Unmarshal(v, &f); err != nil {
				return fmt.Errorf("finding %q: %w: %v", fk, ErrCorrupt, err)
			}
			out = append(out, f)
		}
		return nil
	})
	if err != nil {
		return nil, failed(err, fmt.Sprintf("read findings of %s/%s from %s", k.Kind, k.Client, db.path))
	}
	return out, nil
}

// Notified records that a notifier told about group g as read at version:
// it stores g's Sent, Channel and Told, clears the waiting change unless a
// newer one arrived since, and queues msgs in the outbox, all in one
// transaction, in which the group's client is also marked for the
// changelog of its partition, when the store keeps one: what was told
// travels with the client. It returns the messages with their sequence
// numbers.
func (db *DB) Notified(g Group, version uint64, msgs []Message) ([]Message, error) {
	if db.readOnly {
		return nil, fmt.Errorf("queue notification in %s: %w", db.path, ErrReadOnly)
	}
	out := make([]Message, len(msgs))
	copy(out, msgs)
	keep := db.changelogKept()
	err := db.update(func(tx *bolt.Tx) error {
		gb := tx.Bucket(bucketGroups)
		cur, err := getGroup(gb, g.GroupKey)
		if err != nil {
			return err
		}
		if cur.Version == version {
			cur.Changed = time.Time{}
		}
		cur.Sent, cur.Channel, cur.Told = g.Sent, g.Channel, g.Told
		if err := putGroup(gb, cur); err != nil {
			return err
		}
		if keep != nil && g.Client != "" {
			if err := markNotified(tx, keep, g.Client); err != nil {
				return err
			}
		}
		return queue(tx, out)
	})
	if err != nil {
		return nil, failed(err, fmt.Sprintf("queue notification in %s", db.path))
	}
	return out, nil
}

// Queue puts msgs in the outbox and returns them with their sequence
// numbers.
func (db *DB) Queue(msgs ...Message) ([]Message, error) {
	if db.readOnly {
		return nil, fmt.Errorf("queue message in %s: %w", db.path, ErrReadOnly)
	}
	out := make([]Message, len(msgs))
	copy(out, msgs)
	err := db.update(func(tx *bolt.Tx) error { return queue(tx, out) })
	if err != nil {
		return nil, failed(err, fmt.Sprintf("queue message in %s", db.path))
	}
	return out, nil
}

func queue(tx *bolt.Tx, msgs []Message) error {
	ob := tx.Bucket(bucketOutbox)
	for i := range msgs {
		if msgs[i].Channel == "" {
			return fmt.Errorf("message without a channel: %w", ErrInvalid)
		}
		seq, err := ob.NextSequence()
		if err != nil {
			return err
		}
		msgs[i].Seq = seq
		v, err := json.Marshal(&msgs[i])
		if err != nil {
			return fmt.Errorf("encode message: %w", err)
		}
		if err := ob.Put(seqKey(seq), v); err != nil {
			return err
		}
	}
	return nil
}

func seqKey(seq uint64) []byte { return binary.BigEndian.AppendUint64(nil, seq) }

// Outbox returns up to limit queued messages with a sequence number
// above after, oldest first; limit ≤ 0 returns all.
func (db *DB) Outbox(after uint64, limit int) ([]Message, error) {
	var out []Message
	err := db.view(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketOutbox).Cursor()
		for k, v := c.Seek(seqKey(after + 1)); k != nil && (limit <= 0 || len(out) < limit); k, v = c.Next() {
			var m Message
			if err := json.Unmarshal(v, &m); err != nil {
				return fmt.Errorf("outbox message %d: %w: %v", binary.BigEndian.Uint64(k), ErrCorrupt, err)
			}
			out = append(out, m)
		}
		return nil
	})
	if err != nil {
		return nil, failed(err, fmt.Sprintf("read outbox of %s", db.path))
	}
	return out, nil
}

// Delivered removes message seq from the outbox.
func (db *DB) Delivered(seq uint64) error {
	err := db.update(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketOutbox).Delete(seqKey(seq))
	})
	if err != nil {
		return failed(err, fmt.Sprintf("remove delivered message %d from %s", seq, db.path))
	}
	return nil
}

// Bury moves message seq from the outbox to the dead letters, with the
// reason Slack gave.
func (db *DB) Bury(m Message, reason string, at time.Time) error {
	err := db.update(func(tx *bolt.Tx) error {
		if err := tx.Bucket(bucketOutbox).Delete(seqKey(m.Seq)); err != nil {
			return err
		}
		v, err := json.Marshal(DeadLetter{Message: m, Error: reason, At: at})
		if err != nil {
			return fmt.Errorf("encode dead letter: %w", err)
		}
		return tx.Bucket(bucketDeadLetter).Put(seqKey(m.Seq), v)
	})
	if err != nil {
		return failed(err, fmt.Sprintf("move message %d to the dead letters of %s", m.Seq, db.path))
	}
	return nil
}

// DeadLetters returns the messages Slack refused, oldest first.
func (db *DB) DeadLetters() ([]DeadLetter, error) {
	var out []DeadLetter
	err := db.view(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketDeadLetter).ForEach(func(k, v []byte) error {
			var d DeadLetter
			if err := json.Unmarshal(v, &d); err != nil {
				return fmt.Errorf("dead letter %d: %w: %v", binary.BigEndian.Uint64(k), ErrCorrupt, err)
			}
			out = append(out, d)
			return nil
		})
	})
	if err != nil {
		return nil, failed(err, fmt.Sprintf("read dead letters of %s", db.path))
	}
	return out, nil
}
