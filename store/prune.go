package store

import (
	"fmt"

	bolt "go.etcd.io/bbolt"
)

// dropClients deletes the records of the clients in drop; a client
// without a record is no error (it was pruned already, or never stored).
func dropClients(cb, ob *bolt.Bucket, drop map[string]struct{}) error {
	for id := range drop {
		if !validClientID(id) {
			return fmt.Errorf("drop client %q: client id is empty or contains a 0 byte: %w", id, ErrInvalid)
		}
		if err := cb.Delete([]byte(id)); err != nil {
			return fmt.Errorf("drop client %q: %w", id, err)
		}
		if err := ob.Delete([]byte(id)); err != nil {
			return fmt.Errorf("drop the partition of client %q: %w", id, err)
		}
	}
	return nil
}
