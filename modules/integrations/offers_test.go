package integrations_test

import (
	"bytes"
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"gorm.io/gorm"

	"marquee/app/apptest"
	"marquee/modules/integrations"
	"marquee/modules/integrations/fakes/eventbrite"
	"marquee/modules/integrations/fakes/ticketmaster"
)

// setTier changes the tier's price and sale window in the inventory's
// table, as its demand pricing writes a new price (the inventory has no
// route that changes a tier once sales may have begun); the hook is then
// told by the inventory's own code (turning a pricing rule on).
func (c *chain) setTier(t testing.TB, price int64, starts, ends time.Time) {
	t.Helper()
	if err := c.e.App.Tx(context.Background(), c.t, func(tx *gorm.DB) error {
		return tx.Exec(`UPDATE inv_tiers SET price_minor = ?, sale_starts = ?, sale_ends = ? WHERE id = ?`, price, starts, ends, c.tier).Error
	}); err != nil {
		t.Fatal(err)
	}
}

func (c *chain) offers(t testing.TB) map[string]integrations.OfferPush {
	t.Helper()
	var v integrations.ChannelsView
	res := c.do(t, "GET", "/api/v1/integrations/events/"+c.event.String()+"/channels", nil)
	apptest.MustStatus(t, res, http.StatusOK)
	res.JSON(t, &v)
	out := map[string]integrations.OfferPush{}
	for _, o := range v.Offers {
		out[o.Channel] = o
	}
	return out
}

func (c *chain) timelineHas(t testing.TB, ok bool, substr string) bool {
	t.Helper()
	return c.count(t, `SELECT count(*) FROM int_syncs WHERE kind = 'push' AND ok = ? AND detail LIKE ?`, ok, "%"+substr+"%") > 0
}

// A tier's new price and sale window reach both channels through the
// inventory's offers hook and a task per change: Ticketmaster's offer
// (faceValue, on/offsale) and Eventbrite's ticket class (cost, sales_start,
// sales_end). Ticketmaster failing the first attempt gets it on the task's
// retry; running the push again sends nothing; a value a channel refuses
// (Eventbrite: cost after sales) is recorded, not retried.
func TestOfferChangesReachBothChannels(t *testing.T) {
	e := startEnv(t)
	c := newChain(t, e, 100, map[string]int{"web": 40, "ticketmaster": 30, "eventbrite": 30})
	apptest.MustStatus(t, c.allocate(t, "eventbrite", 30), http.StatusOK)
	svc := e.mod.Service()
	svc.OfferRetry = func(int) time.Duration { return time.Second }
	ctx, cancel := context.WithCancel(context.Background())
	worker := make(chan error, 1)
	go func() { worker <- e.App.RunWorker(ctx, false) }()
	t.Cleanup(func() { cancel(); <-worker })

	starts := time.Date(2031, 6, 1, 9, 0, 0, 0, time.UTC)
	ends := time.Date(2031, 12, 31, 18, 0, 0, 0, time.UTC)
	c.setTier(t, 3000, starts, ends)
	// Ticketmaster fails the first push (every try of the client's backoff).
	c.tm.FailNext(503, 503, 503, 503)
	apptest.MustStatus(t, c.do(t, "PUT", "/api/v1/events/"+c.event.String()+"/tiers/"+c.tier.String()+"/pricing",
		map[string]any{"enabled": true, "floor": 2000, "ceiling": 5000, "max_step": 100, "min_interval_seconds": 600}), http.StatusOK)

	apptest.Eventually(t, 30*time.Second, "both channels have the new price and window", func() bool {
		tm, eb := c.tm.Event(c.tmEvent), c.eb.TicketClass(c.ebClass)
		return tm.OfferUpdates == 1 && eb.Updates == 1
	})
	tm, eb := c.tm.Event(c.tmEvent), c.eb.TicketClass(c.ebClass)
	if tm.FaceValue != 30 || tm.Currency != "EUR" || !tm.SalesStart.Equal(starts) || !tm.SalesEnd.Equal(ends) {
		t.Fatalf("Ticketmaster's offer: %v %s %v–%v", tm.FaceValue, tm.Currency, tm.SalesStart, tm.SalesEnd)
	}
	if eb.CostMinor != 3000 || eb.Currency != "EUR" || !eb.SalesStart.Equal(starts) || !eb.SalesEnd.Equal(ends) {
		t.Fatalf("Eventbrite's ticket class: %d %s %v–%v", eb.CostMinor, eb.Currency, eb.SalesStart, eb.SalesEnd)
	}
	offers := c.offers(t)
	if o := offers["ticketmaster"]; o.State != integrations.OfferPushed || o.Attempts != 2 || o.PriceMinor != 3000 {
		t.Fatalf("Ticketmaster's push %+v, want pushed on the second attempt", o)
	}
	if o := offers["eventbrite"]; o.State != integrations.OfferPushed || o.Attempts != 1 {
		t.Fatalf("Eventbrite's push %+v, want pushed at once", o)
	}
	// The timeline shows the failed attempt and the pushes.
	if !c.timelineHas(t, false, "price 30.00 EUR") || !c.timelineHas(t, true, "to ticketmaster") || !c.timelineHas(t, true, "to eventbrite") {
		t.Fatal("the sync timeline lacks the failed and the successful pushes")
	}

	// Idempotent: the same values are not sent again.
	res, err := svc.PushOffers(context.Background(), c.t, c.event)
	if err != nil || res.Pushed != 0 || c.tm.Event(c.tmEvent).OfferUpdates != 1 || c.eb.TicketClass(c.ebClass).Updates != 1 {
		t.Fatalf("pushing unchanged offers: %+v %v, and the fakes had %d/%d updates", res, err, c.tm.Event(c.tmEvent).OfferUpdates, c.eb.TicketClass(c.ebClass).Updates)
	}

	// Eventbrite refuses a new cost once tickets sold: recorded as failed
	// with their words; Ticketmaster takes it.
	if d, ok := c.eb.PlaceOrder(c.ebEvent, c.ebClass, 1); !ok || d.Status != http.StatusOK {
		t.Fatalf("eventbrite order: %v %d", ok, d.Status)
	}
	c.setTier(t, 3500, starts, ends)
	res, err = svc.PushOffers(context.Background(), c.t, c.event)
	if err != nil || res.Pushed != 1 || res.Failed != 1 {
		t.Fatalf("push after an Eventbrite sale: %+v %v, want 1 pushed and 1 refused", res, err)
	}
	offers = c.offers(t)
	if o := offers["eventbrite"]; o.State != integrations.OfferFailed || o.Error == nil || !strings.Contains(*o.Error, "CANNOT_CHANGE_COST_AFTER_SALES") {
		t.Fatalf("Eventbrite's refused push %+v", o)
	}
	if c.tm.Event(c.tmEvent).FaceValue != 35 || c.eb.TicketClass(c.ebClass).CostMinor != 3000 {
		t.Fatal("after the refusal Ticketmaster should have 35.00 and Eventbrite still 30.00")
	}
	// A refusal is final for those values: another run sends nothing.
	if res, _ := svc.PushOffers(context.Background(), c.t, c.event); res.Pushed+res.Failed+res.Pending != 0 {
		t.Fatalf("a refused push was sent again: %+v", res)
	}
}

// Ticketmaster's Partner API is down 2–4 AM venue time: a change then
// waits (no call made, the timeline says so) while Eventbrite gets it at
// once, and goes out when the window ends.
func TestOfferPushWaitsForMaintenance(t *testing.T) {
	e := startEnv(t)
	c := newChain(t, e, 100, map[string]int{"web": 40, "ticketmaster": 30, "eventbrite": 30})
	svc := e.mod.Service()
	berlin, _ := time.LoadLocation("Europe/Berlin")
	now := time.Date(2031, 3, 1, 2, 30, 0, 0, berlin)
	svc.Clock = func() time.Time { return now }
	t.Cleanup(func() { svc.Clock = nil })

	c.setTier(t, 2800, time.Date(2031, 3, 2, 10, 0, 0, 0, time.UTC), time.Date(2031, 9, 1, 0, 0, 0, 0, time.UTC))
	calls := c.tm.Calls("partner")
	res, err := svc.PushOffers(context.Background(), c.t, c.event)
	if err != nil || res.Waiting != 1 || res.Pushed != 1 {
		t.Fatalf("push in the window: %+v %v, want Ticketmaster waiting and Eventbrite pushed", res, err)
	}
	if want := 90 * time.Minute; res.RetryIn != want {
		t.Fatalf("retry in %v, want %v (the window ends at 4 AM)", res.RetryIn, want)
	}
	if c.tm.Calls("partner") != calls || c.tm.Event(c.tmEvent).OfferUpdates != 0 {
		t.Fatal("Ticketmaster was called in its maintenance window")
	}
	if o := c.offers(t)["ticketmaster"]; o.State != integrations.OfferWaiting || o.Attempts != 0 {
		t.Fatalf("Ticketmaster's push in the window %+v, want waiting", o)
	}
	if !c.timelineHas(t, true, "maintenance window") || c.eb.TicketClass(c.ebClass).CostMinor != 2800 {
		t.Fatal("the timeline should say the push waits; Eventbrite should have 28.00")
	}
	// Still in the window: nothing more.
	now = time.Date(2031, 3, 1, 3, 59, 0, 0, berlin)
	if res, _ := svc.PushOffers(context.Background(), c.t, c.event); res.Waiting != 1 || c.tm.Event(c.tmEvent).OfferUpdates != 0 {
		t.Fatalf("at 3:59: %+v", res)
	}
	now = time.Date(2031, 3, 1, 4, 0, 0, 0, berlin)
	res, err = svc.PushOffers(context.Background(), c.t, c.event)
	if err != nil || res.Pushed != 1 || res.Waiting != 0 || c.tm.Event(c.tmEvent).FaceValue != 28 {
		t.Fatalf("after the window: %+v %v, Ticketmaster at %v", res, err, c.tm.Event(c.tmEvent).FaceValue)
	}
}

// The fakes refuse bad values the way the providers do.
func TestFakesRefuseBadOffers(t *testing.T) {
	tm := ticketmaster.New(tmKey)
	defer tm.Close()
	tm.AddEvent(ticketmaster.Event{ID: "E1", Name: "Night", Start: time.Now().Add(48 * time.Hour), FaceValue: 25, Currency: "EUR"})
	eb := eventbrite.New(ebToken)
	defer eb.Close()
	eb.AddEvent(eventbrite.Event{ID: "77", OrgID: "org1", Name: "Night", TicketClasses: []*eventbrite.TicketClass{{ID: "TC1", CostMinor: 2500, Currency: "EUR"}}})
	send := func(method, url, body string, headers ...string) (int, string) {
		t.Helper()
		req, _ := http.NewRequest(method, url, bytes.NewBufferString(body))
		req.Header.Set("Content-Type", "application/json")
		for i := 0; i+1 < len(headers); i += 2 {
			req.Header.Set(headers[i], headers[i+1])
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		var b bytes.Buffer
		_, _ = b.ReadFrom(res.Body)
		return res.StatusCode, b.String()
	}
	tmURL := tm.URL + "/partners/v1/events/E1/offers/TT-E1?apikey=" + tmKey
	ebURL := eb.URL + "/v3/events/77/ticket_classes/TC1/"
	auth := []string{"Authorization", "Bearer " + ebToken}
	for _, tc := range []struct {
		name, method, url, body string
		headers                 []string
		status                  int
		code                    string
	}{
		{"tm other currency", "PUT", tmURL, `{"faceValue": 30, "currency": "USD"}`, nil, 400, "OFFER400"},
		{"tm negative", "PUT", tmURL, `{"faceValue": -1, "currency": "EUR"}`, nil, 400, "OFFER400"},
		{"tm three decimals", "PUT", tmURL, `{"faceValue": 30.001, "currency": "EUR"}`, nil, 400, "OFFER400"},
		{"tm window backwards", "PUT", tmURL, `{"faceValue": 30, "currency": "EUR", "onsaleDateTime": "2031-02-01T00:00:00Z", "offsaleDateTime": "2031-01-01T00:00:00Z"}`, nil, 400, "OFFER400"},
		{"tm unknown ticket type", "PUT", tm.URL + "/partners/v1/events/E1/offers/TT-X?apikey=" + tmKey, `{"faceValue": 30, "currency": "EUR"}`, nil, 404, "OFFER404"},
		{"tm good", "PUT", tmURL, `{"faceValue": 30.5, "currency": "EUR"}`, nil, 200, ""},
		{"eb malformed cost", "POST", ebURL, `{"ticket_class": {"cost": "3000"}}`, auth, 400, "ARGUMENTS_ERROR"},
		{"eb other currency", "POST", ebURL, `{"ticket_class": {"cost": "USD,3000"}}`, auth, 400, "CURRENCY_MISMATCH"},
		{"eb bad date", "POST", ebURL, `{"ticket_class": {"sales_end": "tomorrow"}}`, auth, 400, "ARGUMENTS_ERROR"},
		{"eb window backwards", "POST", ebURL, `{"ticket_class": {"sales_start": "2031-02-01T00:00:00Z", "sales_end": "2031-01-01T00:00:00Z"}}`, auth, 400, "MUST_BE_AFTER_SALES_START"},
		{"eb good", "POST", ebURL, `{"ticket_class": {"cost": "EUR,3000", "sales_end": "2031-01-01T00:00:00Z"}}`, auth, 200, ""},
	} {
		status, body := send(tc.method, tc.url, tc.body, tc.headers...)
		if status != tc.status || !strings.Contains(body, tc.code) {
			t.Errorf("%s: %d %s, want %d %s", tc.name, status, body, tc.status, tc.code)
		}
	}
	if tm.Event("E1").FaceValue != 30.5 || tm.Event("E1").OfferUpdates != 1 {
		t.Errorf("Ticketmaster's offer %+v after one good update", tm.Event("E1"))
	}
	if tc := eb.TicketClass("TC1"); tc.CostMinor != 3000 || tc.Updates != 1 {
		t.Errorf("Eventbrite's ticket class %+v after one good update", tc)
	}
}
