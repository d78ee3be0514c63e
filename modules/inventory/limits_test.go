package inventory_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/google/uuid"

	"marquee/modules/inventory"
)

func setLimits(t *testing.T, s *shop, change map[string]any) inventory.LimitSettings {
	t.Helper()
	body := map[string]any{"enabled": true, "max_tickets_per_email": 8, "max_tickets_per_ip": 24, "declines_to_challenge": 2,
		"declines_to_block": 3, "min_checkout_seconds": 4, "ip_holds_per_minute": 60, "ip_orders_per_minute": 20}
	for k, v := range change {
		body[k] = v
	}
	res := s.do(t, http.MethodPut, "/api/v1/limits", body)
	mustStatus(t, res, http.StatusOK)
	var out inventory.LimitSettings
	res.JSON(t, &out)
	return out
}

// checkout holds one GA ticket and orders it, as one buyer from one address.
func checkout(t *testing.T, s *shop, ev, tier, buyerTok, email, ip string) (inventory.Order, int, string) {
	t.Helper()
	res, err := s.hold(ev, buyerTok, map[string]any{"tier_id": tier, "quantity": 1}, "X-Forwarded-For", ip)
	if err != nil {
		t.Fatal(err)
	}
	mustStatus(t, res, http.StatusCreated)
	var h inventory.Hold
	res.JSON(t, &h)
	res = s.env.Do(t, http.MethodPost, s.slug, "/api/v1/orders", "", map[string]any{"hold_id": h.ID, "buyer": map[string]string{"email": email, "name": "Card Tester"}},
		"Idempotency-Key", uuid.NewString(), "X-Buyer-Token", buyerTok, "X-Forwarded-For", ip)
	var o inventory.Order
	var problem struct{ Code string }
	if res.Status == http.StatusCreated {
		res.JSON(t, &o)
	} else {
		res.JSON(t, &problem)
	}
	return o, res.Status, problem.Code
}

// Card testing: three declined payments in an hour from one buyer, and the
// fourth try is blocked before it reaches the card network; the block is
// recorded with its reasons.
func TestCardTestingBlocksTheFourthDecline(t *testing.T) {
	t.Parallel()
	s, ev, cfg := onSale(t, "cardtest", "Card Night", simpleSetup(1, 10, 100, nil))
	floor := tierID(t, cfg, "Floor")
	setLimits(t, s, map[string]any{"declines_to_challenge": 3, "declines_to_block": 3, "min_checkout_seconds": 0})
	buyer := s.buyer(t)
	for i := 1; i <= 3; i++ {
		o, status, code := checkout(t, s, ev, floor, buyer, "tester@example.com", "203.0.113.7")
		if status != http.StatusCreated {
			t.Fatalf("attempt %d refused: %d %s", i, status, code)
		}
		mustStatus(t, s.webhook(t, "evt_decline_"+o.ID.String(), "payment_intent.payment_failed", o), http.StatusOK)
	}
	_, status, code := checkout(t, s, ev, floor, buyer, "tester@example.com", "203.0.113.7")
	if status != http.StatusForbidden || code != "risk_blocked" {
		t.Fatalf("fourth attempt: %d %s, want 403 risk_blocked", status, code)
	}
	// Another token, same address: still the card tester.
	_, status, code = checkout(t, s, ev, floor, s.buyer(t), "other@example.com", "203.0.113.7")
	if status != http.StatusForbidden || code != "risk_blocked" {
		t.Fatalf("same address, new token: %d %s", status, code)
	}
	// Somebody else is not affected.
	if _, status, code = checkout(t, s, ev, floor, s.buyer(t), "fan2@example.com", "198.51.100.4"); status != http.StatusCreated {
		t.Fatalf("an honest buyer: %d %s", status, code)
	}
	res := s.do(t, http.MethodGet, "/api/v1/risk/decisions", nil)
	mustStatus(t, res, http.StatusOK)
	var list struct{ Items []inventory.RiskDecision }
	res.JSON(t, &list)
	if len(list.Items) != 2 || list.Items[0].Action != "block" || list.Items[0].Reasons[0].Rule != "card_testing" || list.Items[0].ClientIP != "203.0.113.7" {
		t.Fatalf("decisions: %+v", list.Items)
	}
}

// Tickets per e-mail across orders, the per-IP hold rate (redis_rate), and
// fast checkouts sent to the review queue that box office works through.
func TestLimitsPerEmailRateAndReviewQueue(t *testing.T) {
	// Serial: a per-minute rate and checkouts faster than 4 s: latency bounds.
	s, ev, cfg := onSale(t, "hoard", "Hoard Night", simpleSetup(1, 10, 100, nil))
	floor := tierID(t, cfg, "Floor")
	setLimits(t, s, map[string]any{"max_tickets_per_email": 2, "ip_holds_per_minute": 4})
	for i := range 2 {
		if _, status, code := checkout(t, s, ev, floor, s.buyer(t), "hoarder@example.com", "192.0.2."+string(rune('1'+i))); status != http.StatusCreated {
			t.Fatalf("order %d: %d %s", i, status, code)
		}
	}
	if _, status, code := checkout(t, s, ev, floor, s.buyer(t), "HOARDER@example.com", "192.0.2.9"); status != http.StatusForbidden || code != "risk_blocked" {
		t.Fatalf("third ticket for one e-mail: %d %s", status, code)
	}
	// Four holds a minute from one address, the fifth waits.
	b := s.buyer(t)
	for i := range 5 {
		res, err := s.hold(ev, s.buyer(t), map[string]any{"tier_id": floor, "quantity": 1}, "X-Forwarded-For", "192.0.2.200")
		if err != nil {
			t.Fatal(err)
		}
		want := http.StatusCreated
		if i == 4 {
			want = http.StatusTooManyRequests
		}
		if res.Status != want || (want == http.StatusTooManyRequests && res.Header.Get("Retry-After") == "") {
			t.Fatalf("hold %d from one address: %d %s", i+1, res.Status, res.Body)
		}
	}
	_ = b
	// The quick checkouts above wait for review; box office approves one.
	res := s.do(t, http.MethodGet, "/api/v1/risk/decisions", nil)
	mustStatus(t, res, http.StatusOK)
	var list struct{ Items []inventory.RiskDecision }
	res.JSON(t, &list)
	if len(list.Items) < 3 || list.Items[0].Action != "review" || list.Items[0].Reasons[0].Rule != "fast_checkout" {
		t.Fatalf("queue: %+v", list.Items)
	}
	path := "/api/v1/risk/decisions/" + list.Items[0].ID.String() + "/review"
	mustStatus(t, s.do(t, http.MethodPost, path, map[string]string{"outcome": "maybe"}), http.StatusBadRequest)
	mustStatus(t, s.do(t, http.MethodPost, path, map[string]string{"outcome": "approved"}), http.StatusOK)
	mustStatus(t, s.do(t, http.MethodPost, path, map[string]string{"outcome": "rejected"}), http.StatusConflict)
	mustStatus(t, s.do(t, http.MethodPut, "/api/v1/limits", map[string]any{"enabled": true, "max_tickets_per_email": 0}), http.StatusBadRequest)
	res = s.do(t, http.MethodGet, "/portal/inventory-review", nil)
	mustStatus(t, res, http.StatusOK)
}

// Tickets per payment card: six buyers with six e-mails and six addresses
// pay at the same instant with one card (Stripe's test card: its
// fingerprint comes from stripe-mock), the limit per card is two. Exactly
// two payments become tickets; the other four are refunded, their holds
// released, and each refusal is recorded with its reason.
func TestTicketsPerCardAcrossEmailsAndAddresses(t *testing.T) {
	t.Parallel()
	s, ev, cfg := onSale(t, "cardlimit", "Card Limit Night", simpleSetup(1, 10, 100, nil))
	floor := tierID(t, cfg, "Floor")
	setLimits(t, s, map[string]any{"max_tickets_per_card": 2, "min_checkout_seconds": 0})
	orders := make([]inventory.Order, 6)
	for i := range orders {
		o, status, code := checkout(t, s, ev, floor, s.buyer(t), fmt.Sprintf("fan%d@example.com", i), fmt.Sprintf("198.51.100.%d", 10+i))
		if status != http.StatusCreated {
			t.Fatalf("order %d: %d %s", i, status, code)
		}
		orders[i] = o
	}
	outcomes := make([]string, len(orders))
	var wg sync.WaitGroup
	for i, o := range orders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res, err := s.tryWebhook("evt_card_"+o.ID.String(), "payment_intent.succeeded", o)
			if err != nil || res.Status != http.StatusOK {
				outcomes[i] = fmt.Sprintf("error %v %d %s", err, res.Status, res.Body)
				return
			}
			var out struct{ Outcome string }
			res.JSON(t, &out)
			outcomes[i] = out.Outcome
		}()
	}
	wg.Wait()
	count := map[string]int{}
	for _, o := range outcomes {
		count[o]++
	}
	if count["paid"] != 2 || count["refunded"] != 4 {
		t.Fatalf("outcomes %v, want 2 paid and 4 refunded", outcomes)
	}
	if n := s.count(t, `SELECT count(*) FROM inv_orders WHERE event_id = ? AND status = 'paid' AND card_fingerprint IS NOT NULL`, ev); n != 2 {
		t.Fatalf("%d paid orders carry the card, want 2", n)
	}
	if n := s.count(t, `SELECT count(*) FROM inv_tickets t JOIN inv_orders o ON o.id = t.order_id WHERE o.event_id = ?`, ev); n != 2 {
		t.Fatalf("%d tickets issued, want 2", n)
	}
	if n := s.count(t, `SELECT count(*) FROM inv_holds WHERE event_id = ? AND status = 'active'`, ev); n != 0 {
		t.Fatalf("%d holds of refused payments still active", n)
	}
	if n := s.count(t, `SELECT count(*) FROM inv_refunds r JOIN inv_orders o ON o.id = r.order_id WHERE o.event_id = ?`, ev); n != 4 {
		t.Fatalf("%d refunds recorded, want 4", n)
	}
	res := s.do(t, http.MethodGet, "/api/v1/risk/decisions", nil)
	mustStatus(t, res, http.StatusOK)
	var list struct{ Items []inventory.RiskDecision }
	res.JSON(t, &list)
	blocks := 0
	for _, d := range list.Items {
		if d.Action == "block" && len(d.Reasons) == 1 && d.Reasons[0].Rule == "tickets_per_card" {
			blocks++
		}
	}
	if blocks != 4 {
		t.Fatalf("%d card blocks recorded, want 4: %+v", blocks, list.Items)
	}
	// A replay of a refused payment's event changes nothing.
	var out struct{ Outcome string }
	res = s.webhook(t, "evt_card_"+orders[0].ID.String(), "payment_intent.succeeded", orders[0])
	res.JSON(t, &out)
	if out.Outcome != "duplicate" {
		t.Fatalf("replay: %s", out.Outcome)
	}
}

// device mints a buyer session and returns its buyer and device tokens
// (from an address of its own: an address is given a few devices a minute).
func (s *shop) device(t *testing.T) (buyerTok, deviceTok string) {
	t.Helper()
	res := s.env.Do(t, http.MethodPost, s.slug, "/api/v1/buyer-sessions", "", nil, "X-Forwarded-For", fmt.Sprintf("100.64.%d.%d", deviceSeq.Add(1)/250, deviceSeq.Load()%250+1))
	mustStatus(t, res, http.StatusCreated)
	var b inventory.BuyerSession
	res.JSON(t, &b)
	if b.DeviceToken == "" {
		t.Fatal("no device token minted")
	}
	return b.BuyerToken, b.DeviceToken
}

var deviceSeq atomic.Int64

// checkoutOn is checkout from a device (X-Device-Id) with an optional
// CAPTCHA answer; it returns the order, the status and the problem.
func checkoutOn(t *testing.T, s *shop, ev, tier, buyerTok, deviceTok, email, ip string, captcha map[string]string) (inventory.Order, int, riskProblem) {
	t.Helper()
	res, err := s.hold(ev, buyerTok, map[string]any{"tier_id": tier, "quantity": 1}, "X-Forwarded-For", ip, "X-Device-Id", deviceTok)
	if err != nil {
		t.Fatal(err)
	}
	mustStatus(t, res, http.StatusCreated)
	var h inventory.Hold
	res.JSON(t, &h)
	return orderOn(t, s, h.ID, buyerTok, deviceTok, email, ip, captcha)
}

type riskProblem struct {
	Code    string
	Reasons []struct{ Rule string }
	Captcha *inventory.CaptchaChallenge
}

func orderOn(t *testing.T, s *shop, hold uuid.UUID, buyerTok, deviceTok, email, ip string, captcha map[string]string) (inventory.Order, int, riskProblem) {
	t.Helper()
	body := map[string]any{"hold_id": hold, "buyer": map[string]string{"email": email, "name": "Device Buyer"}}
	if captcha != nil {
		body["captcha"] = captcha
	}
	res := s.env.Do(t, http.MethodPost, s.slug, "/api/v1/orders", "", body,
		"Idempotency-Key", uuid.NewString(), "X-Buyer-Token", buyerTok, "X-Forwarded-For", ip, "X-Device-Id", deviceTok)
	var o inventory.Order
	var p riskProblem
	if res.Status == http.StatusCreated {
		res.JSON(t, &o)
	} else {
		res.JSON(t, &p)
	}
	return o, res.Status, p
}

// One device, a new buyer token, e-mail and address for every order: the
// per-device ticket limit sees through it and blocks the third ticket, the
// decision names the device; the device's hold rate counts across
// addresses; another device on the same address is not affected.
func TestBuyerRotatingEmailsOnOneDeviceIsLimited(t *testing.T) {
	// Serial: a per-minute hold rate: a latency bound.
	s, ev, cfg := onSale(t, "device", "Device Night", simpleSetup(1, 10, 100, nil))
	floor := tierID(t, cfg, "Floor")
	setLimits(t, s, map[string]any{"max_tickets_per_device": 2, "min_checkout_seconds": 0, "ip_holds_per_minute": 4})
	_, dev := s.device(t)
	for i := range 2 {
		if _, status, p := checkoutOn(t, s, ev, floor, s.buyer(t), dev, fmt.Sprintf("rotate%d@example.com", i), fmt.Sprintf("192.0.2.%d", 10+i), nil); status != http.StatusCreated {
			t.Fatalf("order %d: %d %s", i, status, p.Code)
		}
	}
	_, status, p := checkoutOn(t, s, ev, floor, s.buyer(t), dev, "rotate9@example.com", "192.0.2.99", nil)
	if status != http.StatusForbidden || p.Code != "risk_blocked" || len(p.Reasons) != 1 || p.Reasons[0].Rule != "tickets_per_device" {
		t.Fatalf("third ticket from one device: %d %+v", status, p)
	}
	deviceID, _, _ := strings.Cut(dev, ".")
	if n := s.count(t, `SELECT count(*) FROM inv_holds WHERE event_id = ? AND device_id = ?`, ev, deviceID); n != 3 {
		t.Fatalf("%d holds carry the device, want 3", n)
	}
	if n := s.count(t, `SELECT count(*) FROM inv_risk_decisions WHERE device_id = ? AND action = 'block'`, deviceID); n != 1 {
		t.Fatalf("%d blocks recorded for the device, want 1", n)
	}
	// Three holds were counted against the device's rate (four a minute),
	// each from another address: the fourth passes, the fifth waits.
	for i, want := range []int{http.StatusCreated, http.StatusTooManyRequests} {
		res, err := s.hold(ev, s.buyer(t), map[string]any{"tier_id": floor, "quantity": 1}, "X-Forwarded-For", fmt.Sprintf("198.51.100.%d", 50+i), "X-Device-Id", dev)
		if err != nil {
			t.Fatal(err)
		}
		if res.Status != want {
			t.Fatalf("hold %d of the device: %d %s", 4+i, res.Status, res.Body)
		}
	}
	// Another device at the last address is a buyer of its own.
	_, other := s.device(t)
	if _, status, p := checkoutOn(t, s, ev, floor, s.buyer(t), other, "someone@example.com", "192.0.2.99", nil); status != http.StatusCreated {
		t.Fatalf("another device: %d %s", status, p.Code)
	}
}

// A device's active holds are capped per event (the event's max_ip_holds
// applies to the device in place of the address); holds of 24 goroutines
// racing from one device on 24 addresses leave exactly the cap active.
func TestDeviceHoldCapUnderRace(t *testing.T) {
	t.Parallel()
	setup := simpleSetup(1, 100, 100, nil)
	setup["max_ip_holds"] = 3
	s, ev, cfg := onSale(t, "devcap", "Device Cap Night", setup)
	floor := tierID(t, cfg, "Floor")
	setLimits(t, s, map[string]any{"ip_holds_per_minute": 1000})
	_, dev := s.device(t)
	buyers := make([]string, 24)
	for i := range buyers {
		buyers[i] = s.buyer(t)
	}
	var wg sync.WaitGroup
	statuses := make([]int, len(buyers))
	for i := range buyers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res, err := s.hold(ev, buyers[i], map[string]any{"tier_id": floor, "quantity": 1}, "X-Forwarded-For", fmt.Sprintf("203.0.113.%d", i+1), "X-Device-Id", dev)
			if err == nil {
				statuses[i] = res.Status
			}
		}()
	}
	wg.Wait()
	created := 0
	for _, st := range statuses {
		switch st {
		case http.StatusCreated:
			created++
		case http.StatusTooManyRequests:
		default:
			t.Fatalf("statuses %v", statuses)
		}
	}
	deviceID, _, _ := strings.Cut(dev, ".")
	active := s.count(t, `SELECT count(*) FROM inv_holds WHERE event_id = ? AND device_id = ? AND status = 'active'`, ev, deviceID)
	if created != 3 || active != 3 {
		t.Fatalf("%d holds granted, %d active, want 3 and 3 (%v)", created, active, statuses)
	}
	if n := s.count(t, `SELECT holds FROM inv_buyer_counters WHERE event_id = ? AND subject = ?`, ev, "dev:"+deviceID); n != 3 {
		t.Fatalf("device counter %d, want 3", n)
	}
}

// A device id the chain did not sign is refused in the header (nothing is
// held) and ignored in a cookie (the hold counts by address).
func TestForgedDeviceIDIsRefused(t *testing.T) {
	// Serial: review needs a checkout faster than 4 s: a latency bound.
	s, ev, cfg := onSale(t, "forged", "Forged Night", simpleSetup(1, 10, 100, nil))
	floor := tierID(t, cfg, "Floor")
	setLimits(t, s, nil)
	_, dev := s.device(t)
	id, sig, _ := strings.Cut(dev, ".")
	forged := []string{"mydevice", id + ".AAAA" + sig[4:], strings.Repeat("A", 22) + "." + sig, id + "."}
	for _, f := range forged {
		res, err := s.hold(ev, s.buyer(t), map[string]any{"tier_id": floor, "quantity": 1}, "X-Device-Id", f)
		if err != nil {
			t.Fatal(err)
		}
		if res.Status != http.StatusBadRequest || !strings.Contains(string(res.Body), "invalid_device_token") {
			t.Fatalf("forged %q: %d %s", f, res.Status, res.Body)
		}
	}
	if n := s.count(t, `SELECT count(*) FROM inv_holds WHERE event_id = ?`, ev); n != 0 {
		t.Fatalf("%d holds made with forged device ids", n)
	}
	res, err := s.hold(ev, s.buyer(t), map[string]any{"tier_id": floor, "quantity": 1}, "Cookie", inventory.DeviceCookie+"="+id+".forged")
	if err != nil {
		t.Fatal(err)
	}
	mustStatus(t, res, http.StatusCreated)
	if n := s.count(t, `SELECT count(*) FROM inv_holds WHERE event_id = ? AND device_id = ''`, ev); n != 1 {
		t.Fatalf("the forged cookie was taken: %d holds without a device", n)
	}
}

// captchaAnswer reads a challenge's digits where the server keeps them (a
// person reads them off the image).
func captchaAnswer(t *testing.T, s *shop, id string) string {
	t.Helper()
	raw, err := s.env.App.Redis.Get(context.Background(), s.env.App.RedisKey("captcha", s.slug, id)).Bytes()
	if err != nil {
		t.Fatalf("captcha %s: %v", id, err)
	}
	var st struct{ Digits string }
	if err := json.Unmarshal(raw, &st); err != nil {
		t.Fatal(err)
	}
	return st.Digits
}

// Two declines from one device ask for a CAPTCHA; a wrong answer, an
// answer of another buyer's check and a replayed answer are refused, each
// with a new check; the right answer lets the order through to review.
func TestChallengeIsMetByACaptcha(t *testing.T) {
	t.Parallel()
	s, ev, cfg := onSale(t, "captcha", "Captcha Night", simpleSetup(1, 10, 100, nil))
	floor := tierID(t, cfg, "Floor")
	setLimits(t, s, map[string]any{"declines_to_challenge": 2, "declines_to_block": 5, "min_checkout_seconds": 0})
	buyer, dev := s.device(t)
	for i := range 2 {
		o, status, p := checkoutOn(t, s, ev, floor, buyer, dev, "payer@example.com", "192.0.2.1", nil)
		if status != http.StatusCreated {
			t.Fatalf("attempt %d: %d %s", i, status, p.Code)
		}
		mustStatus(t, s.webhook(t, "evt_cap_"+o.ID.String(), "payment_intent.payment_failed", o), http.StatusOK)
	}
	res, err := s.hold(ev, buyer, map[string]any{"tier_id": floor, "quantity": 1}, "X-Device-Id", dev)
	if err != nil {
		t.Fatal(err)
	}
	mustStatus(t, res, http.StatusCreated)
	var h inventory.Hold
	res.JSON(t, &h)
	_, status, p := orderOn(t, s, h.ID, buyer, dev, "payer@example.com", "192.0.2.1", nil)
	if status != http.StatusForbidden || p.Code != "challenge_required" || p.Captcha == nil || !strings.HasPrefix(p.Captcha.Image, "data:image/png;base64,") {
		t.Fatalf("third try: %d %+v", status, p)
	}
	first := p.Captcha.ID
	right := captchaAnswer(t, s, first)
	wrong := fmt.Sprintf("%06d", (mustAtoi(t, right)+1)%1000000)
	_, status, p = orderOn(t, s, h.ID, buyer, dev, "payer@example.com", "192.0.2.1", map[string]string{"id": first, "answer": wrong})
	if status != http.StatusForbidden || p.Code != "captcha_invalid" || p.Captcha == nil {
		t.Fatalf("wrong answer: %d %+v", status, p)
	}
	// One try per image: the right answer to the image answered wrong is stale.
	_, status, p = orderOn(t, s, h.ID, buyer, dev, "payer@example.com", "192.0.2.1", map[string]string{"id": first, "answer": right})
	if status != http.StatusForbidden || p.Code != "captcha_replayed" {
		t.Fatalf("second try of one image: %d %+v", status, p)
	}
	// Another buyer (and device) cannot use this buyer's check.
	next := p.Captcha.ID
	otherBuyer, otherDev := s.device(t)
	oh := s.mustHold(t, ev, otherBuyer, map[string]any{"tier_id": floor, "quantity": 1})
	_, status, p = orderOn(t, s, oh.ID, otherBuyer, otherDev, "else@example.com", "192.0.2.2", map[string]string{"id": next, "answer": captchaAnswer(t, s, next)})
	if status != http.StatusForbidden || p.Code != "captcha_invalid" {
		t.Fatalf("someone else's check: %d %+v", status, p)
	}
	_, status, p = orderOn(t, s, h.ID, buyer, dev, "payer@example.com", "192.0.2.1", map[string]string{"id": strings.Repeat("x", 22), "answer": "123456"})
	if status != http.StatusForbidden || p.Code != "captcha_expired" {
		t.Fatalf("unknown check: %d %+v", status, p)
	}
	fresh := p.Captcha.ID
	solution := map[string]string{"id": fresh, "answer": captchaAnswer(t, s, fresh)}
	o, status, p := orderOn(t, s, h.ID, buyer, dev, "payer@example.com", "192.0.2.1", solution)
	if status != http.StatusCreated || o.ID == uuid.Nil {
		t.Fatalf("right answer: %d %+v", status, p)
	}
	deviceID, _, _ := strings.Cut(dev, ".")
	if n := s.count(t, `SELECT count(*) FROM inv_risk_decisions WHERE hold_id = ? AND action = 'review' AND device_id = ? AND reasons::text LIKE '%captcha_solved%'`, h.ID, deviceID); n != 1 {
		t.Fatalf("%d reviews recorded for the solved challenge, want 1", n)
	}
	// The answer is spent: a second order with it is refused.
	h2 := s.mustHold(t, ev, s.buyer(t), map[string]any{"tier_id": floor, "quantity": 1})
	if _, status, p = orderOn(t, s, h2.ID, buyer, dev, "payer@example.com", "192.0.2.1", solution); status != http.StatusForbidden || p.Code != "captcha_replayed" {
		t.Fatalf("replayed answer: %d %+v", status, p)
	}
	// Malformed answers are refused before anything is looked up.
	res = s.env.Do(t, http.MethodPost, s.slug, "/api/v1/orders", "", map[string]any{"hold_id": h2.ID, "buyer": map[string]string{"email": "a@example.com", "name": "A"},
		"captcha": map[string]any{"id": 7}}, "Idempotency-Key", uuid.NewString(), "X-Buyer-Token", buyer)
	mustStatus(t, res, http.StatusBadRequest)
}

func mustAtoi(t *testing.T, s string) int {
	t.Helper()
	n, err := strconv.Atoi(s)
	if err != nil {
		t.Fatal(err)
	}
	return n
}
