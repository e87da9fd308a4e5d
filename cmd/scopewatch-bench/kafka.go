package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/scopewatch/scopewatch/internal/probe"
	"github.com/scopewatch/scopewatch/internal/traffic"
)

// The topic of the Kafka measurement and its partitions.
const (
	kafkaTopic      = "keycloak"
	kafkaPartitions = 12
)

// kafkaPoll is how often the instances' metrics are read while waiting
// for their group to settle and for their commits.
const kafkaPoll = 20 * time.Millisecond

// parseInstances parses --kafka-instances: a comma-separated list of
// instance counts, each from 1 to kafkaPartitions; "" for none.
func parseInstances(s string) ([]int, error) {
	if strings.TrimSpace(s) == "" {
		return nil, nil
	}
	var out []int
	for f := range strings.SplitSeq(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 || n > kafkaPartitions {
			return nil, fmt.Errorf("--kafka-instances: %q is not a number of instances from 1 to %d (the topic's partitions)", f, kafkaPartitions)
		}
		out = append(out, n)
	}
	return out, nil
}

// kafkaRun is one Kafka measurement of a group of instances.
type kafkaRun struct {
	join   time.Duration // from starting the instances to their group settled
	drain  time.Duration // from releasing the records to every one committed
	cpu    time.Duration // user and system time of all the instances, over their lives
	broker time.Duration // user and system time of this process, the in-process Kafka's, during the drain
	rss    float64       // the largest instance's peak RSS, MiB
	move   time.Duration // of one instance: from a second joining to half the partitions moved to it and restored
}

// medianKafka returns the median of each measure of runs, each taken
// apart.
func medianKafka(runs []kafkaRun) kafkaRun {
	med := func(v func(kafkaRun) float64) float64 { return medianOf(runs, v) }
	return kafkaRun{
		join:   time.Duration(med(func(r kafkaRun) float64 { return float64(r.join) })),
		drain:  time.Duration(med(func(r kafkaRun) float64 { return float64(r.drain) })),
		cpu:    time.Duration(med(func(r kafkaRun) float64 { return float64(r.cpu) })),
		broker: time.Duration(med(func(r kafkaRun) float64 { return float64(r.broker) })),
		rss:    med(func(r kafkaRun) float64 { return r.rss }),
		move:   time.Duration(med(func(r kafkaRun) float64 { return float64(r.move) })),
	}
}

// kafkaBench is an in-process Kafka (kfake, which speaks the real
// protocol) holding the generated lines in one topic.
type kafkaBench struct {
	cluster *kfake.Cluster
	broker  string
	records int           // records produced to the topic
	produce time.Duration // how long producing them took
	// changelogs are the changelog topics of the groups measured with one.
	changelogs map[string]string
}

// createTopic creates topic, of kafkaPartitions partitions, in the
// in-process Kafka.
func (k *kafkaBench) createTopic(ctx context.Context, topic string) error {
	cl, err := kgo.NewClient(kgo.SeedBrokers(k.broker))
	if err != nil {
		return err
	}
	defer cl.Close()
	req := kmsg.NewPtrCreateTopicsRequest()
	rt := kmsg.NewCreateTopicsRequestTopic()
	rt.Topic, rt.NumPartitions, rt.ReplicationFactor = topic, kafkaPartitions, 1
	req.Topics = append(req.Topics, rt)
	req.TimeoutMillis = 10_000
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		return fmt.Errorf("create topic %s: %w", topic, err)
	}
	for _, t := range resp.Topics {
		if err := kerr.ErrorForCode(t.ErrorCode); err != nil {
			return fmt.Errorf("create topic %s: %w", topic, err)
		}
	}
	return nil
}

// newKafkaBench starts an in-process Kafka of one broker with the topic
// kafkaTopic of kafkaPartitions partitions, and produces every line of
// logPath to it: each record's value one line without its newline, its key
// the line's client id, so that all of a client's lines go to one
// partition. The caller must Close it.
func newKafkaBench(ctx context.Context, logPath string) (_ *kafkaBench, err error) {
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(kafkaPartitions, kafkaTopic))
	if err != nil {
		return nil, fmt.Errorf("start the in-process Kafka: %w", err)
	}
	k := &kafkaBench{cluster: cluster, broker: cluster.ListenAddrs()[0], changelogs: map[string]string{}}
	defer func() {
		if err != nil {
			cluster.Close()
		}
	}()
	start := time.Now()
	if k.records, err = produceLines(ctx, k.broker, logPath); err != nil {
		return nil, fmt.Errorf("produce %s to the in-process Kafka: %w", logPath, err)
	}
	k.produce = time.Since(start)
	return k, nil
}

// Close stops the in-process Kafka.
func (k *kafkaBench) Close() { k.cluster.Close() }

// produceLines produces every line of logPath to kafkaTopic of broker,
// keyed by its client id, in snappy-compressed batches (franz-go's
// default), and returns how many it produced.
func produceLines(ctx context.Context, broker, logPath string) (int, error) {
	f, err := os.Open(logPath)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	cl, err := kgo.NewClient(kgo.SeedBrokers(broker), kgo.DefaultProduceTopic(kafkaTopic),
		kgo.ProducerBatchCompression(kgo.SnappyCompression()))
	if err != nil {
		return 0, fmt.Errorf("kafka producer: %w", err)
	}
	defer cl.Close()
	var (
		mu       sync.Mutex
		firstErr error
	)
	done := func(_ *kgo.Record, err error) {
		if err != nil {
			mu.Lock()
			if firstErr == nil {
				firstErr = err
			}
			mu.Unlock()
		}
	}
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	n := 0
	for sc.Scan() {
		line := sc.Bytes()
		id, err := lineClientID(line)
		if err != nil {
			return 0, fmt.Errorf("line %d: %w", n+1, err)
		}
		cl.Produce(ctx, &kgo.Record{Key: []byte(id), Value: bytes.Clone(line)}, done)
		n++
	}
	if err := sc.Err(); err != nil {
		return 0, fmt.Errorf("read %s: %w", logPath, err)
	}
	if err := cl.Flush(ctx); err != nil {
		return 0, err
	}
	mu.Lock()
	defer mu.Unlock()
	if firstErr != nil {
		return 0, firstErr
	}
	if n == 0 {
		return 0, errors.New("no lines to produce")
	}
	return n, nil
}

// clientIDField opens the clientId field of a Keycloak event's message
// as it appears inside the JSON string of a Quarkus record.
var clientIDField = []byte(`clientId=\"`)

// lineClientID returns the client id of a generated Keycloak line in
// Quarkus JSON logging: the clientId field of its message.
func lineClientID(line []byte) (string, error) {
	i := bytes.Index(line, clientIDField)
	if i < 0 {
		return "", errors.New("no clientId in the line")
	}
	rest := line[i+len(clientIDField):]
	j := bytes.Index(rest, []byte(`\"`))
	if j <= 0 {
		return "", errors.New("an empty or unterminated clientId in the line")
	}
	return string(rest[:j]), nil
}

// kafkaInstance is one scopewatch daemon of a Kafka measurement.
type kafkaInstance struct {
	name, addr string
	cmd        *exec.Cmd
	stderr     bytes.Buffer // read only once the process is waited for
	exited     chan error   // the result of cmd.Wait, sent once
	waited     bool         // exited was received from; err and cmd.ProcessState are set
	err        error
}

// gone reports, without blocking, whether the instance has exited.
func (in *kafkaInstance) gone() bool {
	if in.waited {
		return true
	}
	select {
	case in.err = <-in.exited:
		in.waited = true
	default:
	}
	return in.waited
}

// stop sends sig to the instance, when it was started and has not
// exited, and waits for it to exit.
func (in *kafkaInstance) stop(sig os.Signal) {
	if in.exited == nil || in.waited {
		return
	}
	in.cmd.Process.Signal(sig)
	in.wait()
}

// wait waits for the started instance to exit.
func (in *kafkaInstance) wait() {
	if !in.waited {
		in.err = <-in.exited
		in.waited = true
	}
}

// failure describes how the instance ended, with its standard error.
func (in *kafkaInstance) failure() error {
	return fmt.Errorf("instance %s exited: %v; stderr: %s", in.name, in.err, bytes.TrimSpace(in.stderr.Bytes()))
}

// writeKafkaConfig writes dir/name.yaml: the bench's configuration (as
// traffic.WriteConfig writes it) with one Keycloak source reading the
// topic of broker in group with instance id name, the store dir/name.db,
// the HTTP API at listen and the control socket dir/name.sock, writing
// the partitions' state to the topic changelog unless it is "". It
// returns the configuration's path.
func writeKafkaConfig(dir, name, listen, broker, group, changelog string, geo traffic.GeoIP) (string, error) {
	var extra string
	if changelog != "" {
		extra = ", changelog: " + changelog
	}
	cfg := fmt.Sprintf("store: %s\nlisten: %s\ncontrol_socket: %s\nsources:\n  - name: keycloak\n    format: keycloak\n"+
		"    kafka: {brokers: [%s], topics: [%s], group: %s, instance_id: %s%s}\n",
		filepath.Join(dir, name+".db"), listen, filepath.Join(dir, name+".sock"), broker, kafkaTopic, group, name, extra)
	if geo.City != "" {
		cfg += fmt.Sprintf("geoip: {city: %s, asn: %s}\n", geo.City, geo.ASN)
	}
	p := filepath.Join(dir, name+".yaml")
	return p, os.WriteFile(p, []byte(cfg), 0o644)
}

// holdFetches makes the in-process Kafka hold every fetch request until
// the returned function is called (which may be called more than once):
// the instances join their group and take their partitions, but read no
// record until then.
//
// Each instance keeps its partitions' offsets in its own store, so an
// instance given a partition that another has already read part of reads
// it again from its start. Instances that start together on records
// already produced would do that while their group forms (the first to
// join is given every partition, and gives most back as the others join);
// holding the fetches until the group has settled makes each record read
// once, as in a group that runs for a long time.
func (k *kafkaBench) holdFetches() (release func()) {
	gate := make(chan struct{})
	k.cluster.ControlKey(int16(kmsg.Fetch), func(kmsg.Request) (kmsg.Response, error, bool) {
		select {
		case <-gate:
			k.cluster.DropControl()
		default:
			k.cluster.SleepControl(func() { <-gate })
		}
		return nil, nil, false // then handled as usual
	})
	var once sync.Once
	return func() { once.Do(func() { close(gate) }) }
}

// measure runs n scopewatch daemons (the binary self), each on a fresh
// store, as one consumer group named group, new to the in-process Kafka,
// so that they read the topic from its start. The records are released
// once the group has settled, each instance holding its share of the
// partitions; the measurement ends when the instances have committed
// every record between them, and they are then stopped with SIGTERM. Every
// instance is stopped when measure returns, also on an error. With
// changelog, the instances write their partitions' changelog.
func (k *kafkaBench) measure(ctx context.Context, self, dir, group string, n int, changelog bool, geo traffic.GeoIP) (_ kafkaRun, err error) {
	release := k.holdFetches()
	defer release()
	var fleet []*kafkaInstance
	defer func() {
		for _, in := range fleet {
			in.stop(os.Kill)
		}
		if err != nil {
			for _, in := range fleet {
				os.Remove(filepath.Join(dir, in.name+".db"))
			}
		}
	}()
	if changelog {
		// A topic of the group's own: a changelog holds a group's state.
		if err := k.createTopic(ctx, group+"-state"); err != nil {
			return kafkaRun{}, err
		}
		k.changelogs[group] = group + "-state"
	}
	var cfgs []string
	for i := range n {
		in := &kafkaInstance{name: fmt.Sprintf("%s-%d", group, i+1)}
		if in.addr, err = probe.FreeAddr(); err != nil {
			return kafkaRun{}, err
		}
		if err := freshStore(dir, in.name); err != nil {
			return kafkaRun{}, err
		}
		cfg, err := writeKafkaConfig(dir, in.name, in.addr, k.broker, group, k.changelogs[group], geo)
		if err != nil {
			return kafkaRun{}, fmt.Errorf("instance %s: %w", in.name, err)
		}
		cfgs = append(cfgs, cfg)
		fleet = append(fleet, in)
	}

	start := time.Now()
	for i, in := range fleet {
		in.cmd = exec.CommandContext(ctx, self, "run", "--config", cfgs[i])
		in.cmd.Stderr = &in.stderr
		if err := in.cmd.Start(); err != nil {
			return kafkaRun{}, fmt.Errorf("start instance %s: %w", in.name, err)
		}
		in.exited = make(chan error, 1)
		go func() { in.exited <- in.cmd.Wait() }()
	}

	// sum reads metric from every instance: the samples of each, their sum.
	sum := func(metric string) ([]int, int, error) {
		each, total := make([]int, n), 0
		for i, in := range fleet {
			v, err := probe.Counter(in.addr, metric)
			if err != nil {
				return nil, 0, fmt.Errorf("instance %s: %w", in.name, err)
			}
			each[i] = int(v)
			total += each[i]
		}
		return each, total, nil
	}
	lo, hi := kafkaPartitions/n, (kafkaPartitions+n-1)/n
	err = waitFleet(ctx, fleet, 2*time.Minute, "the group to settle", func() (bool, string) {
		each, total, err := sum("scopewatch_kafka_partitions_assigned")
		if err != nil {
			return false, err.Error()
		}
		return total == kafkaPartitions && slices.Min(each) >= lo && slices.Max(each) <= hi,
			fmt.Sprintf("partitions assigned %v", each)
	})
	if err != nil {
		return kafkaRun{}, err
	}

	var r kafkaRun
	released := time.Now()
	r.join = released.Sub(start)
	cpu0, err := selfCPU()
	if err != nil {
		return kafkaRun{}, err
	}
	release()
	var committed []int
	err = waitFleet(ctx, fleet, 10*time.Minute, "every record committed", func() (bool, string) {
		each, total, err := sum("scopewatch_lines_committed_total")
		if err != nil {
			return false, err.Error()
		}
		committed = each
		return total >= k.records, fmt.Sprintf("committed %v of %d", each, k.records)
	})
	if err != nil {
		return kafkaRun{}, err
	}
	r.drain = time.Since(released)
	cpu1, err := selfCPU()
	if err != nil {
		return kafkaRun{}, err
	}
	r.broker = cpu1 - cpu0
	if total := sumInts(committed); total != k.records {
		return kafkaRun{}, fmt.Errorf("the instances committed %v, %d lines of %d records: some were read twice", committed, total, k.records)
	}

	for _, in := range fleet {
		// Its own peak: a wait's would be at least this process's
		// size when it forked, the in-process Kafka's records included.
		rss, err := probe.PeakResident(in.cmd.Process.Pid)
		if err != nil {
			return kafkaRun{}, fmt.Errorf("instance %s: %w", in.name, err)
		}
		r.rss = max(r.rss, rss)
	}
	if n == 1 {
		if r.move, err = k.move(ctx, self, dir, group, geo, fleet[0]); err != nil {
			return kafkaRun{}, err
		}
	}
	for _, in := range fleet {
		in.cmd.Process.Signal(syscall.SIGTERM)
	}
	for _, in := range fleet {
		in.wait()
		if in.err != nil {
			return kafkaRun{}, fmt.Errorf("on SIGTERM: %w", in.failure())
		}
		r.cpu += in.cmd.ProcessState.UserTime() + in.cmd.ProcessState.SystemTime()
		os.Remove(filepath.Join(dir, in.name+".db"))
	}
	return r, nil
}

// move starts a second instance in the group of first, which has read
// every record, and returns the time from its start until it holds half
// the partitions, each restored: rebuilt from the partition's start, or
// from its changelog. The second instance is stopped before move returns.
func (k *kafkaBench) move(ctx context.Context, self, dir, group string, geo traffic.GeoIP, first *kafkaInstance) (time.Duration, error) {
	in := &kafkaInstance{name: group + "-joining"}
	var err error
	if in.addr, err = probe.FreeAddr(); err != nil {
		return 0, err
	}
	if err := freshStore(dir, in.name); err != nil {
		return 0, err
	}
	cfg, err := writeKafkaConfig(dir, in.name, in.addr, k.broker, group, k.changelogs[group], geo)
	if err != nil {
		return 0, err
	}
	defer os.Remove(filepath.Join(dir, in.name+".db"))
	start := time.Now()
	in.cmd = exec.CommandContext(ctx, self, "run", "--config", cfg)
	in.cmd.Stderr = &in.stderr
	if err := in.cmd.Start(); err != nil {
		return 0, fmt.Errorf("start instance %s: %w", in.name, err)
	}
	in.exited = make(chan error, 1)
	go func() { in.exited <- in.cmd.Wait() }()
	defer in.stop(os.Kill)
	half := kafkaPartitions / 2
	err = waitFleet(ctx, []*kafkaInstance{first, in}, 5*time.Minute, "half the partitions moved and restored", func() (bool, string) {
		var v [3]float64
		for i, m := range []string{"scopewatch_kafka_partitions_assigned", "scopewatch_kafka_partitions_restoring", "scopewatch_kafka_partitions_restored_total"} {
			var err error
			if v[i], err = probe.Counter(in.addr, m); err != nil {
				return false, err.Error()
			}
		}
		return int(v[0]) == half && v[1] == 0 && int(v[2]) >= half,
			fmt.Sprintf("assigned %.0f, restoring %.0f, restored %.0f", v[0], v[1], v[2])
	})
	return time.Since(start), err
}

// waitFleet calls cond every kafkaPoll until it holds. It fails when ctx
// ends, when timeout has passed (saying what it waited for and the last
// state cond described), or when an instance exits.
func waitFleet(ctx context.Context, fleet []*kafkaInstance, timeout time.Duration, what string, cond func() (bool, string)) error {
	deadline := time.Now().Add(timeout)
	tick := time.NewTicker(kafkaPoll)
	defer tick.Stop()
	for {
		ok, state := cond()
		if ok {
			return nil
		}
		for _, in := range fleet {
			if in.gone() {
				return fmt.Errorf("waiting for %s: %w", what, in.failure())
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("timed out after %s waiting for %s: %s", timeout, what, state)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
	}
}

// selfCPU returns the user and system time this process has used.
func selfCPU() (time.Duration, error) {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0, fmt.Errorf("getrusage: %w", err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()), nil
}

// sumInts returns the sum of xs.
func sumInts(xs []int) int {
	n := 0
	for _, x := range xs {
		n += x
	}
	return n
}

// kafkaBenchmark runs the Kafka measurement: it produces the lines of
// logPath to an in-process Kafka, then, runs times, measures a group of
// each size in sizes reading them, and prints the medians to stdout. The
// in-process Kafka is stopped when it returns.
func kafkaBenchmark(ctx context.Context, stdout io.Writer, self, dir, logPath string, geo traffic.GeoIP, sizes []int, runs int, changelog bool) error {
	k, err := newKafkaBench(ctx, logPath)
	if err != nil {
		return err
	}
	defer k.Close()
	fmt.Fprintf(stdout, "\nproduced the %d lines to an in-process Kafka (kfake) topic of %d partitions, keyed by client id, in snappy batches, in %.2f s\n",
		k.records, kafkaPartitions, k.produce.Seconds())
	type row struct {
		n         int
		changelog bool
	}
	var rows []row
	for _, n := range sizes {
		rows = append(rows, row{n, false})
		if changelog {
			rows = append(rows, row{n, true})
		}
	}
	measured := make([][]kafkaRun, len(rows))
	for r := range runs {
		for i, rw := range rows {
			group := fmt.Sprintf("bench-r%d-s%d-n%d", r, i, rw.n)
			run, err := k.measure(ctx, self, dir, group, rw.n, rw.changelog, geo)
			if err != nil {
				return fmt.Errorf("%d instance(s), run %d: %w", rw.n, r+1, err)
			}
			measured[i] = append(measured[i], run)
		}
	}

	fmt.Fprintf(stdout, "\n%-48s %9s %12s %8s %8s %10s %8s %11s %7s\n", "reader", "lines/s", "per instance", "seconds", "CPU s", "peak RSS", "join s", "Kafka CPU s", "move s")
	for i, rw := range rows {
		n := rw.n
		m := medianKafka(measured[i])
		rate := float64(k.records) / m.drain.Seconds()
		name := fmt.Sprintf("scopewatch run from Kafka, %d instance(s)", n)
		if rw.changelog {
			name = "  the same, with a changelog"
		}
		move := "-"
		if n == 1 {
			move = fmt.Sprintf("%.2f", m.move.Seconds())
		}
		fmt.Fprintf(stdout, "%-48s %9.0f %12.0f %8.2f %8.2f %10s %8.2f %11.2f %7s\n",
			name, rate, rate/float64(n),
			m.drain.Seconds(), m.cpu.Seconds(), fmt.Sprintf("%.1f MiB", m.rss), m.join.Seconds(), m.broker.Seconds(), move)
	}
	fmt.Fprintf(stdout, "(seconds: from releasing the records, once the group has settled, to every one committed; join s: from starting\n"+
		" the instances to their group settled, each holding its share of the partitions, not counted in lines/s; CPU s: all\n"+
		" the instances over their lives; peak RSS: the largest instance's; Kafka CPU s: this process during the drain;\n"+
		" move s: with one instance, from a second one starting to half the partitions moved to it and restored, from\n"+
		" their start or from the changelog)\n")
	fmt.Fprintf(stdout, "the in-process Kafka shares the machine's %d cores with the instances\n", runtime.NumCPU())
	return nil
}
