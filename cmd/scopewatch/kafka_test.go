package main

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/scopewatch/scopewatch/internal/probe"
	"github.com/scopewatch/scopewatch/internal/traffic"
	"github.com/scopewatch/scopewatch/store"
)

// kafkaConfig reads Keycloak lines from Kafka, the brokers %[4]s; %[1]s is
// the directory, %[2]s the name, %[3]s the listen address, %[5]s the
// topics of the kafka section.
const kafkaConfig = `store: %[1]s/%[2]s.db
listen: %[3]s
control_socket: %[1]s/%[2]s.sock
rules: %[1]s/rules.yaml
batch: {max_events: 1000, max_delay: 250ms}
sources:
  - name: keycloak
    format: keycloak
    kafka: {brokers: [%[4]s], group: scopewatch, instance_id: scopewatch-a, %[5]s}
detect: {client_retention: 3650d}
`

// The topics of kafkaConfig: the topic keycloak, keyed by client; or the
// raw topic keycloak-raw through the repartition stage, which produces to
// keycloak.
const (
	keyedTopics         = `topics: [keycloak]`
	repartitionedTopics = `topics: [keycloak-raw], repartition: {topic: keycloak}`
)

// fileConfig reads the same lines from the file kc.log.
const fileConfig = `store: %[1]s/%[2]s.db
listen: 127.0.0.1:1
rules: %[1]s/rules.yaml
sources:
  - {name: keycloak, path: %[1]s/kc.log, format: keycloak}
detect: {client_retention: 3650d}
`

// TestKafkaCrash produces Keycloak token events to an in-process Kafka
// (kfake, which speaks the real protocol) while a scopewatch daemon
// consumes them, killing the daemon with SIGKILL at random moments and
// starting it again. Once it has committed every record, its store must
// equal one uninterrupted scan of the same lines from a file: offsets and
// counts commit together. keyed: the events go keyed by client to a
// six-partition topic. repartitioned: they go without a key to a
// three-partition raw topic, and the daemon's repartition stage produces
// them keyed by client to the six-partition one, in transactions that the
// kills abort: exactly once across both hops.
func TestKafkaCrash(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("crash loop: slow")
	}
	bin := scopewatchBinary(t)
	t.Run("keyed", func(t *testing.T) {
		t.Parallel()
		kafkaCrash(t, bin, "keyed")
	})
	t.Run("repartitioned", func(t *testing.T) {
		t.Parallel()
		kafkaCrash(t, bin, "repartitioned")
	})
	t.Run("changelog", func(t *testing.T) {
		t.Parallel()
		kafkaCrash(t, bin, "changelog")
	})
}

// kafkaCrash runs the crash test in mode keyed, repartitioned or
// changelog: keyed, writing a changelog, which must then hold, once the
// topic's records are deleted, what a daemon on a new store restores
// every partition's clients from.
func kafkaCrash(t *testing.T, bin string, mode string) {
	repartitioned := mode == "repartitioned"
	dir := t.TempDir()
	cluster := kfake.MustCluster(kfake.NumBrokers(1), kfake.SeedTopics(6, "keycloak"), kfake.SeedTopics(3, "keycloak-raw"),
		kfake.SeedTopics(6, "keycloak-state"))
	defer cluster.Close()
	broker := cluster.ListenAddrs()[0]
	clients := traffic.GeneratedClients(19, 200)
	write(t, filepath.Join(dir, "rules.yaml"), registering(traffic.DemoRules, clients))
	const events, chunks = 40_000, 10
	start := time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC)
	gen := traffic.New(19, clients, start, start.Add(30*24*time.Hour), events)

	topic, topics := "keycloak", keyedTopics
	switch mode {
	case "repartitioned":
		topic, topics = "keycloak-raw", repartitionedTopics
	case "changelog":
		topics += ", changelog: keycloak-state"
	}
	produce := keycloakProducer(t, broker, topic, !repartitioned, filepath.Join(dir, "kc.log"), gen)

	addr, err := probe.FreeAddr()
	if err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(dir, "kafka.yaml")
	write(t, cfg, fmt.Sprintf(kafkaConfig, dir, "kafka", addr, broker, topics))
	var stderr bytes.Buffer
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("daemon logs:\n%s", stderr.Bytes())
		}
	})
	startDaemon := func() (*exec.Cmd, chan error) {
		return startChild(t, bin, cfg, &stderr)
	}
	seed := uint64(time.Now().UnixNano())
	t.Logf("kill schedule seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 3))
	cmd, exited := startDaemon()
	kills, records := 0, 0
	for c := range chunks {
		records += produce(c*events/chunks, (c+1)*events/chunks)
		if rng.IntN(2) == 0 {
			select {
			case <-time.After(time.Duration(rng.IntN(600)) * time.Millisecond):
			case err := <-exited:
				t.Fatalf("daemon exited on its own: %v", err)
			}
			cmd.Process.Signal(syscall.SIGKILL)
			<-exited
			kills++
			cmd, exited = startDaemon()
		}
	}
	awaitChild(t, exited, 2*time.Minute, "the daemon to catch up", func() (bool, string) {
		got, err := storedLines(filepath.Join(dir, "kafka.sock"))
		return err == nil && got >= records, fmt.Sprintf("%d of %d records committed (%v)", got, records, err)
	})
	if mode == "changelog" {
		// Written every 5 s: the changelog catches up with the store.
		awaitChild(t, exited, 2*time.Minute, "the changelog at the partitions' ends", func() (bool, string) {
			return changelogAtEnd(t, broker, "keycloak", "keycloak-state", 6)
		})
	}
	stopChild(t, cmd, exited)
	t.Logf("killed %d times over %d records", kills, records)

	ref := filepath.Join(dir, "file.yaml")
	write(t, ref, fmt.Sprintf(fileConfig, dir, "reference"))
	runChild(t, bin, "scan", "--quiet", "--config", ref, filepath.Join(dir, "kc.log"))
	compareSnapshots(t, snapshot(t, filepath.Join(dir, "kafka.db")), snapshot(t, filepath.Join(dir, "reference.db")))
	src := storedSources(t, filepath.Join(dir, "kafka.db"))["keycloak"]
	t.Logf("poison: %d malformed, %d ignored", src.Malformed, src.Ignored)
	if src.Malformed+src.Ignored != uint64(records-events) {
		t.Errorf("%d poison records, but %d lines malformed and %d ignored", records-events, src.Malformed, src.Ignored)
	}
	if mode != "changelog" {
		return
	}
	// A daemon on a new store, the topic's records deleted, restores
	// every partition's clients from the changelog the killed one wrote.
	deleteRecords(t, broker, "keycloak", 6)
	cfg2 := filepath.Join(dir, "kafka2.yaml")
	write(t, cfg2, fmt.Sprintf(kafkaConfig, dir, "kafka2", addr, broker, topics))
	cmd, exited = startChild(t, bin, cfg2, &stderr)
	awaitChild(t, exited, 2*time.Minute, "every partition restored", func() (bool, string) {
		n, _ := fleetMetric(filepath.Join(dir, "kafka2.sock"), "scopewatch_kafka_partitions_restored_total")
		r, err := fleetMetric(filepath.Join(dir, "kafka2.sock"), "scopewatch_kafka_partitions_restoring")
		return n == 6 && r == 0 && err == nil, fmt.Sprintf("%.0f of 6 restored, %.0f restoring (%v)", n, r, err)
	})
	stopChild(t, cmd, exited)
	perClient := func(lines []string) []string {
		return slices.DeleteFunc(lines, func(l string) bool {
			return strings.HasPrefix(l, "source ") || strings.Contains(l, "//") // the instance's own counts, findings of no client
		})
	}
	compareSnapshots(t, perClient(snapshot(t, filepath.Join(dir, "kafka2.db"))), perClient(snapshot(t, filepath.Join(dir, "reference.db"))))
}

// startChild starts the daemon bin on cfg, its standard error to stderr,
// and returns it with the channel its exit is sent on; the test's end
// kills it.
func startChild(t *testing.T, bin, cfg string, stderr *bytes.Buffer) (*exec.Cmd, chan error) {
	t.Helper()
	cmd := exec.Command(bin, "run", "--config", cfg)
	cmd.Stderr = stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited, done := make(chan error, 1), make(chan struct{})
	go func() {
		exited <- cmd.Wait()
		close(done)
	}()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-done // its standard error is written no more
	})
	return cmd, exited
}

// storedSources returns the counts of each source in the store at path,
// by name.
func storedSources(t *testing.T, path string) map[string]store.Source {
	t.Helper()
	db, err := store.Open(path, store.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	srcs, err := db.Sources()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]store.Source{}
	for _, s := range srcs {
		out[s.Name] = s
	}
	return out
}

// poison are records no parser reads: bytes that are not UTF-8, a JSON
// record cut short, a client id of the wrong type, a JSON null and a line
// of another format. Each is a malformed line of its partition, counted
// like the same line of a file, and stops nothing.
var poison = [][]byte{
	{0xff, 0xfe, 0x00, 0x01, 'k', 'c', 0xc3, 0x28},
	[]byte(`{"timestamp":"2026-05-01T00:00:00Z","loggerName":"org.keycloak.events","message":"type=CODE_TO_TOKEN`),
	[]byte(`{"timestamp":"2026-05-01T00:00:00Z","loggerName":"org.keycloak.events","mdc":{"clientId":12},"message":"type=\"CODE_TO_TOKEN\""}`),
	[]byte(`null`),
	[]byte(`10.0.0.1 - - [01/May/2026:00:00:00 +0000] "GET /fhir/Patient HTTP/1.1" 200 12 "-" "curl"`),
}

// keycloakProducer returns a function that produces the events from to
// to of gen as Keycloak token lines, keyed by client when keyed is set, to
// topic of broker, and appends the same lines to the file at logPath.
// Among them, after every 1,000th event, goes a poison record without a
// key; the function returns how many records it produced.
func keycloakProducer(t *testing.T, broker, topic string, keyed bool, logPath string, gen *traffic.Generator) func(from, to int) int {
	t.Helper()
	producer, err := kgo.NewClient(kgo.SeedBrokers(broker), kgo.DefaultProduceTopic(topic))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(producer.Close)
	kc, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { kc.Close() })
	add := func(recs []*kgo.Record, key, line []byte) []*kgo.Record {
		if _, err := kc.Write(line); err != nil {
			t.Fatal(err)
		}
		return append(recs, &kgo.Record{Key: key, Value: line})
	}
	return func(from, to int) int {
		t.Helper()
		var recs []*kgo.Record
		for i := from; i < to; i++ {
			ev := gen.Next(i)
			ev.Grant = true
			var key []byte
			if keyed {
				key = []byte(ev.Client.ID)
			}
			recs = add(recs, key, gen.KeycloakQuarkusJSON(nil, ev))
			if i%1000 == 999 {
				recs = add(recs, nil, append(slices.Clone(poison[i/1000%len(poison)]), '\n'))
			}
		}
		if err := producer.ProduceSync(t.Context(), recs...).FirstErr(); err != nil {
			t.Fatal(err)
		}
		return len(recs)
	}
}
