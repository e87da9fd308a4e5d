package geoip

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"syscall"
	"time"
)

// Reload re-reads both database files. On success the new databases serve
// every later lookup, with an empty cache, and the old files are closed
// once no lookup still reads them. On any error the databases in service
// stay, the failure is logged and counted, and the error is returned;
// lookups never fail, during or after a reload.
func (db *DB) Reload() error {
	db.mu.Lock()
	defer db.mu.Unlock()
	if db.closed {
		return errors.New("reload geoip: database closed")
	}
	start := time.Now()
	g, err := db.open()
	if err != nil {
		db.metrics.Reloads.WithLabelValues("error").Inc()
		// A file that stays broken is logged again only when its error
		// changes.
		if msg := err.Error(); msg != db.lastErr {
			db.lastErr = msg
			db.log.Error("geoip: reload failed, keeping the databases in service", "err", err)
		} else {
			db.log.Debug("geoip: reload failed again", "err", err)
		}
		return err
	}
	old := db.cur.Swap(g)
	db.lastErr = ""
	db.metrics.Reloads.WithLabelValues("ok").Inc()
	db.setBuildTimes(g)
	db.log.Info("geoip: databases reloaded", "country", db.opts.Country, "asn", db.opts.ASN,
		"duration", time.Since(start))
	if old != nil {
		if err := old.retire(); err != nil {
			db.log.Warn("geoip: close replaced databases", "err", err)
		}
	}
	return nil
}

// Watch checks the database files every interval and calls Reload when the
// size, modification time or identity (device and inode) of one of them
// changed. A failed reload is logged and counted by Reload and does not
// stop the watch; the same files are not retried until they change again.
// Watch returns nil when ctx ends, and an error only for an interval that
// is not positive.
func (db *DB) Watch(ctx context.Context, every time.Duration) error {
	if every <= 0 {
		return fmt.Errorf("watch geoip databases: interval %v is not positive", every)
	}
	var seen [2]fileSig
	if g := db.cur.Load(); g != nil {
		seen = g.sigs
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		now := db.sigs()
		if now == seen {
			continue
		}
		seen = now
		_ = db.Reload() // logged and counted by Reload
	}
}

// fileSig tells whether a file changed: a rename over it changes its
// inode, a rewrite in place its size or modification time.
type fileSig struct {
	dev, ino uint64
	size     int64
	mtime    int64
	missing  bool
}

func (db *DB) sigs() [2]fileSig {
	var s [2]fileSig
	if db.opts.Country != "" {
		s[0] = statSig(db.opts.Country)
	}
	if db.opts.ASN != "" {
		s[1] = statSig(db.opts.ASN)
	}
	return s
}

// statSig returns the signature of path; a file that cannot be stated gets
// one that differs from any existing file's, so that its return is seen.
func statSig(path string) fileSig {
	fi, err := os.Stat(path)
	if err != nil {
		return fileSig{missing: true}
	}
	return sigOf(fi)
}

func sigOf(fi fs.FileInfo) fileSig {
	s := fileSig{size: fi.Size(), mtime: fi.ModTime().UnixNano()}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		s.dev, s.ino = uint64(st.Dev), uint64(st.Ino)
	}
	return s
}
