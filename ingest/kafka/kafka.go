// Package kafka reads a source's lines from Kafka topics: each record's
// value is one log line, parsed like a file's. A partition's position is
// the offset after its last line, saved in the store with the counts its
// lines produced, as a file's is: exactly once across restarts and kill
// -9. The consumer group shares the partitions among scopewatch instances
// and, after each store commit, receives the same offsets, for lag
// monitoring only.
package kafka

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"math"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/sasl"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"

	"github.com/scopewatch/scopewatch/ingest"
	"github.com/scopewatch/scopewatch/rules"
	"github.com/scopewatch/scopewatch/store"
)

// Options configures a Source.
type Options struct {
	Name   string // the source's
	Config rules.Kafka
	// MaxLineSize is the longest record value read as a line; a longer
	// one is a too_long line at its offset. Default ingest.DefaultMaxLineSize.
	MaxLineSize int
	// Parser reads lines for the repartition stage, to find their
	// client: a parser of its own (a parser serves one goroutine), for
	// the source's format. Needed with Config.Repartition only.
	Parser ingest.Parser
	// Positions are the store's: where each partition resumes.
	Positions ingest.PositionStore
	// Changelog is the store, for a source with Config.Changelog: what
	// each partition's changelog lacks.
	Changelog ChangelogStore
	Metrics   *Metrics
	Logger    *slog.Logger
	// Started, when set, is called once the client has reached a broker.
	Started func()
	// CommitEvery is how often the stored offsets are committed to the
	// group, for lag monitoring; default 5s.
	CommitEvery time.Duration
	// CheckEvery is how often the brokers are asked whether every topic
	// of the source still exists; default 30s. CheckTick, when set,
	// replaces its ticker (tests: a check when they say).
	CheckEvery time.Duration
	CheckTick  <-chan time.Time
	// Extra are client options added last (tests: shorter timeouts).
	Extra []kgo.Opt
}

// Source is a Kafka source; see the package documentation.
type Source struct {
	opt Options
	log *slog.Logger

	mu       sync.Mutex
	assigned map[string]map[int32]bool
	sent     map[tp]int64 // the offset after the last record handed on, per partition
	// recreated counts, per topic this consumer reads, its creations
	// again since this process started; restarted is the count at which
	// each partition of such a topic was last read from its start.
	recreated map[string]int
	restarted map[tp]int

	// stageRestarts counts the raw topics created again: the repartition
	// stage's session, asking for the old ones, is built again.
	stageRestarts atomic.Int64

	// restoring holds, per partition being rebuilt from an offset before
	// its end, the offset that ends its restore: the end it had when it
	// was assigned. A read past it ends the restore; a transaction's
	// marker, at the end of a partition written in transactions, is a
	// record read like the others (KeepControlRecords), never handed on.
	restoring map[tp]int64
	// kept are the topics dropped from the client to be read again
	// (created again): the rebalance that follows revokes their
	// partitions, but their clients' history stays. Until assigned again.
	kept map[string]bool

	// changelog writes and reads the partitions' changelog; nil without
	// one (Config.Changelog).
	changelog *changelog

	// Set by Run before the client starts, for the group's callbacks.
	runCtx context.Context
	out    chan<- ingest.Line
	cl     *kgo.Client
}

type tp struct {
	topic     string
	partition int32
}

// New returns a Source; it connects when run.
func New(opt Options) *Source {
	if opt.MaxLineSize <= 0 {
		opt.MaxLineSize = ingest.DefaultMaxLineSize
	}
	if opt.CommitEvery <= 0 {
		opt.CommitEvery = 5 * time.Second
	}
	if opt.CheckEvery <= 0 {
		opt.CheckEvery = 30 * time.Second
	}
	if opt.Metrics == nil {
		opt.Metrics = NewMetrics(nil)
	}
	if opt.Logger == nil {
		opt.Logger = slog.New(slog.DiscardHandler)
	}
	// Series at zero from the start, for rate() and the dashboard.
	opt.Metrics.Restoring.WithLabelValues(opt.Name)
	opt.Metrics.Restored.WithLabelValues(opt.Name)
	opt.Metrics.Released.WithLabelValues(opt.Name)
	opt.Metrics.Changelog.WithLabelValues(opt.Name)
	s := &Source{opt: opt, log: opt.Logger.With("source", opt.Name), assigned: map[string]map[int32]bool{}, sent: map[tp]int64{},
		recreated: map[string]int{}, restarted: map[tp]int{}, restoring: map[tp]int64{}, kept: map[string]bool{}}
	if opt.Config.Changelog != "" && opt.Changelog != nil {
		s.changelog = &changelog{s: s, topic: opt.Config.Changelog, store: opt.Changelog, producers: map[tp]*kgo.Client{}, ready: map[tp]bool{}}
	}
	return s
}

// Name returns the source's name.
func (s *Source) Name() string { return s.opt.Name }

// FileID is the position key of a partition in the store: a device number
// no file has, and the partition under a hash of the topic. The position's
// path names the topic and partition, and is checked on resume.
func FileID(topic string, partition int32) store.FileID {
	h := fnv.New32a()
	h.Write([]byte(topic))
	return store.FileID{Dev: math.MaxUint64, Ino: uint64(h.Sum32())<<32 | uint64(uint32(partition))}
}

// PositionPath is the path a partition's position is saved under.
func PositionPath(topic string, partition int32) string {
	return "kafka:" + topic + "/" + strconv.Itoa(int(partition))
}

// Run consumes the topics until ctx ends, handing each record on as a
// line. Errors of the brokers, topics or partitions are logged, counted and
// retried; Run returns only when ctx ends or the client cannot be built.
func (s *Source) Run(ctx context.Context, out chan<- ingest.Line) error {
	opts, err := s.clientOpts()
	if err != nil {
		return err
	}
	if s.opt.Config.Repartition != nil && s.opt.Parser == nil {
		return fmt.Errorf("source %s: no parser for the repartition stage", s.opt.Name)
	}
	s.runCtx, s.out = ctx, out
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return fmt.Errorf("source %s: kafka client: %w", s.opt.Name, err)
	}
	s.mu.Lock()
	s.cl = cl
	s.mu.Unlock()
	defer func() {
		cl.Close()
		s.restored(nil) // none restores any more
	}()
	var watching sync.WaitGroup
	defer watching.Wait()
	watching.Go(func() { s.watch(ctx, cl) })
	if c := s.changelog; c != nil {
		defer c.close()
		watching.Go(func() { c.run(ctx) })
	}
	if s.opt.Config.Repartition != nil {
		watching.Go(func() { s.repartition(ctx) })
	}

	commit := time.NewTicker(s.opt.CommitEvery)
	defer commit.Stop()
	for {
		fetches := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			cl.AllowRebalance()
			s.commitGroup(context.WithoutCancel(ctx), cl)
			return nil
		}
		fetches.EachError(func(topic string, partition int32, err error) {
			if errors.Is(err, context.Canceled) {
				return
			}
			s.opt.Metrics.Errors.WithLabelValues(s.opt.Name, errorReason(err)).Inc()
			s.log.Warn("kafka fetch failed; retrying", "topic", topic, "partition", partition, "err", err)
		})
		var stopped bool
		fetches.EachPartition(func(p kgo.FetchTopicPartition) {
			if stopped {
				return
			}
			s.mu.Lock()
			gen := s.recreated[p.Topic]
			s.mu.Unlock()
			lines := 0
			for _, r := range p.Records {
				if r.Attrs.IsControl() {
					continue // a transaction's marker: no line, but its offset counts below
				}
				select {
				case out <- s.line(r):
				case <-ctx.Done():
					stopped = true
					return
				}
				lines++
			}
			if n := len(p.Records); n > 0 {
				next := p.Records[n-1].Offset + 1
				s.mu.Lock()
				if s.recreated[p.Topic] == gen { // else these were the deleted topic's
					s.sent[tp{p.Topic, p.Partition}] = next
				}
				if end, ok := s.restoring[tp{p.Topic, p.Partition}]; ok && next >= end {
					s.restoredLocked(tp{p.Topic, p.Partition})
				}
				s.mu.Unlock()
				s.opt.Metrics.Records.WithLabelValues(s.opt.Name).Add(float64(lines))
				s.opt.Metrics.Lag.WithLabelValues(s.opt.Name, p.Topic, strconv.Itoa(int(p.Partition))).Set(float64(max(p.HighWatermark-next, 0)))
			}
		})
		// Every line of the fetch is handed on: the group may rebalance,
		// and a partition released follows its last line.
		cl.AllowRebalance()
		select {
		case <-commit.C:
			s.commitGroup(ctx, cl)
		default:
		}
	}
}

// watch calls Started once a broker answers, then asks the brokers every
// CheckEvery whether each topic of the source exists. The client goes on
// reading the other topics of a deleted or never-created one without a
// word, so this is where it is seen: a gauge per topic, an error counted
// and a warning logged when it goes missing, a line when it is back.
func (s *Source) watch(ctx context.Context, cl *kgo.Client) {
	for delay := 100 * time.Millisecond; ; delay = min(2*delay, 5*time.Second) {
		err := cl.Ping(ctx)
		if err == nil {
			if s.opt.Started != nil {
				s.opt.Started()
			}
			break
		}
		if ctx.Err() != nil {
			return
		}
		s.opt.Metrics.Errors.WithLabelValues(s.opt.Name, "unreachable").Inc()
		s.log.Warn("no kafka broker answers; retrying", "brokers", strings.Join(s.opt.Config.Brokers, ","), "err", err)
		if !ingest.Sleep(ctx, delay) {
			return
		}
	}
	missing, ids := map[string]bool{}, map[string][16]byte{}
	tick := s.opt.CheckTick
	if tick == nil {
		t := time.NewTicker(s.opt.CheckEvery)
		defer t.Stop()
		tick = t.C
	}
	for {
		s.checkTopics(ctx, cl, missing, ids)
		select {
		case <-tick:
		case <-ctx.Done():
			return
		}
	}
}

// checkTopics asks the brokers for the source's topics and updates
// missing and ids, what the check before found: the topics missing, and
// the id of each one present. A topic that is back, or has a new id, was
// created again: the client would go on asking for the old one, so it is
// dropped from the client and added back, and read from its start.
func (s *Source) checkTopics(ctx context.Context, cl *kgo.Client, missing map[string]bool, ids map[string][16]byte) {
	req := kmsg.NewPtrMetadataRequest()
	topics := s.opt.Config.Topics
	if r := s.opt.Config.Repartition; r != nil {
		topics = append(slices.Clip(topics), r.Topic)
	}
	for _, topic := range topics {
		rt := kmsg.NewMetadataRequestTopic()
		rt.Topic = kmsg.StringPtr(topic)
		req.Topics = append(req.Topics, rt)
	}
	req.AllowAutoTopicCreation = false
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		if ctx.Err() == nil {
			s.opt.Metrics.Errors.WithLabelValues(s.opt.Name, "metadata").Inc()
			s.log.Warn("kafka topics not checked; retrying", "err", err)
		}
		return
	}
	for _, rt := range resp.Topics {
		if rt.Topic == nil {
			continue
		}
		topic := *rt.Topic
		err := kerr.ErrorForCode(rt.ErrorCode)
		gone := errors.Is(err, kerr.UnknownTopicOrPartition) || (err == nil && len(rt.Partitions) == 0)
		// Created again: a topic id seen before, and now another. A
		// topic missing since the start is not, nor is an answer without
		// ids (a broker older than Kafka 2.8).
		prev, seen := ids[topic]
		again := !gone && seen && rt.TopicID != [16]byte{} && rt.TopicID != prev
		switch {
		case gone && !missing[topic]:
			missing[topic] = true
			s.opt.Metrics.Errors.WithLabelValues(s.opt.Name, "topic_missing").Inc()
			s.opt.Metrics.Lag.DeletePartialMatch(prometheus.Labels{"source": s.opt.Name, "topic": topic})
			s.log.Warn("kafka topic does not exist: nothing of it is read until it is created again", "topic", topic)
		case !gone && missing[topic]:
			delete(missing, topic)
			if !again {
				s.log.Info("kafka topic exists now", "topic", topic)
			}
		case err != nil && !gone:
			s.opt.Metrics.Errors.WithLabelValues(s.opt.Name, "metadata").Inc()
			s.log.Warn("kafka topic not checked", "topic", topic, "err", err)
		}
		if again {
			s.log.Info("kafka topic created again: reading it from its start", "topic", topic)
			s.topicRecreated(cl, topic)
		}
		if !gone && rt.TopicID != [16]byte{} {
			ids[topic] = rt.TopicID
		}
		s.opt.Metrics.TopicMissing.WithLabelValues(s.opt.Name, topic).Set(b2f(missing[topic]))
	}
}

// topicRecreated makes a topic created again be read from its start. The
// client would go on asking for the deleted one: a topic cl reads is
// dropped from it and added back, each partition read from its start on
// its next assignment; a raw topic of the repartition stage has the
// stage's session built again.
func (s *Source) topicRecreated(cl *kgo.Client, topic string) {
	if !slices.Contains(s.consumed(), topic) {
		s.stageRestarts.Add(1)
		return
	}
	s.mu.Lock()
	s.recreated[topic]++
	for k := range s.sent {
		if k.topic == topic {
			delete(s.sent, k)
		}
	}
	s.kept[topic] = true
	s.mu.Unlock()
	cl.PurgeTopicsFromClient(topic)
	cl.AddConsumeTopics(topic)
}

// consumed returns the topics the source's consumer reads: its topics, or
// its repartition topic.
func (s *Source) consumed() []string {
	if r := s.opt.Config.Repartition; r != nil {
		return []string{r.Topic}
	}
	return s.opt.Config.Topics
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// position returns the position of partition p, before its first record.
func (s *Source) position(p tp) ingest.Position {
	return ingest.Position{Source: s.opt.Name, Path: PositionPath(p.topic, p.partition), File: FileID(p.topic, p.partition), Partition: true}
}

// line turns a record into the source's line: its value without a
// trailing newline, at the offset after it.
func (s *Source) line(r *kgo.Record) ingest.Line {
	v := r.Value
	if n := len(v); n > 0 && v[n-1] == '\n' {
		v = v[:n-1]
	}
	pos := s.position(tp{r.Topic, r.Partition})
	pos.Offset, pos.Line = r.Offset+1, r.Offset+1
	if len(v) > s.opt.MaxLineSize {
		return ingest.TooLongLine(int64(len(v)), s.opt.MaxLineSize, pos)
	}
	if len(v) == 0 {
		for _, h := range r.Headers {
			var n int64
			var limit int
			if h.Key == tooLongHeader {
				if _, err := fmt.Sscanf(string(h.Value), "%d %d", &n, &limit); err == nil {
					return ingest.TooLongLine(n, limit, pos) // the repartition stage's stand-in
				}
			}
		}
	}
	if len(v) == 0 || v[0] == '\n' {
		v = []byte(" ") // an empty record is a line like an empty line of a file; a newline first is no marker
	}
	return ingest.Line{Text: v, Pos: pos}
}

// The bounds of a fetch, compressed: what a fetch holds decompressed in
// memory, until its lines are handed on, is a few times more. A record
// batch larger than them still comes whole, first of its fetch (Kafka's
// fetch semantics since 0.10.1), so they bound no line's length.
const (
	fetchMaxBytes          = 4 << 20
	fetchMaxPartitionBytes = 1 << 20
)

// clientOpts returns the franz-go options of the source's consumer: of
// its topics, or of its repartition topic when it has one.
func (s *Source) clientOpts() ([]kgo.Opt, error) {
	c := s.opt.Config
	opts, err := s.connOpts()
	if err != nil {
		return nil, err
	}
	opts = append(opts,
		kgo.ConsumerGroup(c.Group),
		kgo.ConsumeTopics(s.consumed()...),
		kgo.DisableAutoCommit(),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		// Records of a transaction only once it committed: the
		// repartition stage's, or a transactional shipper's.
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		// A transaction's markers take offsets of their own: kept, they
		// show a partition read to its end, its last record being the
		// marker of its last transaction (see restoring).
		kgo.KeepControlRecords(),
		kgo.AdjustFetchOffsetsFn(s.resume),
		// The group's callbacks run between two polls, once every line
		// polled is handed on: a partition released follows its lines.
		kgo.BlockRebalanceOnPoll(),
		kgo.OnPartitionsAssigned(func(_ context.Context, _ *kgo.Client, m map[string][]int32) { s.onAssigned(m) }),
		kgo.OnPartitionsRevoked(func(_ context.Context, _ *kgo.Client, m map[string][]int32) { s.onRevoked(m) }),
		// Lost with the session (the brokers out of reach, say): they
		// may come back to this member, which then resumes them; the
		// next assignment releases those that went to another.
		kgo.OnPartitionsLost(func(_ context.Context, _ *kgo.Client, m map[string][]int32) { s.lost(m) }),
		kgo.FetchMaxBytes(fetchMaxBytes),
		kgo.FetchMaxPartitionBytes(fetchMaxPartitionBytes),
	)
	opts = append(opts, s.memberOpts()...)
	return append(opts, s.opt.Extra...), nil
}

// memberOpts returns the options of this instance as a member of a
// consumer group, the source's own or its repartition stage's: static
// (instance_id) and its session timeout.
func (s *Source) memberOpts() []kgo.Opt {
	c := s.opt.Config
	var opts []kgo.Opt
	if c.InstanceID != "" {
		opts = append(opts, kgo.InstanceID(c.InstanceID))
	}
	if c.SessionTimeout > 0 {
		opts = append(opts, kgo.SessionTimeout(time.Duration(c.SessionTimeout)))
	}
	return opts
}

// connOpts returns the options that reach the brokers: addresses, TLS and
// SASL.
func (s *Source) connOpts() ([]kgo.Opt, error) {
	c := s.opt.Config
	opts := []kgo.Opt{kgo.SeedBrokers(c.Brokers...)}
	if c.TLS != nil {
		cfg, err := TLSConfig(*c.TLS)
		if err != nil {
			return nil, fmt.Errorf("source %s: %w", s.opt.Name, err)
		}
		opts = append(opts, kgo.DialTLSConfig(cfg))
	}
	if c.SASL != nil {
		m, err := Mechanism(*c.SASL, c.Password)
		if err != nil {
			return nil, fmt.Errorf("source %s: %w", s.opt.Name, err)
		}
		opts = append(opts, kgo.SASL(m))
	}
	return opts, nil
}

// resume sets where each assigned partition is read from: the offset
// saved in the store, or, when this process has handed on lines of it
// since (a partition revoked and given back), the offset after those, so
// that no line is handed on twice; the start of the partition when
// neither is known, or when its topic was created again since.
//
// With a changelog, the partitions are first claimed, and restored from
// it where it holds a newer state than the store (restoreChangelogs);
// ctx, canceled when the group session begins revoking, ends that wait,
// and the session with it: the group then assigns the partitions again.
func (s *Source) resume(ctx context.Context, assigned map[string]map[int32]kgo.Offset) (map[string]map[int32]kgo.Offset, error) {
	stored := map[store.FileID]store.Position{}
	if s.opt.Positions != nil {
		ps, err := s.opt.Positions.Positions(s.opt.Name)
		if err != nil {
			return nil, fmt.Errorf("source %s: read saved offsets: %w", s.opt.Name, err)
		}
		for _, p := range ps {
			stored[p.File] = p
		}
	}
	s.mu.Lock()
	var rebuild []tp
	held := map[tp]int64{}
	for topic, parts := range assigned {
		for partition := range parts {
			if g := s.recreated[topic]; g > 0 && s.restarted[tp{topic, partition}] != g {
				// The saved offset is the deleted topic's.
				s.restarted[tp{topic, partition}] = g
				parts[partition] = kgo.NewOffset().AtStart()
				continue
			}
			next, known := int64(0), false
			if p, ok := stored[FileID(topic, partition)]; ok && p.Path == PositionPath(topic, partition) {
				next, known = p.Offset, true
			}
			if sent, ok := s.sent[tp{topic, partition}]; ok && sent > next {
				next, known = sent, true
			}
			if known {
				parts[partition] = kgo.NewOffset().At(next).WithEpoch(-1)
				held[tp{topic, partition}] = next
			} else {
				parts[partition] = kgo.NewOffset().AtStart()
				rebuild = append(rebuild, tp{topic, partition})
			}
		}
	}
	cl := s.cl
	s.mu.Unlock()
	if s.changelog != nil {
		ctx, cancel := context.WithCancel(ctx)
		defer cancel()
		defer context.AfterFunc(s.runCtx, cancel)()
		var err error
		if rebuild, err = s.restoreChangelogs(ctx, assigned, held, rebuild); err != nil {
			return nil, err
		}
	}
	s.startRestores(cl, rebuild)
	return assigned, nil
}

// errInterrupted ends a group session whose partitions' changelogs were
// not all claimed and restored: the session began revoking, or the
// source is stopping. It is not context.Canceled, which would make the
// client revoke, and so release, every partition this member holds.
var errInterrupted = errors.New("kafka changelogs not restored: the group is rebalancing or the source is stopping")

// restoreChangelogs claims the changelog of every partition assigned,
// then restores from its changelog each partition of rebuild (held by
// none here), and each of held (resumed from this store, at the offset
// given) whose changelog holds a newer state than this store (see
// changelog.check), setting the offset it is read from in assigned.
// It returns the partitions of rebuild left to rebuild from their start:
// their changelog holds nothing of them. The partitions go in parallel,
// a few at a time; each is written to its changelog only once it is
// done. Until then a partition's claim, check or restore is tried again
// until it succeeds or ctx ends, and then errInterrupted is returned.
func (s *Source) restoreChangelogs(ctx context.Context, assigned map[string]map[int32]kgo.Offset, held map[tp]int64, rebuild []tp) ([]tp, error) {
	var parts []tp
	for topic, ps := range assigned {
		for partition := range ps {
			parts = append(parts, tp{topic, partition})
		}
	}
	starts := make([]changelogStart, len(parts))
	var wg sync.WaitGroup
	sem := make(chan struct{}, parallelClaims)
	for i, p := range parts {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			off, ok := held[p]
			starts[i] = s.startChangelog(ctx, p, off, ok, slices.Contains(rebuild, p))
		})
	}
	wg.Wait()
	if ctx.Err() != nil {
		return nil, errInterrupted
	}
	var left []tp
	for i, p := range parts {
		switch st := starts[i]; {
		case st.restored:
			assigned[p.topic][p.partition] = kgo.NewOffset().At(st.offset).WithEpoch(-1)
		case st.rebuild:
			left = append(left, p)
		}
	}
	return left, nil
}

// parallelClaims is how many partitions' changelogs restoreChangelogs
// claims and restores at once.
const parallelClaims = 4

// changelogStart is where a partition starts once its changelog is
// claimed: restored, from offset; rebuilt from its start; or, neither
// set, resumed from the store.
type changelogStart struct {
	offset   int64
	restored bool
	rebuild  bool
}

// startChangelog claims partition p's changelog and restores p from it
// when it holds a newer state than the store: always when rebuilding (p
// held by none here), and when held (at offset) as changelog.check
// decides. It then lets the changelog be written. It tries until it
// succeeds or ctx ends.
func (s *Source) startChangelog(ctx context.Context, p tp, offset int64, held, rebuilding bool) changelogStart {
	c := s.changelog
	if c.claim(ctx, p) != nil {
		return changelogStart{}
	}
	restore := rebuilding
	if held {
		err := c.retry(ctx, p, "kafka changelog not checked; retrying", func() error {
			var err error
			restore, err = c.check(ctx, p, offset)
			return err
		})
		if err != nil {
			return changelogStart{}
		}
		if restore {
			s.log.Info("kafka partition written by another instance since this one held it: restoring it from its changelog", "topic", p.topic, "partition", p.partition)
		}
	}
	if !held && !rebuilding {
		// Read again from the start of a topic created again, whose
		// clients this store keeps: the changelog gets them whole.
		if c.retry(ctx, p, "kafka changelog not read; retrying", func() error { return c.reseed(ctx, p) }) != nil {
			return changelogStart{}
		}
	}
	var start changelogStart
	if restore {
		s.mu.Lock()
		if _, ok := s.restoring[p]; !ok {
			s.opt.Metrics.restoring.Add(1)
		}
		s.restoring[p] = math.MaxInt64 // until restored; for /readyz
		s.exportRestoringLocked()
		s.mu.Unlock()
		from, ok := c.restore(ctx, p)
		s.restored([]tp{p})
		switch {
		case ctx.Err() != nil:
			return changelogStart{}
		case ok:
			s.opt.Metrics.Restored.WithLabelValues(s.opt.Name).Inc()
			start = changelogStart{offset: from, restored: true}
			s.mu.Lock()
			s.sent[p] = from // what was handed on before is replaced
			s.mu.Unlock()
		case rebuilding:
			start.rebuild = true
		}
	}
	c.markReady(p)
	return start
}

// startRestores marks the partitions read from their start, this
// instance holding nothing of them, as restoring until they reach the
// end they have now: their clients' state is being rebuilt. A partition
// whose first records are gone (retention) is rebuilt from what is left,
// with a warning: its clients' usage before is missing.
func (s *Source) startRestores(cl *kgo.Client, parts []tp) {
	if len(parts) == 0 || cl == nil {
		return
	}
	ctx, cancel := context.WithTimeout(s.runCtx, 10*time.Second)
	defer cancel()
	ends, err := listOffsets(ctx, cl, parts, -1)
	if err != nil {
		s.opt.Metrics.Errors.WithLabelValues(s.opt.Name, "metadata").Inc()
		s.log.Warn("kafka partitions' ends not read: their restore is not tracked", "err", err)
		return
	}
	starts, err := listOffsets(ctx, cl, parts, -2)
	if err != nil {
		starts = nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, p := range parts {
		if starts[p] > 0 {
			s.opt.Metrics.Errors.WithLabelValues(s.opt.Name, "history_truncated").Inc()
			s.log.Warn("kafka partition rebuilt from what retention kept: the usage its clients had before is missing",
				"topic", p.topic, "partition", p.partition, "first_offset", starts[p])
		}
		if _, ok := s.restoring[p]; !ok && ends[p] > starts[p] && s.sent[p] < ends[p] {
			s.restoring[p] = ends[p]
			s.opt.Metrics.restoring.Add(1)
			s.log.Info("kafka partition restoring: rebuilding its clients from its start", "topic", p.topic, "partition", p.partition, "records", ends[p]-starts[p])
		}
	}
	s.exportRestoringLocked()
}

// restoredLocked ends the restore of p; s.mu is held.
func (s *Source) restoredLocked(p tp) {
	if _, ok := s.restoring[p]; !ok {
		return
	}
	delete(s.restoring, p)
	s.opt.Metrics.restoring.Add(-1)
	s.opt.Metrics.Restored.WithLabelValues(s.opt.Name).Inc()
	s.log.Info("kafka partition restored", "topic", p.topic, "partition", p.partition)
	s.exportRestoringLocked()
}

// restored ends the restores of parts (nil: all of them), which this
// instance no longer reads.
func (s *Source) restored(parts []tp) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for p := range s.restoring {
		if parts == nil || slices.Contains(parts, p) {
			delete(s.restoring, p)
			s.opt.Metrics.restoring.Add(-1)
		}
	}
	s.exportRestoringLocked()
}

func (s *Source) exportRestoringLocked() {
	s.opt.Metrics.Restoring.WithLabelValues(s.opt.Name).Set(float64(len(s.restoring)))
}

// listOffsets asks the brokers for an offset of each partition: its end
// (timestamp -1, of committed transactions) or its start (-2).
func listOffsets(ctx context.Context, cl *kgo.Client, parts []tp, timestamp int64) (map[tp]int64, error) {
	req := kmsg.NewPtrListOffsetsRequest()
	req.ReplicaID = -1
	req.IsolationLevel = 1
	byTopic := map[string]int{}
	for _, p := range parts {
		i, ok := byTopic[p.topic]
		if !ok {
			i = len(req.Topics)
			byTopic[p.topic] = i
			rt := kmsg.NewListOffsetsRequestTopic()
			rt.Topic = p.topic
			req.Topics = append(req.Topics, rt)
		}
		rp := kmsg.NewListOffsetsRequestTopicPartition()
		rp.Partition, rp.Timestamp, rp.CurrentLeaderEpoch = p.partition, timestamp, -1
		req.Topics[i].Partitions = append(req.Topics[i].Partitions, rp)
	}
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		return nil, err
	}
	out := map[tp]int64{}
	for _, rt := range resp.Topics {
		for _, rp := range rt.Partitions {
			if err := kerr.ErrorForCode(rp.ErrorCode); err != nil {
				return nil, fmt.Errorf("topic %s partition %d: %w", rt.Topic, rp.Partition, err)
			}
			out[tp{rt.Topic, rp.Partition}] = rp.Offset
		}
	}
	return out, nil
}

// onAssigned records the partitions the group gives this member, then
// releases those whose clients this instance still holds from an earlier
// assignment (before a restart) and another member reads now.
func (s *Source) onAssigned(m map[string][]int32) {
	s.assign(m, true)
	if s.opt.Positions == nil || s.runCtx.Err() != nil {
		return
	}
	ps, err := s.opt.Positions.Positions(s.opt.Name)
	if err != nil {
		s.log.Warn("saved offsets not read: partitions held before are not released", "err", err)
		return
	}
	var stale []tp
	s.mu.Lock()
	for topic := range m {
		delete(s.kept, topic)
	}
	for _, p := range ps {
		topic, partition, ok := parsePositionPath(p.Path)
		if ok && p.File == FileID(topic, partition) && !s.assigned[topic][partition] && !s.kept[topic] {
			stale = append(stale, tp{topic, partition})
		}
	}
	s.mu.Unlock()
	for _, p := range stale {
		s.release(p)
	}
}

// onRevoked releases the partitions the group takes from this member,
// unless the process is stopping: then they stay, for this instance to
// resume (static membership). Those of a topic created again (kept)
// keep their clients too. Either way, a revoked partition's changelog
// is not written until the group gives it back and it is claimed again.
func (s *Source) onRevoked(m map[string][]int32) {
	s.assign(m, false)
	if s.runCtx.Err() != nil {
		return
	}
	for topic, parts := range m {
		s.mu.Lock()
		kept := s.kept[topic]
		s.mu.Unlock()
		for _, partition := range parts {
			p := tp{topic, partition}
			if c := s.changelog; c != nil {
				if !kept {
					c.ship(s.runCtx, p) // the new owner restores the newest state
				}
				c.forget(p) // claimed again when the group gives it back
			}
			if !kept {
				s.release(p)
			}
		}
	}
}

// release hands partition p back: the engine deletes the clients its
// lines made, after committing every line handed on before, and the
// partition's next owner rebuilds them from its start. An error leaves
// them here, where the fleet's merge will refuse them as held twice.
func (s *Source) release(p tp) {
	s.restored([]tp{p})
	done := make(chan error, 1)
	ln := ingest.Line{
		Pos:     s.position(p),
		Release: &ingest.Release{Done: done},
	}
	var err error
	select {
	case s.out <- ln:
		select {
		case err = <-done:
		case <-s.runCtx.Done():
			err = s.runCtx.Err()
		}
	case <-s.runCtx.Done():
		err = s.runCtx.Err()
	}
	if err != nil {
		s.opt.Metrics.Errors.WithLabelValues(s.opt.Name, "release").Inc()
		s.log.Warn("kafka partition not released: its clients stay here as well as on its new owner", "topic", p.topic, "partition", p.partition, "err", err)
		return
	}
	s.mu.Lock()
	delete(s.sent, p)
	s.mu.Unlock()
	s.opt.Metrics.Released.WithLabelValues(s.opt.Name).Inc()
	s.log.Info("kafka partition released to another instance: its clients are deleted here", "topic", p.topic, "partition", p.partition)
}

// parsePositionPath reads the topic and partition a position's path
// names (PositionPath).
func parsePositionPath(path string) (topic string, partition int32, ok bool) {
	rest, ok := strings.CutPrefix(path, "kafka:")
	if !ok {
		return "", 0, false
	}
	i := strings.LastIndexByte(rest, '/')
	if i < 0 {
		return "", 0, false
	}
	n, err := strconv.ParseInt(rest[i+1:], 10, 32)
	if err != nil {
		return "", 0, false
	}
	return rest[:i], int32(n), true
}

// lost forgets the partitions lost with the session: they are not this
// member's any more, and their changelogs are not written until the
// group gives them back.
func (s *Source) lost(m map[string][]int32) {
	s.assign(m, false)
	var parts []tp
	for topic, ps := range m {
		for _, partition := range ps {
			parts = append(parts, tp{topic, partition})
		}
	}
	s.restored(parts) // not read here any more, whatever the next assignment
	if c := s.changelog; c != nil {
		for topic, parts := range m {
			for _, partition := range parts {
				c.forget(tp{topic, partition})
			}
		}
	}
}

// client returns the source's consumer client.
func (s *Source) client() *kgo.Client {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cl
}

// assign records the partitions this member holds.
func (s *Source) assign(m map[string][]int32, add bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for topic, parts := range m {
		if s.assigned[topic] == nil {
			s.assigned[topic] = map[int32]bool{}
		}
		for _, p := range parts {
			if add {
				s.assigned[topic][p] = true
			} else {
				delete(s.assigned[topic], p)
			}
		}
	}
	n := 0
	for _, parts := range s.assigned {
		n += len(parts)
	}
	s.opt.Metrics.Assigned.WithLabelValues(s.opt.Name).Set(float64(n))
	if add {
		s.opt.Metrics.Rebalances.WithLabelValues(s.opt.Name).Inc()
	}
}

// commitGroup commits the stored offsets of the assigned partitions to
// the group: what is durable, not what was handed on.
func (s *Source) commitGroup(ctx context.Context, cl *kgo.Client) {
	if s.opt.Positions == nil {
		return
	}
	ps, err := s.opt.Positions.Positions(s.opt.Name)
	if err != nil {
		s.log.Warn("saved offsets not read for the group commit", "err", err)
		return
	}
	offsets := map[string]map[int32]kgo.EpochOffset{}
	s.mu.Lock()
	for topic, parts := range s.assigned {
		for partition := range parts {
			for _, p := range ps {
				if p.File == FileID(topic, partition) && p.Path == PositionPath(topic, partition) {
					if offsets[topic] == nil {
						offsets[topic] = map[int32]kgo.EpochOffset{}
					}
					offsets[topic][partition] = kgo.EpochOffset{Epoch: -1, Offset: p.Offset}
				}
			}
		}
	}
	s.mu.Unlock()
	if len(offsets) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	cl.CommitOffsetsSync(ctx, offsets, func(_ *kgo.Client, _ *kmsg.OffsetCommitRequest, _ *kmsg.OffsetCommitResponse, err error) {
		if err != nil && !errors.Is(err, context.Canceled) {
			s.opt.Metrics.Errors.WithLabelValues(s.opt.Name, "commit").Inc()
			s.log.Warn("group offsets not committed (they serve lag monitoring only)", "err", err)
		}
	})
}

// errorReason is the bounded label of a fetch error.
func errorReason(err error) string {
	var ke interface{ Code() int16 }
	switch {
	case errors.As(err, &ke):
		return "broker"
	case errors.Is(err, kgo.ErrClientClosed):
		return "closed"
	}
	return "fetch"
}

// TLSConfig builds the TLS configuration of a source.
func TLSConfig(t rules.KafkaTLS) (*tls.Config, error) {
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: t.ServerName}
	if t.CA != "" {
		pem, err := os.ReadFile(t.CA)
		if err != nil {
			return nil, fmt.Errorf("kafka tls ca: %w", err)
		}
		cfg.RootCAs = x509.NewCertPool()
		if !cfg.RootCAs.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("kafka tls ca %s: no PEM certificate in it", t.CA)
		}
	}
	if t.Cert != "" {
		pair, err := tls.LoadX509KeyPair(t.Cert, t.Key)
		if err != nil {
			return nil, fmt.Errorf("kafka tls cert %s and key %s: %w", t.Cert, t.Key, err)
		}
		cfg.Certificates = []tls.Certificate{pair}
	}
	return cfg, nil
}

// Mechanism builds the SASL mechanism of a source.
func Mechanism(c rules.KafkaSASL, password string) (sasl.Mechanism, error) {
	switch c.Mechanism {
	case "plain":
		return plain.Auth{User: c.User, Pass: password}.AsMechanism(), nil
	case "scram-sha-256":
		return scram.Auth{User: c.User, Pass: password}.AsSha256Mechanism(), nil
	case "scram-sha-512":
		return scram.Auth{User: c.User, Pass: password}.AsSha512Mechanism(), nil
	}
	return nil, fmt.Errorf("kafka sasl: unknown mechanism %q", c.Mechanism)
}

// Metrics are the Kafka sources' metrics; no label carries a client id.
type Metrics struct {
	Records    *prometheus.CounterVec // source
	Lag        *prometheus.GaugeVec   // source, topic, partition: records after the last one handed on
	Assigned   *prometheus.GaugeVec   // source
	Rebalances *prometheus.CounterVec // source
	Errors     *prometheus.CounterVec // source, reason
	// TopicMissing is 1 for a topic of a source the brokers do not have.
	TopicMissing *prometheus.GaugeVec // source, topic
	// Repartitioned counts the raw records the repartition stage
	// produced to the repartition topic, in committed transactions.
	Repartitioned *prometheus.CounterVec // source
	// Restoring is the partitions being rebuilt from their start (taken
	// over without their clients' state), Restored those done, Released
	// those handed back to another instance.
	Restoring *prometheus.GaugeVec   // source
	Restored  *prometheus.CounterVec // source
	Released  *prometheus.CounterVec // source
	// Changelog counts the records written to the changelogs of the
	// partitions, in committed transactions.
	Changelog *prometheus.CounterVec // source
	restoring atomic.Int64           // Restoring over every source
}

// PartitionsRestoring returns how many partitions, over every source,
// are being rebuilt from their start: the instance is not ready until
// none is.
func (m *Metrics) PartitionsRestoring() int64 { return m.restoring.Load() }

// NewMetrics creates the metrics and registers them with reg (nil: none).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		Records: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "scopewatch_kafka_records_total", Help: "Kafka records read and handed on as lines.",
		}, []string{"source"}),
		Lag: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "scopewatch_kafka_lag", Help: "Records of a partition after the last one read (its high watermark less the next offset).",
		}, []string{"source", "topic", "partition"}),
		Assigned: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "scopewatch_kafka_partitions_assigned", Help: "Partitions the consumer group gives this instance.",
		}, []string{"source"}),
		Rebalances: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "scopewatch_kafka_rebalances_total", Help: "Assignments received from the consumer group.",
		}, []string{"source"}),
		Errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "scopewatch_kafka_errors_total", Help: "Errors reaching brokers, fetching, checking topics (topic_missing: a topic went missing) or committing group offsets, by reason; each is retried.",
		}, []string{"source", "reason"}),
		TopicMissing: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "scopewatch_kafka_topic_missing", Help: "1 for a topic of a source that the brokers do not have (deleted, or never created), 0 for one they have.",
		}, []string{"source", "topic"}),
		Repartitioned: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "scopewatch_kafka_repartitioned_total", Help: "Raw records the repartition stage produced again keyed by client, in committed transactions.",
		}, []string{"source"}),
		Restoring: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "scopewatch_kafka_partitions_restoring", Help: "Partitions taken over without their clients' state, being read from their start until they reach the end they had then.",
		}, []string{"source"}),
		Restored: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "scopewatch_kafka_partitions_restored_total", Help: "Partitions whose clients' state was rebuilt, from their changelog or from their start.",
		}, []string{"source"}),
		Changelog: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "scopewatch_kafka_changelog_records_total", Help: "Records written to the partitions' changelogs, in committed transactions.",
		}, []string{"source"}),
		Released: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "scopewatch_kafka_partitions_released_total", Help: "Partitions handed to another instance, their clients deleted here.",
		}, []string{"source"}),
	}
	if reg != nil {
		reg.MustRegister(m.Records, m.Lag, m.Assigned, m.Rebalances, m.Errors, m.TopicMissing, m.Repartitioned, m.Restoring, m.Restored, m.Released, m.Changelog)
	}
	return m
}
