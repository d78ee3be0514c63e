package app

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/redis/go-redis/v9"
)

// sessionRevokedChannel announces ended sessions to every instance.
const sessionRevokedChannel = "sessions:revoked" // after the deployment's prefix

// sessionCacheTTL bounds how long an instance trusts a session it read; it is
// also the longest a revocation can go unseen if its broadcast is lost.
const sessionCacheTTL = 5 * time.Second

// sessionCacheMax caps memory; past it the cache starts over.
const sessionCacheMax = 100_000

// sessionCache keeps sessions read recently, so an authenticated request does
// not read PostgreSQL each time. Only live sessions are kept (never unknown
// tokens, which anyone can invent), each no longer than its own expiry.
type sessionCache struct {
	mu     sync.Mutex
	byHash map[string]cachedSession
}

type cachedSession struct {
	s       Session
	fetched time.Time
}

func newSessionCache() *sessionCache { return &sessionCache{byHash: map[string]cachedSession{}} }

func (c *sessionCache) get(hash []byte, now time.Time) (Session, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.byHash[string(hash)]
	if !ok || now.Sub(e.fetched) >= sessionCacheTTL || !now.Before(e.s.ExpiresAt) {
		return Session{}, false
	}
	return e.s, true
}

func (c *sessionCache) put(hash []byte, s Session, now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.byHash) >= sessionCacheMax {
		c.byHash = map[string]cachedSession{}
	}
	c.byHash[string(hash)] = cachedSession{s: s, fetched: now}
}

// drop forgets a session by id (a revocation here or elsewhere).
func (c *sessionCache) drop(id uuid.UUID) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for h, e := range c.byHash {
		if e.s.ID == id {
			delete(c.byHash, h)
		}
	}
}

// watch drops sessions revoked on other instances until ctx ends.
func (c *sessionCache) watch(ctx context.Context, rdb redis.UniversalClient, channel string) error {
	sub := rdb.Subscribe(ctx, channel)
	if _, err := sub.Receive(ctx); err != nil {
		sub.Close()
		return fmt.Errorf("subscribe %s: %w", channel, err)
	}
	go func() {
		defer sub.Close()
		ch := sub.Channel()
		for {
			select {
			case <-ctx.Done():
				return
			case m, ok := <-ch:
				if !ok {
					return
				}
				if id, err := uuid.Parse(m.Payload); err == nil {
					c.drop(id)
				}
			}
		}
	}()
	return nil
}
