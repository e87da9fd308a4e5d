package ingest

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"syscall"
	"time"

	"github.com/scopewatch/scopewatch/store"
)

// PositionStore gives a source the positions committed for it, so that it
// can resume where the consumer left off. Sources only read positions; the
// consumer writes them together with the counts they produced.
type PositionStore interface {
	Positions(source string) ([]store.Position, error)
}

// ReadError reports a file a source could not open or read. Reason is a
// bounded word (permission, not_found, io) used as a metric label.
type ReadError struct {
	Source string
	Path   string
	Reason string
	Err    error
}

// Error names the source and why its file cannot be read.
func (e *ReadError) Error() string {
	if nr := (*NotRegularError)(nil); errors.As(e.Err, &nr) {
		return "source " + e.Source + ": " + nr.Error() + "; a source's path must name a log file"
	}
	if e.Reason == ReasonPermission {
		// The usual case outside systemd's unit (which adds group adm):
		// Debian writes logs root:adm 0640.
		return "source " + e.Source + ": " + e.Path + ": permission denied; run scopewatch as a user that may read it, " +
			"such as a member of the group that owns it (adm for Debian's root:adm 0640 logs)"
	}
	return "source " + e.Source + ": read " + e.Path + ": " + e.Reason + ": " + e.Err.Error()
}

// Unwrap returns the underlying error.
func (e *ReadError) Unwrap() error { return e.Err }

// Read error reasons.
const (
	ReasonPermission = "permission"
	ReasonNotFound   = "not_found"
	ReasonIO         = "io"
)

// readError classifies err, counts it and wraps it as a *ReadError.
func readError(m *Metrics, source, path, op string, err error) error {
	reason := ReasonIO
	switch {
	case errors.Is(err, fs.ErrPermission):
		reason = ReasonPermission
	case errors.Is(err, fs.ErrNotExist):
		reason = ReasonNotFound
	}
	m.ReadErrors.WithLabelValues(source, reason).Inc()
	return &ReadError{Source: source, Path: path, Reason: reason, Err: fmt.Errorf("%s: %w", op, err)}
}

// FNV-1a 64-bit parameters (hash/fnv), kept inline so a head hash can be
// extended as a small file grows without rereading its start.
const (
	fnvOffset64 = 14695981039346656037
	fnvPrime64  = 1099511628211
)

func fnvExtend(h uint64, b []byte) uint64 {
	for _, c := range b {
		h ^= uint64(c)
		h *= fnvPrime64
	}
	return h
}

// headHash returns the FNV-1a 64 hash of b, as stored in store.Position.
func headHash(b []byte) uint64 { return fnvExtend(fnvOffset64, b) }

// fileIdentity returns the device and inode of fi.
func fileIdentity(fi fs.FileInfo) store.FileID {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return store.FileID{Dev: uint64(st.Dev), Ino: uint64(st.Ino)}
	}
	return store.FileID{}
}

// openFile is one open file with its identity and the fingerprint of its
// head, plus how far it has been consumed.
type openFile struct {
	f        *os.File
	path     string
	id       store.FileID
	size     int64     // size at the last stat
	mtime    time.Time // modification time when opened
	headLen  int
	headHash uint64
	offset   int64  // offset just after the last consumed line
	line     int64  // number of the last consumed line
	static   bool   // the head never grows (compressed files)
	prefix   []byte // the first min(headLen, prefixLen) bytes
}

// prefixLen is how many leading bytes are compared with every block read
// from the live file: a file truncated and rewritten past our offset
// between two checks shows a different start before its first new line
// is passed on.
const prefixLen = 64

// NotRegularError reports a path that names something other than a
// regular file: a named pipe, a directory, a device or a socket. Opening a
// named pipe for reading the usual way waits for a writer, for ever if none
// comes, so files are opened without waiting and refused unless regular.
type NotRegularError struct {
	Path string
	Mode fs.FileMode
}

// Error names the path and what it is instead of a regular file.
func (e *NotRegularError) Error() string {
	return e.Path + " is " + describeMode(e.Mode) + ", not a regular file"
}

// Unwrap returns EISDIR for a directory, so that errors.Is tells it.
func (e *NotRegularError) Unwrap() error {
	if e.Mode.IsDir() {
		return syscall.EISDIR
	}
	return nil
}

func describeMode(m fs.FileMode) string {
	switch t := m.Type(); {
	case t&fs.ModeNamedPipe != 0:
		return "a named pipe (FIFO)"
	case t&fs.ModeDir != 0:
		return "a directory"
	case t&fs.ModeSocket != 0:
		return "a socket"
	case t&fs.ModeCharDevice != 0:
		return "a character device"
	case t&fs.ModeDevice != 0:
		return "a block device"
	default:
		return "not a plain file (mode " + m.String() + ")"
	}
}

// openRegular opens path for reading without waiting (O_NONBLOCK: a named
// pipe opens at once instead of waiting for a writer) and returns it only
// if it is a regular file, else a *NotRegularError. For a regular file
// O_NONBLOCK changes nothing: reads from disk do not wait for a writer.
func openRegular(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, err
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("stat: %w", err)
	}
	if !fi.Mode().IsRegular() {
		f.Close()
		return nil, &NotRegularError{Path: path, Mode: fi.Mode()}
	}
	return f, nil
}

// openFingerprint opens path, which must be a regular file, and
// fingerprints its first min(size, HeadMax) bytes.
func openFingerprint(path string) (*openFile, error) {
	f, err := openRegular(path)
	if err != nil {
		return nil, err
	}
	of := &openFile{f: f, path: path}
	if err := of.fingerprint(); err != nil {
		f.Close()
		return nil, err
	}
	return of, nil
}

func (of *openFile) fingerprint() error {
	fi, err := of.f.Stat()
	if err != nil {
		return fmt.Errorf("stat: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return &NotRegularError{Path: of.path, Mode: fi.Mode()}
	}
	of.id = fileIdentity(fi)
	of.size, of.mtime = fi.Size(), fi.ModTime()
	n := int(min(of.size, store.HeadMax))
	var buf [store.HeadMax]byte
	got, err := of.f.ReadAt(buf[:n], 0)
	if err != nil && !errors.Is(err, io.EOF) {
		return fmt.Errorf("read head: %w", err)
	}
	of.headLen = got
	of.headHash = headHash(buf[:got])
	of.prefix = append(of.prefix[:0], buf[:min(got, prefixLen)]...)
	return nil
}

// matches reports whether the saved record r describes this file: same
// device and inode, and the same bytes at its head.
func (of *openFile) matches(r store.Position) bool {
	if r.File != of.id || r.HeadLen > store.HeadMax || r.HeadLen < 0 {
		return false
	}
	if r.HeadLen == of.headLen {
		return r.HeadHash == of.headHash
	}
	var buf [store.HeadMax]byte
	got, err := of.f.ReadAt(buf[:r.HeadLen], 0)
	if got != r.HeadLen || (err != nil && !errors.Is(err, io.EOF)) {
		return false
	}
	return headHash(buf[:got]) == r.HeadHash
}

// startsAs reports whether the file's first n bytes hash to h, whatever
// its identity: a copy of the file a saved record describes starts so.
func (of *openFile) startsAs(n int, h uint64) bool {
	if n < 0 || n > store.HeadMax || of.headLen < n {
		return false
	}
	if n == of.headLen {
		return h == of.headHash
	}
	var buf [store.HeadMax]byte
	got, err := of.f.ReadAt(buf[:n], 0)
	if got != n || (err != nil && !errors.Is(err, io.EOF)) {
		return false
	}
	return headHash(buf[:got]) == h
}

// headChanged reports whether the first headLen bytes of the file differ
// from the fingerprint taken earlier (the file was truncated and rewritten).
func (of *openFile) headChanged() (bool, error) {
	var buf [store.HeadMax]byte
	got, err := of.f.ReadAt(buf[:of.headLen], 0)
	if err != nil && !errors.Is(err, io.EOF) {
		return false, err
	}
	return got < of.headLen || headHash(buf[:got]) != of.headHash, nil
}

// growHead extends the fingerprint to cover the first min(upto, HeadMax)
// bytes. It costs nothing once the head is complete.
func (of *openFile) growHead(upto int64) {
	if of.static || of.headLen >= store.HeadMax || upto <= int64(of.headLen) {
		return
	}
	end := int(min(upto, store.HeadMax))
	var buf [store.HeadMax]byte
	got, _ := of.f.ReadAt(buf[of.headLen:end], int64(of.headLen))
	if len(of.prefix) < prefixLen {
		of.prefix = append(of.prefix, buf[of.headLen:of.headLen+min(got, prefixLen-of.headLen)]...)
	}
	of.headHash = fnvExtend(of.headHash, buf[of.headLen:of.headLen+got])
	of.headLen += got
}

// samePrefix reports whether the file still starts with the bytes it
// started with when fingerprinted. It costs one small read.
func (of *openFile) samePrefix(buf *[prefixLen]byte) bool {
	n, _ := of.f.ReadAt(buf[:len(of.prefix)], 0)
	return n == len(of.prefix) && string(buf[:n]) == string(of.prefix)
}

// position returns the position just after a line ending at offset.
func (of *openFile) position(source string, offset, line int64) Position {
	of.growHead(offset)
	return Position{
		Source: source, Path: of.path, File: of.id,
		HeadLen: of.headLen, HeadHash: of.headHash,
		Offset: offset, Line: line,
	}
}

func (of *openFile) close() {
	if of != nil && of.f != nil {
		of.f.Close()
	}
}
