package store

import (
	"fmt"

	bolt "go.etcd.io/bbolt"
)

// bucketOwners holds, for each client whose events come from a partition
// (a Kafka topic keyed by client), the position key of that partition:
// the client's state belongs to it, and is deleted when the partition is
// released to another instance. Keys are client ids; a value is the
// format byte, then the position key (source, 0, device, inode).
var bucketOwners = []byte("owners")

const ownerFormat = 1

func appendOwner(b []byte, k PositionKey) []byte {
	return appendPositionKey(append(b, ownerFormat), k)
}

func decodeOwner(v []byte) (PositionKey, error) {
	if len(v) > 0 && v[0] == ownerFormat {
		if k, ok := decodePositionKey(v[1:]); ok {
			return k, nil
		}
	}
	return PositionKey{}, fmt.Errorf("owner record of %d bytes: %w", len(v), ErrCorrupt)
}

// Owners returns the partition each client with one belongs to.
func (db *DB) Owners() (map[string]PositionKey, error) {
	out := map[string]PositionKey{}
	err := db.view(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketOwners).ForEach(func(k, v []byte) error {
			o, err := decodeOwner(v)
			if err != nil {
				return fmt.Errorf("owner of client %q: %w", k, err)
			}
			out[string(k)] = o
			return nil
		})
	})
	if err != nil {
		return nil, failed(err, fmt.Sprintf("read the clients' partitions from %s", db.path))
	}
	return out, nil
}

// writeOwners records the batch's new owners and deletes the released
// positions. Owners of dropped clients go with them (dropClients).
func writeOwners(tx *bolt.Tx, b *Batch) error {
	if len(b.Owners) > 0 {
		ob := tx.Bucket(bucketOwners)
		for id, k := range b.Owners {
			if !validClientID(id) {
				return fmt.Errorf("owner of client %q: client id is empty or contains a 0 byte: %w", id, ErrInvalid)
			}
			// A value of its own: bbolt keeps it until the transaction ends.
			if err := ob.Put([]byte(id), appendOwner(nil, k)); err != nil {
				return fmt.Errorf("owner of client %q: %w", id, err)
			}
		}
	}
	if len(b.DropPositions) > 0 {
		pb := tx.Bucket(bucketPositions)
		for _, k := range b.DropPositions {
			if err := pb.Delete(appendPositionKey(nil, k)); err != nil {
				return fmt.Errorf("drop position of %s: %w", k.Source, err)
			}
		}
	}
	return nil
}
