package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/scopewatch/scopewatch/ingest/kafka"
	"github.com/scopewatch/scopewatch/internal/probe"
	"github.com/scopewatch/scopewatch/internal/traffic"
	"github.com/scopewatch/scopewatch/report"
	"github.com/scopewatch/scopewatch/store"
)

// fleetConfig is one instance of a fleet reading Keycloak lines from
// brokers %[4]s: %[1]s is the directory, %[2]s the instance's name, %[3]s
// its listen address, %[5]s its web config, %[6]s its cluster section,
// %[7]s the topics of its kafka section (keyedTopics or
// repartitionedTopics) and %[8]s its session timeout (see start).
const fleetConfig = `store: %[1]s/%[2]s.db
listen: %[3]s
web_config: %[5]s
control_socket: %[1]s/%[2]s.sock
rules: %[1]s/rules.yaml
batch: {max_events: 1000, max_delay: 100ms}
sources:
  - name: keycloak
    format: keycloak
    kafka: {brokers: [%[4]s], group: scopewatch, instance_id: %[2]s, session_timeout: %[8]s, %[7]s}
detect: {client_retention: 3650d}
%[6]s`

// fleetInstance is one scopewatch daemon of the fleet test.
type fleetInstance struct {
	name, addr, cfg string
	cmd             *exec.Cmd
	exited          chan error    // what Wait returned, once
	done            chan struct{} // closed once Wait has returned
	stderr          *bytes.Buffer
}

// TestKafkaFleet runs three instances of one consumer group on a
// twelve-partition topic of an in-process Kafka (kfake), events keyed by
// client: by the producer (keyed), or by the instances' repartition stage
// from a raw topic of five partitions the producer writes without keys
// (repartitioned). Asked from one instance, the unused-scope report, the client
// listing, the scope report and the per-client findings merged over the
// three must equal those of a single instance that scanned the same lines.
// Then the partitions move, and the merge must stay exact: a fourth
// instance joins (partitions move to it, their former owners release
// them, it rebuilds them from their start), one is killed with SIGKILL
// while it reads (the others take its partitions once its session times
// out) and is started again (it releases what it held, and rebuilds what
// it gets), records coming all along. After each move every restore must
// end. Last, one is killed and started again at once: a static member, it
// gets its partitions back, and nothing moves.
func TestKafkaFleet(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("three daemons and a broker: slow")
	}
	bin := scopewatchBinary(t)
	// One after the other: eight daemons at once would crowd two cores.
	t.Run("keyed", func(t *testing.T) { kafkaFleet(t, bin, "keyed") })
	t.Run("repartitioned", func(t *testing.T) { kafkaFleet(t, bin, "repartitioned") })
	t.Run("changelog", func(t *testing.T) { kafkaFleet(t, bin, "changelog") })
}

// kafkaFleet runs the fleet test in mode keyed, repartitioned, or
// changelog: keyed with a changelog, whose topic loses its first 30,000
// records (as retention would delete them) once the changelog holds their
// state, so that every partition that moves after is restored from the
// changelog, never from the partition's start.
func kafkaFleet(t *testing.T, bin string, mode string) {
	repartitioned, changelog := mode == "repartitioned", mode == "changelog"
	topic, topics := "keycloak", keyedTopics
	switch mode {
	case "repartitioned":
		topic, topics = "keycloak-raw", repartitionedTopics
	case "changelog":
		topics += ", changelog: keycloak-state"
	}
	dir := t.TempDir()
	webConfig, err := filepath.Abs(filepath.Join("..", "..", "testdata", "webconfig", "basic_auth.yml"))
	if err != nil {
		t.Fatal(err)
	}
	cluster := kfake.MustCluster(kfake.NumBrokers(1), kfake.SeedTopics(12, "keycloak"), kfake.SeedTopics(5, "keycloak-raw"),
		kfake.SeedTopics(12, "keycloak-state"))
	defer cluster.Close()
	broker := cluster.ListenAddrs()[0]
	clients := traffic.GeneratedClients(23, 300)
	write(t, filepath.Join(dir, "rules.yaml"), registering(traffic.DemoRules, clients))

	var fleet []*fleetInstance
	for _, name := range []string{"a", "b", "c", "d"} {
		fleet = append(fleet, &fleetInstance{name: name, cfg: filepath.Join(dir, name+".yaml"), stderr: &bytes.Buffer{}})
	}
	a, b, c, d := fleet[0], fleet[1], fleet[2], fleet[3]
	solo := false
	t.Cleanup(func() {
		for _, in := range fleet {
			if in.cmd != nil {
				in.cmd.Process.Kill()
				<-in.done // its standard error is written no more
			}
			if t.Failed() {
				t.Logf("instance %s logs:\n%s", in.name, in.stderr.Bytes())
			}
		}
	})
	// start gives in a free address, writes its configuration (a's
	// names b and c as peers, unless solo) and starts it. An address is taken only
	// just before its daemon listens on it: taken earlier, another test's
	// daemon could listen on it first.
	//
	// The broker runs in this process, under the race detector, and its
	// one loop can stall for seconds while it serves the fleet's fetches;
	// a session shorter than such a stall expires every member at once,
	// and the group rebalances on its own. So only sessions the test
	// waits out are short: b's first (it is killed, and the others take
	// its partitions once it times out) and those of the instances
	// started alone at the end (the fleet's stopped static members leave
	// the group only when theirs time out). The others' must outlast a
	// stall, or the last step, which checks that nothing moves while c
	// restarts, sees the rebalance a stall caused.
	bStarted := false
	start := func(in *fleetInstance) {
		session := "20s"
		if solo || in == b && !bStarted {
			session = "6s"
		}
		if in == b {
			bStarted = true
		}
		addr, err := probe.FreeAddr()
		if err != nil {
			t.Fatal(err)
		}
		in.addr = addr
		var cluster string
		if in == a && !solo {
			cluster = fmt.Sprintf("cluster: {peers: [%s, %s]}\n", b.addr, c.addr)
		}
		write(t, in.cfg, fmt.Sprintf(fleetConfig, dir, in.name, in.addr, broker, webConfig, cluster, topics, session))
		in.cmd = exec.Command(bin, "run", "--config", in.cfg)
		in.cmd.Stderr = in.stderr
		if err := in.cmd.Start(); err != nil {
			t.Fatal(err)
		}
		// The goroutine keeps its own channels: a restart replaces in's.
		exited, done, cmd := make(chan error, 1), make(chan struct{}), in.cmd
		in.exited, in.done = exited, done
		go func() {
			exited <- cmd.Wait()
			close(done)
		}()
	}
	// waitFor polls the instances until cond holds.
	waitFor := func(what string, cond func() (bool, string)) {
		t.Helper()
		deadline := time.Now().Add(2 * time.Minute)
		for {
			ok, state := cond()
			if ok {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: not within 2 minutes; %s", what, state)
			}
			for _, in := range fleet {
				select {
				case err := <-in.exited:
					t.Fatalf("instance %s exited: %v", in.name, err)
				default:
				}
			}
			time.Sleep(50 * time.Millisecond) // polling another process's state
		}
	}
	assigned := func(in *fleetInstance) int {
		n, _ := fleetMetric(filepath.Join(dir, in.name+".sock"), "scopewatch_kafka_partitions_assigned")
		return int(n)
	}

	// The three join before any record is produced, so that no partition
	// moves after it has been read; a last, as it names the others.
	for _, in := range []*fleetInstance{b, c, a} {
		start(in)
	}
	waitFor("four partitions each", func() (bool, string) {
		na, nb, nc := assigned(a), assigned(b), assigned(c)
		return na == 4 && nb == 4 && nc == 4, fmt.Sprintf("assigned a %d, b %d, c %d", na, nb, nc)
	})

	const events = 30_000
	t0 := time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC)
	gen := traffic.New(23, clients, t0, t0.Add(30*24*time.Hour), events)
	produce := keycloakProducer(t, broker, topic, !repartitioned, filepath.Join(dir, "kc.log"), gen)
	records := produce(0, events)
	committed := func(in *fleetInstance) int {
		n, _ := storedLines(filepath.Join(dir, in.name+".sock"))
		return n
	}
	waitFor("every record committed", func() (bool, string) {
		na, nb, nc := committed(a), committed(b), committed(c)
		return na+nb+nc == records, fmt.Sprintf("committed a %d, b %d, c %d of %d", na, nb, nc, records)
	})
	for _, in := range fleet[:3] {
		if committed(in) == 0 {
			t.Fatalf("instance %s committed nothing: the test would not show a merge", in.name)
		}
	}

	ref := filepath.Join(dir, "file.yaml")
	write(t, ref, fmt.Sprintf(fileConfig, dir, "reference"))
	runChild(t, bin, "scan", "--quiet", "--config", ref, filepath.Join(dir, "kc.log"))

	cli := func(cfg string, args ...string) ([]byte, error) {
		cmd := exec.Command(bin, append(args, "--config", cfg)...)
		cmd.Env = append(os.Environ(), "SCOPEWATCH_API_USER=prometheus", "SCOPEWATCH_API_PASSWORD=test-password")
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			return out, fmt.Errorf("%s: %v: %s", strings.Join(args, " "), err, stderr.Bytes())
		}
		return out, nil
	}
	at := t0.Add(40 * 24 * time.Hour).Format(time.RFC3339)
	for _, args := range [][]string{
		{"report", "unused", "--format", "json", "--at", at},
		{"clients", "--format", "json"},
		{"report", "scope", "patient/*.read", "--format", "json"},
	} {
		want, err := cli(ref, args...)
		if err != nil {
			t.Fatal(err)
		}
		got, err := cli(a.cfg, args...)
		if err != nil {
			t.Fatal(err)
		}
		if args[1] == "scope" {
			// Each instance stamps the moment it answered.
			want, got = withoutField(t, want, "generated_at"), withoutField(t, got, "generated_at")
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s: merged over the fleet differs from one instance's scan:\n%s", strings.Join(args, " "), firstDifference(got, want))
		}
		local, err := cli(a.cfg, append(args, "--local")...)
		if err != nil {
			t.Fatal(err)
		}
		if bytes.Equal(local, want) {
			t.Errorf("%s --local: equal to the whole fleet's, so the test shows no merge", strings.Join(args, " "))
		}
	}
	// Findings about one client are raised where the client lives.
	findings := func(cfg string) []report.FindingView {
		t.Helper()
		out, err := cli(cfg, "findings", "--state", "all", "--format", "json")
		if err != nil {
			t.Fatal(err)
		}
		var fs []report.FindingView
		if err := json.Unmarshal(out, &fs); err != nil {
			t.Fatal(err)
		}
		return fs
	}
	wantF, gotF := findings(ref), findings(a.cfg)
	perClient := func(fs []report.FindingView) []string {
		var out []string
		for _, f := range fs {
			if f.Client != "" {
				out = append(out, fmt.Sprintf("%s %s %s %s %d %s %s", f.Kind, f.Client, f.Subject, f.State, f.Count,
					f.First.Format(time.RFC3339Nano), f.Last.Format(time.RFC3339Nano)))
			}
		}
		return out
	}
	if len(perClient(wantF)) == 0 {
		t.Error("the reference raised no finding about a client: the comparison shows nothing")
	}
	compareSnapshots(t, perClient(gotF), perClient(wantF))

	if changelog {
		// Once the changelog holds every partition's state as of its
		// end, the records are deleted: what moves now is restored
		// from the changelog or not at all.
		waitFor("the changelog at every partition's end", func() (bool, string) {
			return changelogAtEnd(t, broker, "keycloak", "keycloak-state", 12)
		})
		deleteRecords(t, broker, "keycloak", 12)
	}

	// rescan makes a new reference: one instance's scan of every line
	// produced so far.
	refs := 0
	rescan := func() string {
		refs++
		cfg := filepath.Join(dir, fmt.Sprintf("file%d.yaml", refs))
		write(t, cfg, fmt.Sprintf(fileConfig, dir, fmt.Sprintf("reference%d", refs)))
		runChild(t, bin, "scan", "--quiet", "--config", cfg, filepath.Join(dir, "kc.log"))
		return cfg
	}
	// merged waits until the reports merged over the instances of cfg
	// (a, with the peers it names) equal those of ref, and fails after
	// two minutes with the last difference.
	merged := func(what, cfg, ref string) {
		t.Helper()
		var last string
		waitFor(what, func() (bool, string) {
			for _, args := range [][]string{
				{"report", "unused", "--format", "json", "--at", at},
				{"clients", "--format", "json"},
			} {
				want, err := cli(ref, args...)
				if err != nil {
					t.Fatal(err)
				}
				got, err := cli(cfg, args...)
				if err != nil {
					last = err.Error()
					return false, last
				}
				if !bytes.Equal(got, want) {
					last = strings.Join(args, " ") + ": " + firstDifference(got, want)
					return false, last
				}
			}
			return true, ""
		})
	}
	peersOf := func(name string, peers ...*fleetInstance) string {
		var addrs []string
		for _, p := range peers {
			addrs = append(addrs, p.addr)
		}
		cfg := filepath.Join(dir, "a-"+name+".yaml")
		write(t, cfg, fmt.Sprintf(fleetConfig, dir, "a", a.addr, broker, webConfig,
			fmt.Sprintf("cluster: {peers: [%s]}\n", strings.Join(addrs, ", ")), topics, "20s"))
		return cfg
	}
	released := func(in *fleetInstance) int {
		n, _ := fleetMetric(filepath.Join(dir, in.name+".sock"), "scopewatch_kafka_partitions_released_total")
		return int(n)
	}
	metric := func(in *fleetInstance, name string) int {
		n, _ := fleetMetric(filepath.Join(dir, in.name+".sock"), name)
		return int(n)
	}
	// restoresEnd waits until the running instances have finished at
	// least n more restores than before and none is restoring: a
	// partition taken over is rebuilt to the end it had, on the keyed
	// topic and on the repartition topic (whose transaction markers take
	// offsets no record has).
	restoresEnd := func(what string, before, n int, running ...*fleetInstance) {
		t.Helper()
		waitFor(what, func() (bool, string) {
			restoring, restored := 0, 0
			for _, in := range running {
				restoring += metric(in, "scopewatch_kafka_partitions_restoring")
				restored += metric(in, "scopewatch_kafka_partitions_restored_total")
			}
			return restoring == 0 && restored-before >= n, fmt.Sprintf("%d restoring, %d of %d restored", restoring, restored-before, n)
		})
	}
	restoredBy := func(running ...*fleetInstance) int {
		n := 0
		for _, in := range running {
			n += metric(in, "scopewatch_kafka_partitions_restored_total")
		}
		return n
	}
	produced := events
	more := func(n int) {
		produce(produced, produced+n)
		produced += n
	}

	// A fourth instance joins while records come: partitions move to it,
	// their former owners release them, and it rebuilds them from their
	// start.
	before := released(a) + released(b) + released(c) // as the three joined
	restoredBefore := restoredBy(a, b, c)
	start(d)
	more(3000)
	waitFor("d holding partitions, released by the others", func() (bool, string) {
		nd, r := assigned(d), released(a)+released(b)+released(c)-before
		return nd > 0 && r == nd, fmt.Sprintf("d assigned %d; a, b and c released %d", nd, r)
	})
	merged("merged over four instances after partitions moved", peersOf("4", b, c, d), rescan())
	restoresEnd("d's partitions restored", restoredBefore, assigned(d), a, b, c, d)

	// b is killed with SIGKILL while it reads: once its session times
	// out, a, c and d take its partitions and rebuild them.
	was, held := committed(b), assigned(b)
	restoredBefore = restoredBy(a, c, d)
	more(3000)
	waitFor("b reading", func() (bool, string) { return committed(b) > was, fmt.Sprintf("b committed %d", committed(b)) })
	b.cmd.Process.Kill()
	<-b.exited // not an exit waitFor should fail on
	<-b.done
	b.cmd = nil
	more(3000)
	waitFor("b's partitions taken by the others", func() (bool, string) {
		na, nc, nd := assigned(a), assigned(c), assigned(d)
		return na+nc+nd == 12, fmt.Sprintf("assigned a %d, c %d, d %d", na, nc, nd)
	})
	merged("merged over three instances after one was killed", peersOf("3", c, d), rescan())
	restoresEnd("b's partitions restored by the others", restoredBefore, held, a, c, d)

	// b starts again on its store while records come: it releases what
	// it held and no longer gets, and rebuilds what it gets.
	restoredBefore = restoredBy(a, c, d) // b starts again with its counters at zero
	start(b)
	more(3000)
	waitFor("b back with partitions", func() (bool, string) {
		nb := assigned(b)
		return nb > 0 && assigned(a)+nb+assigned(c)+assigned(d) == 12, fmt.Sprintf("b assigned %d", nb)
	})
	merged("merged over four instances after the killed one came back", peersOf("4", b, c, d), rescan())
	// A partition b gets back resumes from its store, no restore: only
	// that none is left restoring is certain.
	restoresEnd("b's new partitions restored", restoredBefore, 0, a, b, c, d)

	// c is killed and starts again within its session timeout: a static
	// member (instance_id) gets its partitions back, so no other
	// instance is given or releases any, and c resumes them from its
	// store, restoring none. (Kafka skips the rebalance when the member's
	// protocol is unchanged; kfake compares the protocols' metadata,
	// which holds the partitions a member owns, and runs one in which
	// every member keeps what it has.)
	others := func(name string) int {
		n := 0
		for _, in := range []*fleetInstance{a, b, d} {
			n += metric(in, name)
		}
		return n
	}
	heldC := assigned(c)
	holding := fmt.Sprint(assigned(a), assigned(b), assigned(d))
	staticMembers(t, broker, "scopewatch", "a", "b", "c", "d")
	releases := others("scopewatch_kafka_partitions_released_total")
	c.cmd.Process.Kill()
	<-c.exited
	<-c.done
	c.cmd = nil
	start(c)
	more(3000)
	waitFor("c back with its partitions", func() (bool, string) {
		n := assigned(c)
		return n == heldC, fmt.Sprintf("c assigned %d, held %d", n, heldC)
	})
	merged("merged over four instances after a restart within the session", peersOf("4s", b, c, d), rescan())
	staticMembers(t, broker, "scopewatch", "a", "b", "c", "d")
	if repartitioned {
		staticMembers(t, broker, "scopewatch-repartition", "a", "b", "c", "d") // the stage's own group
	}
	if now := fmt.Sprint(assigned(a), assigned(b), assigned(d)); now != holding {
		t.Errorf("a, b and d hold %s partitions after c restarted within its session, held %s", now, holding)
	}
	if n := others("scopewatch_kafka_partitions_released_total"); n != releases {
		t.Errorf("the others released %d partitions while c restarted within its session, want none", n-releases)
	}
	if n := metric(c, "scopewatch_kafka_partitions_restored_total") + metric(c, "scopewatch_kafka_partitions_restoring"); n != 0 {
		t.Errorf("c restored %d partitions after a restart within its session, want none: it resumes them from its store", n)
	}

	if changelog {
		// The findings of the clients that moved came with them.
		final := peersOf("4f", b, c, d)
		compareSnapshots(t, perClient(findings(final)), perClient(findings(rescan())))
		truncated, written := 0, 0
		for _, in := range fleet {
			truncated += int(fleetMetricWith(t, filepath.Join(dir, in.name+".sock"), "scopewatch_kafka_errors_total", `reason="history_truncated"`))
			written += metric(in, "scopewatch_kafka_changelog_records_total")
		}
		if truncated != 0 || written == 0 {
			t.Errorf("%d partitions rebuilt from what retention kept, %d changelog records written: want every move restored from the changelog", truncated, written)
		}
	}
	for _, in := range fleet {
		in.cmd.Process.Signal(syscall.SIGTERM)
		if err := <-in.exited; err != nil {
			t.Errorf("instance %s did not stop cleanly on SIGTERM: %v", in.name, err)
		}
		in.cmd = nil
	}
	if !changelog {
		return
	}
	// The changelog alone, and the records after the positions it
	// holds, rebuild the fleet: d, alone in the group, resumes its own
	// partitions from its store and restores the others' from the
	// changelog, which it then writes for all twelve. Then a, alone,
	// finds that another instance wrote the changelog of the partitions
	// its store still holds since it did: it restores every partition
	// rather than resume those (the changes it would write from its older
	// copy would mix two states in the changelog). Each must report what
	// one scan of every line does.
	solo = true
	for _, in := range []*fleetInstance{d, a} {
		start(in) // its counters start at zero
		waitFor(in.name+" holding every partition", func() (bool, string) {
			n, r := assigned(in), metric(in, "scopewatch_kafka_partitions_restored_total")
			return n == 12 && metric(in, "scopewatch_kafka_partitions_restoring") == 0, fmt.Sprintf("%s assigned %d, restored %d", in.name, n, r)
		})
		more(3000)
		merged("one instance alone after the fleet stopped", in.cfg, rescan())
		if in == a {
			if r := metric(a, "scopewatch_kafka_partitions_restored_total"); r != 12 {
				t.Errorf("a restored %d partitions, want all 12: those its store holds were written by d since", r)
			}
		}
		waitFor("the changelog at every partition's end", func() (bool, string) {
			return changelogAtEnd(t, broker, "keycloak", "keycloak-state", 12)
		})
		in.cmd.Process.Signal(syscall.SIGTERM)
		if err := <-in.exited; err != nil {
			t.Errorf("instance %s did not stop cleanly on SIGTERM: %v", in.name, err)
		}
		in.cmd = nil
	}
}

// changelogAtEnd reports whether, for every partition of topic (of
// partitions, as many as changelog's), the newest record of changelog
// about it stands at the partition's end.
func changelogAtEnd(t *testing.T, broker, topic, changelog string, partitions int32) (bool, string) {
	t.Helper()
	ends := partitionOffsets(t, broker, topic, partitions, -1)
	cl, err := kgo.NewClient(kgo.SeedBrokers(broker), kgo.ConsumeTopics(changelog), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()), kgo.KeepControlRecords())
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	clEnds := partitionOffsets(t, broker, changelog, partitions, -1)
	at := map[int32]int64{}
	read := map[int32]int64{}
	for {
		done := true
		for p, end := range clEnds {
			if read[p] < end {
				done = false
			}
		}
		if done {
			break
		}
		fetches := cl.PollFetches(t.Context())
		fetches.EachRecord(func(r *kgo.Record) {
			read[r.Partition] = r.Offset + 1
			if string(r.Key) != topic+"\x00p" {
				return
			}
			k := store.PositionKey{Source: "keycloak", File: kafka.FileID(topic, r.Partition)}
			snap, err := store.DecodeSnapshot(k, r.Value, nil)
			if err != nil {
				t.Fatalf("changelog partition %d: %v", r.Partition, err)
			}
			at[r.Partition] = snap.Position.Offset
		})
	}
	for p, end := range ends {
		if at[p] != end {
			return false, fmt.Sprintf("partition %d: changelog at %d, end %d", p, at[p], end)
		}
	}
	return true, ""
}

// partitionOffsets returns the end (timestamp -1, of committed
// transactions) or the start (-2) of each of the partitions of topic.
func partitionOffsets(t *testing.T, broker, topic string, partitions int32, timestamp int64) map[int32]int64 {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(broker))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	req := kmsg.NewPtrListOffsetsRequest()
	req.ReplicaID, req.IsolationLevel = -1, 1
	rt := kmsg.NewListOffsetsRequestTopic()
	rt.Topic = topic
	for p := range partitions {
		rp := kmsg.NewListOffsetsRequestTopicPartition()
		rp.Partition, rp.Timestamp, rp.CurrentLeaderEpoch = p, timestamp, -1
		rt.Partitions = append(rt.Partitions, rp)
	}
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(t.Context(), cl)
	if err != nil {
		t.Fatal(err)
	}
	out := map[int32]int64{}
	for _, rt := range resp.Topics {
		for _, rp := range rt.Partitions {
			if err := kerr.ErrorForCode(rp.ErrorCode); err != nil {
				t.Fatalf("offsets of %s/%d: %v", topic, rp.Partition, err)
			}
			out[rp.Partition] = rp.Offset
		}
	}
	return out
}

// deleteRecords deletes every record of the partitions of topic, as
// retention does: they then start at their ends.
func deleteRecords(t *testing.T, broker, topic string, partitions int32) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(broker))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ends := partitionOffsets(t, broker, topic, partitions, -1)
	req := kmsg.NewPtrDeleteRecordsRequest()
	req.TimeoutMillis = 10_000
	rt := kmsg.NewDeleteRecordsRequestTopic()
	rt.Topic = topic
	for p, end := range ends {
		rp := kmsg.NewDeleteRecordsRequestTopicPartition()
		rp.Partition, rp.Offset = p, end
		rt.Partitions = append(rt.Partitions, rp)
	}
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(t.Context(), cl)
	if err != nil {
		t.Fatal(err)
	}
	for _, rt := range resp.Topics {
		for _, rp := range rt.Partitions {
			if err := kerr.ErrorForCode(rp.ErrorCode); err != nil {
				t.Fatalf("delete the records of %s/%d: %v", topic, rp.Partition, err)
			}
		}
	}
	starts := partitionOffsets(t, broker, topic, partitions, -2)
	for p, end := range ends {
		if starts[p] != end || end == 0 {
			t.Fatalf("partition %d starts at %d after its records were deleted, ends at %d", p, starts[p], end)
		}
	}
}

// fleetMetricWith returns the sum of the samples of metric name whose
// labels hold label, on the daemon of control socket sock.
func fleetMetricWith(t *testing.T, sock, name, label string) float64 {
	t.Helper()
	resp, err := socketClient(sock).Get("http://localhost/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	sum := 0.0
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, name+"{") && strings.Contains(line, label) {
			v, err := strconv.ParseFloat(line[strings.LastIndexByte(line, ' ')+1:], 64)
			if err != nil {
				t.Fatal(err)
			}
			sum += v
		}
	}
	return sum
}

// staticMembers checks that the consumer group has one member for each
// of the instance ids, and no other.
func staticMembers(t *testing.T, broker, group string, ids ...string) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(broker))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	req := kmsg.NewPtrDescribeGroupsRequest()
	req.Groups = []string{group}
	resp, err := req.RequestWith(t.Context(), cl)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, g := range resp.Groups {
		for _, m := range g.Members {
			id := "(dynamic " + m.MemberID + ")"
			if m.InstanceID != nil {
				id = *m.InstanceID
			}
			got = append(got, id)
		}
	}
	slices.Sort(got)
	if !slices.Equal(got, ids) {
		t.Errorf("group %s has members %q, want the static members %q", group, got, ids)
	}
}

// fleetMetric returns the sum of the samples of metric name that the
// daemon on control socket sock exposes.
func fleetMetric(sock, name string) (float64, error) {
	resp, err := socketClient(sock).Get("http://localhost/metrics")
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	sum := 0.0
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, name+"{") && !strings.HasPrefix(line, name+" ") {
			continue
		}
		v, err := strconv.ParseFloat(line[strings.LastIndexByte(line, ' ')+1:], 64)
		if err != nil {
			return 0, fmt.Errorf("%s: %w", line, err)
		}
		sum += v
	}
	return sum, sc.Err()
}

// withoutField returns the JSON object b without its top-level field name.
func withoutField(t *testing.T, b []byte, name string) []byte {
	t.Helper()
	var m map[string]json.RawMessage
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("%v: %s", err, b)
	}
	delete(m, name)
	out, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// firstDifference shows where got and want part.
func firstDifference(got, want []byte) string {
	i := 0
	for i < len(got) && i < len(want) && got[i] == want[i] {
		i++
	}
	from := max(0, i-200)
	return fmt.Sprintf("at byte %d of %d (want %d):\n got: …%s…\nwant: …%s…", i, len(got), len(want),
		got[from:min(len(got), i+200)], want[from:min(len(want), i+200)])
}
