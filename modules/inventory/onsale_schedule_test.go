package inventory_test

import (
	"net/http"
	"testing"
	"time"

	"marquee/app/apptest"
)

// The calendar's on-sale schedule bounds every hold: before the public
// on-sale nobody holds, except during the presale window with its code;
// each refusal says why in a listed problem code and changes nothing.
func TestOnSaleScheduleGatesHolds(t *testing.T) {
	t.Parallel()
	s, ev, inv := onSale(t, "onsale", "Presale Night", simpleSetup(2, 10, 100, nil))
	floor := tierID(t, inv, "Floor")
	path := "/api/v1/venues/" + s.venue + "/events/" + ev
	now := time.Now().UTC()
	stamp := func(d time.Duration) string { return now.Add(d).Format(time.RFC3339) }
	schedule := func(onSale, presaleFrom, presaleTo time.Duration, code string) {
		t.Helper()
		body := map[string]any{"on_sale_at": stamp(onSale), "presale_starts_at": "", "presale_ends_at": "", "presale_code": ""}
		if code != "" {
			body["presale_starts_at"], body["presale_ends_at"], body["presale_code"] = stamp(presaleFrom), stamp(presaleTo), code
		}
		mustStatus(t, s.do(t, "PATCH", path, body), http.StatusOK)
	}
	buyer := s.buyer(t)
	try := func(body map[string]any) apptest.Response {
		t.Helper()
		res, err := s.hold(ev, buyer, body)
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	ga := func(code string) map[string]any {
		b := map[string]any{"tier_id": floor, "quantity": 1}
		if code != "" {
			b["presale_code"] = code
		}
		return b
	}
	held := func() int64 { return s.count(t, `SELECT count(*) FROM inv_holds WHERE event_id = ?`, ev) }

	// Presale on now, public on-sale in two hours.
	schedule(2*time.Hour, -time.Hour, time.Hour, "fanclub-2032")
	res := s.do(t, "GET", path, nil)
	mustStatus(t, res, http.StatusOK)
	var e struct {
		Sale struct {
			OnSaleAt    *time.Time `json:"on_sale_at"`
			PresaleCode string     `json:"presale_code"`
		} `json:"sale"`
	}
	res.JSON(t, &e)
	if e.Sale.OnSaleAt == nil || e.Sale.PresaleCode != "FANCLUB-2032" {
		t.Fatalf("schedule as stored: %s", res.Body)
	}
	for _, code := range []string{"", "WRONG-CODE"} {
		if res := try(ga(code)); res.Status != http.StatusForbidden || res.Code() != "presale_code_invalid" {
			t.Fatalf("presale hold with code %q: %d %s", code, res.Status, res.Body)
		}
	}
	if res := try(map[string]any{"seats": []string{"A-1-1"}}); res.Code() != "presale_code_invalid" {
		t.Fatalf("seat hold without code: %d %s", res.Status, res.Body)
	}
	if n := held(); n != 0 {
		t.Fatalf("refused holds left %d rows", n)
	}
	// The code is read without regard to case or surrounding spaces.
	mustStatus(t, try(ga(" fanclub-2032 ")), http.StatusCreated)

	// Between the presale and the on-sale: nobody, code or not.
	schedule(time.Hour, -2*time.Hour, -time.Hour, "FANCLUB-2032")
	res = try(ga("FANCLUB-2032"))
	if res.Status != http.StatusConflict || res.Code() != "sale_not_started" {
		t.Fatalf("hold between presale and on-sale: %d %s", res.Status, res.Body)
	}
	// Before a presale: nobody either.
	schedule(3*time.Hour, time.Hour, 2*time.Hour, "FANCLUB-2032")
	if res := try(ga("FANCLUB-2032")); res.Code() != "sale_not_started" {
		t.Fatalf("hold before the presale: %d %s", res.Status, res.Body)
	}
	if n := held(); n != 1 {
		t.Fatalf("holds after refusals: %d, want the presale one", n)
	}

	// From the on-sale on, anyone.
	schedule(-time.Minute, 0, 0, "")
	mustStatus(t, try(map[string]any{"seats": []string{"A-1-1"}}), http.StatusCreated)

	// A schedule that does not hold together is refused and changes nothing.
	for _, bad := range []map[string]any{
		{"on_sale_at": stamp(time.Hour), "presale_starts_at": stamp(0), "presale_ends_at": stamp(2 * time.Hour), "presale_code": "OK-CODE"},
		{"on_sale_at": stamp(time.Hour), "presale_starts_at": stamp(0), "presale_ends_at": stamp(-time.Minute), "presale_code": "OK-CODE"},
		{"on_sale_at": stamp(time.Hour), "presale_starts_at": stamp(0), "presale_ends_at": stamp(time.Minute)},
		{"on_sale_at": stamp(time.Hour), "presale_starts_at": stamp(0), "presale_ends_at": stamp(time.Minute), "presale_code": "no spaces allowed"},
		{"presale_starts_at": stamp(0), "presale_ends_at": stamp(time.Minute), "presale_code": "OK-CODE"},
		{"on_sale_at": "tomorrow"},
		{"on_sale_at": "2040-01-01T00:00:00Z"},
	} {
		if res := s.do(t, "PATCH", path, bad); res.Status != http.StatusBadRequest {
			t.Fatalf("schedule %v: %d %s", bad, res.Status, res.Body)
		}
	}
	res = s.do(t, "GET", path, nil)
	e.Sale.OnSaleAt, e.Sale.PresaleCode = nil, ""
	res.JSON(t, &e)
	if e.Sale.OnSaleAt == nil || !e.Sale.OnSaleAt.Equal(now.Add(-time.Minute).Truncate(time.Second)) || e.Sale.PresaleCode != "" {
		t.Fatalf("a refused schedule changed the event: %s", res.Body)
	}
}
