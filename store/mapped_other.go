//go:build !linux

package store

import bolt "go.etcd.io/bbolt"

// releaseMapped leaves the map of the file as it is outside Linux.
func releaseMapped(*bolt.Tx) {}
