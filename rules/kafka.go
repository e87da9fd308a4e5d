package rules

import (
	"os"
	"slices"
	"strings"
)

// Kafka is a source read from Kafka topics instead of a file: each
// record's value is one log line in the source's format.
type Kafka struct {
	Brokers []string `yaml:"brokers"` // host:port of some brokers of the cluster
	Topics  []string `yaml:"topics"`
	// Group is the consumer group; its members share the topics'
	// partitions. The offsets that count are those in the store,
	// committed with the counts they produced; the group's are committed
	// after them, for lag monitoring.
	Group string `yaml:"group"`
	// InstanceID makes the member static (group.instance.id), so a
	// restart within the session timeout keeps its partitions; default
	// the host name.
	InstanceID string `yaml:"instance_id"`
	// SessionTimeout is how long the group waits for a member that
	// stopped answering before its partitions go to the others
	// (session.timeout.ms); default 45s, the brokers bounding it
	// (group.min/max.session.timeout.ms).
	SessionTimeout Duration `yaml:"session_timeout"`
	// Repartition, when set, reads Topics as shippers write them, not
	// keyed by client, and produces each record again to its own topic
	// keyed by the client the line names; the source reads that topic.
	Repartition *KafkaRepartition `yaml:"repartition"`
	// Changelog, when set, is a compacted topic that carries the state of
	// each partition's clients: the instance a partition moves to restores
	// them from it instead of reading the partition from its start. It
	// needs at least as many partitions as the topic the source reads.
	Changelog string     `yaml:"changelog"`
	TLS       *KafkaTLS  `yaml:"tls"`
	SASL      *KafkaSASL `yaml:"sasl"`
	// Password is read from SASL.PasswordFile by Load.
	Password string `yaml:"-"`
}

// KafkaRepartition is the repartition stage of a Kafka source: every
// instance takes its share of the raw topics' partitions (in Group) and
// produces their records, in Kafka transactions with the offsets they
// come from, to Topic, keyed by client. A record is produced there once,
// whatever crashes; the source reads Topic like an input topic.
type KafkaRepartition struct {
	Topic string `yaml:"topic"`
	// Group is the consumer group of the stage; default the source's
	// group with "-repartition" appended.
	Group string `yaml:"group"`
}

// TransactionalID is the Kafka transactional id of an instance's
// repartition stage: stable across its restarts, so that a restarted
// instance fences the transaction its predecessor left open, and its own
// (checkKafkaGroups keeps the stages' groups apart, instance_id the
// instances).
func (k *Kafka) TransactionalID() string {
	return k.Repartition.Group + "/" + k.InstanceID
}

// checkKafkaGroups refuses two Kafka sources in one consumer group, or a
// repartition stage in a source's group: the instance is one static
// member (instance_id) of each group, so they would fence each other,
// and two stages would share a transactional id. It refuses a repartition
// topic that another source reads as well, and a changelog that is
// another's, or a topic read.
func (c *Config) checkKafkaGroups(lines map[string]int, p *problems) {
	type use struct {
		at, what string
	}
	groups, topics := map[string]use{}, map[string]use{}
	claim := func(m map[string]use, key, at, what, field string) {
		if key == "" {
			return
		}
		if first, ok := m[key]; ok {
			p.add(lineOf(lines, at+"."+field, at), at+"."+field, "%q is also the %s of %s: give each its own", key, first.what, first.at)
			return
		}
		m[key] = use{at, what}
	}
	for i, s := range c.Sources {
		k := s.Kafka
		if k == nil {
			continue
		}
		at := joinIndex("sources", i) + ".kafka"
		claim(groups, k.Group, at, "consumer group", "group")
		if r := k.Repartition; r != nil && r.Group != k.Group {
			claim(groups, r.Group, at+".repartition", "consumer group", "group")
		}
	}
	for i, s := range c.Sources {
		if k := s.Kafka; k != nil {
			for _, t := range k.Topics {
				topics[t] = use{joinIndex("sources", i) + ".kafka", "topic"}
			}
		}
	}
	stages := map[string]use{}
	for i, s := range c.Sources {
		k := s.Kafka
		if k == nil || k.Repartition == nil || slices.Contains(k.Topics, k.Repartition.Topic) {
			continue // none, or refused by checkKafka
		}
		at := joinIndex("sources", i) + ".kafka.repartition"
		if first, ok := topics[k.Repartition.Topic]; ok {
			p.add(lineOf(lines, at+".topic", at), at+".topic", "%q is a topic %s reads as well: the stage's records would be counted twice; give the stage a topic of its own", k.Repartition.Topic, first.at)
			continue
		}
		claim(stages, k.Repartition.Topic, at, "repartition topic", "topic")
	}
	changelogs := map[string]use{}
	for i, s := range c.Sources {
		k := s.Kafka
		if k == nil || k.Changelog == "" {
			continue
		}
		at := joinIndex("sources", i) + ".kafka"
		if first, ok := topics[k.Changelog]; ok && first.at != at {
			p.add(lineOf(lines, at+".changelog", at), at+".changelog", "%q is a topic %s reads: the changelog needs a compacted topic of its own", k.Changelog, first.at)
			continue
		}
		if first, ok := stages[k.Changelog]; ok {
			p.add(lineOf(lines, at+".changelog", at), at+".changelog", "%q is the repartition topic of %s: the changelog needs a compacted topic of its own", k.Changelog, first.at)
			continue
		}
		claim(changelogs, k.Changelog, at, "changelog", "changelog")
	}
}

// KafkaTLS configures TLS to the brokers; every path is a PEM file.
type KafkaTLS struct {
	CA   string `yaml:"ca"`   // CA bundle; default the system's
	Cert string `yaml:"cert"` // client certificate, with key
	Key  string `yaml:"key"`
	// ServerName overrides the name checked in the brokers' certificates.
	ServerName string `yaml:"server_name"`
}

// KafkaSASL configures SASL authentication to the brokers.
type KafkaSASL struct {
	Mechanism    string `yaml:"mechanism"` // plain, scram-sha-256 or scram-sha-512
	User         string `yaml:"user"`
	PasswordFile string `yaml:"password_file"`
}

// KafkaMechanisms are the SASL mechanisms a Kafka source supports.
func KafkaMechanisms() []string { return []string{"plain", "scram-sha-256", "scram-sha-512"} }

// absKafka makes the Kafka source's file paths absolute.
func (k *Kafka) absPaths(abs func(string) string) {
	if k.TLS != nil {
		k.TLS.CA, k.TLS.Cert, k.TLS.Key = abs(k.TLS.CA), abs(k.TLS.Cert), abs(k.TLS.Key)
	}
	if k.SASL != nil {
		k.SASL.PasswordFile = abs(k.SASL.PasswordFile)
	}
}

// checkKafka checks the kafka section of source at (a config path such as
// sources[2]) and reads its password.
func (c *Config) checkKafka(k *Kafka, at string, lines map[string]int, p *problems) {
	kat := at + ".kafka"
	f := func(name string) (int, string) {
		fp := joinField(kat, name)
		return lineOf(lines, fp, kat, at), fp
	}
	if len(k.Brokers) == 0 {
		line, fp := f("brokers")
		p.add(line, fp, "required: host:port of one or more brokers, e.g. [kafka-1:9092]")
	}
	for i, b := range k.Brokers {
		if host, port, ok := strings.Cut(b, ":"); !ok || host == "" || port == "" {
			line, fp := f("brokers")
			p.add(line, joinIndex(fp, i), "broker %q is not host:port", b)
		}
	}
	if len(k.Topics) == 0 {
		line, fp := f("topics")
		p.add(line, fp, "required: the topics whose records are this source's lines")
	}
	if k.Group == "" {
		line, fp := f("group")
		p.add(line, fp, "required: the consumer group the scopewatch instances share, e.g. scopewatch")
	}
	if k.InstanceID == "" {
		k.InstanceID, _ = os.Hostname()
	}
	if k.SessionTimeout < 0 {
		line, fp := f("session_timeout")
		p.add(line, fp, "must be positive, e.g. 45s")
	}
	if r := k.Repartition; r != nil {
		rat := kat + ".repartition"
		if r.Group == "" && k.Group != "" {
			r.Group = k.Group + "-repartition"
		}
		switch {
		case r.Topic == "":
			p.add(lineOf(lines, rat+".topic", rat), rat+".topic", "required: the topic the records go to keyed by client, e.g. scopewatch-by-client")
		case slices.Contains(k.Topics, r.Topic):
			p.add(lineOf(lines, rat+".topic", rat), rat+".topic", "%q is one of topics: the stage would read its own records; name a topic of its own", r.Topic)
		}
		if r.Group == k.Group && k.Group != "" {
			p.add(lineOf(lines, rat+".group", rat), rat+".group", "the stage needs a consumer group of its own, not the source's %q", k.Group)
		}
	}
	if cl := k.Changelog; cl != "" && (slices.Contains(k.Topics, cl) || (k.Repartition != nil && k.Repartition.Topic == cl)) {
		line, fp := f("changelog")
		p.add(line, fp, "%q is a topic this source reads: the changelog needs a compacted topic of its own, e.g. %s-state", cl, k.Group)
	}
	if t := k.TLS; t != nil {
		if (t.Cert == "") != (t.Key == "") {
			line, fp := f("tls")
			p.add(line, fp+".cert", "cert and key go together: set both for a client certificate, or neither")
		}
		for _, pf := range []struct{ name, path string }{{"ca", t.CA}, {"cert", t.Cert}, {"key", t.Key}} {
			if pf.path == "" {
				continue
			}
			if _, err := os.Stat(pf.path); err != nil {
				fp := kat + ".tls." + pf.name
				p.add(lineOf(lines, fp, kat+".tls", kat), fp, "cannot read: %v", err)
			}
		}
	}
	if s := k.SASL; s != nil {
		sat := kat + ".sasl"
		if !slices.Contains(KafkaMechanisms(), s.Mechanism) {
			p.add(lineOf(lines, sat+".mechanism", sat), sat+".mechanism", "unknown mechanism %q; use %s", s.Mechanism, strings.Join(KafkaMechanisms(), ", "))
		}
		if s.User == "" {
			p.add(lineOf(lines, sat+".user", sat), sat+".user", "required with sasl")
		}
		if s.PasswordFile == "" {
			p.add(lineOf(lines, sat+".password_file", sat), sat+".password_file", "required with sasl: a file holding the password, mode 0600")
		} else if pw, ok := c.readSecret(lines, p, sat+".password_file", s.PasswordFile, "cannot read the password file: %v"); ok {
			k.Password = strings.TrimSpace(string(pw))
		}
	}
}
