package store

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"

	bolt "go.etcd.io/bbolt"
)

// A partition's changelog (a compacted Kafka topic, written by the
// source) carries the state of the partition's clients, so that the
// instance the partition moves to restores them without reading the
// partition's records again. The store keeps, in the transaction of
// every commit, what each changelog still lacks; the source reads it
// (Changes), writes it to the changelog in one Kafka transaction, and
// says so (Shipped). What the changelog holds is therefore always the
// state of the partition's clients as of one commit, with the position
// that commit saved: a restore from it, followed by the partition's
// records after that position, counts each record once.
//
// bucketChangelog's keys are a partition's position key followed by
//   - a client id: the client changed, or was deleted, since it was last
//     shipped;
//   - nothing: the partition's position changed;
//   - a 0 byte (seededSuffix): the changelog holds every client of the
//     partition; until it is written, the next Changes ships them all.
//     Its value is the nonce of the changelog's newest record of the
//     partition that this store wrote or restored (8 bytes, big-endian):
//     when the changelog's newest record has another, another instance
//     wrote the changelog since, and it is newer than this store's copy.
//
// Values are the uvarint sequence of the commit that wrote the entry, so
// that Shipped deletes only entries no commit has written since.
var bucketChangelog = []byte("changelog")

const seededSuffix = "\x00"

// ChangelogOptions say which sources keep a changelog (KeepChangelog).
type ChangelogOptions struct {
	// Sources keep a changelog of their partitions.
	Sources []string
	// WindowClient returns the client a window key belongs to, false for
	// a window of no one client (an address's, a shard of subjects): the
	// detectors name their windows.
	WindowClient func(key string) (string, bool)
}

// KeepChangelog makes every later commit record what the changelogs of
// the partitions of opt.Sources lack; the empty options keep none. What
// the store held for the changelogs of other sources is deleted: what
// they lack was not recorded while they kept none, so a changelog kept
// again is written whole first.
func (db *DB) KeepChangelog(opt ChangelogOptions) error {
	db.mu.Lock()
	defer db.mu.Unlock()
	keep := &changelogKeep{sources: map[string]bool{}, windowClient: opt.WindowClient}
	for _, s := range opt.Sources {
		keep.sources[s] = true
	}
	db.changelog = nil
	if len(keep.sources) > 0 {
		db.changelog = keep
	}
	if db.readOnly {
		return nil
	}
	var stale [][]byte
	err := db.view(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketChangelog).ForEach(func(k, _ []byte) error {
			if i := bytes.IndexByte(k, 0); i >= 0 && !keep.sources[string(k[:i])] {
				stale = append(stale, slices.Clone(k))
			}
			return nil
		})
	})
	if err == nil && len(stale) > 0 {
		err = db.update(func(tx *bolt.Tx) error {
			b := tx.Bucket(bucketChangelog)
			for _, k := range stale {
				if err := b.Delete(k); err != nil {
					return err
				}
			}
			return nil
		})
	}
	if err != nil {
		return failed(err, fmt.Sprintf("forget the changelogs no source keeps in %s", db.path))
	}
	return nil
}

type changelogKeep struct {
	sources      map[string]bool
	windowClient func(string) (string, bool)
}

// changeKey is the bucketChangelog key of client id (or "", the
// position) of partition k.
func changeKey(k PositionKey, id string) []byte {
	return append(appendPositionKey(nil, k), id...)
}

// markChanges records, in the commit's transaction, the clients of kept
// partitions that b changes or deletes, and the positions it moves. It
// runs before the batch's writes: a client's partition is read from the
// owners bucket before a deletion takes it away. A partition released
// (b.DropPositions) leaves its changelog as it is, for its next owner:
// its entries go.
func markChanges(tx *bolt.Tx, b *Batch, keep *changelogKeep) error {
	cb := tx.Bucket(bucketChangelog)
	released := map[PositionKey]bool{}
	for _, k := range b.DropPositions {
		released[k] = true
		prefix := appendPositionKey(nil, k)
		c := cb.Cursor()
		for key, _ := c.Seek(prefix); key != nil && bytes.HasPrefix(key, prefix); key, _ = c.Seek(prefix) {
			if err := c.Delete(); err != nil {
				return fmt.Errorf("changelog of %s: %w", k.Source, err)
			}
		}
	}
	seq, err := cb.NextSequence()
	if err != nil {
		return fmt.Errorf("changelog sequence: %w", err)
	}
	val := binary.AppendUvarint(nil, seq)
	ob := tx.Bucket(bucketOwners)
	mark := func(id string) error {
		k, ok := b.Owners[id]
		if !ok {
			var err error
			if k, ok, err = ownerOf(ob, id); err != nil || !ok {
				return err
			}
		}
		if !keep.sources[k.Source] || released[k] {
			return nil
		}
		return cb.Put(changeKey(k, id), val)
	}
	for i := range b.Records {
		if err := mark(b.Records[i].ID); err != nil {
			return err
		}
	}
	for id := range b.DropClients {
		if err := mark(id); err != nil {
			return err
		}
	}
	for k := range b.Findings {
		if k.Client != "" {
			if err := mark(k.Client); err != nil {
				return err
			}
		}
	}
	for k := range b.DropFindings {
		if k.Client != "" {
			if err := mark(k.Client); err != nil {
				return err
			}
		}
	}
	if keep.windowClient != nil {
		for k := range b.Windows {
			if id, ok := keep.windowClient(k); ok {
				if err := mark(id); err != nil {
					return err
				}
			}
		}
	}
	for k := range b.Positions {
		if keep.sources[k.Source] && !released[k] {
			if err := cb.Put(changeKey(k, ""), val); err != nil {
				return fmt.Errorf("changelog of %s: %w", k.Source, err)
			}
		}
	}
	return nil
}

// ownerOf returns the partition that owns client id, if any.
func ownerOf(ob *bolt.Bucket, id string) (PositionKey, bool, error) {
	v := ob.Get([]byte(id))
	if v == nil {
		return PositionKey{}, false, nil
	}
	k, err := decodeOwner(v)
	if err != nil {
		return PositionKey{}, false, fmt.Errorf("owner of client %q: %w", id, err)
	}
	return k, true, nil
}

// markNotified records, in a notifier's transaction, that client id's
// notification groups changed, for the changelog of the partition that
// owns it: what was told of them travels with the client.
func markNotified(tx *bolt.Tx, keep *changelogKeep, id string) error {
	k, ok, err := ownerOf(tx.Bucket(bucketOwners), id)
	if err != nil || !ok || !keep.sources[k.Source] {
		return err
	}
	cb := tx.Bucket(bucketChangelog)
	seq, err := cb.NextSequence()
	if err != nil {
		return fmt.Errorf("changelog sequence: %w", err)
	}
	return cb.Put(changeKey(k, id), binary.AppendUvarint(nil, seq))
}

// Changes is what the changelog of one partition lacks, read in one
// transaction: written whole to the changelog in one Kafka transaction,
// it brings the changelog to the state of the commit that saved
// Position.
type Changes struct {
	Key      PositionKey
	Position Position
	Coverage []Span // of the partition's source, as the store holds them
	// Clients are the clients that changed, in id order; a nil Value is
	// a client deleted.
	Clients []ClientChange
	// Seed marks a changelog that does not hold every client yet: these
	// are all of them.
	Seed bool
	seqs map[string][]byte // bucketChangelog entries read, by key
}

// ClientChange is one client's state, encoded for the changelog: its
// record, findings and windows (see DecodeClientState).
type ClientChange struct {
	ID    string
	Value []byte
}

// Changes returns what the changelog of the partition at k lacks; nil
// when it lacks nothing or the store holds no position of k.
func (db *DB) Changes(k PositionKey) (*Changes, error) {
	var out *Changes
	err := db.view(func(tx *bolt.Tx) error {
		pv := tx.Bucket(bucketPositions).Get(appendPositionKey(nil, k))
		if pv == nil {
			return nil
		}
		p, err := decodePosition(appendPositionKey(nil, k), pv)
		if err != nil {
			return err
		}
		ch := &Changes{Key: k, Position: p, seqs: map[string][]byte{}}
		prefix := appendPositionKey(nil, k)
		ids := map[string]bool{}
		c := tx.Bucket(bucketChangelog).Cursor()
		seeded := false
		for key, v := c.Seek(prefix); key != nil && bytes.HasPrefix(key, prefix); key, v = c.Next() {
			rest := string(key[len(prefix):])
			if rest == seededSuffix {
				seeded = true
				continue
			}
			ch.seqs[string(key)] = slices.Clone(v)
			if rest != "" {
				ids[rest] = true
			}
		}
		if !seeded {
			ch.Seed = true
			err := tx.Bucket(bucketOwners).ForEach(func(id, v []byte) error {
				o, err := decodeOwner(v)
				if err != nil {
					return fmt.Errorf("owner of client %q: %w", id, err)
				}
				if o == k {
					ids[string(id)] = true
				}
				return nil
			})
			if err != nil {
				return err
			}
		} else if len(ch.seqs) == 0 {
			return nil
		}
		if v := tx.Bucket(bucketCoverage).Get([]byte(k.Source)); v != nil {
			if err := json.Unmarshal(v, &ch.Coverage); err != nil {
				return fmt.Errorf("coverage of %q: %w: %v", k.Source, ErrCorrupt, err)
			}
		}
		states, err := clientStates(tx, db.scopes.load(), ids, db.changelogWindowClient())
		if err != nil {
			return err
		}
		for _, id := range slices.Sorted(maps.Keys(ids)) {
			ch.Clients = append(ch.Clients, ClientChange{ID: id, Value: states[id]})
		}
		out = ch
		return nil
	})
	if err != nil {
		return nil, failed(err, fmt.Sprintf("read the changelog of %s from %s", k.Source, db.path))
	}
	return out, nil
}

func (db *DB) changelogWindowClient() func(string) (string, bool) {
	if keep := db.changelogKept(); keep != nil {
		return keep.windowClient
	}
	return nil
}

// changelogKept returns what KeepChangelog set, or nil.
func (db *DB) changelogKept() *changelogKeep {
	db.mu.Lock()
	defer db.mu.Unlock()
	return db.changelog
}

// clientStates encodes the state of each client of ids the store holds:
// its record (selfContained: names are the store's scope names), findings
// and windows. Clients without a record are left out (deleted).
func clientStates(tx *bolt.Tx, names []string, ids map[string]bool, windowClient func(string) (string, bool)) (map[string][]byte, error) {
	type kv struct{ k, v []byte }
	findings, windows, groups := map[string][]kv{}, map[string][]kv{}, map[string][]kv{}
	err := tx.Bucket(bucketFindings).ForEach(func(k, v []byte) error {
		parts := bytes.SplitN(k, []byte{0}, 3)
		if len(parts) == 3 && ids[string(parts[1])] {
			findings[string(parts[1])] = append(findings[string(parts[1])], kv{k, v})
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	err = tx.Bucket(bucketGroups).ForEach(func(k, v []byte) error {
		if _, id, ok := bytes.Cut(k, []byte{0}); ok && ids[string(id)] {
			groups[string(id)] = append(groups[string(id)], kv{k, v})
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if windowClient != nil {
		err = tx.Bucket(bucketWindows).ForEach(func(k, v []byte) error {
			if id, ok := windowClient(string(k)); ok && ids[id] {
				windows[id] = append(windows[id], kv{k, v})
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	out := make(map[string][]byte, len(ids))
	cb := tx.Bucket(bucketClients)
	for id := range ids {
		rec := cb.Get([]byte(id))
		if rec == nil {
			continue
		}
		rec, err := selfContained(names, rec)
		if err != nil {
			return nil, fmt.Errorf("client %q: %w", id, err)
		}
		b := append([]byte{clientStateFormat}, appendString(nil, rec)...)
		for _, set := range [][]kv{findings[id], windows[id], groups[id]} {
			b = appendUvarint(b, uint64(len(set)))
			for _, e := range set {
				b = appendString(appendString(b, e.k), e.v)
			}
		}
		out[id] = b
	}
	return out, nil
}

// clientStateFormat is the encoding of a client's state in a changelog:
// the format byte, the client record, then the findings, the windows and
// the notification groups, each a count and key-value pairs, every part
// a uvarint length and bytes, the values as the store holds them. Format
// 1, still read, has no groups.
const clientStateFormat = 2

// Shipped records that the changelog now holds ch, written with the
// partition record of nonce: its entries are deleted, unless a commit
// wrote them again since ch was read, and the changelog is marked as
// holding every client, its newest record of nonce.
func (db *DB) Shipped(ch *Changes, nonce uint64) error {
	if db.readOnly {
		return fmt.Errorf("record the changelog of %s in %s: %w", ch.Key.Source, db.path, ErrReadOnly)
	}
	err := db.update(func(tx *bolt.Tx) error {
		cb := tx.Bucket(bucketChangelog)
		for k, seq := range ch.seqs {
			if bytes.Equal(cb.Get([]byte(k)), seq) {
				if err := cb.Delete([]byte(k)); err != nil {
					return err
				}
			}
		}
		seeded := cb.Get(changeKey(ch.Key, seededSuffix)) != nil
		if (seeded || ch.Seed) && tx.Bucket(bucketPositions).Get(appendPositionKey(nil, ch.Key)) != nil {
			return cb.Put(changeKey(ch.Key, seededSuffix), binary.BigEndian.AppendUint64(nil, nonce))
		}
		return nil
	})
	if err != nil {
		return failed(err, fmt.Sprintf("record the changelog of %s in %s", ch.Key.Source, db.path))
	}
	return nil
}

// Reseed makes the next Changes of the partition at k ship every client
// the store holds of it, and a deletion of each client of ids that it
// does not hold: the changelog holds another state than the store's, or
// none, and the store's is kept (the changelog's is older, or
// unreadable). ids are the clients the changelog holds.
func (db *DB) Reseed(k PositionKey, ids []string) error {
	if db.readOnly {
		return fmt.Errorf("reseed the changelog of %s in %s: %w", k.Source, db.path, ErrReadOnly)
	}
	err := db.update(func(tx *bolt.Tx) error {
		cb := tx.Bucket(bucketChangelog)
		if err := cb.Delete(changeKey(k, seededSuffix)); err != nil {
			return err
		}
		seq, err := cb.NextSequence()
		if err != nil {
			return err
		}
		val := binary.AppendUvarint(nil, seq)
		for _, id := range ids {
			if !validClientID(id) {
				continue // not a client this store could hold
			}
			if err := cb.Put(changeKey(k, id), val); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return failed(err, fmt.Sprintf("reseed the changelog of %s in %s", k.Source, db.path))
	}
	return nil
}

// EncodePartition encodes a partition's position and its source's
// coverage, the changelog's record of where its clients' state stands,
// with nonce, a number drawn at random for the transaction that writes
// it (see ChangelogNonce).
func EncodePartition(p Position, coverage []Span, nonce uint64) ([]byte, error) {
	cov, err := json.Marshal(coverage)
	if err != nil {
		return nil, fmt.Errorf("encode coverage of %s: %w", p.Source, err)
	}
	b := append([]byte{partitionFormat}, appendString(nil, appendPosition(nil, &p))...)
	b = appendString(b, cov)
	return binary.LittleEndian.AppendUint64(b, nonce), nil
}

// ChangelogNonce returns the nonce of the newest record of the partition
// at k that this store wrote to its changelog or restored from it; false
// when it has none.
func (db *DB) ChangelogNonce(k PositionKey) (uint64, bool, error) {
	var nonce uint64
	var ok bool
	err := db.view(func(tx *bolt.Tx) error {
		if v := tx.Bucket(bucketChangelog).Get(changeKey(k, seededSuffix)); len(v) == 8 {
			nonce, ok = binary.BigEndian.Uint64(v), true
		}
		return nil
	})
	if err != nil {
		return 0, false, failed(err, fmt.Sprintf("read the changelog of %s from %s", k.Source, db.path))
	}
	return nonce, ok, nil
}

const partitionFormat = 1

// Snapshot is a partition's state as its changelog holds it, decoded and
// checked: the position its clients' state stands at, the source's
// coverage then, and each client's record, findings and windows. A batch
// holding it (Batch.Restore) writes it into the store.
type Snapshot struct {
	Key      PositionKey
	Nonce    uint64 // of the partition record
	Position Position
	Coverage []Span
	Clients  []Client
	Findings []Finding
	Windows  map[string][]int64
	raw      []rawState
}

type rawState struct {
	id       string
	record   []byte
	findings [][2][]byte
	windows  [][2][]byte
	groups   [][2][]byte // notification groups (GroupKey bytes, Group JSON)
	format   byte        // clientStateFormat, or 1: written without groups
}

// DecodeSnapshot decodes a partition's changelog: partition is its
// EncodePartition record, clients the newest state of each client (by
// id), as ClientChange values. The partition's position is read under k.
func DecodeSnapshot(k PositionKey, partition []byte, clients map[string][]byte) (*Snapshot, error) {
	return decodeSnapshot(k, partition, clients, nil)
}

// DecodeChangelog decodes a partition's changelog for restoring it into
// db, as DecodeSnapshot does, and also refuses a window that belongs to
// another client than the one whose record holds it (by the
// WindowClient of the store's ChangelogOptions): restored, it would
// outlive that client's release.
func (db *DB) DecodeChangelog(k PositionKey, partition []byte, clients map[string][]byte) (*Snapshot, error) {
	return decodeSnapshot(k, partition, clients, db.changelogWindowClient())
}

func decodeSnapshot(k PositionKey, partition []byte, clients map[string][]byte, windowClient func(string) (string, bool)) (*Snapshot, error) {
	d := decoder{b: partition}
	d.format(partitionFormat)
	pos, cov, nonce := d.bytes(), d.bytes(), d.fixed64()
	if err := d.end("changelog partition"); err != nil {
		return nil, err
	}
	key := appendPositionKey(nil, k)
	p, err := decodePosition(key, pos)
	if err != nil {
		return nil, err
	}
	s := &Snapshot{Key: k, Nonce: nonce, Position: p, Windows: map[string][]int64{}}
	if err := json.Unmarshal(cov, &s.Coverage); err != nil {
		return nil, fmt.Errorf("changelog coverage: %w: %v", ErrCorrupt, err)
	}
	for _, id := range slices.Sorted(maps.Keys(clients)) {
		if !validClientID(id) {
			return nil, fmt.Errorf("changelog client %q: the id is empty or contains a 0 byte: %w", id, ErrCorrupt)
		}
		r, err := decodeState(id, clients[id])
		if err != nil {
			return nil, fmt.Errorf("changelog client %q: %w", id, err)
		}
		c, err := decodeClient(nil, id, r.record) // format 4 at most: selfContained
		if err != nil {
			return nil, fmt.Errorf("changelog client %q: %w", id, err)
		}
		s.Clients = append(s.Clients, c)
		for _, f := range r.findings {
			var fd Finding
			if err := json.Unmarshal(f[1], &fd); err != nil {
				return nil, fmt.Errorf("changelog finding %q: %w: %v", f[0], ErrCorrupt, err)
			}
			if fd.Client != id || !bytes.Equal(fd.bytes(), f[0]) {
				return nil, fmt.Errorf("changelog finding %q of client %q: %w", f[0], id, ErrCorrupt)
			}
			s.Findings = append(s.Findings, fd)
		}
		for _, w := range r.windows {
			if windowClient != nil {
				if owner, ok := windowClient(string(w[0])); !ok || owner != id {
					return nil, fmt.Errorf("changelog window %q of client %q: %w", w[0], id, ErrCorrupt)
				}
			}
			times, err := DecodeWindow(w[1])
			if err != nil {
				return nil, fmt.Errorf("changelog window %q: %w", w[0], err)
			}
			s.Windows[string(w[0])] = times
		}
		for _, g := range r.groups {
			kind, client, ok := bytes.Cut(g[0], []byte{0})
			if !ok || len(kind) == 0 || string(client) != id {
				return nil, fmt.Errorf("changelog notification group %q of client %q: %w", g[0], id, ErrCorrupt)
			}
			var gd Group
			if err := json.Unmarshal(g[1], &gd); err != nil {
				return nil, fmt.Errorf("changelog notification group %q: %w: %v", g[0], ErrCorrupt, err)
			}
		}
		s.raw = append(s.raw, r)
	}
	return s, nil
}

func decodeState(id string, v []byte) (rawState, error) {
	d := decoder{b: v}
	format := byte(clientStateFormat)
	if len(v) > 0 && v[0] == 1 {
		format = 1 // without groups
	}
	d.format(format)
	r := rawState{id: id, record: d.bytes(), format: format}
	sets := []*[][2][]byte{&r.findings, &r.windows, &r.groups}
	if format == 1 {
		sets = sets[:2]
	}
	for _, set := range sets {
		n := d.count(2)
		for range n {
			k, v := d.bytes(), d.bytes()
			if d.err != nil {
				break
			}
			*set = append(*set, [2][]byte{k, v})
		}
	}
	return r, d.end("client state")
}

// restore writes s into the store: every client's record, findings,
// windows and notification groups (those this store had of them
// deleted), each client owned by s's partition, and the changelog marked
// as holding them all, its newest record s's.
func restore(tx *bolt.Tx, s *Snapshot) error {
	cb, ob, fb, wb, gb := tx.Bucket(bucketClients), tx.Bucket(bucketOwners), tx.Bucket(bucketFindings), tx.Bucket(bucketWindows), tx.Bucket(bucketGroups)
	owner := appendOwner(nil, s.Key)
	versions, err := dropGroups(gb, s.raw)
	if err != nil {
		return err
	}
	for _, r := range s.raw {
		if err := cb.Put([]byte(r.id), r.record); err != nil {
			return fmt.Errorf("restore client %q: %w", r.id, err)
		}
		if err := ob.Put([]byte(r.id), owner); err != nil {
			return fmt.Errorf("restore the partition of client %q: %w", r.id, err)
		}
		for _, f := range r.findings {
			if err := fb.Put(f[0], f[1]); err != nil {
				return fmt.Errorf("restore finding %q: %w", f[0], err)
			}
		}
		for _, w := range r.windows {
			if err := wb.Put(w[0], w[1]); err != nil {
				return fmt.Errorf("restore window %q: %w", w[0], err)
			}
		}
		for _, g := range r.groups {
			kind, client, _ := bytes.Cut(g[0], []byte{0}) // checked by decodeSnapshot
			gr := Group{}
			if err := json.Unmarshal(g[1], &gr); err != nil {
				return fmt.Errorf("restore notification group %q: %w: %v", g[0], ErrCorrupt, err)
			}
			gr.GroupKey = GroupKey{Kind: string(kind), Client: string(client)}
			// Past any version a notifier may have read here before: its
			// write then keeps the change the restore brings waiting.
			gr.Version += versions[string(g[0])] + 1
			if err := putGroup(gb, gr); err != nil {
				return fmt.Errorf("restore: %w", err)
			}
		}
	}
	if strings.IndexByte(s.Key.Source, 0) >= 0 {
		return fmt.Errorf("restore source %q: %w", s.Key.Source, ErrInvalid)
	}
	return tx.Bucket(bucketChangelog).Put(changeKey(s.Key, seededSuffix), binary.BigEndian.AppendUint64(nil, s.Nonce))
}

// dropGroups deletes the notification groups of the clients of raw,
// those written with theirs (not format 1): what this store told of them
// when it held them before is not what their changelog says was told
// since. It returns the version each group deleted had.
func dropGroups(gb *bolt.Bucket, raw []rawState) (map[string]uint64, error) {
	ids := make(map[string]bool, len(raw))
	for _, r := range raw {
		if r.format != 1 {
			ids[r.id] = true
		}
	}
	versions := map[string]uint64{}
	err := gb.ForEach(func(k, v []byte) error {
		if _, id, ok := bytes.Cut(k, []byte{0}); ok && ids[string(id)] {
			var g Group
			if err := json.Unmarshal(v, &g); err != nil {
				return fmt.Errorf("notification group %q: %w: %v", k, ErrCorrupt, err)
			}
			versions[string(k)] = g.Version
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read notification groups: %w", err)
	}
	for k := range versions {
		if err := gb.Delete([]byte(k)); err != nil {
			return nil, fmt.Errorf("delete notification group %q: %w", k, err)
		}
	}
	return versions, nil
}
