package store

import (
	"bufio"
	"bytes"
	"io"
	"os"
	"strconv"
	"syscall"

	"golang.org/x/sys/unix"
)

// lockHolder returns the pid of a process holding a lock on the file at
// path according to /proc/locks, or 0 if none is listed. It only serves
// the error message, so every failure yields 0.
func lockHolder(path string) int {
	fi, err := os.Stat(path)
	if err != nil {
		return 0
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return 0
	}
	f, err := os.Open("/proc/locks")
	if err != nil {
		return 0
	}
	defer f.Close()
	return findLockHolder(f, uint64(st.Dev), st.Ino)
}

// findLockHolder scans a /proc/locks listing for a granted lock on the
// inode ino of device dev and returns its owner's pid. Lines look like
//
//	1: FLOCK  ADVISORY  WRITE 12345 08:01:1234567 0 EOF
//	1: -> FLOCK  ADVISORY  WRITE 12346 08:01:1234567 0 EOF
//
// where "->" marks a waiter and the device is major:minor in hex
// (fs/locks.c, lock_get_status). Waiters are skipped: they do not hold it.
// Open file description locks list pid -1 and are skipped too.
func findLockHolder(r io.Reader, dev, ino uint64) int {
	want := []byte(strconv.FormatUint(uint64(unix.Major(dev)), 16) + ":" +
		strconv.FormatUint(uint64(unix.Minor(dev)), 16) + ":" +
		strconv.FormatUint(ino, 10))
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		fields := bytes.Fields(sc.Bytes())
		if len(fields) < 6 || bytes.Equal(fields[1], []byte("->")) {
			continue
		}
		pid, err := strconv.Atoi(string(fields[4]))
		if err != nil || pid <= 0 {
			continue
		}
		if sameDevIno(fields[5], want) {
			return pid
		}
	}
	return 0
}

// sameDevIno compares "MAJ:MIN:INO" fields, ignoring the zero padding the
// kernel applies to the hex device numbers ("08:01" versus "8:1").
func sameDevIno(got, want []byte) bool {
	g := bytes.Split(got, []byte(":"))
	w := bytes.Split(want, []byte(":"))
	if len(g) != 3 || len(w) != 3 {
		return false
	}
	for i := range g {
		a := bytes.TrimLeft(g[i], "0")
		b := bytes.TrimLeft(w[i], "0")
		if !bytes.Equal(a, b) {
			return false
		}
	}
	return true
}
