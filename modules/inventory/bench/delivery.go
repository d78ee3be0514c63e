package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"gorm.io/gorm"

	"marquee/app"
	"marquee/internal/mailcatch"
	"marquee/modules/inventory"
	"marquee/tenants"
)

// DeliveryOptions tune `marquee bench delivery`.
type DeliveryOptions struct {
	Orders      int           // orders paid in the burst
	Concurrency int           // requests in flight while preparing and paying
	Replays     float64       // share of payment webhooks delivered twice
	Timeout     time.Duration // the mail must all arrive within it
	DBConns     int
}

// DeliveryDefaults are the figures: 3,000 orders in a burst.
func DeliveryDefaults() DeliveryOptions {
	return DeliveryOptions{Orders: 3000, Concurrency: 32, Replays: 0.1, Timeout: 10 * time.Minute, DBConns: 40}
}

// DeliveryReport is what a delivery run measured.
type DeliveryReport struct {
	Orders        int     `json:"orders"`
	PrepareSecs   float64 `json:"prepare_secs"`
	PaySecs       float64 `json:"pay_secs"`        // the burst of payment webhooks
	AllMailedSecs float64 `json:"all_mailed_secs"` // from the burst's start to the last mail received
	MailsPerS     float64 `json:"mails_per_s"`
	Received      int     `json:"received"`
	DistinctKeys  int     `json:"distinct_keys"`
	WithPDF       int     `json:"with_pdf"`
	SentInOutbox  int64   `json:"sent_in_outbox"`
	Duplicates    int     `json:"duplicates"`
	OK            bool    `json:"ok"`
}

type preparedOrder struct {
	order inventory.Order
}

// RunDelivery prepares Orders unpaid orders of one ticket each over HTTP,
// pays them all at once with signed webhooks (a share of them delivered
// twice), and waits for the catcher (the App's SMTP server) to receive one
// mail with a PDF per order.
func RunDelivery(ctx context.Context, a *app.App, base string, o DeliveryOptions, catcher *mailcatch.Server, out, progressOut io.Writer) (*DeliveryReport, error) {
	h := &Harness{a: a, base: base, out: out, log: progressOut, sem: make(chan struct{}, o.Concurrency), rec: NewRecorder(),
		o: Options{Concurrency: o.Concurrency, DBConns: o.DBConns, HoldMinutes: 30},
		client: &http.Client{Timeout: 60 * time.Second, Transport: &http.Transport{MaxIdleConns: o.Concurrency * 2,
			MaxIdleConnsPerHost: o.Concurrency * 2, MaxConnsPerHost: o.Concurrency * 2}}}
	if err := h.checkStripeMock(); err != nil {
		return nil, err
	}
	began := time.Now()
	slug := fmt.Sprintf("mail-%d", time.Now().UnixNano()%1e9)
	password := uuid.NewString()
	t, err := a.CreateTenant(ctx, slug, "Mail Bench", "owner@"+slug+".test", "Bench Owner", password)
	if err != nil {
		return nil, err
	}
	h.t, h.slug = t, slug
	defer h.retire(slug)
	var login struct{ Token string }
	res, err := h.call(ctx, "POST", slug, "/api/v1/auth/login", "", map[string]string{"email": "owner@" + slug + ".test", "password": password})
	if err != nil || res.status != http.StatusOK || json.Unmarshal(res.body, &login) != nil {
		return nil, fmt.Errorf("login: %v %s", err, res.body)
	}
	h.owner = login.Token
	event, floor, err := h.newEvent(ctx, "Mail Burst", 0, o.Orders, 0, 1)
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(out, "preparing %d unpaid orders of one ticket each over HTTP (%d in flight)\n", o.Orders, o.Concurrency)
	orders := make([]preparedOrder, o.Orders)
	if err := h.each(ctx, o.Orders, func(i int) error {
		ord, err := h.prepareOrder(ctx, event, floor, i)
		orders[i] = preparedOrder{order: ord}
		return err
	}); err != nil {
		return nil, err
	}
	rep := &DeliveryReport{Orders: o.Orders, PrepareSecs: time.Since(began).Seconds()}
	before := catcher.Count()

	fmt.Fprintf(out, "paying all %d at once: signed payment webhooks, %.0f%% of them delivered twice\n", o.Orders, o.Replays*100)
	burst := time.Now()
	replayEvery := 0
	if o.Replays > 0 {
		replayEvery = int(1 / o.Replays)
	}
	if err := h.each(ctx, o.Orders, func(i int) error {
		times := 1
		if replayEvery > 0 && i%replayEvery == 0 {
			times = 2
		}
		id := "evt_mail_" + strings.ReplaceAll(uuid.NewString(), "-", "")
		for range times {
			if err := h.pay(ctx, id, orders[i].order); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		return nil, err
	}
	rep.PaySecs = time.Since(burst).Seconds()
	fmt.Fprintf(out, "paid in %.1fs; waiting for the mail\n", rep.PaySecs)
	deadline := time.Now().Add(o.Timeout)
	bar := newProgress(progressOut, burst)
	var last time.Time
	for {
		n := catcher.Count() - before
		bar.draw(n, o.Orders, fmt.Sprintf("mailed %d/%d", n, o.Orders))
		if n >= o.Orders {
			last = time.Now()
			break
		}
		if time.Now().After(deadline) {
			break
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-catcher.Arrived():
		case <-time.After(200 * time.Millisecond):
		}
	}
	bar.finish()
	// Late duplicates, if any, would arrive now.
	time.Sleep(2 * time.Second)
	msgs := catcher.Messages()[before:]
	keys := map[string]int{}
	for _, m := range msgs {
		keys[m.Header.Get("X-Marquee-Key")]++
		for _, at := range m.Attachments {
			if at.ContentType == "application/pdf" && strings.HasPrefix(string(at.Data), "%PDF-") {
				rep.WithPDF++
				break
			}
		}
	}
	rep.Received, rep.DistinctKeys = len(msgs), len(keys)
	for _, n := range keys {
		rep.Duplicates += n - 1
	}
	if !last.IsZero() {
		rep.AllMailedSecs = last.Sub(burst).Seconds()
		rep.MailsPerS = float64(o.Orders) / rep.AllMailedSecs
	}
	err = a.TxWith(ctx, t, tenants.TxOptions{ReadOnly: true}, func(tx *gorm.DB) error {
		return tx.Raw(`SELECT count(*) FROM mail_outbox WHERE status = 'sent' AND kind = 'inventory.tickets'`).Scan(&rep.SentInOutbox).Error
	})
	rep.OK = err == nil && rep.Received == o.Orders && rep.DistinctKeys == o.Orders && rep.WithPDF == o.Orders && rep.Duplicates == 0 && rep.SentInOutbox == int64(o.Orders)
	fmt.Fprintf(out, "\n%d orders paid in a burst: all mailed with their PDF in %.1fs after the burst began (payments took %.1fs), %.1f mails/s\n",
		o.Orders, rep.AllMailedSecs, rep.PaySecs, rep.MailsPerS)
	fmt.Fprintf(out, "received %d mails, %d distinct purposes, %d with a PDF, %d duplicates; outbox: %d sent\n",
		rep.Received, rep.DistinctKeys, rep.WithPDF, rep.Duplicates, rep.SentInOutbox)
	if !rep.OK {
		return rep, fmt.Errorf("delivery check failed")
	}
	fmt.Fprintln(out, "check: every order mailed exactly once, with its PDF")
	return rep, err
}

// each runs fn for 0..n-1 with the harness's concurrency; the first error wins.
func (h *Harness) each(ctx context.Context, n int, fn func(i int) error) error {
	var wg sync.WaitGroup
	var first atomic.Value
	next := atomic.Int64{}
	for range cap(h.sem) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= n || first.Load() != nil || ctx.Err() != nil {
					return
				}
				if err := fn(i); err != nil {
					first.CompareAndSwap(nil, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	if err, ok := first.Load().(error); ok {
		return err
	}
	return ctx.Err()
}

// callShed is call, asking again while the server sheds the request (503:
// the tenant's in-flight bound; nothing ran, so the same idempotency key
// is safe).
func (h *Harness) callShed(ctx context.Context, method, slug, path, token string, body any, headers ...string) (response, error) {
	for attempt := 1; ; attempt++ {
		res, err := h.call(ctx, method, slug, path, token, body, headers...)
		if err != nil || res.status != http.StatusServiceUnavailable || attempt == 100 {
			return res, err
		}
		select {
		case <-ctx.Done():
			return res, ctx.Err()
		case <-time.After(time.Duration(min(attempt, 10)) * 50 * time.Millisecond):
		}
	}
}

func (h *Harness) prepareOrder(ctx context.Context, event, tier string, i int) (inventory.Order, error) {
	res, err := h.callShed(ctx, "POST", h.slug, "/api/v1/buyer-sessions", "", nil)
	if err != nil || res.status != http.StatusCreated {
		return inventory.Order{}, fmt.Errorf("buyer session: %v %s", err, res.body)
	}
	var sess struct {
		Token string `json:"buyer_token"`
	}
	_ = json.Unmarshal(res.body, &sess)
	buyer := []string{inventory.BuyerHeader, sess.Token}
	res, err = h.callShed(ctx, "POST", h.slug, "/api/v1/events/"+event+"/holds", "", map[string]any{"tier_id": tier, "quantity": 1},
		append(buyer, "Idempotency-Key", uuid.NewString())...)
	if err != nil || res.status != http.StatusCreated {
		return inventory.Order{}, fmt.Errorf("hold: %v %d %s", err, res.status, res.body)
	}
	var hold inventory.Hold
	_ = json.Unmarshal(res.body, &hold)
	res, err = h.callShed(ctx, "POST", h.slug, "/api/v1/orders", "", map[string]any{"hold_id": hold.ID,
		"buyer": map[string]string{"email": fmt.Sprintf("fan-%d@bench.test", i), "name": "Bench Fan"}}, append(buyer, "Idempotency-Key", uuid.NewString())...)
	if err != nil || res.status != http.StatusCreated {
		return inventory.Order{}, fmt.Errorf("order: %v %d %s", err, res.status, res.body)
	}
	var o inventory.Order
	if err := json.Unmarshal(res.body, &o); err != nil || o.PaymentIntentID == nil {
		return inventory.Order{}, fmt.Errorf("order without payment intent: %s", res.body)
	}
	return o, nil
}

func (h *Harness) pay(ctx context.Context, eventID string, o inventory.Order) error {
	payload, sig, err := inventory.TestWebhookEvent(h.a.Config.StripeWebhookSecret, eventID,
		"payment_intent.succeeded", *o.PaymentIntentID, o.AmountMinor, o.Currency, h.slug, o.ID)
	if err != nil {
		return err
	}
	res, err := h.callShed(ctx, "POST", "", inventory.PlatformWebhookPath, "", payload, "Stripe-Signature", sig)
	if err != nil || res.status != http.StatusOK {
		return fmt.Errorf("pay: %v %d %s", err, res.status, res.body)
	}
	return nil
}
