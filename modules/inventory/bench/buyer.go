package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"

	"marquee/modules/inventory"
)

// buyer plays one virtual buyer from arrival to tickets (or not), and
// returns how it ended.
func (h *Harness) buyer(ctx context.Context, n int) string {
	if sleep(ctx, time.Duration(rand.Int64N(int64(h.o.Arrival)+1))) {
		return "timed_out"
	}
	res, _, err := h.retrying(ctx, "session", func() (response, error) {
		return h.queueCall(ctx, "POST", "/api/v1/buyer-sessions")
	})
	if err != nil || res.status != http.StatusCreated {
		return h.failed("session", res, err)
	}
	h.rec.Observe("session", res.sent)
	var sess struct {
		Token string `json:"buyer_token"`
	}
	_ = json.Unmarshal(res.body, &sess)
	buyer := []string{inventory.BuyerHeader, sess.Token}

	// Waiting room: join, then poll at a pace set by the estimated wait.
	joined := time.Now()
	var st struct {
		Status      string `json:"status"`
		QueueToken  string `json:"queue_token"`
		AccessToken string `json:"access_token"`
		Wait        int64  `json:"estimated_wait_seconds"`
		PollAfter   int64  `json:"poll_after_seconds"`
	}
	for {
		res, err = h.queueCall(ctx, "POST", "/api/v1/events/"+h.event+"/queue", buyer...)
		if err == nil && res.status == http.StatusOK {
			break
		}
		// A connection that failed is tried again after a while, as the
		// waiting page does; giving up would leave a place in the queue
		// that is admitted later and then holds a shopping slot idle.
		if err != nil && ctx.Err() == nil {
			h.rec.Fail("join", "transport")
			if sleep(ctx, pageRetry()) {
				return "timed_out"
			}
			continue
		}
		if err != nil || !retryable(res) || sleep(ctx, retryAfter(res)) {
			return h.failed("join", res, err)
		}
	}
	h.rec.Observe("join", res.sent)
	_ = json.Unmarshal(res.body, &st)
	h.arr.joined(n, res.sent, time.Now(), st.QueueToken)
	for st.Status == "queued" {
		if h.soldOut.Load() {
			return "sold_out_in_queue"
		}
		// As the waiting page does: at the front (asked back within a
		// second) ask at once with ?wait=, answered the moment the room lets
		// this buyer in; further back ask again when the room says to,
		// jittered.
		path, step := "/api/v1/events/"+h.event+"/queue/"+st.QueueToken, "poll"
		if st.PollAfter <= 1 && h.o.LongPoll {
			path, step = path+"?wait=20", "wait"
		} else {
			wait := time.Duration(max(st.PollAfter, 1))*time.Second + time.Duration(rand.Int64N(int64(500*time.Millisecond)))
			if sleep(ctx, wait) {
				return "timed_out"
			}
		}
		if step == "wait" {
			// An idle open request, as a browser's: not one of the
			// Concurrency slots of requests that make the server work.
			res, err = h.waitCall(ctx, path, buyer...)
		} else {
			res, err = h.queueCall(ctx, "GET", path, buyer...)
		}
		switch {
		case err != nil && ctx.Err() == nil:
			h.rec.Fail("poll", "transport") // the page polls again a little later
			if sleep(ctx, pageRetry()) {
				return "timed_out"
			}
		case err != nil:
			return h.failed("poll", res, err)
		case res.status == http.StatusOK:
			h.rec.Observe(step, res.sent)
			_ = json.Unmarshal(res.body, &st)
		case retryable(res):
		default:
			return h.failed("poll", res, nil)
		}
	}
	h.rec.Observe("admitted", joined) // time spent in the queue
	access := append(buyer, inventory.QueueHeader, st.AccessToken)
	if h.o.ClientLeave {
		defer h.leave(ctx, st.AccessToken)
	}

	// Hold: a few seats side by side, or GA tickets; other seats on refusal.
	var hold inventory.Hold
	var seats []int
	var ga int
	held := false
	for attempt := 0; attempt < 4 && !held; attempt++ {
		seats, ga = h.pickCart()
		if seats == nil && ga == 0 {
			return "sold_out"
		}
		body := map[string]any{}
		if seats != nil {
			ids := make([]string, len(seats))
			for i, s := range seats {
				ids[i] = seatID(s)
			}
			body["seats"] = ids
		} else {
			body["tier_id"], body["quantity"] = h.floorTier, ga
		}
		// Sent again with the same key when the connection fails: the hold
		// may exist with its answer lost, and the key returns it.
		key := uuid.NewString()
		res, _, err = h.resend(ctx, "hold", func() (response, error) {
			return h.call(ctx, "POST", h.slug, "/api/v1/events/"+h.event+"/holds", "", body, append(access, "Idempotency-Key", key)...)
		})
		switch {
		case err != nil:
			h.release(seats, ga)
			return h.failed("hold", res, err)
		case res.status == http.StatusCreated:
			h.rec.Observe("hold", res.sent)
			_ = json.Unmarshal(res.body, &hold)
			held = true
		case res.status == http.StatusConflict:
			h.rec.Fail("hold", "409 "+res.code())
			h.refused(seats, ga, res)
		case retryable(res):
			h.rec.Fail("hold", strconv.Itoa(res.status))
			h.release(seats, ga)
			if sleep(ctx, retryAfter(res)) {
				return "timed_out"
			}
		default:
			h.release(seats, ga)
			return h.failed("hold", res, nil)
		}
	}
	if !held {
		return "no_hold"
	}
	switch r := rand.Float64(); {
	case r < h.o.Abandon:
		res, _, err = h.resend(ctx, "release", func() (response, error) {
			return h.call(ctx, "DELETE", h.slug, "/api/v1/holds/"+hold.ID.String(), "", nil, buyer...)
		})
		if err == nil && res.status == http.StatusNoContent {
			h.release(seats, ga)
		}
		return "abandoned"
	case r < h.o.Abandon+h.o.WalkAway:
		// The hold lapses; its seats come back to sale when it expires (the
		// harness does not offer them again).
		return "walked_away"
	}
	if h.o.Think > 0 && sleep(ctx, h.o.Think) {
		return "timed_out"
	}

	// Order, then the payment provider's signed webhook.
	var order inventory.Order
	h.acct.ordered.Store(n, int64(len(seats)+ga))
	res, lost, err := h.retrying(ctx, "order", func() (response, error) {
		return h.call(ctx, "POST", h.slug, "/api/v1/orders", "", map[string]any{"hold_id": hold.ID,
			"buyer": map[string]string{"email": fmt.Sprintf("buyer%d@bench.test", n), "name": fmt.Sprintf("Buyer %d", n)}},
			append(buyer, "Idempotency-Key", "order-"+hold.ID.String())...)
	})
	if err != nil || res.status != http.StatusCreated {
		return h.failed("order", res, err)
	}
	h.rec.Observe("order", res.sent)
	if lost > 0 && res.header.Get("Idempotent-Replayed") == "true" {
		h.acct.lostRecovered.Add(1) // the order was made; its first answer was lost
	}
	if err := json.Unmarshal(res.body, &order); err != nil || order.PaymentIntentID == nil {
		return h.failed("order", res, fmt.Errorf("order without payment intent: %s", res.body))
	}
	payload, sig, err := inventory.TestWebhookEvent(h.a.Config.StripeWebhookSecret, "evt_bench_"+strings.ReplaceAll(uuid.NewString(), "-", ""),
		"payment_intent.succeeded", *order.PaymentIntentID, order.AmountMinor, order.Currency, h.slug, order.ID)
	if err != nil {
		return h.failed("pay", response{}, err)
	}
	// As Stripe does, the same event is delivered again until it is taken,
	// to the platform's one endpoint on the base host.
	res, lost, err = h.retrying(ctx, "pay", func() (response, error) {
		return h.call(ctx, "POST", "", inventory.PlatformWebhookPath, "", payload, "Stripe-Signature", sig)
	})
	if err != nil || res.status != http.StatusOK {
		return h.failed("pay", res, err)
	}
	h.rec.Observe("pay", res.sent)
	if lost > 0 && strings.Contains(string(res.body), `"outcome":"duplicate"`) {
		h.acct.lostRecovered.Add(1) // the payment was taken; its first answer was lost
	}
	n2 := int64(len(seats) + ga)
	h.acct.confirmed.Store(n, n2)
	if total := h.tickets.Add(n2); total >= int64(h.o.Seats+h.o.GA) {
		h.soldAt.CompareAndSwap(0, int64(time.Since(h.started)))
	}
	return "bought"
}

func (h *Harness) failed(step string, res response, err error) string {
	switch {
	case err != nil && (strings.Contains(err.Error(), "context deadline exceeded") || strings.Contains(err.Error(), "context canceled")):
		return "timed_out"
	case err != nil:
		h.rec.Fail(step, "transport")
	default:
		h.rec.Fail(step, strconv.Itoa(res.status)+" "+res.code())
	}
	return step + "_failed"
}

// retrying sends a request again, after the delay the server asks for, while
// it is shed or its key busy (as a buyer's page would), a few times at most,
// and (through resend) when its connection fails; each refusal and each
// failed connection is counted against the step. It also returns how many
// connections failed on the way.
func (h *Harness) retrying(ctx context.Context, step string, send func() (response, error)) (response, int, error) {
	lost := 0
	for attempt := 1; ; attempt++ {
		res, n, err := h.resend(ctx, step, send)
		lost += n
		if err != nil || !retryable(res) || attempt == 5 {
			return res, lost, err
		}
		h.rec.Fail(step, strconv.Itoa(res.status)+" "+res.code())
		if sleep(ctx, retryAfter(res)) {
			return res, lost, ctx.Err()
		}
	}
}

// maxResends bounds the retries of one request after failed connections:
// with the pauses below, about half a minute of outage.
const maxResends = 10

// resend sends a request again when its connection fails, as a buyer's page
// (or Stripe, for a webhook) does, after a growing pause. The server may
// have acted on a request whose answer was lost, so what is sent again must
// be idempotent: the same key, the same event. It returns how many
// connections failed.
func (h *Harness) resend(ctx context.Context, step string, send func() (response, error)) (response, int, error) {
	pause := 250 * time.Millisecond
	for lost := 0; ; lost++ {
		res, err := send()
		if err == nil || ctx.Err() != nil || lost == maxResends {
			return res, lost, err
		}
		h.rec.Fail(step, "transport")
		if sleep(ctx, pause+time.Duration(rand.Int64N(int64(pause)))) {
			return res, lost + 1, ctx.Err()
		}
		pause = min(2*pause, 4*time.Second)
	}
}

// leave gives the buyer's shopping slot back to the waiting room, as the
// page does after checkout, trying again while connections fail: a slot not
// given back stays taken until the room's idle timeout. It runs on after the
// run's time is up, for a bounded while.
func (h *Harness) leave(ctx context.Context, access string) {
	lctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	_, _, _ = h.resend(lctx, "leave", func() (response, error) {
		return h.call(lctx, "DELETE", h.slug, "/api/v1/events/"+h.event+"/queue", "", nil, inventory.QueueHeader, access)
	})
}

// pageRetry is how long the waiting page waits after a failed connection
// (5 s), jittered so buyers cut off together do not return together.
func pageRetry() time.Duration {
	return 4*time.Second + time.Duration(rand.Int64N(int64(2*time.Second)))
}

func retryable(res response) bool {
	return res.status == http.StatusServiceUnavailable || res.status == http.StatusTooManyRequests ||
		(res.status == http.StatusConflict && res.code() == "idempotency_in_progress")
}

func retryAfter(res response) time.Duration {
	if s, err := strconv.Atoi(res.header.Get("Retry-After")); err == nil && s > 0 {
		return time.Duration(s)*time.Second/2 + time.Duration(rand.Int64N(int64(time.Second)))
	}
	return time.Second
}

// sleep waits d; it reports true if ctx ended first.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return true
	case <-t.C:
		return false
	}
}

// pickCart chooses 1–4 seats next to each other that the harness believes
// free (marking them taken), or a GA quantity; nil, 0 when nothing is left.
func (h *Harness) pickCart() ([]int, int) {
	want := 1 + rand.IntN(4)
	h.seatMu.Lock()
	defer h.seatMu.Unlock()
	gaLeft := h.gaLeft.Load()
	if h.freeLeft == 0 && gaLeft <= 0 {
		h.soldOut.Store(true)
		return nil, 0
	}
	reserved := h.freeLeft > 0 && (gaLeft <= 0 || rand.IntN(h.freeLeft+int(gaLeft)) < h.freeLeft)
	if !reserved {
		n := min(int64(want), gaLeft)
		h.gaLeft.Add(-n)
		return nil, int(n)
	}
	start := rand.IntN(len(h.seatFree))
	for k := range len(h.seatFree) {
		i := (start + k) % len(h.seatFree)
		if !h.seatFree[i] {
			continue
		}
		seats := []int{i}
		for j := i + 1; j < len(h.seatFree) && len(seats) < want && h.seatFree[j] && j/50 == i/50; j++ {
			seats = append(seats, j)
		}
		for _, s := range seats {
			h.seatFree[s] = false
		}
		h.freeLeft -= len(seats)
		return seats, 0
	}
	return nil, 0
}

// release gives seats or GA units back to the harness's view.
func (h *Harness) release(seats []int, ga int) {
	h.seatMu.Lock()
	defer h.seatMu.Unlock()
	for _, s := range seats {
		if !h.seatFree[s] {
			h.seatFree[s] = true
			h.freeLeft++
		}
	}
	if ga > 0 {
		h.gaLeft.Add(int64(ga))
		h.soldOut.Store(false)
	} else if len(seats) > 0 {
		h.soldOut.Store(false)
	}
}

// refused learns from a 409: seats that were free are given back, GA is
// taken as sold out for that quantity.
func (h *Harness) refused(seats []int, ga int, res response) {
	if ga > 0 {
		// The pool had fewer than asked: believe what it says is left.
		var p struct {
			Available *int64 `json:"available"`
		}
		_ = json.Unmarshal(res.body, &p)
		h.seatMu.Lock()
		if p.Available != nil {
			h.gaLeft.Store(*p.Available)
		} else {
			h.gaLeft.Add(int64(ga)) // a quota refusal: nothing learned about the pool
		}
		h.seatMu.Unlock()
		return
	}
	var p struct {
		Unavailable []string `json:"unavailable"`
	}
	_ = json.Unmarshal(res.body, &p)
	taken := map[string]bool{}
	for _, s := range p.Unavailable {
		taken[s] = true
	}
	h.seatMu.Lock()
	defer h.seatMu.Unlock()
	for _, s := range seats {
		if !taken[seatID(s)] && len(taken) > 0 {
			h.seatFree[s] = true
			h.freeLeft++
		}
	}
}
