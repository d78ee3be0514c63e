package integrations_test

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"gorm.io/gorm"

	"marquee/app/apptest"
	"marquee/modules/integrations"
)

// Credentials never appear in logs or answers (the provider's 429 body
// even quotes the key), are sealed at rest, and survive a key rotation,
// including one after the secret itself changed.
func TestCredentialsSealedNeverShownAndRotated(t *testing.T) {
	e := startEnv(t)
	c := newChain(t, e, 100, map[string]int{"web": 60, "ticketmaster": 20, "eventbrite": 20})
	var bodies []string
	keep := func(res apptest.Response) { bodies = append(bodies, string(res.Body)) }

	// Calls that succeed, fail on auth, and hit the rate limit.
	keep(c.allocate(t, "ticketmaster", 20))
	keep(c.allocate(t, "eventbrite", 20))
	c.tm.FailNext(429, 429, 429, 429, 429, 429)
	keep(c.do(t, "POST", "/api/v1/integrations/connectors/"+c.tmConn.ID.String()+"/poll", nil))
	c.eb.FailNext(http.StatusUnauthorized)
	keep(c.do(t, "GET", "/api/v1/integrations/connectors/"+c.ebConn.ID.String()+"/external-events", nil))
	c.eb.PlaceOrder(c.ebEvent, c.ebClass, 1)
	keep(c.do(t, "GET", "/api/v1/integrations/connectors", nil))
	keep(c.do(t, "GET", "/api/v1/integrations/connectors/"+c.tmConn.ID.String(), nil))
	keep(c.do(t, "GET", "/api/v1/integrations/events/"+c.event.String()+"/channels", nil))
	res := c.do(t, "GET", "/portal/channels/events/"+c.event.String(), nil)
	keep(res)
	for _, b := range append(bodies, e.logs.String()) {
		if strings.Contains(b, tmKey) || strings.Contains(b, ebToken) {
			t.Fatalf("a credential leaked: %.400s", b)
		}
	}
	if !strings.Contains(e.logs.String(), "QuotaViolation") {
		t.Fatal("the logs did not record the provider's refusal at all (the grep proves nothing)")
	}
	// At rest: sealed bytes, not the key.
	if n := c.count(t, `SELECT count(*) FROM int_connectors WHERE position(convert_to(?, 'UTF8') IN credentials_sealed) > 0 OR position(convert_to(?, 'UTF8') IN credentials_sealed) > 0`, tmKey, ebToken); n != 0 {
		t.Fatal("credentials stored in clear")
	}

	// Rotation under the same secret: a new generation, still working.
	svc := e.mod.Service()
	n, kid, err := svc.RotateKeys(context.Background(), c.t)
	if err != nil || n != 2 || integrations.Generation(kid) != 2 {
		t.Fatalf("rotate: %d %s %v", n, kid, err)
	}
	c.tm.Sell(c.tmEvent, 2)
	c.tm.ResetFailures()
	c.count(t, `WITH x AS (UPDATE int_connectors SET backoff_until = NULL RETURNING 1) SELECT count(*) FROM x`) // the 429's backoff is over
	if p := c.poll(t); p.Sold != 2 {
		t.Fatalf("poll after rotation sold %d, want 2", p.Sold)
	}
	// The secret changes: values sealed under the old one open only when
	// the rotation is given it, and are then sealed under the new one.
	old := e.App.Config.SecretKey
	rotated := integrations.NewKeyring("a-completely-new-secret-key-for-this-deployment-0001", old)
	k2 := rotated.KeyID(3)
	if strings.Contains(k2, kid[strings.Index(kid, "-"):]) {
		t.Fatal("a new secret kept the old fingerprint")
	}
	var sealed []byte
	if err := e.App.Tx(context.Background(), c.t, func(tx *gorm.DB) error {
		return tx.Raw(`SELECT credentials_sealed FROM int_connectors WHERE id = ?`, c.tmConn.ID).Row().Scan(&sealed)
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := integrations.NewKeyring("a-completely-new-secret-key-for-this-deployment-0001").Open(kid, c.tmConn.ID[:], sealed); err == nil {
		t.Fatal("a value sealed under the old secret opened without it")
	}
	plain, err := rotated.Open(kid, c.tmConn.ID[:], sealed)
	if err != nil || !strings.Contains(string(plain), tmKey) {
		t.Fatalf("the keyring with the previous secret does not open it: %v", err)
	}
	resealed, err := rotated.Seal(k2, c.tmConn.ID[:], plain)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := rotated.Open(k2, c.ebConn.ID[:], resealed); err == nil {
		t.Fatal("credentials sealed for one connector opened for another")
	}
}
