package store

import (
	"encoding/binary"
	"fmt"
	"sync/atomic"
	"unsafe"

	bolt "go.etcd.io/bbolt"
)

// bucketScopes numbers every scope name a client record of the store has
// held: its keys are the numbers, 4 bytes big-endian, dense from 0, its
// values the names. A client record (format 5 and later) names each of its scopes
// by number: at 10,000 clients of 30 scopes the names took a third of a
// record (606 of 1,887 bytes), and a checkpoint holds every record it
// writes twice, encoded and in bbolt's pages. A number is never reused or
// given another name. The State numbers the names (State.ScopeNumber),
// starting from the store's, and each checkpoint's batch carries its
// numbering (Batch.ScopeNames), whose new names the commit writes in the
// transaction of the records that use them.
var bucketScopes = []byte("scopes")

// scopeNames is a DB's copy of its scope names.
type scopeNames struct {
	// all holds every name numbered: those on disk, and those of a batch
	// being committed. It only grows, and a name it holds never changes,
	// so a reader's copy stays true. A commit sets it before it writes
	// records with new numbers, so a read transaction finds the names of
	// the records it sees in the copy it loads once it has begun: load it
	// inside the transaction.
	all atomic.Pointer[[]string]
	// stored is how many of them bucketScopes holds; guarded by DB.mu.
	stored int
}

// load returns the names, by number.
func (n *scopeNames) load() []string {
	if p := n.all.Load(); p != nil {
		return *p
	}
	return nil
}

// read sets the names from tx's bucket (Open, after the migrations that
// create it; a file without it holds no names).
func (n *scopeNames) read(tx *bolt.Tx) error {
	var names []string
	if b := tx.Bucket(bucketScopes); b != nil {
		err := b.ForEach(func(k, v []byte) error {
			if err := checkScopeName(len(names), k, v); err != nil {
				return err
			}
			names = append(names, string(v))
			return nil
		})
		if err != nil {
			return fmt.Errorf("read the scope names: %w", err)
		}
	}
	n.all.Store(&names)
	n.stored = len(names)
	return nil
}

// checkScopeName checks entry k, v of bucketScopes, which follows n others.
func checkScopeName(n int, k, v []byte) error {
	if len(k) != 4 || binary.BigEndian.Uint32(k) != uint32(n) {
		return fmt.Errorf("scope name key %x where number %d belongs: %w", k, n, ErrCorrupt)
	}
	if len(v) == 0 {
		return fmt.Errorf("scope number %d has an empty name: %w", n, ErrCorrupt)
	}
	return nil
}

// extend writes to tx the names of a batch's numbering that the store
// lacks, once it has checked that the batch numbers the names the store
// holds as the store does: its State read this store's names.
func (n *scopeNames) extend(tx *bolt.Tx, batch []string) error {
	cur := n.load()
	// A State appends to its names, so the batch shares the array of the
	// last one while it does not outgrow it: the names then agree.
	if shared := min(len(cur), len(batch)); shared > 0 && &cur[0] != &batch[0] {
		for i := range shared {
			if cur[i] != batch[i] {
				return fmt.Errorf("the batch numbers scope %q %d, which is %q here: its state was not read from this store: %w",
					batch[i], i, cur[i], ErrInvalid)
			}
		}
	}
	if len(batch) <= n.stored {
		return nil
	}
	b := tx.Bucket(bucketScopes)
	var k [4]byte
	for i := n.stored; i < len(batch); i++ {
		if batch[i] == "" {
			return fmt.Errorf("empty scope name numbered %d: %w", i, ErrInvalid)
		}
		binary.BigEndian.PutUint32(k[:], uint32(i))
		if err := b.Put(k[:], []byte(batch[i])); err != nil {
			return fmt.Errorf("scope name %d: %w", i, err)
		}
	}
	if len(batch) > len(cur) {
		all := batch[:len(batch):len(batch)]
		n.all.Store(&all)
	}
	return nil
}

// committed records that a commit wrote the names of numbering batch.
func (n *scopeNames) committed(batch []string) { n.stored = max(n.stored, len(batch)) }

// nameBytes returns the bytes of s without copying them, for a decoder
// whose names are strings: they must not be changed.
func nameBytes(s string) []byte { return unsafe.Slice(unsafe.StringData(s), len(s)) }

// selfContained returns client record v as a changelog carries it, to be
// read by a store that numbers its scopes otherwise: a record of format 5
// or 6 becomes one of format 4, each scope named by its name and each
// address an addr; a record of another format is returned as it is.
// names are the store's, as the transaction that read v sees them.
func selfContained(names []string, v []byte) ([]byte, error) {
	if len(v) == 0 || (v[0] != formatClient && v[0] != formatClientV5) {
		return v, nil
	}
	d := decoder{b: v, names: names}
	d.clientHead()
	out := make([]byte, 0, len(v)+len(v)/2)
	out = append(append(out, formatClientV4), v[1:len(v)-len(d.b)]...)
	count := d.count(4)
	out = appendUvarint(out, uint64(count))
	var prev []byte
	for i := range count {
		name := d.scopeName(prev, i == 0)
		counters := d.b
		d.scopeUsage()
		if d.err != nil {
			return nil, d.err
		}
		out = append(appendString(out, name), counters[:len(counters)-len(d.b)]...)
		prev = name
	}
	if d.err != nil {
		return nil, d.err
	}
	if d.daddrs {
		out = appendAddrList(out, &d)
		if d.err != nil {
			return nil, d.err
		}
	}
	return append(out, d.b...), nil // the addresses as they were, or the countries
}

// appendAddrList reads the address list of a record of format 6 from d
// and appends it to out with each address an addr, as records of format
// 5 and earlier hold them.
func appendAddrList(out []byte, d *decoder) []byte {
	count := d.count(2)
	out = appendUvarint(out, uint64(count))
	var list addrList
	var prev []byte
	for i := range count {
		addr := list.next(d, prev, i == 0)
		counter := d.b
		d.counter()
		if d.err != nil {
			return out
		}
		out = append(appendString(out, addr), counter[:len(counter)-len(d.b)]...)
		prev = addr
	}
	return out
}
