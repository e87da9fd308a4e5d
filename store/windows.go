package store

import (
	"fmt"
	"math/bits"

	bolt "go.etcd.io/bbolt"
)

// bucketWindows holds the detectors' time windows (refusals a client or an
// address collected, requests from new networks), so that a restart
// resumes them as they were when the batch that last changed them
// committed, with the positions of the lines that filled them.
var bucketWindows = []byte("windows")

// windowFormat is the encoding of a window record: the format byte, the
// number of times, then the first time and the increments, as varints of
// Unix nanoseconds.
const windowFormat = 1

// EncodeWindow returns the record of a window whose times, oldest first,
// are those of parts one after the other, as Batch.Windows carries it:
// a detector encodes a window when it flushes it, so that a batch holds
// each window once, in its stored size, until the commit.
func EncodeWindow(parts ...[]int64) []byte {
	n := 0
	for _, p := range parts {
		n += len(p)
	}
	size := 1 + uvarintLen(uint64(n))
	var last int64
	for _, p := range parts {
		for _, t := range p {
			size += uvarintLen(zigzag(t - last))
			last = t
		}
	}
	b := make([]byte, 0, size)
	b = append(b, windowFormat)
	b = appendUvarint(b, uint64(n))
	last = 0
	for _, p := range parts {
		for _, t := range p {
			b = appendVarint(b, t-last)
			last = t
		}
	}
	return b
}

// uvarintLen is the length of binary.AppendUvarint's encoding of v.
func uvarintLen(v uint64) int {
	return (bits.Len64(v|1) + 6) / 7
}

// DecodeWindow returns the times of a window record, oldest first.
func DecodeWindow(v []byte) ([]int64, error) {
	d := decoder{b: v}
	d.format(windowFormat)
	n := d.uvarint()
	if d.err == nil && n > uint64(len(v)) {
		return nil, fmt.Errorf("window of %d times in %d bytes: %w", n, len(v), ErrCorrupt)
	}
	times := make([]int64, 0, min(n, uint64(len(v))))
	var last int64
	for range n {
		last += d.varint()
		if d.err != nil {
			break
		}
		times = append(times, last)
	}
	if err := d.end("window"); err != nil {
		return nil, err
	}
	return times, nil
}

// putWindows writes the batch's windows, deleting those it empties.
func putWindows(tx *bolt.Tx, windows map[string][]byte) error {
	if len(windows) == 0 {
		return nil
	}
	bk := tx.Bucket(bucketWindows)
	for k, v := range windows {
		var err error
		if len(v) == 0 {
			err = bk.Delete([]byte(k))
		} else {
			err = bk.Put([]byte(k), v) // kept by bbolt until the transaction ends
		}
		if err != nil {
			return fmt.Errorf("window %q: %w", k, err)
		}
	}
	return nil
}

// Windows returns every stored window by key, times oldest first.
func (db *DB) Windows() (map[string][]int64, error) {
	out := make(map[string][]int64)
	err := db.view(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketWindows).ForEach(func(k, v []byte) error {
			times, err := DecodeWindow(v)
			if err != nil {
				return fmt.Errorf("window %q: %w", k, err)
			}
			out[string(k)] = times
			return nil
		})
	})
	if err != nil {
		return nil, failed(err, fmt.Sprintf("read windows from %s", db.path))
	}
	return out, nil
}
