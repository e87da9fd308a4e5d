package kafka

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/scopewatch/scopewatch/ingest"
	"github.com/scopewatch/scopewatch/store"
)

// ChangelogStore is what a source with a changelog needs of the store:
// what each partition's changelog lacks, and a way to say it was written.
type ChangelogStore interface {
	Changes(k store.PositionKey) (*store.Changes, error)
	Shipped(ch *store.Changes, nonce uint64) error
	ChangelogNonce(k store.PositionKey) (uint64, bool, error)
	Reseed(k store.PositionKey, ids []string) error
	DecodeChangelog(k store.PositionKey, partition []byte, clients map[string][]byte) (*store.Snapshot, error)
}

// The changelog (Config.Changelog) is a compacted topic whose partition
// n carries the state of the clients of partition n of every topic the
// source reads, as Kafka Streams keeps a table's changelog:
//
//   - key topic, 0, "c", 0, client id: the client's state, its record,
//     findings and windows (store.ClientChange); an empty value deletes it;
//   - key topic, 0, "p": where that state stands, the partition's
//     position and the source's coverage then, and a number drawn at
//     random for the transaction (store.EncodePartition), by which an
//     instance knows whether the changelog's newest record is one it
//     wrote (see check).
//
// Every few seconds (CommitEvery), and when the group takes a partition
// away, what the store says the changelog lacks is written in one Kafka
// transaction, with a transactional id of the partition's own: the
// instance that gets the partition takes that id over before it reads
// the changelog, which aborts a transaction the previous owner left open
// and fences it, so that a restore reads the state of one commit, never
// a mix of two owners'. The restore writes that state into the store
// with the position, and the partition is read from there.
type changelog struct {
	s     *Source
	topic string
	store ChangelogStore

	mu        sync.Mutex // one transaction at a time; guards producers, ready and closed
	producers map[tp]*kgo.Client
	// ready are the claimed partitions whose state the store holds as
	// the changelog should have it: restored from it, or checked against
	// it (see check). Only those are written: until then, what the store
	// holds of a partition is a former state of this instance's, or
	// nothing, and written it would replace the newer one.
	ready map[tp]bool
	// closed is set by close: a claim still running builds no producer
	// that none would close.
	closed bool
}

// changelogKey returns the key of client id (or, for "", the partition's
// record) of topic in the changelog.
func changelogKey(topic, id string) []byte {
	if id == "" {
		return []byte(topic + "\x00p")
	}
	return []byte(topic + "\x00c\x00" + id)
}

// transactionalID is the changelog's transactional id for partition p.
func (c *changelog) transactionalID(p tp) string {
	return "scopewatch-changelog/" + c.topic + "/" + p.topic + "/" + strconv.Itoa(int(p.partition))
}

// key returns the store's position key of partition p.
func (c *changelog) key(p tp) store.PositionKey {
	return store.PositionKey{Source: c.s.opt.Name, File: FileID(p.topic, p.partition)}
}

// claim takes partition p's changelog on, for this instance that the
// group gives p: it fences p's previous owner (see fence) and builds the
// transactional producer that writes p's changelog from now on. Only a
// claimed partition's changelog is written: a producer built later, by
// an instance that has lost p without knowing it yet, would fence p's
// new owner in turn. A producer this instance had of p goes first: the
// fence makes it useless. It tries until it succeeds or ctx ends; p is
// not ready (markReady) after it.
func (c *changelog) claim(ctx context.Context, p tp) error {
	c.forget(p)
	return c.retry(ctx, p, "kafka changelog not taken over; retrying", func() error {
		if err := c.fence(ctx, p); err != nil {
			return err
		}
		return c.produceTo(ctx, p)
	})
}

// retry calls try until it succeeds or ctx ends, with a backoff from 1 s
// to 30 s, counting and logging (as msg) each failure about partition p.
func (c *changelog) retry(ctx context.Context, p tp, msg string, try func() error) error {
	for delay := time.Second; ; delay = min(2*delay, 30*time.Second) {
		err := try()
		if err == nil || ctx.Err() != nil {
			return err
		}
		c.s.opt.Metrics.Errors.WithLabelValues(c.s.opt.Name, "changelog").Inc()
		c.s.log.Warn(msg, "topic", p.topic, "partition", p.partition, "changelog", c.topic, "err", err)
		if !ingest.Sleep(ctx, delay) {
			return ctx.Err()
		}
	}
}

// produceTo builds the transactional producer of partition p's
// changelog and has it take its producer id and epoch at once: a client
// gets them at its first write otherwise, and one that had written
// nothing yet when another instance claimed p would take p back then,
// fencing the new owner.
func (c *changelog) produceTo(ctx context.Context, p tp) error {
	c.mu.Lock()
	closed, have := c.closed, c.producers[p] != nil
	c.mu.Unlock()
	if closed {
		return errClosed
	}
	if have {
		return nil
	}
	opts, err := c.s.connOpts()
	if err != nil {
		return err
	}
	opts = append(opts,
		kgo.TransactionalID(c.transactionalID(p)),
		kgo.TransactionTimeout(time.Minute),
		kgo.RecordPartitioner(kgo.ManualPartitioner()),
	)
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return fmt.Errorf("changelog producer: %w", err)
	}
	ictx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if _, _, err := cl.ProducerID(ictx); err != nil {
		cl.Close()
		return fmt.Errorf("changelog producer's id: %w", err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		cl.Close()
		return errClosed
	}
	if c.producers[p] != nil {
		cl.Close()
		return nil
	}
	c.producers[p] = cl
	return nil
}

// errClosed is produceTo's error once the source closed its producers.
var errClosed = errors.New("the source is stopping")

// forget closes the producer of p: the partition went to another
// instance, or was lost with the session; it is claimed again when the
// group gives it back.
func (c *changelog) forget(p tp) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.forgetLocked(p)
}

func (c *changelog) forgetLocked(p tp) {
	if cl := c.producers[p]; cl != nil {
		cl.Close()
		delete(c.producers, p)
	}
	delete(c.ready, p)
}

// markReady lets partition p's changelog be written, once claimed: the
// store holds its state as the changelog should have it.
func (c *changelog) markReady(p tp) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.producers[p] != nil {
		c.ready[p] = true
	}
}

// close closes every producer, and any built after.
func (c *changelog) close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.closed = true
	for p := range c.producers {
		c.forgetLocked(p)
	}
}

// writable returns the partitions whose changelog this instance writes:
// claimed and ready.
func (c *changelog) writable() []tp {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]tp, 0, len(c.ready))
	for p := range c.ready {
		out = append(out, p)
	}
	return out
}

// run writes what the writable changelogs lack every CommitEvery, until
// ctx ends.
func (c *changelog) run(ctx context.Context) {
	t := time.NewTicker(c.s.opt.CommitEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		for _, p := range c.writable() {
			c.ship(ctx, p)
		}
	}
}

// ship writes what partition p's changelog lacks in one transaction, and
// tells the store once it committed. A failure is logged and counted; the
// store keeps what is lacking for the next try.
func (c *changelog) ship(ctx context.Context, p tp) {
	c.mu.Lock()
	defer c.mu.Unlock()
	cl := c.producers[p]
	if cl == nil || !c.ready[p] {
		return // not claimed (any more), or not restored or checked yet
	}
	n, err := c.shipLocked(ctx, cl, p)
	if errors.Is(err, kerr.ProducerFenced) || errors.Is(err, kerr.InvalidProducerEpoch) || errors.Is(err, kerr.TransactionalIDAuthorizationFailed) {
		// Another instance has taken p over: this one writes no more of
		// its changelog until the group gives it back.
		c.forgetLocked(p)
		c.s.log.Warn("kafka changelog taken over by another instance", "topic", p.topic, "partition", p.partition, "changelog", c.topic, "err", err)
	}
	if err != nil {
		if ctx.Err() == nil {
			c.s.opt.Metrics.Errors.WithLabelValues(c.s.opt.Name, "changelog").Inc()
			c.s.log.Warn("kafka changelog not written; retrying", "topic", p.topic, "partition", p.partition, "changelog", c.topic, "err", err)
		}
		return
	}
	c.s.opt.Metrics.Changelog.WithLabelValues(c.s.opt.Name).Add(float64(n))
}

func (c *changelog) shipLocked(ctx context.Context, cl *kgo.Client, p tp) (int, error) {
	ch, err := c.store.Changes(c.key(p))
	if err != nil || ch == nil {
		return 0, err
	}
	nonce := rand.Uint64()
	part, err := store.EncodePartition(ch.Position, ch.Coverage, nonce)
	if err != nil {
		return 0, err
	}
	records := make([]*kgo.Record, 0, len(ch.Clients)+1)
	for _, cc := range ch.Clients {
		records = append(records, &kgo.Record{Topic: c.topic, Partition: p.partition, Key: changelogKey(p.topic, cc.ID), Value: cc.Value})
	}
	records = append(records, &kgo.Record{Topic: c.topic, Partition: p.partition, Key: changelogKey(p.topic, ""), Value: part})
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := cl.BeginTransaction(); err != nil {
		return 0, err
	}
	produced := cl.ProduceSync(ctx, records...).FirstErr()
	end := kgo.TryCommit
	if produced != nil {
		end = kgo.TryAbort
	}
	if err := cl.EndTransaction(ctx, end); err != nil {
		return 0, errors.Join(produced, err)
	}
	if produced != nil {
		return 0, produced
	}
	return len(records), c.store.Shipped(ch, nonce)
}

// restore reads partition p's changelog, claimed, and hands the state it
// holds to the engine. It returns the offset to read p from, and false
// when the changelog holds nothing of p, or nothing readable (p is then
// rebuilt from its start, or resumed from the store that holds it). It
// tries until it succeeds or ctx ends: the partition's records are not
// read before.
func (c *changelog) restore(ctx context.Context, p tp) (int64, bool) {
	var offset int64
	var ok bool
	err := c.retry(ctx, p, "kafka changelog not read; retrying", func() error {
		var err error
		offset, ok, err = c.restoreOnce(ctx, p)
		return err
	})
	if err != nil {
		return 0, false
	}
	return offset, ok
}

func (c *changelog) restoreOnce(ctx context.Context, p tp) (int64, bool, error) {
	partition, clients, err := c.read(ctx, p)
	if err != nil {
		return 0, false, err
	}
	if partition == nil {
		return 0, false, nil
	}
	snap, err := c.store.DecodeChangelog(c.key(p), partition, clients)
	if err != nil {
		// Not retried: the same records would be read again.
		c.s.opt.Metrics.Errors.WithLabelValues(c.s.opt.Name, "changelog").Inc()
		c.s.log.Error("kafka changelog unreadable: the partition is rebuilt from its start instead", "topic", p.topic, "partition", p.partition, "changelog", c.topic, "err", err)
		return 0, false, c.reseedOver(p, clients)
	}
	done := make(chan error, 1)
	ln := ingest.Line{Pos: c.s.position(p), Restore: &ingest.Restore{Snapshot: snap, Done: done}}
	select {
	case c.s.out <- ln:
	case <-ctx.Done():
		return 0, false, ctx.Err()
	}
	// The engine commits what was handed on before it takes the restore:
	// from now on the store's position of p is the one to resume from,
	// the restore's if it commits, even if this wait is cut short.
	c.s.mu.Lock()
	delete(c.s.sent, p)
	c.s.mu.Unlock()
	select {
	case err = <-done:
	case <-ctx.Done():
		return 0, false, ctx.Err()
	}
	if err != nil {
		return 0, false, fmt.Errorf("restore into the store: %w", err)
	}
	c.s.log.Info("kafka partition restored from its changelog", "topic", p.topic, "partition", p.partition,
		"clients", len(snap.Clients), "offset", snap.Position.Offset)
	return snap.Position.Offset, true, nil
}

// fence takes partition p's transactional id over: the brokers abort a
// transaction its previous owner left open and refuse that owner's
// next one, so the changelog read next holds one owner's commits only.
func (c *changelog) fence(ctx context.Context, p tp) error {
	req := kmsg.NewPtrInitProducerIDRequest()
	id := c.transactionalID(p)
	req.TransactionalID = &id
	req.TransactionTimeoutMillis = int32(time.Minute / time.Millisecond)
	req.ProducerID, req.ProducerEpoch = -1, -1
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	resp, err := req.RequestWith(ctx, c.s.client())
	if err != nil {
		return err
	}
	return kerr.ErrorForCode(resp.ErrorCode)
}

// read returns the newest value of each key of topic p.topic in
// partition p.partition of the changelog, up to its committed end: the
// partition's record (nil when there is none) and each client's state.
func (c *changelog) read(ctx context.Context, p tp) (partition []byte, clients map[string][]byte, err error) {
	clients = map[string][]byte{}
	err = c.scan(ctx, p, 0, func(rest string, v []byte) {
		switch {
		case rest == "p":
			partition = v
		case len(rest) > 2 && rest[:2] == "c\x00":
			if len(v) == 0 {
				delete(clients, rest[2:])
			} else {
				clients[rest[2:]] = v
			}
		}
	})
	return partition, clients, err
}

// tail is how many records before its end latest reads of a changelog
// partition first: the newest partition record is among the last ones
// unless the partition's other topics wrote after it.
const tail = 64

// latest returns the newest record of partition p in the changelog, nil
// when there is none.
func (c *changelog) latest(ctx context.Context, p tp) ([]byte, error) {
	var part []byte
	keep := func(rest string, v []byte) {
		if rest == "p" {
			part = v
		}
	}
	from, err := c.end(ctx, p)
	if err != nil || from <= 0 {
		return nil, err
	}
	from = max(from-tail, 0)
	if err := c.scan(ctx, p, from, keep); err != nil || part != nil || from == 0 {
		return part, err
	}
	return part, c.scan(ctx, p, 0, keep)
}

// end returns the committed end of partition p of the changelog.
func (c *changelog) end(ctx context.Context, p tp) (int64, error) {
	cp := tp{c.topic, p.partition}
	ends, err := listOffsets(ctx, c.s.client(), []tp{cp}, -1)
	if err != nil {
		return 0, fmt.Errorf("the changelog's end: %w", err)
	}
	return ends[cp], nil
}

// scan calls fn, in order, with the key (after the topic and its 0 byte)
// and value of each committed record about topic p.topic in partition
// p.partition of the changelog, from offset from to the end it has when
// the scan begins, its last stable offset.
//
// It reads with fetch requests of its own to the partition's leader, not
// with a consumer: a consumer hands on records, and where compaction
// removed those just before the end (an aborted transaction and then its
// marker), it would wait for one that never comes. A fetch that returns
// nothing before the end says the rest is gone.
func (c *changelog) scan(ctx context.Context, p tp, from int64, fn func(rest string, v []byte)) error {
	end, err := c.end(ctx, p)
	if err != nil || end <= from {
		return err
	}
	cl := c.s.client()
	leader, epoch, id, err := partitionLeader(ctx, cl, c.topic, p.partition)
	if err != nil {
		return fmt.Errorf("read the changelog: %w", err)
	}
	br, dec := cl.Broker(int(leader)), kgo.DefaultDecompressor()
	prefix := []byte(p.topic + "\x00")
	for next := from; next < end; {
		req := kmsg.NewPtrFetchRequest()
		req.MaxBytes, req.IsolationLevel = changelogFetchBytes, 1
		rt := kmsg.NewFetchRequestTopic()
		rt.Topic, rt.TopicID = c.topic, id
		rp := kmsg.NewFetchRequestTopicPartition()
		rp.Partition, rp.FetchOffset, rp.PartitionMaxBytes = p.partition, next, changelogFetchBytes
		rp.CurrentLeaderEpoch = epoch // a broker that no longer leads refuses
		rt.Partitions = append(rt.Partitions, rp)
		req.Topics = append(req.Topics, rt)
		resp, err := req.RequestWith(ctx, br)
		if err == nil {
			err = kerr.ErrorForCode(resp.ErrorCode)
		}
		if err != nil {
			return fmt.Errorf("read the changelog at offset %d: %w", next, err)
		}
		part := fetched(resp, p.partition)
		if part == nil {
			return fmt.Errorf("read the changelog at offset %d: the broker answered without partition %d", next, p.partition)
		}
		if kerr.ErrorForCode(part.ErrorCode) == kerr.OffsetOutOfRange && part.LogStartOffset > next {
			next = part.LogStartOffset // removed by retention: read from what is left
			continue
		}
		if len(part.RecordBatches) == 0 && part.ErrorCode == 0 && resp.ThrottleMillis > 0 {
			if !ingest.Sleep(ctx, time.Duration(resp.ThrottleMillis)*time.Millisecond) {
				return ctx.Err() // a broker over its quota may answer empty
			}
			continue
		}
		fp, after := kgo.ProcessFetchPartition(kgo.ProcessFetchPartitionOpts{
			Offset: next, IsolationLevel: kgo.ReadCommitted(), Topic: c.topic, Partition: p.partition,
		}, part, dec, nil)
		if fp.Err != nil {
			return fmt.Errorf("read the changelog at offset %d: %w", next, fp.Err)
		}
		for _, r := range fp.Records {
			if r.Offset >= end {
				break // a later transaction's, maybe not whole in this answer
			}
			if bytes.HasPrefix(r.Key, prefix) {
				fn(string(r.Key[len(prefix):]), r.Value)
			}
		}
		switch {
		case after > next:
			next = after
		case len(part.RecordBatches) == 0 && part.LastStableOffset >= end:
			return nil // what lay between next and end was compacted away
		case len(part.RecordBatches) == 0:
			return fmt.Errorf("read the changelog at offset %d: its leader answers nothing before its end, %d (its last stable offset %d)", next, end, part.LastStableOffset)
		default:
			return fmt.Errorf("read the changelog at offset %d: the broker's answer does not move past it", next)
		}
	}
	return nil
}

// changelogFetchBytes bounds what one fetch of the changelog returns;
// the broker returns at least the first batch whatever its size.
const changelogFetchBytes = 4 << 20

// fetched returns the answer for partition of the one topic resp holds,
// or nil.
func fetched(resp *kmsg.FetchResponse, partition int32) *kmsg.FetchResponseTopicPartition {
	for i := range resp.Topics {
		for j := range resp.Topics[i].Partitions {
			if rp := &resp.Topics[i].Partitions[j]; rp.Partition == partition {
				return rp
			}
		}
	}
	return nil
}

// partitionLeader returns the broker that leads partition of topic, its
// leader epoch (-1 from brokers too old to tell), and the topic's id
// (zero from brokers too old to have one).
func partitionLeader(ctx context.Context, cl *kgo.Client, topic string, partition int32) (leader, epoch int32, id [16]byte, err error) {
	req := kmsg.NewPtrMetadataRequest()
	rt := kmsg.NewMetadataRequestTopic()
	rt.Topic = kmsg.StringPtr(topic)
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		return 0, 0, id, fmt.Errorf("the leader of %s partition %d: %w", topic, partition, err)
	}
	for _, t := range resp.Topics {
		if err := kerr.ErrorForCode(t.ErrorCode); err != nil {
			return 0, 0, id, fmt.Errorf("the leader of %s partition %d: %w", topic, partition, err)
		}
		for _, p := range t.Partitions {
			if p.Partition != partition {
				continue
			}
			if err := kerr.ErrorForCode(p.ErrorCode); err != nil {
				return 0, 0, id, fmt.Errorf("the leader of %s partition %d: %w", topic, partition, err)
			}
			return p.Leader, p.LeaderEpoch, t.TopicID, nil
		}
	}
	return 0, 0, id, fmt.Errorf("the leader of %s partition %d: the brokers do not know the partition", topic, partition)
}

// check decides how partition p, which this store holds at offset
// (claimed, not ready yet), goes on: restored from its changelog (true),
// or resumed from the store (false), whose state the changelog then
// gets whole at its next write, the clients only the changelog holds
// deleted there (see reseed):
//
//   - the changelog holds nothing of p: resumed; the changelog lost what
//     the store wrote to it, if anything, and gets it whole again;
//   - the store wrote or restored the changelog's newest record of p
//     (same nonce): resumed, the changelog is the store's;
//   - the store did, but the changelog's newest record is another's:
//     another instance wrote it since, from a newer state; restored;
//   - the store never wrote p's changelog (kept since, or kept again):
//     the state further along p wins, the changelog's when its offset
//     is past the store's;
//   - the changelog's record of p is unreadable: resumed.
func (c *changelog) check(ctx context.Context, p tp, offset int64) (bool, error) {
	k := c.key(p)
	mine, wrote, err := c.store.ChangelogNonce(k)
	if err != nil {
		return false, err
	}
	part, err := c.latest(ctx, p)
	if err != nil {
		return false, err
	}
	if part == nil {
		if wrote {
			return false, c.store.Reseed(k, nil)
		}
		return false, nil // its next write is a seed: Changes ships every client
	}
	snap, err := store.DecodeSnapshot(k, part, nil)
	if err != nil {
		c.s.opt.Metrics.Errors.WithLabelValues(c.s.opt.Name, "changelog").Inc()
		c.s.log.Error("kafka changelog unreadable: the partition resumes from this store, which writes it whole again", "topic", p.topic, "partition", p.partition, "changelog", c.topic, "err", err)
		return false, c.reseed(ctx, p)
	}
	switch {
	case wrote:
		return snap.Nonce != mine, nil
	case snap.Position.Offset > offset:
		return true, nil
	default:
		return false, c.reseed(ctx, p)
	}
}

// reseed makes the store write partition p's changelog whole at its next
// write, deleting there every client the changelog holds and the store
// does not.
func (c *changelog) reseed(ctx context.Context, p tp) error {
	_, clients, err := c.read(ctx, p)
	if err != nil {
		return err
	}
	return c.reseedOver(p, clients)
}

// reseedOver is reseed with the clients the changelog holds, as read.
func (c *changelog) reseedOver(p tp, clients map[string][]byte) error {
	return c.store.Reseed(c.key(p), slices.Sorted(maps.Keys(clients)))
}
