package detect

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"hash"
)

// Pseudonymiser replaces subject identifiers with keyed hashes: the same
// subject always gets the same pseudonym under one key, so per-subject
// evidence still correlates, but nobody without the key can tell who it
// is or test a guess. Not safe for concurrent use.
type Pseudonymiser struct {
	mac   hash.Hash
	cache map[string]string
	sum   []byte
}

// pseudonymCache bounds the remembered pseudonyms; a subject's pseudonym
// costs one HMAC when it is not cached.
const pseudonymCache = 1 << 14

// NewPseudonymiser returns a pseudonymiser keyed with key.
func NewPseudonymiser(key []byte) *Pseudonymiser {
	return &Pseudonymiser{mac: hmac.New(sha256.New, key), cache: make(map[string]string)}
}

// Pseudonym returns "p-" and the first 16 bytes of HMAC-SHA256(key,
// subject) in hex; "" stays "".
func (p *Pseudonymiser) Pseudonym(subject string) string {
	if subject == "" {
		return ""
	}
	if s, ok := p.cache[subject]; ok {
		return s
	}
	p.mac.Reset()
	p.mac.Write([]byte(subject))
	p.sum = p.mac.Sum(p.sum[:0])
	s := "p-" + hex.EncodeToString(p.sum[:16])
	if len(p.cache) >= pseudonymCache {
		clear(p.cache)
	}
	p.cache[subject] = s
	return s
}
