package staffing_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/google/uuid"

	"marquee/app/apptest"
	"marquee/modules/staffing"
)

// In a real browser: Ana asks for a swap from "My shifts"; Ben takes it
// from his; the manager approves it on the event's timesheet page, checks
// Cal in and out, and the page shows the hours and the labour cost; Ben
// checks himself in from his page.
func TestBrowserTimesheetsAndSwaps(t *testing.T) {
	clk := newClock(time.Now())
	e := startEnvWith(t, clk, &fakeFacts{sold: map[uuid.UUID]int{}}, staffing.New())
	c := newChain(t, e, "tsweb")
	start := c.eventAt.Add(-time.Hour)
	bar := c.shift(t, "bar", start, c.eventAt.Add(4*time.Hour), 3)
	c.publish(t, c.eventAt)
	mustStatus(t, c.do(t, "PUT", "/api/v1/staffing/rates", map[string]any{"rates": []any{
		map[string]any{"role_id": c.roles["bar"], "hourly_minor": 1800, "currency": "USD"}}}), http.StatusOK)

	clk.set(start.Add(-10 * time.Minute))
	ana := c.staff(t, "Ana", true, []string{"bar"}, nil)
	ben := c.staff(t, "Ben", true, []string{"bar"}, nil)
	cal := c.staff(t, "Cal", false, []string{"bar"}, nil)
	for _, p := range []person{ana, cal} {
		mustCreated(t, c.do(t, "POST", "/api/v1/venues/"+c.venue+"/staffing/shifts/"+bar+"/assignments", map[string]any{"staff_id": p.id}))
	}

	// Ana offers her shift to any colleague.
	anaB := signIn(t, e.Env, c.slug, ana.email, "/portal/staffing/me")
	click(t, anaB, `#my-shifts form[action$="/swap"] button`)
	waitTrue(t, anaB.ctx, `(document.querySelector('#my-swaps [data-swap]')||{innerText:''}).innerText.includes('you asked any colleague')`, 10*time.Second)
	screenshot(t, anaB, "staffing-swap-asked")

	// Ben takes it.
	benB := signIn(t, e.Env, c.slug, ben.email, "/portal/staffing/me")
	waitTrue(t, benB.ctx, `(document.querySelector('#my-swaps')||{innerText:''}).innerText.includes('Ana asks you to take it')`, 10*time.Second)
	click(t, benB, `#my-swaps form[action$="/accept"] button`)
	waitTrue(t, benB.ctx, `(document.querySelector('#my-swaps')||{innerText:''}).innerText.includes('waiting for a manager')`, 10*time.Second)
	waitTrue(t, benB.ctx, `(document.querySelector('#my-swaps')||{innerText:''}).innerText.includes('you take it from Ana')`, 10*time.Second)
	screenshot(t, benB, "staffing-swap-taken")

	// The manager approves it on the event's page, then checks Cal in.
	mgr := signIn(t, e.Env, c.slug, "owner@"+c.slug+".test", "/portal/staffing/events/"+c.event+"/timesheets")
	waitTrue(t, mgr.ctx, `!!document.querySelector('#swaps form[action$="/approve"]')`, 10*time.Second)
	screenshot(t, mgr, "staffing-timesheet-swap-to-approve")
	click(t, mgr, `#swaps form[action$="/approve"] button`)
	waitTrue(t, mgr.ctx, `(document.querySelector('#swaps')||{innerText:''}).innerText.includes('approved')`, 10*time.Second)
	waitTrue(t, mgr.ctx, `!!document.querySelector('#timesheet tr[data-person="Ben"]') && !document.querySelector('#timesheet tr[data-person="Ana"]')`, 10*time.Second)
	click(t, mgr, `#timesheet tr[data-person="Cal"] form[action$="/check-in"] button`)
	waitTrue(t, mgr.ctx, `!!document.querySelector('#timesheet tr[data-person="Cal"] form[action$="/check-out"]')`, 10*time.Second)
	// 4 h 7 min later Cal is checked out: rounded to 4:00, at 18.00 an hour.
	clk.set(start.Add(-10*time.Minute + 4*time.Hour + 7*time.Minute))
	click(t, mgr, `#timesheet tr[data-person="Cal"] form[action$="/check-out"] button`)
	waitTrue(t, mgr.ctx, `(document.querySelector('#timesheet tr[data-person="Cal"]')||{innerText:''}).innerText.includes('4:00')`, 10*time.Second)
	if s := textOf(t, mgr, `#labour-cost`); !strings.Contains(s, "72.00") {
		t.Errorf("labour cost %q, want USD 72.00 (4 h at 18.00)", s)
	}
	screenshot(t, mgr, "staffing-timesheet")

	// Ben checks himself in from his page (his shift started 3 h 57 min ago).
	benB = signIn(t, e.Env, c.slug, ben.email, "/portal/staffing/me")
	click(t, benB, `#my-shifts form[action$="/check-in"] button`)
	waitTrue(t, benB.ctx, `(document.querySelector('#my-shifts')||{innerText:''}).innerText.includes('checked in')`, 10*time.Second)
	screenshot(t, benB, "staffing-my-shifts-checked-in")
}

func click(t *testing.T, b *chromeCtx, sel string) {
	t.Helper()
	if err := chromedp.Do(b.ctx, chromedp.WaitVisible(chromedp.CSS(sel)), chromedp.Click(chromedp.CSS(sel))); err != nil {
		t.Fatalf("click %s: %v", sel, err)
	}
}

func screenshot(t *testing.T, b *chromeCtx, name string) {
	t.Helper()
	apptest.Screenshot(t, b.ctx, name)
}

func textOf(t *testing.T, b *chromeCtx, sel string) string {
	t.Helper()
	return apptest.Text(t, b.ctx, sel)
}
