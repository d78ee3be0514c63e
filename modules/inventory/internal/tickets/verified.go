package tickets

import (
	"sync"

	"marquee/tenants"
)

// Tokens that verified, by their exact text and chain, so a ticket's later
// scans (exits, re-entries, a second device, a retry) skip the Ed25519
// check: it was a third of a scan's CPU on the server. Only the signature
// is remembered, never the ticket's state: revocation, re-issue, a key
// rotation with re-issue, and listing for resale are all judged by the
// scan's own statement on the ticket's row, so a cached token of a revoked
// ticket still answers revoked. An event's keys are only ever added, so a
// token that verified once verifies for good. Tokens that fail are not
// remembered: forgeries cannot fill the cache.

// verifiedCap bounds the tokens remembered per process: a stadium night's
// tickets (50,000) with room to spare, about 20 MB at its fullest.
const verifiedCap = 1 << 16

// verifiedCache is a bounded map in two generations: entries go into the
// current one; when it holds half the bound it becomes the previous one
// and the one before is dropped whole. A hit in the previous generation is
// carried into the current one, so tokens in use stay and the rest age
// out, with no per-entry bookkeeping.
type verifiedCache struct {
	mu        sync.Mutex
	half      int
	cur, prev map[string]Verified
}

func newVerifiedCache(capacity int) *verifiedCache {
	half := max(capacity/2, 1)
	return &verifiedCache{half: half, cur: make(map[string]Verified, half)}
}

// verifiedKey is the chain and the token: a token verifies for one chain
// only (its slug is under the signature).
func verifiedKey(tenant, token string) string { return tenant + "\x00" + token }

func (c *verifiedCache) get(key string) (Verified, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if v, ok := c.cur[key]; ok {
		return v, true
	}
	v, ok := c.prev[key]
	if ok {
		delete(c.prev, key)
		c.putLocked(key, v)
	}
	return v, ok
}

func (c *verifiedCache) put(key string, v Verified) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.putLocked(key, v)
}

func (c *verifiedCache) putLocked(key string, v Verified) {
	c.cur[key] = v
	if len(c.cur) >= c.half {
		c.prev, c.cur = c.cur, make(map[string]Verified, c.half)
	}
}

// len is how many tokens are remembered (at most twice half).
func (c *verifiedCache) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.cur) + len(c.prev)
}

// Remembered reports whether t's token is in the cache of verified tokens
// (tests: that a scan went the cached way).
func (s *Service) Remembered(t tenants.Tenant, token string) bool {
	c, key := s.verified, verifiedKey(t.Slug, token)
	c.mu.Lock()
	defer c.mu.Unlock()
	_, inCur := c.cur[key]
	_, inPrev := c.prev[key]
	return inCur || inPrev
}
