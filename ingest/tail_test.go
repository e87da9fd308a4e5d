package ingest_test

import (
	"compress/gzip"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/scopewatch/scopewatch/ingest"
	"github.com/scopewatch/scopewatch/ingest/ingesttest"
)

// TestFileRotatedTwiceBetweenChecks rotates the file twice before a check
// sees the first rotation: the file created by the first rotation and
// rotated away by the second was never at the path when anyone looked. It
// is found among the glob as a file that was not there at the last look,
// and read whole, between the first file and the third.
func TestFileRotatedTwiceBetweenChecks(t *testing.T) {
	modes(t, func(t *testing.T, poll bool) {
		path := filepath.Join(t.TempDir(), "app.log")
		w := ingesttest.NewWriter(t, path)
		w.Write(10)
		r := startFile(t, fileSetup{path: path, poll: poll})
		got := r.receive(10)
		r.tick.Step() // a look at the directory: app.log alone

		ingesttest.RenameCreate(t, path, path+".1")
		w.Write(5) // to the first file, renamed
		w.Reopen()
		w.Write(10) // to the second
		if err := os.Rename(path+".1", path+".2"); err != nil {
			t.Fatal(err)
		}
		ingesttest.RenameCreate(t, path, path+".1")
		w.Write(5) // to the second, renamed
		w.Reopen()
		w.Write(10) // to the third, at the path
		r.tick.Step()
		got = append(got, r.receive(30)...)

		r.tick.Advance(6 * time.Second)
		r.tick.Step()
		r.tick.Step()
		ingesttest.Quiet(t, r.out, 50*time.Millisecond)
		ingesttest.ExactlyOnce(t, ingesttest.Numbers(t, got), 1, 40)
		if n := r.rotations("rename"); n < 2 {
			t.Errorf("rename rotations = %v, want at least 2", n)
		}
	})
}

// TestFileCompressedSiblingNotRead rotates with compression right after
// the rename (logrotate's compress without delaycompress), before a check
// sees it: the renamed file is finished through the descriptor that read
// it, and the new .gz among the glob is not taken for a missed live file.
func TestFileCompressedSiblingNotRead(t *testing.T) {
	path := filepath.Join(t.TempDir(), "app.log")
	w := ingesttest.NewWriter(t, path)
	w.Write(10)
	r := startFile(t, fileSetup{path: path, poll: true})
	got := r.receive(10)
	r.tick.Step()

	w.Write(5)
	ingesttest.RenameCreate(t, path, path+".1")
	w.Reopen()
	w.Write(5)
	gzipFile(t, path+".1", path+".1.gz")
	r.tick.Step()
	got = append(got, r.receive(10)...)
	r.tick.Advance(6 * time.Second)
	r.tick.Step()
	r.tick.Step()
	ingesttest.Quiet(t, r.out, 50*time.Millisecond)
	ingesttest.ExactlyOnce(t, ingesttest.Numbers(t, got), 1, 20)
}

// gzipFile compresses from into to and removes from, as logrotate does.
func gzipFile(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.Create(to)
	if err != nil {
		t.Fatal(err)
	}
	zw := gzip.NewWriter(f)
	if _, err := zw.Write(b); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(from); err != nil {
		t.Fatal(err)
	}
}

// TestFileWokenByInotify appends to a followed file with no check ever
// running: inotify alone wakes the reader, for a path that is the file and
// for a path that is a symlink to a file in another directory (as
// /var/log/containers links to the pods' logs), and again after a
// rotation that an event, not a check, reports.
func TestFileWokenByInotify(t *testing.T) {
	for _, link := range []bool{false, true} {
		name := "file"
		if link {
			name = "symlink"
		}
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "app.log")
			target := path
			if link {
				target = filepath.Join(t.TempDir(), "0.log")
			}
			w := ingesttest.NewWriter(t, target)
			if link {
				if err := os.Symlink(target, path); err != nil {
					t.Fatal(err)
				}
			}
			started := make(chan struct{})
			r := startFile(t, fileSetup{path: path, started: func() { close(started) }})
			<-started
			var got []ingest.Line
			for range 5 {
				w.Write(20)
				got = append(got, ingesttest.Receive(t, r.out, 20, wait)...)
			}
			if !link {
				ingesttest.RenameCreate(t, path, path+".1")
				w.Reopen()
				w.Write(20)
				got = append(got, ingesttest.Receive(t, r.out, 20, wait)...)
			}
			ingesttest.ExactlyOnce(t, ingesttest.Numbers(t, got), 1, len(got))
			if len(got) < 100 {
				t.Fatalf("got %d lines", len(got))
			}
		})
	}
}
