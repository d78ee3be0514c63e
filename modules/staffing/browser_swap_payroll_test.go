package staffing_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/google/uuid"

	"marquee/modules/staffing"
)

// In a real browser: Ana's shift lists the colleagues who could take it
// (Ben; not Dan, who works an overlapping shift, nor Cal, who does not work
// the role); she asks Ben by name, Ben is mailed and takes it from his
// page. After the night the owner reads the chain's payroll page: the New
// York night and the Tokyo morning, each on its venue's local date.
func TestBrowserNamedSwapAndPayroll(t *testing.T) {
	clk := newClock(time.Now())
	e := startEnvWith(t, clk, &fakeFacts{sold: map[uuid.UUID]int{}}, staffing.New())
	c := newChain(t, e, "swapweb")
	start := c.eventAt.Add(-time.Hour)
	bar := c.shift(t, "bar", start, c.eventAt.Add(4*time.Hour), 3)
	late := c.shift(t, "bar", c.eventAt.Add(3*time.Hour), c.eventAt.Add(6*time.Hour), 1)
	c.publish(t, c.eventAt)
	mustStatus(t, c.do(t, "PUT", "/api/v1/staffing/rates", map[string]any{"rates": []any{
		map[string]any{"role_id": c.roles["bar"], "hourly_minor": 1800, "currency": "USD"},
		map[string]any{"role_id": c.roles["security"], "hourly_minor": 2000, "currency": "JPY"}}}), http.StatusOK)

	clk.set(start.Add(-2 * time.Hour))
	ana := c.staff(t, "Ana", true, []string{"bar"}, nil)
	ben := c.staff(t, "Ben", true, []string{"bar"}, nil)
	dan := c.staff(t, "Dan", true, []string{"bar"}, nil)
	c.staff(t, "Cal", false, []string{"crew"}, nil)
	assign := func(venue, shift string, p person) string {
		return decode[staffing.Assignment](t, mustCreated(t, c.do(t, "POST", "/api/v1/venues/"+venue+"/staffing/shifts/"+shift+"/assignments", map[string]any{"staff_id": p.id}))).ID.String()
	}
	anaShift := assign(c.venue, bar, ana)
	assign(c.venue, late, dan)

	anaB := signIn(t, e.Env, c.slug, ana.email, "/portal/staffing/me")
	sel := `#my-shifts form.swap select[name=colleague_id]`
	waitTrue(t, anaB.ctx, `!!document.querySelector('`+sel+`')`, 10*time.Second)
	if opts := textOf(t, anaB, sel); !strings.Contains(opts, "Ben") || strings.Contains(opts, "Dan") || strings.Contains(opts, "Cal") || !strings.Contains(opts, "Anyone") {
		t.Fatalf("colleagues offered: %q (want Ben and anyone, not Dan or Cal)", opts)
	}
	if err := chromedp.Do(anaB.ctx, chromedp.SetValue(chromedp.CSS(sel), ben.id)); err != nil {
		t.Fatal(err)
	}
	screenshot(t, anaB, "staffing-swap-name-colleague")
	click(t, anaB, `#my-shifts form.swap button`)
	waitTrue(t, anaB.ctx, `(document.querySelector('#my-swaps [data-swap]')||{innerText:''}).innerText.includes('you asked Ben')`, 10*time.Second)
	screenshot(t, anaB, "staffing-swap-named-asked")

	// Ben is mailed, then takes it from his page.
	if _, err := e.App.Mail.SendDue(context.Background(), c.t, 100); err != nil {
		t.Fatal(err)
	}
	if got := mailsOf(e, ben.email, "Ana asks you to take a shift"); len(got) != 1 {
		t.Fatalf("Ben's mail: %+v", got)
	}
	benB := signIn(t, e.Env, c.slug, ben.email, "/portal/staffing/me")
	waitTrue(t, benB.ctx, `(document.querySelector('#my-swaps')||{innerText:''}).innerText.includes('Ana asks you to take it')`, 10*time.Second)
	click(t, benB, `#my-swaps form[action$="/accept"] button`)
	waitTrue(t, benB.ctx, `(document.querySelector('#my-swaps')||{innerText:''}).innerText.includes('waiting for a manager')`, 10*time.Second)
	screenshot(t, benB, "staffing-swap-named-taken")
	if n := c.count(t, `SELECT count(*) FROM stf_swaps WHERE status = 'accepted' AND taker = ?`, ben.id); n != 1 {
		t.Fatalf("%d swaps taken by Ben", n)
	}

	// A Tokyo venue's morning starts at the same UTC instant as the New
	// York night (23:00 UTC), on the next local date.
	tokyo, err := time.LoadLocation("Asia/Tokyo")
	if err != nil {
		t.Fatal(err)
	}
	tv := c.id(t, c.do(t, "POST", "/api/v1/venues", map[string]any{"name": "Kioi Hall", "timezone": "Asia/Tokyo", "capacity": 800}))
	ts := c.id(t, c.do(t, "POST", "/api/v1/venues/"+tv+"/stages", map[string]any{"name": "Main", "capacity": 800, "type": "main"}))
	tkStart := start.In(tokyo)
	tkEvent := c.id(t, c.do(t, "POST", "/api/v1/venues/"+tv+"/events", map[string]any{"stage_id": ts, "title": "Morning show", "category": "concert",
		"status": "on_sale", "starts_at": tkStart.Add(time.Hour).UTC().Format(time.RFC3339), "ends_at": tkStart.Add(4 * time.Hour).UTC().Format(time.RFC3339)}))
	tkShift := c.id(t, c.do(t, "POST", "/api/v1/venues/"+tv+"/staffing/shifts", map[string]any{"event_id": tkEvent, "role_id": c.roles["security"],
		"starts_at": tkStart.UTC().Format(time.RFC3339), "ends_at": tkStart.Add(4 * time.Hour).UTC().Format(time.RFC3339), "places": 2}))
	kei := c.staff(t, "Kei", false, []string{"security"}, nil)
	keiShift := assign(tv, tkShift, kei)
	clk.set(start.Add(6 * time.Hour))
	for _, r := range []struct {
		venue, asg string
		in, out    time.Time
	}{{c.venue, anaShift, start, start.Add(5 * time.Hour)}, {tv, keiShift, tkStart, tkStart.Add(4 * time.Hour)}} {
		mustStatus(t, c.do(t, "POST", "/api/v1/venues/"+r.venue+"/staffing/assignments/"+r.asg+"/check-in", map[string]any{"at": r.in.UTC().Format(time.RFC3339)}), http.StatusOK)
		mustStatus(t, c.do(t, "POST", "/api/v1/venues/"+r.venue+"/staffing/assignments/"+r.asg+"/check-out", map[string]any{"at": r.out.UTC().Format(time.RFC3339)}), http.StatusOK)
	}
	nyDay, tkDay := start.In(newYork).Format(time.DateOnly), tkStart.Format(time.DateOnly)
	owner := signIn(t, e.Env, c.slug, "owner@"+c.slug+".test", fmt.Sprintf("/portal/staffing/payroll?from=%s&to=%s", nyDay, tkDay))
	waitTrue(t, owner.ctx, `document.querySelectorAll('section.venue').length === 2`, 10*time.Second)
	page := textOf(t, owner, `main`)
	for _, want := range []string{"Hall", "Kioi Hall", "America/New_York", "Asia/Tokyo", "Ana", "Kei", nyDay, tkDay, "90.00", "8,000"} {
		if !strings.Contains(page, want) {
			t.Errorf("payroll page lacks %q:\n%s", want, page)
		}
	}
	screenshot(t, owner, "staffing-payroll-chain")
}
