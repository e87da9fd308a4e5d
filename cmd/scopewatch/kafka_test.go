package main

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/scopewatch/scopewatch/internal/probe"
	"github.com/scopewatch/scopewatch/internal/traffic"
)

// kafkaConfig reads Keycloak lines from the topic keycloak of the brokers
// %[4]s; %[1]s is the directory, %[2]s the name, %[3]s the listen address.
const kafkaConfig = `store: %[1]s/%[2]s.db
listen: %[3]s
control_socket: %[1]s/%[2]s.sock
rules: %[1]s/rules.yaml
batch: {max_events: 1000, max_delay: 250ms}
sources:
  - name: keycloak
    format: keycloak
    kafka: {brokers: [%[4]s], topics: [keycloak], group: scopewatch, instance_id: scopewatch-a}
detect: {client_retention: 3650d}
`

// fileConfig reads the same lines from the file kc.log.
const fileConfig = `store: %[1]s/%[2]s.db
listen: 127.0.0.1:1
rules: %[1]s/rules.yaml
sources:
  - {name: keycloak, path: %[1]s/kc.log, format: keycloak}
detect: {client_retention: 3650d}
`

// TestKafkaCrash produces Keycloak token events, keyed by client, to a
// six-partition topic of an in-process Kafka (kfake, which speaks the real
// protocol) while a scopewatch daemon consumes it, killing the daemon with
// SIGKILL at random moments and starting it again. Once it has committed
// every record, its store must equal one uninterrupted scan of the same
// lines from a file: offsets and counts commit together.
func TestKafkaCrash(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("crash loop: slow")
	}
	bin := scopewatchBinary(t)
	dir := t.TempDir()
	cluster := kfake.MustCluster(kfake.NumBrokers(1), kfake.SeedTopics(6, "keycloak"))
	defer cluster.Close()
	broker := cluster.ListenAddrs()[0]
	clients := traffic.GeneratedClients(19, 200)
	write(t, filepath.Join(dir, "rules.yaml"), registering(traffic.DemoRules, clients))
	const events, chunks = 40_000, 10
	start := time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC)
	gen := traffic.New(19, clients, start, start.Add(30*24*time.Hour), events)

	produce := keycloakProducer(t, broker, filepath.Join(dir, "kc.log"), gen)

	addr, err := probe.FreeAddr()
	if err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(dir, "kafka.yaml")
	write(t, cfg, fmt.Sprintf(kafkaConfig, dir, "kafka", addr, broker))
	var stderr bytes.Buffer
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("daemon logs:\n%s", stderr.Bytes())
		}
	})
	startDaemon := func() (*exec.Cmd, chan error) {
		cmd := exec.Command(bin, "run", "--config", cfg)
		cmd.Stderr = &stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		exited := make(chan error, 1)
		go func() { exited <- cmd.Wait() }()
		t.Cleanup(func() { cmd.Process.Kill() })
		return cmd, exited
	}
	seed := uint64(time.Now().UnixNano())
	t.Logf("kill schedule seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 3))
	cmd, exited := startDaemon()
	kills := 0
	for c := range chunks {
		produce(c*events/chunks, (c+1)*events/chunks)
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
	deadline := time.Now().Add(2 * time.Minute)
	for {
		got, err := storedLines(filepath.Join(dir, "kafka.sock"))
		if err == nil && got >= events {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("daemon did not catch up: %d of %d records committed (%v)", got, events, err)
		}
		select {
		case err := <-exited:
			t.Fatalf("daemon exited: %v", err)
		case <-time.After(50 * time.Millisecond):
		}
	}
	cmd.Process.Signal(syscall.SIGTERM)
	if err := <-exited; err != nil {
		t.Fatalf("daemon did not stop cleanly on SIGTERM: %v", err)
	}
	t.Logf("killed %d times over %d records", kills, events)

	ref := filepath.Join(dir, "file.yaml")
	write(t, ref, fmt.Sprintf(fileConfig, dir, "reference"))
	runChild(t, bin, "scan", "--quiet", "--config", ref, filepath.Join(dir, "kc.log"))
	compareSnapshots(t, snapshot(t, filepath.Join(dir, "kafka.db")), snapshot(t, filepath.Join(dir, "reference.db")))
}

// keycloakProducer returns a function that produces the events from to
// to of gen as Keycloak token lines, keyed by client, to the topic
// keycloak of broker, and appends the same lines to the file at logPath.
func keycloakProducer(t *testing.T, broker, logPath string, gen *traffic.Generator) func(from, to int) {
	t.Helper()
	producer, err := kgo.NewClient(kgo.SeedBrokers(broker), kgo.DefaultProduceTopic("keycloak"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(producer.Close)
	kc, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { kc.Close() })
	return func(from, to int) {
		t.Helper()
		var recs []*kgo.Record
		for i := from; i < to; i++ {
			ev := gen.Next(i)
			ev.Grant = true
			line := gen.KeycloakQuarkusJSON(nil, ev)
			if _, err := kc.Write(line); err != nil {
				t.Fatal(err)
			}
			recs = append(recs, &kgo.Record{Key: []byte(ev.Client.ID), Value: line})
		}
		if err := producer.ProduceSync(t.Context(), recs...).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
}
