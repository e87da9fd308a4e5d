package kafka

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/scopewatch/scopewatch/ingest"
)

// The repartition stage takes a source's raw topics, written by shippers
// with no key or a key of their own, and produces every record again,
// unchanged, to the source's repartition topic, keyed by the client its
// line names, so that all of a client's lines reach the one instance that
// holds that partition. The instances share the raw partitions in a
// consumer group of their own. Each poll's records are produced in one
// Kafka transaction that also commits the raw offsets they come from
// (franz-go's GroupTransactSession): a crash aborts the open transaction,
// whose records a read_committed consumer never sees, and the raw records
// are produced again from the committed offsets. Exactly once therefore
// holds across both hops: once into the repartition topic by Kafka's
// transactions, once into the store by the offsets saved with the counts.
//
// A line that names no client (malformed, too long, or an event of
// nobody) goes without a key, to any partition, where its instance counts
// it as it would count it from a file. A line holding events of several
// clients (a JSON array of records) goes whole to its first client's
// partition.

// repartition runs the stage until ctx ends. A session whose transaction
// fails is closed, counted and built again after a backoff; the records
// of the failed transaction go again from the committed offsets.
func (s *Source) repartition(ctx context.Context) {
	for delay := 100 * time.Millisecond; ; delay = min(2*delay, 5*time.Second) {
		ran, err := s.repartitionSession(ctx)
		if ctx.Err() != nil {
			return
		}
		if ran {
			delay = 100 * time.Millisecond
		}
		s.opt.Metrics.Errors.WithLabelValues(s.opt.Name, "transaction").Inc()
		s.log.Warn("kafka repartition stage failed; its open transaction is aborted and its records go again", "err", err, "retry_in", delay)
		select {
		case <-time.After(delay):
		case <-ctx.Done():
			return
		}
	}
}

// repartitionSession runs one transactional session until ctx ends or a
// transaction fails; ran reports that one committed.
func (s *Source) repartitionSession(ctx context.Context) (ran bool, err error) {
	r := s.opt.Config.Repartition
	opts, err := s.connOpts()
	if err != nil {
		return false, err
	}
	opts = append(opts,
		kgo.ConsumerGroup(r.Group),
		kgo.ConsumeTopics(s.opt.Config.Topics...),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.TransactionalID(s.opt.Config.TransactionalID()),
		kgo.TransactionTimeout(transactionTimeout),
		kgo.DefaultProduceTopic(r.Topic),
		kgo.RecordPartitioner(kgo.StickyKeyPartitioner(nil)),
		kgo.ProducerBatchMaxBytes(int32(min(s.opt.MaxLineSize+1<<20, 1<<30))),
		kgo.FetchMaxBytes(16<<20),
		kgo.FetchMaxPartitionBytes(int32(min(s.opt.MaxLineSize+1<<20, 1<<30))),
	)
	if id := s.opt.Config.InstanceID; id != "" {
		opts = append(opts, kgo.InstanceID(id))
	}
	sess, err := kgo.NewGroupTransactSession(append(opts, s.opt.Extra...)...)
	if err != nil {
		return false, fmt.Errorf("kafka repartition client: %w", err)
	}
	defer sess.Close()
	if err := s.fence(ctx, sess.Client()); err != nil {
		return false, err
	}
	var dst []ingest.Event
	for {
		fetches := sess.PollFetches(ctx)
		if ctx.Err() != nil {
			return ran, nil
		}
		fetches.EachError(func(topic string, partition int32, err error) {
			if errors.Is(err, context.Canceled) {
				return
			}
			s.opt.Metrics.Errors.WithLabelValues(s.opt.Name, "repartition_fetch").Inc()
			s.log.Warn("kafka repartition fetch failed; retrying", "topic", topic, "partition", partition, "err", err)
		})
		if fetches.NumRecords() == 0 {
			continue
		}
		if err := sess.Begin(); err != nil {
			return ran, fmt.Errorf("begin transaction: %w", err)
		}
		produced := 0
		fetches.EachRecord(func(rec *kgo.Record) {
			var key []byte
			key, dst = s.clientKey(rec, dst[:0])
			sess.Produce(ctx, &kgo.Record{Key: key, Value: rec.Value, Headers: rec.Headers}, nil)
			produced++
		})
		committed, err := sess.End(ctx, kgo.TryCommit)
		switch {
		case ctx.Err() != nil:
			return ran, nil
		case err != nil:
			return ran, fmt.Errorf("end transaction: %w", err)
		case !committed:
			// A rebalance moved partitions mid-transaction, or a
			// record failed: it was aborted, and its records go
			// again from the committed offsets, here or elsewhere.
			s.opt.Metrics.Errors.WithLabelValues(s.opt.Name, "transaction_aborted").Inc()
		default:
			ran = true
			s.opt.Metrics.Repartitioned.WithLabelValues(s.opt.Name).Add(float64(produced))
		}
	}
}

// fence takes the transactional id over, as a Kafka client's
// initTransactions does: the transaction a crashed predecessor left open
// is aborted now, rather than when it times out, which would hold up the
// raw offsets (and the repartition topic's read_committed readers) until
// then. The client initialises its own producer epoch on its first
// transaction, bumping this one.
func (s *Source) fence(ctx context.Context, cl *kgo.Client) error {
	id := s.opt.Config.TransactionalID()
	for delay := 50 * time.Millisecond; ; delay = min(2*delay, time.Second) {
		req := kmsg.NewPtrInitProducerIDRequest()
		req.TransactionalID = &id
		req.TransactionTimeoutMillis = int32(transactionTimeout / time.Millisecond)
		req.ProducerID, req.ProducerEpoch = -1, -1
		resp, err := req.RequestWith(ctx, cl)
		if err == nil {
			err = kerr.ErrorForCode(resp.ErrorCode)
		}
		switch {
		case err == nil:
			return nil
		case errors.Is(err, kerr.ConcurrentTransactions), errors.Is(err, kerr.CoordinatorLoadInProgress),
			errors.Is(err, kerr.CoordinatorNotAvailable), errors.Is(err, kerr.NotCoordinator):
			// The open transaction is being aborted.
		default:
			return fmt.Errorf("take transactional id %s over: %w", id, err)
		}
		select {
		case <-time.After(delay):
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// transactionTimeout bounds a transaction of the stage (one poll's
// records): the broker aborts one left open longer, by an instance that
// died and did not come back to fence it.
const transactionTimeout = 30 * time.Second

// clientKey returns the key of a raw record in the repartition topic: the
// client of the first event its line holds, or nil.
func (s *Source) clientKey(rec *kgo.Record, dst []ingest.Event) ([]byte, []ingest.Event) {
	ln := s.line(rec)
	if _, _, long := ingest.TooLong(ln); long {
		return nil, dst
	}
	evs, _ := ingest.ParseLine(s.opt.Parser, ln, dst)
	for i := range evs {
		if c := evs[i].Client; c != "" {
			return []byte(c), evs
		}
	}
	return nil, evs
}
