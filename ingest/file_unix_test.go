package ingest_test

import (
	"io/fs"
	"syscall"
	"testing"

	"github.com/scopewatch/scopewatch/store"
)

func fileID(t *testing.T, fi fs.FileInfo) store.FileID {
	t.Helper()
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		t.Skip("no device and inode on this platform")
	}
	return store.FileID{Dev: uint64(st.Dev), Ino: uint64(st.Ino)}
}
