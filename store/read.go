package store

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"sync"

	bolt "go.etcd.io/bbolt"
)

// Reads run in short read transactions and return copies: a long read
// transaction keeps bbolt from reusing freed pages and from growing the
// memory map, which stalls the writer.

// Positions returns the stored positions of every file of source, ordered
// by device and inode.
func (db *DB) Positions(source string) ([]Position, error) {
	if strings.IndexByte(source, 0) >= 0 {
		return nil, fmt.Errorf("read positions of source %q: name contains a 0 byte: %w", source, ErrInvalid)
	}
	prefix := append([]byte(source), 0)
	var out []Position
	err := db.view(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketPositions).Cursor()
		for k, v := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
			if len(k) != len(prefix)+16 {
				continue // not a position key of this source: names never contain a 0 byte
			}
			p, err := decodePosition(k, v)
			if err != nil {
				return fmt.Errorf("position %q: %w", k, err)
			}
			out = append(out, p)
		}
		return nil
	})
	if err != nil {
		return nil, failed(err, fmt.Sprintf("read positions of source %q from %s", source, db.path))
	}
	return out, nil
}

// AllPositions returns every stored position, ordered by source, then
// device and inode.
func (db *DB) AllPositions() ([]Position, error) {
	var out []Position
	err := db.view(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketPositions).ForEach(func(k, v []byte) error {
			p, err := decodePosition(k, v)
			if err != nil {
				return fmt.Errorf("position %q: %w", k, err)
			}
			out = append(out, p)
			return nil
		})
	})
	if err != nil {
		return nil, failed(err, fmt.Sprintf("read positions from %s", db.path))
	}
	return out, nil
}

// Client returns the stored record of client id; ok is false if the store
// has none.
func (db *DB) Client(id string) (c Client, ok bool, err error) {
	if !validClientID(id) {
		return Client{}, false, nil
	}
	err = db.view(func(tx *bolt.Tx) error {
		v := tx.Bucket(bucketClients).Get([]byte(id))
		if v == nil {
			return nil
		}
		ok = true
		c, err = decodeClient(db.scopes.load(), id, v)
		return err
	})
	if err != nil {
		return Client{}, false, failed(err, fmt.Sprintf("read client %q from %s", id, db.path))
	}
	return c, ok, nil
}

// clientPage is how many clients ForEachClient copies per read transaction.
const clientPage = 256

// ForEachClient calls fn with a copy of every stored client in id order,
// stopping at the first error fn returns. Clients are read a page at a
// time in separate read transactions and fn runs outside any transaction,
// so fn may take its time and may commit; the walk is therefore not one
// snapshot: a client committed meanwhile may or may not be seen.
func (db *DB) ForEachClient(fn func(Client) error) error {
	page := make([]Client, 0, clientPage)
	return db.walkClients(func(names []string, k, v []byte) error {
		c, err := decodeClient(names, string(k), v)
		if err != nil {
			return err
		}
		page = append(page, c)
		return nil
	}, func() error {
		for _, c := range page {
			if err := fn(c); err != nil {
				return err
			}
		}
		clear(page)
		page = page[:0]
		return nil
	})
}

// ForEachClientUsage is ForEachClient for each client's usage alone,
// without its addresses and countries, whose decoding is most of a
// record's: for the sweeps, which judge the scopes. fn must not keep c or
// its Scopes once it returns: the walk fills them again for a later
// client (the strings in them it may keep). The next page of clients is
// read while fn takes the clients of this one, on a goroutine the call
// owns: the halves of a sweep take two cores.
func (db *DB) ForEachClientUsage(fn func(c *ClientUsage) error) error {
	free := make(chan *usagePage, 2) // the two pages: one read, one in fn
	full := make(chan *usagePage)
	stop := make(chan struct{})
	for range cap(free) {
		free <- &usagePage{clients: make([]ClientUsage, clientPage)}
	}
	var wg sync.WaitGroup
	wg.Go(func() { db.readUsage(free, full, stop) })
	defer func() {
		close(stop)
		wg.Wait()
	}()
	for p := range full {
		if p.err != nil {
			return p.err
		}
		for i := range p.clients[:p.n] {
			if err := fn(&p.clients[i]); err != nil {
				return err
			}
		}
		free <- p // never blocks: free holds every page not in use
	}
	return nil
}

// usagePage is a page of ForEachClientUsage: its first n clients, or the
// error that ended the walk.
type usagePage struct {
	clients []ClientUsage
	n       int
	err     error
}

// errWalkStopped ends readUsage's walk when its caller returned.
var errWalkStopped = errors.New("walk stopped")

// readUsage reads every client's usage into pages taken from free, sends
// each page to full, and closes full at the end of the walk, after a page
// carrying the error that ended it, if one did; it returns once stop is
// closed.
func (db *DB) readUsage(free <-chan *usagePage, full chan<- *usagePage, stop <-chan struct{}) {
	defer close(full)
	var w usageWalk
	var p *usagePage
	take := func() error {
		select {
		case p = <-free:
			p.n = 0
			return nil
		case <-stop:
			return errWalkStopped
		}
	}
	send := func(p *usagePage) error {
		select {
		case full <- p:
			return nil
		case <-stop:
			return errWalkStopped
		}
	}
	if take() != nil {
		return
	}
	err := db.walkClients(func(names []string, k, v []byte) error {
		err := w.decode(&p.clients[p.n], names, string(k), v)
		p.n++
		return err
	}, func() error {
		if err := send(p); err != nil {
			return err
		}
		return take()
	})
	if err != nil && !errors.Is(err, errWalkStopped) {
		_ = send(&usagePage{err: err})
	}
}

// walkClients reads the clients bucket in pages of clientPage records,
// each in a read transaction of its own: it calls read with the store's
// scope names and each record of the page (k and v are the
// transaction's), then, outside the transaction, done.
func (db *DB) walkClients(read func(names []string, k, v []byte) error, done func() error) error {
	var next []byte // first key of the next page; nil at the start
	for {
		last := false
		err := db.view(func(tx *bolt.Tx) error {
			names := db.scopes.load()
			cur := tx.Bucket(bucketClients).Cursor()
			var k, v []byte
			if next == nil {
				k, v = cur.First()
			} else {
				k, v = cur.Seek(next)
			}
			for n := 0; k != nil && n < clientPage; k, v = cur.Next() {
				if err := read(names, k, v); err != nil {
					return fmt.Errorf("client %q: %w", k, err)
				}
				n++
			}
			last = k == nil
			if !last {
				next = append(next[:0], k...)
			}
			releaseMapped(tx) // the page is copied: a walk of every client maps no more than a page of them
			return nil
		})
		if err != nil {
			return failed(err, fmt.Sprintf("read clients from %s", db.path))
		}
		if err := done(); err != nil {
			return err
		}
		if last {
			return nil
		}
	}
}

// Clients returns a copy of every stored client, sorted by id.
func (db *DB) Clients() ([]Client, error) {
	var out []Client
	err := db.ForEachClient(func(c Client) error {
		out = append(out, c)
		return nil
	})
	return out, err
}

// Sources returns the statistics of every source, sorted by name.
func (db *DB) Sources() ([]Source, error) {
	var out []Source
	err := db.view(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketSources).ForEach(func(k, v []byte) error {
			s, err := decodeSource(string(k), v)
			if err != nil {
				return fmt.Errorf("source %q: %w", k, err)
			}
			out = append(out, s)
			return nil
		})
	})
	if err != nil {
		return nil, failed(err, fmt.Sprintf("read sources from %s", db.path))
	}
	return out, nil
}
