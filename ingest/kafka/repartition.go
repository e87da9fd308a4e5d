package kafka

import (
	"context"
	"errors"
	"fmt"
	"strconv"
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
// it as it would count it from a file; one too long to go on goes as a
// stand-in that the source reads as a too_long line. A line holding events of several
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
		if !ingest.Sleep(ctx, delay) {
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
		kgo.FetchMaxBytes(fetchMaxBytes),
		kgo.FetchMaxPartitionBytes(fetchMaxPartitionBytes),
	)
	opts = append(opts, s.memberOpts()...)
	sess, err := kgo.NewGroupTransactSession(append(opts, s.opt.Extra...)...)
	if err != nil {
		return false, fmt.Errorf("kafka repartition client: %w", err)
	}
	defer sess.Close()
	if err := s.fence(ctx, sess.Client()); err != nil {
		return false, err
	}
	var dst []ingest.Event
	restarts := s.stageRestarts.Load()
	for {
		if s.stageRestarts.Load() != restarts {
			return ran, errRawRecreated
		}
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
		produced, first := 0, kgo.AbortingFirstErrPromise(sess.Client())
		fetches.EachRecord(func(rec *kgo.Record) {
			var out *kgo.Record
			out, dst = s.rekeyed(rec, dst[:0])
			sess.Produce(ctx, out, first.Promise())
			produced++
		})
		// End does not look at the records' outcomes: a record that
		// failed would be lost with its offset committed. So flush
		// first, and abort on any failure.
		flushErr := sess.Client().Flush(ctx)
		if err := first.Err(); err != nil || flushErr != nil || ctx.Err() != nil {
			s.abort(ctx, sess)
			if ctx.Err() != nil {
				return ran, nil
			}
			return ran, fmt.Errorf("produce to %s: %w", r.Topic, errors.Join(err, flushErr))
		}
		committed, err := sess.End(ctx, kgo.TryCommit)
		switch {
		case ctx.Err() != nil:
			s.abort(ctx, sess)
			return ran, nil
		case err != nil:
			return ran, fmt.Errorf("end transaction: %w", err)
		case !committed:
			// A rebalance moved partitions mid-transaction: it was
			// aborted, and its records go again from the committed
			// offsets, here or elsewhere.
			s.opt.Metrics.Errors.WithLabelValues(s.opt.Name, "transaction_aborted").Inc()
		default:
			ran = true
			s.opt.Metrics.Repartitioned.WithLabelValues(s.opt.Name).Add(float64(produced))
		}
	}
}

// errRawRecreated ends a session whose client would go on asking for a raw
// topic that was deleted and created again.
var errRawRecreated = errors.New("a raw topic was created again")

// abort ends the open transaction of sess without committing, also when
// ctx has ended (shutting down): left open, it would hold up the readers
// of the repartition topic until it times out.
func (s *Source) abort(ctx context.Context, sess *kgo.GroupTransactSession) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if _, err := sess.End(ctx, kgo.TryAbort); err != nil {
		s.log.Warn("kafka repartition transaction not aborted; the broker aborts it when it times out", "err", err, "timeout", transactionTimeout)
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
		if !ingest.Sleep(ctx, delay) {
			return ctx.Err()
		}
	}
}

// transactionTimeout bounds a transaction of the stage (one poll's
// records): the broker aborts one left open longer, by an instance that
// died and did not come back to fence it.
const transactionTimeout = 30 * time.Second

// maxForwarded is the longest raw value the stage produces as it is; a
// longer one (past max_line_bytes, or too large for a producer batch) goes
// on as a stand-in with no value and, in the header tooLongHeader, its
// length and the limit it passed, which the source reads as a too_long
// line.
const maxForwarded = 900 << 10

// tooLongHeader is the header of a stand-in for a value too long to go on.
const tooLongHeader = "scopewatch-too-long"

// rekeyed returns the record the stage produces for a raw one: its value
// keyed by the client of the first event its line holds, or without a
// key; a stand-in for one too long.
func (s *Source) rekeyed(rec *kgo.Record, dst []ingest.Event) (*kgo.Record, []ingest.Event) {
	n := len(rec.Value)
	if n > 0 && rec.Value[n-1] == '\n' {
		n-- // not the line's, as line has it
	}
	if limit := min(s.opt.MaxLineSize, maxForwarded); n > limit {
		v := strconv.Itoa(n) + " " + strconv.Itoa(limit)
		return &kgo.Record{Headers: []kgo.RecordHeader{{Key: tooLongHeader, Value: []byte(v)}}}, dst
	}
	out := &kgo.Record{Value: rec.Value, Headers: rec.Headers}
	ln := s.line(rec)
	if _, _, long := ingest.TooLong(ln); long {
		return out, dst
	}
	evs, _ := ingest.ParseLine(s.opt.Parser, ln, dst)
	for i := range evs {
		if c := evs[i].Client; c != "" {
			out.Key = []byte(c)
			break
		}
	}
	return out, evs
}
