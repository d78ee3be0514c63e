package ops_test

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"gorm.io/gorm"

	"marquee/app/apptest"
	"marquee/modules/ops"
	"marquee/modules/ops/fakepos"
)

const squareKey = "sq0-test-signature-key-0123456789"

// connect adds a Square connector with a bar and a merch stand at the
// chain's venue, and a fake POS that delivers to the test server.
func (c *chain) connect(t testing.TB) (ops.Connector, *fakepos.POS) {
	t.Helper()
	res := c.do(t, "POST", "/api/v1/ops/pos/connectors", map[string]any{"name": "Square", "merchant_id": "MERCHANT-1", "signature_key": squareKey})
	mustStatus(t, res, http.StatusCreated)
	if strings.Contains(string(res.Body), squareKey) {
		t.Fatal("the connector's signature key was returned")
	}
	conn := decode[ops.Connector](t, res.Body)
	res = c.do(t, "PUT", "/api/v1/ops/pos/connectors/"+conn.ID.String()+"/locations", map[string]any{"locations": []any{
		map[string]any{"location_id": "L-BAR", "venue_id": c.venue, "stand": "Main bar", "category": "bar"},
		map[string]any{"location_id": "L-MERCH", "venue_id": c.venue, "stand": "Merch", "category": "merch"},
	}})
	mustStatus(t, res, http.StatusOK)
	pos := &fakepos.POS{MerchantID: "MERCHANT-1", SignatureKey: squareKey, NotificationURL: conn.NotificationURL,
		Target: c.e.Server.URL + "/api/v1/webhooks/pos/" + conn.ID.String(), Host: c.slug + ".localhost"}
	return conn, pos
}

func (c *chain) send(t testing.TB, pos *fakepos.POS, d fakepos.Delivery) ops.WebhookResult {
	t.Helper()
	status, body, err := pos.Send(context.Background(), d)
	if err != nil || status != http.StatusOK {
		t.Fatalf("deliver %s: %v %d %s", d.Type, err, status, body)
	}
	return decode[ops.WebhookResult](t, body)
}

func (c *chain) ledgerSum(t testing.TB) int {
	return c.count(t, `SELECT coalesce(sum(amount_minor), 0) FROM ledger_entries WHERE kind IN ('pos.sale', 'pos.refund')`)
}

// A sale reaches the ledger once, whatever the duplicates and the order:
// created (APPROVED) and updated (COMPLETED) delivered in reverse leave the
// completed version; a redelivery is a duplicate; a refund counts once, and
// its earlier version arriving late changes nothing.
func TestPOSDuplicatesOutOfOrderAndRefunds(t *testing.T) {
	e := startEnv(t, nil)
	c := newChain(t, e, "pos")
	_, pos := c.connect(t)
	now := time.Now().UTC()
	pay := fakepos.Payment{ID: "P1", Status: "APPROVED", Version: 1, AmountMoney: fakepos.Money{Amount: 1250, Currency: "EUR"}, LocationID: "L-BAR", OrderID: "O1", CreatedAt: now}
	created := pos.PaymentEvent(pay)
	pay.Status, pay.Version = "COMPLETED", 2
	completed := pos.PaymentEvent(pay)

	if r := c.send(t, pos, completed); r.Outcome != "applied" || r.LedgerMinor != 1250 {
		t.Fatalf("completed first: %+v", r)
	}
	if r := c.send(t, pos, created); r.Outcome != "stale" || r.LedgerMinor != 0 {
		t.Fatalf("created late: %+v", r)
	}
	if r := c.send(t, pos, completed); r.Outcome != "duplicate" {
		t.Fatalf("redelivery: %+v", r)
	}
	merch := fakepos.Payment{ID: "P2", Status: "COMPLETED", Version: 1, AmountMoney: fakepos.Money{Amount: 3000, Currency: "EUR"}, LocationID: "L-MERCH", CreatedAt: now}
	c.send(t, pos, pos.PaymentEvent(merch))
	ref := fakepos.Payment{ID: "R1", Status: "PENDING", Version: 1, AmountMoney: fakepos.Money{Amount: 1250, Currency: "EUR"}, LocationID: "L-BAR", PaymentID: "P1", CreatedAt: now}
	pending := pos.RefundEvent(ref)
	ref.Status, ref.Version = "COMPLETED", 2
	done := pos.RefundEvent(ref)
	if r := c.send(t, pos, done); r.LedgerMinor != -1250 {
		t.Fatalf("refund: %+v", r)
	}
	for _, d := range []fakepos.Delivery{pending, done} {
		if r := c.send(t, pos, d); r.LedgerMinor != 0 {
			t.Fatalf("refund again: %+v", r)
		}
	}
	if got := c.ledgerSum(t); got != 3000 {
		t.Fatalf("ledger holds %d, want 3000", got)
	}
	res := c.do(t, "GET", "/api/v1/events/"+c.event+"/dashboard", nil)
	mustStatus(t, res, http.StatusOK)
	d := decode[ops.Dashboard](t, res.Body)
	if d.Revenue == nil || len(d.Revenue.Totals) != 1 || d.Revenue.Totals[0].NetMinor != 3000 || d.Revenue.Totals[0].RefundsMinor != 1250 || len(d.Revenue.ByStand) != 2 {
		t.Fatalf("dashboard revenue: %+v", d.Revenue)
	}
	// The rollup writes the same totals however often it runs.
	for range 2 {
		if _, err := e.mod.Service().Rollup(context.Background(), c.t); err != nil {
			t.Fatal(err)
		}
	}
	res = c.do(t, "GET", "/api/v1/events/"+c.event+"/revenue", nil)
	mustStatus(t, res, http.StatusOK)
	rolled := decode[ops.Revenue](t, res.Body)
	if len(rolled.ByCategory) != 2 || rolled.Totals[0].NetMinor != 3000 || rolled.RolledUpAt == nil {
		t.Fatalf("rolled up: %+v", rolled)
	}
	if n := c.count(t, `SELECT count(*) FROM ops_revenue_totals`); n != 2 {
		t.Fatalf("%d rollup rows", n)
	}
}

// A forged or missing signature is refused with 401 and writes nothing; so
// is a body over the limit (413). The key is sealed at rest.
func TestPOSForgedSignatureWritesNothing(t *testing.T) {
	e := startEnv(t, nil)
	c := newChain(t, e, "forge")
	conn, pos := c.connect(t)
	d := pos.PaymentEvent(fakepos.Payment{ID: "P9", Status: "COMPLETED", Version: 1, AmountMoney: fakepos.Money{Amount: 500, Currency: "EUR"}, LocationID: "L-BAR"})
	path := "/api/v1/webhooks/pos/" + conn.ID.String()
	none := map[string]int{"ops_pos_events": 0, "ops_pos_objects": 0, "ledger_entries": 0}
	otherURL := fakepos.Sign(squareKey, "https://evil.example/hook", d.Body)
	apptest.RunScenarios(t, e.Env, []apptest.Scenario{
		{Name: "forged", Method: "POST", Path: path, Tenant: c.slug, Body: d.Body, Headers: map[string]string{"x-square-hmacsha256-signature": fakepos.Sign("wrong-key-wrong-key", conn.NotificationURL, d.Body)},
			Status: 401, Code: "unauthenticated", Changes: none},
		{Name: "signed for another URL", Method: "POST", Path: path, Tenant: c.slug, Body: d.Body, Headers: map[string]string{"x-square-hmacsha256-signature": otherURL},
			Status: 401, Code: "unauthenticated", Changes: none},
		{Name: "tampered body", Method: "POST", Path: path, Tenant: c.slug, Body: strings.Replace(string(d.Body), "500", "50000", 1), Headers: map[string]string{"x-square-hmacsha256-signature": d.Signature},
			Status: 401, Code: "unauthenticated", Changes: none},
		{Name: "unsigned", Method: "POST", Path: path, Tenant: c.slug, Body: d.Body, Status: 401, Code: "unauthenticated", Changes: none},
		{Name: "huge", Method: "POST", Path: path, Tenant: c.slug, Body: `{"pad":"` + strings.Repeat("x", 100<<10) + `"}`, Status: 413, Changes: none},
		{Name: "signed but not an envelope", Method: "POST", Path: path, Tenant: c.slug, Body: `{"hello":1}`,
			Headers: map[string]string{"x-square-hmacsha256-signature": fakepos.Sign(squareKey, conn.NotificationURL, []byte(`{"hello":1}`))}, Status: 400, Code: "invalid_pos_event", Changes: none},
		{Name: "genuine", Method: "POST", Path: path, Tenant: c.slug, Body: d.Body, Headers: map[string]string{"x-square-hmacsha256-signature": d.Signature},
			Status: 200, Changes: map[string]int{"ops_pos_events": 1, "ops_pos_objects": 1, "ledger_entries": 1}},
	})
	if n := c.count(t, `SELECT count(*) FROM ops_pos_connectors WHERE position(convert_to(?, 'UTF8') in key_sealed) > 0`, squareKey); n != 0 {
		t.Fatal("the signature key is stored in the clear")
	}
	list := c.do(t, "GET", "/api/v1/ops/pos/connectors", nil)
	if strings.Contains(string(list.Body), squareKey) || strings.Contains(string(list.Body), "key") && strings.Contains(string(list.Body), "sealed") {
		t.Fatalf("connector list shows the key: %s", list.Body)
	}
}

// 40 senders deliver 100 sales at once, each sale created then completed,
// 5% duplicates and 5% out of order: the ledger total is exact, and the
// chain verifies.
func TestPOSConcurrentDeliveriesExactLedger(t *testing.T) {
	e := startEnv(t, nil)
	c := newChain(t, e, "posrace")
	_, pos := c.connect(t)
	var deliveries []fakepos.Delivery
	want := 0
	for i := range 100 {
		p := fakepos.Payment{ID: fmt.Sprintf("P%d", i), Status: "APPROVED", Version: 1, AmountMoney: fakepos.Money{Amount: int64(100 + i), Currency: "EUR"}, LocationID: "L-BAR"}
		a := pos.PaymentEvent(p)
		p.Status, p.Version = "COMPLETED", 2
		b := pos.PaymentEvent(p)
		want += 100 + i
		if i%20 == 0 {
			deliveries = append(deliveries, b, a) // out of order
		} else {
			deliveries = append(deliveries, a, b)
		}
		if i%20 == 1 {
			deliveries = append(deliveries, b) // duplicate
		}
	}
	var wg sync.WaitGroup
	next := make(chan fakepos.Delivery)
	for range 40 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for d := range next {
				status, body, err := pos.Send(context.Background(), d)
				if err != nil || status != http.StatusOK {
					t.Errorf("deliver: %v %d %s", err, status, body)
				}
			}
		}()
	}
	for _, d := range deliveries {
		next <- d
	}
	close(next)
	wg.Wait()
	if got := c.ledgerSum(t); got != want {
		t.Fatalf("ledger %d, want %d", got, want)
	}
	if got := c.count(t, `SELECT count(*) FROM ledger_entries WHERE kind = 'pos.sale'`); got != 100 {
		t.Fatalf("%d ledger entries for 100 sales", got)
	}
	// The entries the deliveries' statements appended chain as Verify
	// recomputes them.
	if v, err := e.App.Ledger.Verify(context.Background(), c.t); err != nil || !v.OK || v.Entries != 100 {
		t.Fatalf("ledger verify: %+v %v", v, err)
	}
}

// A later version of a payment in another currency is refused
// (invalid_pos_event) and writes nothing: not the delivery, not the
// object, not the ledger.
func TestPOSCurrencyChangeRefused(t *testing.T) {
	e := startEnv(t, nil)
	c := newChain(t, e, "poscur")
	conn, pos := c.connect(t)
	p := fakepos.Payment{ID: "PC1", Status: "APPROVED", Version: 1, AmountMoney: fakepos.Money{Amount: 800, Currency: "EUR"}, LocationID: "L-BAR"}
	c.send(t, pos, pos.PaymentEvent(p))
	p.Status, p.Version, p.AmountMoney.Currency = "COMPLETED", 2, "USD"
	d := pos.PaymentEvent(p)
	none := map[string]int{"ops_pos_events": 0, "ops_pos_objects": 0, "ledger_entries": 0}
	apptest.RunScenarios(t, e.Env, []apptest.Scenario{
		{Name: "currency changed", Method: "POST", Path: "/api/v1/webhooks/pos/" + conn.ID.String(), Tenant: c.slug, Body: d.Body,
			Headers: map[string]string{"x-square-hmacsha256-signature": d.Signature}, Status: 400, Code: "invalid_pos_event", Changes: none},
	})
	if n := c.count(t, `SELECT count(*) FROM ops_pos_objects WHERE object_id = 'PC1' AND currency = 'EUR' AND version = 1`); n != 1 {
		t.Fatal("the kept payment changed")
	}
}

// Deliveries race with nothing between them but their own rows: 48 senders
// deliver 80 sales (created, then completed; every completion three times)
// and 16 refunds of them (pending, then completed; each twice), shuffled,
// while a reader verifies the chain over and over (sealing what has
// committed as the deliveries insert more). Each sale and refund reaches
// the ledger once, every redelivery is answered duplicate, the totals are
// exact and the chain verifies. Then a second burst with no reader: the
// sealer, poked after each commit, chains every entry within seconds, not
// at the minute's sweep.
func TestPOSRaceUnsealedEntriesSealedOnce(t *testing.T) {
	e := startEnv(t, nil)
	c := newChain(t, e, "posseal")
	_, pos := c.connect(t)
	ctx := context.Background()
	const sales, refunds, senders = 80, 16, 48
	var deliveries []fakepos.Delivery
	wantNet, redelivered := 0, 0
	for i := range sales {
		amount := 200 + 7*i
		p := fakepos.Payment{ID: fmt.Sprintf("S%d", i), Status: "APPROVED", Version: 1, AmountMoney: fakepos.Money{Amount: int64(amount), Currency: "EUR"}, LocationID: []string{"L-BAR", "L-MERCH"}[i%2]}
		created := pos.PaymentEvent(p)
		p.Status, p.Version = "COMPLETED", 2
		done := pos.PaymentEvent(p)
		deliveries = append(deliveries, created, done, done, done)
		redelivered += 2
		wantNet += amount
		if i < refunds {
			r := fakepos.Payment{ID: fmt.Sprintf("R%d", i), Status: "PENDING", Version: 1, AmountMoney: fakepos.Money{Amount: int64(amount / 2), Currency: "EUR"}, LocationID: p.LocationID, PaymentID: p.ID}
			pending := pos.RefundEvent(r)
			r.Status, r.Version = "COMPLETED", 2
			refunded := pos.RefundEvent(r)
			deliveries = append(deliveries, pending, pending, refunded, refunded)
			redelivered += 2
			wantNet -= amount / 2
		}
	}
	rand.Shuffle(len(deliveries), func(i, j int) { deliveries[i], deliveries[j] = deliveries[j], deliveries[i] })

	deliver := func(ds []fakepos.Delivery) map[string]int {
		var mu sync.Mutex
		outcomes := map[string]int{}
		var wg sync.WaitGroup
		next := make(chan fakepos.Delivery)
		for range senders {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for d := range next {
					status, body, err := pos.Send(ctx, d)
					if err != nil || status != http.StatusOK {
						t.Errorf("deliver: %v %d %s", err, status, body)
						continue
					}
					var r ops.WebhookResult
					if err := json.Unmarshal(body, &r); err != nil {
						t.Errorf("answer %s: %v", body, err)
						continue
					}
					mu.Lock()
					outcomes[r.Outcome]++
					if r.LedgerMinor != 0 {
						outcomes["ledger"]++
					}
					mu.Unlock()
				}
			}()
		}
		for _, d := range ds {
			next <- d
		}
		close(next)
		wg.Wait()
		return outcomes
	}

	stop := make(chan struct{})
	verified := make(chan error, 1)
	go func() {
		var err error
		for n := 0; ; n++ {
			select {
			case <-stop:
				if err == nil && n == 0 {
					err = fmt.Errorf("the reader never verified")
				}
				verified <- err
				return
			default:
			}
			v, verr := e.App.Ledger.Verify(ctx, c.t)
			if verr != nil || !v.OK {
				if err == nil {
					err = fmt.Errorf("verify during the burst: %+v %v", v, verr)
				}
			}
		}
	}()
	outcomes := deliver(deliveries)
	close(stop)
	if err := <-verified; err != nil {
		t.Fatal(err)
	}
	if outcomes["duplicate"] != redelivered || outcomes["ledger"] != sales+refunds {
		t.Fatalf("outcomes %v: want %d duplicates and %d deliveries that moved the ledger", outcomes, redelivered, sales+refunds)
	}
	if got := c.ledgerSum(t); got != wantNet {
		t.Fatalf("ledger %d, want %d", got, wantNet)
	}
	for _, kind := range []string{"pos.sale", "pos.refund"} {
		want := map[string]int{"pos.sale": sales, "pos.refund": refunds}[kind]
		if n := c.count(t, `SELECT count(DISTINCT reference) FROM ledger_entries WHERE kind = ?`, kind); n != want {
			t.Fatalf("%d %s references, want %d", n, kind, want)
		}
		if n := c.count(t, `SELECT count(*) FROM (SELECT reference FROM ledger_entries WHERE kind = ? GROUP BY reference HAVING count(*) > 1) x`, kind); n != 0 {
			t.Fatalf("%d %s references entered more than once", n, kind)
		}
	}
	if v, err := e.App.Ledger.Verify(ctx, c.t); err != nil || !v.OK || v.Entries != sales+refunds {
		t.Fatalf("ledger verify: %+v %v", v, err)
	}

	// No reader now: only the sealer's pokes chain the second burst.
	var more []fakepos.Delivery
	for i := range 40 {
		p := fakepos.Payment{ID: fmt.Sprintf("T%d", i), Status: "COMPLETED", Version: 1, AmountMoney: fakepos.Money{Amount: 100, Currency: "EUR"}, LocationID: "L-BAR"}
		more = append(more, pos.PaymentEvent(p))
	}
	if o := deliver(more); o["ledger"] != 40 {
		t.Fatalf("second burst: %v", o)
	}
	apptest.Eventually(t, 3*time.Second, "the sealer chained the second burst", func() bool {
		return c.count(t, `SELECT count(*) FROM ledger_entries WHERE seq IS NULL`) == 0
	})
	if n := c.count(t, `SELECT count(*) FROM ledger_entries WHERE seq IS NOT NULL`); n != sales+refunds+40 {
		t.Fatalf("%d entries sealed, want %d", n, sales+refunds+40)
	}
	if v, err := e.App.Ledger.Verify(ctx, c.t); err != nil || !v.OK || v.Entries != sales+refunds+40 {
		t.Fatalf("ledger verify after the second burst: %+v %v", v, err)
	}
}

// A delivery takes no ledger lock: with the chain's ledger lock held by
// another transaction (as the sealer holds it while it chains), a sale is
// still kept and answered, its entry inserted unsealed; once the lock goes,
// the sealer chains it and the chain verifies.
func TestPOSDeliveryTakesNoLedgerLock(t *testing.T) {
	e := startEnv(t, nil)
	c := newChain(t, e, "posnolock")
	_, pos := c.connect(t)
	ctx := context.Background()
	locked, release, done := make(chan struct{}), make(chan struct{}), make(chan error, 1)
	go func() {
		done <- e.App.Tx(ctx, c.t, func(tx *gorm.DB) error {
			if err := tx.Exec(`SELECT pg_advisory_xact_lock(hashtextextended(current_schema() || '.ledger', 0))`).Error; err != nil {
				close(locked)
				return err
			}
			close(locked)
			<-release
			return nil
		})
	}()
	<-locked
	sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	status, body, err := pos.Send(sctx, pos.PaymentEvent(fakepos.Payment{ID: "NL1", Status: "COMPLETED", Version: 1,
		AmountMoney: fakepos.Money{Amount: 4200, Currency: "EUR"}, LocationID: "L-BAR"}))
	if err != nil || status != http.StatusOK {
		close(release)
		t.Fatalf("a delivery under a held ledger lock: %v %d %s", err, status, body)
	}
	if n := c.count(t, `SELECT count(*) FROM ledger_entries WHERE seq IS NULL AND amount_minor = 4200 AND kind = 'pos.sale'`); n != 1 {
		close(release)
		t.Fatalf("%d unsealed entries for the sale while the lock is held, want 1", n)
	}
	close(release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	apptest.Eventually(t, 3*time.Second, "the sealer chained the sale", func() bool {
		return c.count(t, `SELECT count(*) FROM ledger_entries WHERE seq IS NULL`) == 0
	})
	if v, err := e.App.Ledger.Verify(ctx, c.t); err != nil || !v.OK || v.Entries != 1 {
		t.Fatalf("ledger verify: %+v %v", v, err)
	}
}
