package geoip

import (
	"encoding/binary"
	"net/netip"
	"sync"
)

// cache is a bounded map from non-zero uint64 keys to values: a fixed
// array of 4-way sets chosen by a hash of the key, in shards with a mutex
// each. A full set gives up its oldest entry. It makes no allocation after
// newCache, and a lookup costs a hash, a lock and four compares.
type cache[V any] struct {
	shards []cacheShard[V]
	mask   uint64 // len(shards)-1
}

const cacheWays = 4

type cacheShard[V any] struct {
	mu   sync.Mutex
	sets []cacheSet[V]
	_    [32]byte // a shard's lock to itself on a 64-byte cache line
}

type cacheSet[V any] struct {
	keys [cacheWays]uint64 // 0: empty
	vals [cacheWays]V
	next uint8 // the way to replace when the set is full
}

// newCache returns a cache of about size entries, or nil when size is not
// positive.
func newCache[V any](size int) *cache[V] {
	if size <= 0 {
		return nil
	}
	sets := (size + cacheWays - 1) / cacheWays
	n := 1
	for n < 16 && n*16 <= sets {
		n *= 2
	}
	c := &cache[V]{shards: make([]cacheShard[V], n), mask: uint64(n - 1)}
	per := (sets + n - 1) / n
	for i := range c.shards {
		c.shards[i].sets = make([]cacheSet[V], per)
	}
	return c
}

func (c *cache[V]) set(key uint64) (*cacheShard[V], *cacheSet[V]) {
	// The finaliser of MurmurHash3, so that neighbouring networks and
	// offsets spread over shards and sets.
	h := key
	h ^= h >> 33
	h *= 0xff51afd7ed558ccd
	h ^= h >> 33
	sh := &c.shards[h&c.mask]
	return sh, &sh.sets[(h>>32)*uint64(len(sh.sets))>>32]
}

func (c *cache[V]) get(key uint64) (v V, ok bool) {
	sh, s := c.set(key)
	sh.mu.Lock()
	for i := range s.keys {
		if s.keys[i] == key {
			v, ok = s.vals[i], true
			break
		}
	}
	sh.mu.Unlock()
	return v, ok
}

func (c *cache[V]) put(key uint64, v V) {
	sh, s := c.set(key)
	sh.mu.Lock()
	i := -1
	for j := range s.keys {
		if s.keys[j] == key || s.keys[j] == 0 {
			i = j
			break
		}
	}
	if i < 0 {
		i = int(s.next)
		s.next = (s.next + 1) % cacheWays
	}
	s.keys[i], s.vals[i] = key, v
	sh.mu.Unlock()
}

// addrEntry is an answer cached by the /24 or /48 of an address. It holds
// for the addresses of valid, the smallest of the networks the databases
// returned: MaxMind networks can be smaller than a /24.
type addrEntry struct {
	valid netip.Prefix
	info  Info
}

// addrKey returns the key of ip in the answer cache: its /24 or /48,
// tagged so that the two families never meet and no key is 0.
func addrKey(ip netip.Addr) uint64 {
	if ip.Is4() {
		a := ip.As4()
		return 3<<62 | uint64(a[0])<<16 | uint64(a[1])<<8 | uint64(a[2])
	}
	a := ip.As16()
	return 1<<63 | binary.BigEndian.Uint64(a[:8])>>16
}

// asnRecord is what an ASN record gives, cached by its offset.
type asnRecord struct {
	number uint32
	org    string
}

// recordKey returns the key of a record's data offset in a record cache.
func recordKey(offset uintptr) uint64 { return uint64(offset) | 1<<63 }
