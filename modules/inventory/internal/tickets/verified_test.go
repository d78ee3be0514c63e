package tickets

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"marquee/modules/inventory/internal/deps"
	"marquee/tenants"
)

// keyedService is a ticket service whose key cache already holds one
// event's key (no database behind it: every Verify below runs from caches),
// remembering at most capacity tokens.
func keyedService(t *testing.T, capacity int) (*Service, ed25519.PrivateKey, uuid.UUID) {
	t.Helper()
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	event := uuid.New()
	s := &Service{keyCaches: keyCaches{verified: newVerifiedCache(capacity)}}
	ks := &keySet{keys: map[uint16]EventKey{1: {KeyID: 1, Public: pub}}, newest: 1, read: time.Now()}
	for _, slug := range []string{"acme", "globex"} {
		s.eventKeys.Store(deps.EventKey(tenants.Tenant{Slug: slug}, event), ks)
	}
	return s, priv, event
}

func signFor(priv ed25519.PrivateKey, event uuid.UUID) string {
	return SignV2(priv, "acme", Claims{KeyID: 1, EventID: event, TicketID: uuid.Must(uuid.NewV7()), ZoneID: uuid.New()})
}

// A verified token is remembered for its chain only; a token that fails is
// never remembered, and a forgery of a remembered token's claims (same
// ticket, other signature) is still refused: the key is the exact text.
func TestVerifiedTokensRemembered(t *testing.T) {
	s, priv, event := keyedService(t, 64)
	ctx := context.Background()
	acme, globex := tenants.Tenant{Slug: "acme"}, tenants.Tenant{Slug: "globex"}
	tok := signFor(priv, event)
	first, err := s.Verify(ctx, acme, tok)
	if err != nil || !s.Remembered(acme, tok) {
		t.Fatalf("first verify: %+v %v, remembered %v", first, err, s.Remembered(acme, tok))
	}
	again, err := s.Verify(ctx, acme, tok)
	if err != nil || again != first {
		t.Fatalf("from the cache: %+v %v, want %+v", again, err, first)
	}
	if _, err := s.Verify(ctx, globex, tok); !errors.Is(err, ErrBadToken) || s.Remembered(globex, tok) {
		t.Fatalf("another chain's token: %v", err)
	}
	// The same claims under a garbled signature: a different text, refused.
	forged := []byte(tok)
	if forged[len(forged)-3] = 'A'; tok[len(tok)-3] == 'A' {
		forged[len(forged)-3] = 'B'
	}
	if _, err := s.Verify(ctx, acme, string(forged)); !errors.Is(err, ErrBadToken) || s.Remembered(acme, string(forged)) {
		t.Fatalf("forged token: %v", err)
	}
	if n := s.verified.len(); n != 1 {
		t.Fatalf("%d tokens remembered, want 1", n)
	}
}

// However many tokens verify, at most the bound are remembered, and one in
// steady use stays remembered while the rest age out.
func TestVerifiedCacheBounded(t *testing.T) {
	const capacity = 16
	s, priv, event := keyedService(t, capacity)
	ctx := context.Background()
	acme := tenants.Tenant{Slug: "acme"}
	hot := signFor(priv, event)
	var first string
	for i := range 500 {
		tok := signFor(priv, event)
		if i == 0 {
			first = tok
		}
		if _, err := s.Verify(ctx, acme, tok); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Verify(ctx, acme, hot); err != nil {
			t.Fatal(err)
		}
		if n := s.verified.len(); n > capacity {
			t.Fatalf("after %d tokens: %d remembered, bound %d", i+1, n, capacity)
		}
	}
	if !s.Remembered(acme, hot) || s.Remembered(acme, first) {
		t.Fatalf("hot token remembered %v, first of 500 remembered %v", s.Remembered(acme, hot), s.Remembered(acme, first))
	}

	// Many scanners at once over more tokens than the bound: every answer
	// right, the bound held (the race detector checks the locking).
	toks := make([]string, 4*capacity)
	for i := range toks {
		toks[i] = signFor(priv, event)
	}
	var wg sync.WaitGroup
	for g := range 32 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 200 {
				tok := toks[(g*7+i)%len(toks)]
				v, err := s.Verify(ctx, acme, tok)
				c, _, _ := ParseV2(tok)
				if err != nil || v.TicketID != c.TicketID {
					t.Errorf("scanner %d: %+v %v", g, v, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	if n := s.verified.len(); n > capacity {
		t.Fatalf("%d remembered after the race, bound %d", n, capacity)
	}
}
