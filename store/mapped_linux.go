package store

import (
	"os"

	bolt "go.etcd.io/bbolt"
	"golang.org/x/sys/unix"
)

// releaseMapped tells the kernel that the process no longer needs the
// pages of the store's file it has mapped (MADV_DONTNEED): they leave its
// resident set and stay in the page cache, from which the next read maps
// them again at the cost of a minor fault. bbolt reads every page through
// its read-only shared map of the file and writes with pwrite, so a
// mapped page is never dirty and dropping it loses nothing.
//
// Without it, a checkpoint that rewrites most clients maps nearly the
// whole file (every leaf it visits), and the pages stay counted in the
// daemon's resident memory until the kernel runs short: about 100 MiB at
// 10,000 clients × 30 scopes (README, Performance).
//
// tx must be open: a transaction holds bbolt's map in place (a remap
// happens only inside a write transaction's commit), so the range advised
// is the map's, which covers the tx.Size() bytes in use.
func releaseMapped(tx *bolt.Tx) {
	page := int64(os.Getpagesize())
	n := (tx.Size() + page - 1) / page * page
	if n <= 0 {
		return
	}
	// A failure only leaves the pages resident.
	_, _, _ = unix.Syscall(unix.SYS_MADVISE, tx.DB().Info().Data, uintptr(n), unix.MADV_DONTNEED)
}
