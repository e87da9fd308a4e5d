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

// appendWindow encodes times, oldest first.
func appendWindow(b []byte, times []int64) []byte {
	b = append(b, windowFormat)
	b = appendUvarint(b, uint64(len(times)))
	var last int64
	for _, t := range times {
		b = appendVarint(b, t-last)
		last = t
	}
	return b
}

// windowSize returns the length of appendWindow's encoding of times.
func windowSize(times []int64) int {
	n := 1 + uvarintLen(uint64(len(times)))
	var last int64
	for _, t := range times {
		n += uvarintLen(zigzag(t - last))
		last = t
	}
	return n
}

// uvarintLen is the length of binary.AppendUvarint's encoding of v.
func uvarintLen(v uint64) int {
	return (bits.Len64(v|1) + 6) / 7
}

// decodeWindow decodes a window record.
func decodeWindow(v []byte) ([]int64, error) {
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
func putWindows(tx *bolt.Tx, windows map[string][]int64) error {
	if len(windows) == 0 {
		return nil
	}
	bk := tx.Bucket(bucketWindows)
	for k, times := range windows {
		var err error
		if len(times) == 0 {
			err = bk.Delete([]byte(k))
		} else {
			// bbolt keeps the value until the transaction ends: one
			// buffer per record, of its size (a travellers' shard takes
			// kilobytes, and there are hundreds).
			err = bk.Put([]byte(k), appendWindow(make([]byte, 0, windowSize(times)), times))
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
			times, err := decodeWindow(v)
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
