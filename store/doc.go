// Package store owns scopewatch's persisted state in one bbolt file:
// source positions, per-client scope usage and per-source statistics.
//
// There is one write path: a Batch holding the aggregate deltas of many
// events together with the source positions that produced them, committed
// in a single transaction, so a crash replays whole batches and counts are
// never lost or doubled. The package imports nothing else of scopewatch.
package store
