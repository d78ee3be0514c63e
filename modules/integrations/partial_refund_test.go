package integrations_test

import (
	"net/http"
	"sync"
	"testing"

	"marquee/app/apptest"
	"marquee/modules/integrations/fakes/eventbrite"
)

func (c *chain) ebSold(t testing.TB) int {
	t.Helper()
	return quotaOf(c.stock(t), "eventbrite").Sold
}

func mustDelivered(t testing.TB, d eventbrite.Delivery) {
	t.Helper()
	if d.Status != http.StatusOK {
		t.Fatalf("%s answered %d", d.Action, d.Status)
	}
}

// Eventbrite's partial refunds: an attendee refunded or cancelled while its
// order stays placed gives its unit back once, through the attendee's
// webhook or the order's, however often either is delivered; a full refund
// afterwards returns only the rest; the channel's sales at its price follow.
func TestEventbritePartialRefundsReturnOnce(t *testing.T) {
	e := startEnv(t)
	c := newChain(t, e, 100, map[string]int{"web": 60, "ticketmaster": 20, "eventbrite": 20})
	apptest.MustStatus(t, c.allocate(t, "eventbrite", 20), http.StatusOK)

	id, ok := c.eb.Sell(c.ebEvent, c.ebClass, 4)
	if !ok {
		t.Fatal("the fake refused the order")
	}
	mustDelivered(t, c.eb.Deliver("order.placed", c.eb.OrderURL(id)))
	if got := c.ebSold(t); got != 4 {
		t.Fatalf("eventbrite sold %d, want 4", got)
	}
	// One attendee refunded: its attendee.updated, replayed, and the
	// order's update each see it; one unit comes back.
	d := c.eb.RefundAttendee(id, 1, false)
	mustDelivered(t, d)
	mustDelivered(t, c.eb.Redeliver(d))
	mustDelivered(t, c.eb.Deliver("order.updated", c.eb.OrderURL(id)))
	mustDelivered(t, c.eb.Deliver("order.placed", c.eb.OrderURL(id)))
	if got := c.ebSold(t); got != 3 {
		t.Fatalf("after one attendee's refund eventbrite sold %d, want 3", got)
	}
	// Another cancelled, seen first by the order's update.
	url := c.eb.WebhookURL
	c.eb.WebhookURL = ""
	c.eb.RefundAttendee(id, 2, true)
	c.eb.WebhookURL = url
	mustDelivered(t, c.eb.Deliver("order.updated", c.eb.OrderURL(id)))
	mustDelivered(t, c.eb.Deliver("attendee.updated", c.eb.URL+"/v3/events/"+c.ebEvent+"/attendees/A"+id+"-3/"))
	if got := c.ebSold(t); got != 2 {
		t.Fatalf("after a cancelled attendee eventbrite sold %d, want 2", got)
	}
	if n := c.count(t, `SELECT returned_quantity FROM int_orders WHERE external_order_id = ?`, id); n != 2 {
		t.Fatalf("returned_quantity %d, want 2", n)
	}
	if n := c.count(t, `SELECT count(*) FROM int_attendee_returns WHERE external_order_id = ? AND units_returned = 1`, id); n != 2 {
		t.Fatalf("%d attendee returns recorded, want 2", n)
	}
	// The whole order refunded: the two left come back, not four.
	r := c.eb.Refund(id)
	mustDelivered(t, r)
	mustDelivered(t, c.eb.Redeliver(r))
	if got := c.ebSold(t); got != 0 {
		t.Fatalf("after the full refund eventbrite sold %d, want 0", got)
	}
	if n := c.count(t, `SELECT coalesce(sum(quantity), 0) FROM inv_channel_sales WHERE event_id = ? AND channel = 'eventbrite'`, c.event); n != 0 {
		t.Fatalf("channel sales at the channel's price sum to %d, want 0", n)
	}

	// An order whose first delivery comes after a partial refund sells
	// only the attendees not refunded: the attendee's webhook first, then
	// the order's.
	id2, _ := c.eb.Sell(c.ebEvent, c.ebClass, 3)
	mustDelivered(t, c.eb.RefundAttendee(id2, 0, false))
	mustDelivered(t, c.eb.Deliver("order.placed", c.eb.OrderURL(id2)))
	mustDelivered(t, c.eb.Deliver("order.updated", c.eb.OrderURL(id2)))
	if got := c.ebSold(t); got != 2 {
		t.Fatalf("an order delivered after a partial refund sold %d, want 2", got)
	}
	// ... and with no attendee webhook at all.
	id3, _ := c.eb.Sell(c.ebEvent, c.ebClass, 2)
	c.eb.WebhookURL = ""
	c.eb.RefundAttendee(id3, 1, false)
	c.eb.WebhookURL = url
	mustDelivered(t, c.eb.Deliver("order.placed", c.eb.OrderURL(id3)))
	mustDelivered(t, c.eb.Deliver("attendee.updated", c.eb.URL+"/v3/events/"+c.ebEvent+"/attendees/A"+id3+"-2/"))
	if got := c.ebSold(t); got != 3 {
		t.Fatalf("eventbrite sold %d, want 3 (2 + 1)", got)
	}
	if n := c.count(t, `SELECT coalesce(sum(quantity), 0) FROM inv_channel_sales WHERE event_id = ? AND channel = 'eventbrite'`, c.event); n != 3 {
		t.Fatalf("channel sales at the channel's price sum to %d, want 3", n)
	}
	if got := c.eb.Sold(c.ebClass); got != 3 {
		t.Fatalf("the fake sold %d, want 3 (our books agree with theirs)", got)
	}
}

// Racing copies of an order's first delivery and of its refunded
// attendees' webhooks (new delivery ids each) sell the others once and
// give nothing back twice.
func TestEventbritePartialRefundRace(t *testing.T) {
	e := startEnv(t)
	c := newChain(t, e, 100, map[string]int{"web": 60, "ticketmaster": 20, "eventbrite": 20})
	apptest.MustStatus(t, c.allocate(t, "eventbrite", 20), http.StatusOK)
	url := c.eb.WebhookURL

	// A: first delivered before the refunds; B: refunded before any delivery.
	a, _ := c.eb.Sell(c.ebEvent, c.ebClass, 5)
	mustDelivered(t, c.eb.Deliver("order.placed", c.eb.OrderURL(a)))
	b, _ := c.eb.Sell(c.ebEvent, c.ebClass, 4)
	c.eb.WebhookURL = ""
	for i := range 3 {
		c.eb.RefundAttendee(a, i, false)
	}
	c.eb.RefundAttendee(b, 0, false)
	c.eb.RefundAttendee(b, 3, true)
	c.eb.WebhookURL = url

	attendee := func(order string, i int) string {
		if i == 0 {
			return c.eb.URL + "/v3/events/" + c.ebEvent + "/attendees/A" + order + "/"
		}
		return c.eb.URL + "/v3/events/" + c.ebEvent + "/attendees/A" + order + "-" + string(rune('1'+i)) + "/"
	}
	type hook struct{ action, url string }
	var hooks []hook
	for range 6 {
		hooks = append(hooks, hook{"order.updated", c.eb.OrderURL(a)}, hook{"order.placed", c.eb.OrderURL(b)})
		for i := range 3 {
			hooks = append(hooks, hook{"attendee.updated", attendee(a, i)})
		}
		hooks = append(hooks, hook{"attendee.updated", attendee(b, 0)}, hook{"attendee.updated", attendee(b, 3)})
	}
	var wg sync.WaitGroup
	errs := make(chan string, len(hooks))
	for _, h := range hooks {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if d := c.eb.Deliver(h.action, h.url); d.Status != http.StatusOK {
				errs <- h.action + " " + h.url
			}
		}()
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Errorf("delivery failed: %s", e)
	}
	if got := c.ebSold(t); got != 4 {
		t.Fatalf("eventbrite sold %d after the race, want 4 (2 of A, 2 of B)", got)
	}
	if n := c.count(t, `SELECT coalesce(sum(units_returned), 0) FROM int_attendee_returns`); n != 3 {
		t.Fatalf("%d units returned by attendees, want 3 (A's; B's were never sold here)", n)
	}
	if n := c.count(t, `SELECT count(*) FROM int_attendee_returns`); n != 5 {
		t.Fatalf("%d attendee returns, want 5", n)
	}
	if n := c.count(t, `SELECT coalesce(sum(quantity), 0) FROM inv_channel_sales WHERE event_id = ? AND channel = 'eventbrite'`, c.event); n != 4 {
		t.Fatalf("channel sales at the channel's price sum to %d, want 4", n)
	}
}
