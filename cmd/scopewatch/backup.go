package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"

	"github.com/scopewatch/scopewatch/api"
	"github.com/scopewatch/scopewatch/internal/durable"
	"github.com/scopewatch/scopewatch/store"
)

// cmdBackup writes a consistent copy of the store: through the running
// daemon's API, which copies it in one read transaction while it keeps
// committing, or from the file when no daemon answers.
func cmdBackup(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("backup")
	configPath := fs.String("config", "", configUsage)
	output := fs.String("output", "", "file to write the copy to (must not exist)")
	if err := parseFlags(fs, args, stdout); err != nil {
		return err
	}
	if *output == "" {
		return usagef("--output is required: the file to write the copy to")
	}
	if fs.NArg() > 0 {
		return usagef("unexpected arguments %q", fs.Args())
	}
	cfg, err := loadConfig(*configPath)
	if err != nil {
		return err
	}
	if _, err := os.Lstat(*output); err == nil {
		return usagef("%s exists: a backup never overwrites a file", *output)
	}
	client := api.NewClient(cfg)
	resp, ok, err := client.Call(ctx, http.MethodGet, "/api/v1/backup", nil)
	if err != nil {
		return err
	}
	at := ""
	if ok {
		defer resp.Body.Close()
		at = client.At(resp)
	}
	via := "the running daemon"
	n, err := durable.Create(*output, 0o600, func(w io.Writer) (int64, error) {
		if ok {
			if resp.StatusCode != http.StatusOK {
				b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
				return 0, fmt.Errorf("daemon %s: %s: %s", at, resp.Status, b)
			}
			n, err := io.Copy(w, resp.Body)
			if err == nil && resp.ContentLength >= 0 && n != resp.ContentLength {
				err = fmt.Errorf("daemon %s sent %d of %d bytes", at, n, resp.ContentLength)
			}
			return n, err
		}
		via = cfg.Store
		db, err := store.Open(cfg.Store, store.Options{ReadOnly: true})
		if err != nil {
			return 0, err
		}
		defer db.Close()
		return db.Backup(w, nil)
	})
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "backed up %s (%s) from %s to %s\n", cfg.Store, sizeOf(n), via, *output)
	return nil
}

// cmdCompact rewrites the store without its free pages. It needs the
// store to itself: with the daemon running, opening it fails with the
// daemon's pid.
func cmdCompact(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("compact")
	configPath := fs.String("config", "", configUsage)
	if err := parseFlags(fs, args, stdout); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usagef("unexpected arguments %q", fs.Args())
	}
	cfg, err := loadConfig(*configPath)
	if err != nil {
		return err
	}
	before, after, err := store.CompactFile(cfg.Store)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "compacted %s: %s → %s\n", cfg.Store, sizeOf(before), sizeOf(after))
	return nil
}

// sizeOf formats a byte count for people.
func sizeOf(n int64) string {
	const mib = 1 << 20
	if n < mib {
		return strconv.FormatInt(n, 10) + " bytes"
	}
	return fmt.Sprintf("%.1f MiB", float64(n)/mib)
}
