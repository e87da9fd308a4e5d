package store

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// lockHolderEnv names the file a re-executed test binary holds open.
const lockHolderEnv = "SCOPEWATCH_STORE_TEST_HOLD"

// TestOpenLockedByOtherProcess runs the test binary again as a child that
// opens the store and keeps it until its stdin closes, then checks that
// Open in this process gives up within the lock timeout naming the child.
func TestOpenLockedByOtherProcess(t *testing.T) {
	if path := os.Getenv(lockHolderEnv); path != "" {
		holdStore(path)
		return
	}
	path := filepath.Join(t.TempDir(), "held.db")
	cmd := exec.Command(os.Args[0], "-test.run=^TestOpenLockedByOtherProcess$", "-test.count=1")
	cmd.Env = append(os.Environ(), lockHolderEnv+"="+path)
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		stdin.Close()
		_ = cmd.Wait()
	})
	// The child prints "holding" once the store is open.
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil || line != "holding\n" {
		t.Fatalf("child said %q, %v; want holding", line, err)
	}

	tests := []struct {
		name string
		opts Options
	}{
		{"read-write, default timeout", Options{}},
		{"read-only", Options{ReadOnly: true, LockTimeout: 300 * time.Millisecond}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			start := time.Now()
			db, err := Open(path, tt.opts)
			took := time.Since(start)
			if err == nil {
				db.Close()
				t.Fatal("Open succeeded while another process holds the store")
			}
			want := fmt.Sprintf("store %s is in use by pid %d", path, cmd.Process.Pid)
			if !errors.Is(err, ErrLocked) || err.Error() != want {
				t.Errorf("Open = %v, want %q (ErrLocked)", err, want)
			}
			limit := tt.opts.LockTimeout
			if limit == 0 {
				limit = DefaultLockTimeout
			}
			// It waited for the lock, and then gave up rather than hang;
			// the slack above is for a loaded machine's scheduling.
			if took < limit-100*time.Millisecond || took > limit+5*time.Second {
				t.Errorf("Open gave up after %v, want about %v", took, limit)
			}
		})
	}

	// Once the child has let go, the store opens.
	stdin.Close()
	if err := cmd.Wait(); err != nil {
		t.Fatalf("child: %v", err)
	}
	openTest(t, path, Options{})
}

// holdStore is the child's side: open, announce, wait for stdin to close.
func holdStore(path string) {
	db, err := Open(path, Options{})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(3)
	}
	fmt.Println("holding")
	_, _ = io.Copy(io.Discard, os.Stdin)
	if err := db.Close(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(3)
	}
}

func TestFindLockHolder(t *testing.T) {
	const locks = `1: POSIX  ADVISORY  WRITE 700 fd:00:1234567 0 EOF
2: FLOCK  ADVISORY  WRITE 4242 08:01:1234567 0 EOF
2: -> FLOCK  ADVISORY  WRITE 4343 08:01:1234567 0 EOF
3: OFDLCK ADVISORY  READ  -1 08:01:99 0 EOF
4: FLOCK  ADVISORY  READ 5151 103:02:77 0 EOF
`
	dev := func(major, minor uint64) uint64 { return major<<8 | minor } // major<<8|minor, as Linux encodes majors < 4096 and minors < 256
	tests := []struct {
		name     string
		dev, ino uint64
		want     int
	}{
		{"holder, not waiter", dev(8, 1), 1234567, 4242},
		{"same inode other device", dev(0xfd, 1), 1234567, 0},
		{"unpadded hex device", dev(0x103, 2), 77, 5151},
		{"ofd lock without pid", dev(8, 1), 99, 0},
		{"absent", dev(8, 1), 5, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := findLockHolder(strings.NewReader(locks), tt.dev, tt.ino); got != tt.want {
				t.Errorf("findLockHolder(dev %#x, ino %d) = %d, want %d", tt.dev, tt.ino, got, tt.want)
			}
		})
	}
}
