package staffing_test

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/google/uuid"

	"marquee/app"
	"marquee/app/apptest"
	"marquee/modules/calendar"
	"marquee/modules/staffing"
)

func signIn(t *testing.T, env *apptest.Env, slug, email, next string) *chromeCtx {
	t.Helper()
	ctx := apptest.Browser(t)
	apptest.WatchEventStreams(t, ctx)
	err := chromedp.Do(ctx,
		chromedp.Navigate(env.HostURL(slug)+"/portal/login?next="+url.QueryEscape(next)),
		chromedp.WaitVisible(chromedp.CSS(`#login-form`)),
		chromedp.SendKeys(chromedp.CSS(`input[name=email]`), email),
		chromedp.SendKeys(chromedp.CSS(`input[name=password]`), apptest.Password),
		chromedp.Submit(chromedp.CSS(`#login-form`)),
	)
	if err != nil {
		t.Fatalf("sign in %s: %v", email, err)
	}
	return &chromeCtx{ctx}
}

// In a real browser, on two server instances: the manager's coverage grid
// shows each role hour by hour with short hours in red and the gap that
// ticket sales made; a staff member's "my shifts" page, open on instance B,
// shows a move the manager makes through instance A within a second, and
// confirming from the page works.
func TestBrowserCoverageGridAndLiveShifts(t *testing.T) {
	e := startEnv(t, nil)
	// Instance B: another App on the same database and Redis.
	b := apptest.Start(t, dbURL, apptest.Options{Modules: []app.Module{calendar.New(), &fakeFacts{sold: map[uuid.UUID]int{}}, staffing.New()}})
	c := newChain(t, e, "grid")
	mustStatus(t, c.do(t, "PUT", "/api/v1/events/"+c.event+"/staffing/requirements", map[string]any{"requirements": []any{
		map[string]any{"role_id": c.roles["security"], "rule": "ratio", "per_attendees": 100, "minimum": 2},
		map[string]any{"role_id": c.roles["bar"], "rule": "fixed", "fixed_count": 2},
		map[string]any{"role_id": c.roles["medic"], "rule": "fixed", "fixed_count": 1},
	}}), http.StatusOK)
	sec := c.shift(t, "security", c.eventAt.Add(-time.Hour), c.eventAt.Add(3*time.Hour), 2)
	early := c.shift(t, "bar", c.eventAt.Add(-time.Hour), c.eventAt.Add(90*time.Minute), 1)
	late := c.shift(t, "bar", c.eventAt.Add(90*time.Minute), c.eventAt.Add(4*time.Hour), 2)
	for _, sh := range []string{sec, sec} {
		p := c.staff(t, "guard", false, []string{"security"}, nil)
		mustStatus(t, c.do(t, "POST", "/api/v1/venues/"+c.venue+"/staffing/shifts/"+sh+"/assignments", map[string]any{"staff_id": p.id}), http.StatusCreated)
	}
	kim := c.staff(t, "kim", true, []string{"bar"}, nil)
	for _, sh := range []string{early, late} {
		p := c.staff(t, "barkeep", false, []string{"bar"}, nil)
		mustStatus(t, c.do(t, "POST", "/api/v1/venues/"+c.venue+"/staffing/shifts/"+sh+"/assignments", map[string]any{"staff_id": p.id}), http.StatusCreated)
	}
	kimShift := c.shift(t, "bar", c.eventAt.Add(3*time.Hour), c.eventAt.Add(3*time.Hour+20*time.Minute), 1)
	a := decode[staffing.Assignment](t, c.do(t, "POST", "/api/v1/venues/"+c.venue+"/staffing/shifts/"+kimShift+"/assignments", map[string]any{"staff_id": kim.id}).Body)
	c.publish(t, c.eventAt)
	e.facts.set(c.event, 540) // security: 1 per 100 → 6, two on shift
	mustStatus(t, c.do(t, "POST", "/api/v1/events/"+c.event+"/staffing/requirements/recompute", nil), http.StatusOK)

	day := c.eventAt.In(newYork).Format(time.DateOnly)
	mgr := signIn(t, e.Env, c.slug, "owner@"+c.slug+".test", "/portal/staffing?date="+day)
	apptest.WaitVisible(t, mgr.ctx, `table.grid`)
	if s := apptest.Text(t, mgr.ctx, `#night-gap`); !strings.Contains(s, "short") {
		t.Errorf("night summary %q", s)
	}
	secRow := apptest.Text(t, mgr.ctx, `tr[data-role=security]`)
	if !strings.Contains(secRow, "4 from sales") {
		t.Errorf("security row %q lacks the gap from sales", secRow)
	}
	short, err := chromedp.Run(mgr.ctx, chromedp.Evaluate[int](`document.querySelectorAll('tr[data-role=security] td.short').length`))
	if err != nil {
		t.Fatal(err)
	}
	if short == 0 {
		t.Error("no short (red) hours for security")
	}
	apptest.Screenshot(t, mgr.ctx, "staffing-coverage-grid")

	// Kim's page on instance B.
	staff := signIn(t, b, c.slug, kim.email, "/portal/staffing/me")
	apptest.WaitVisible(t, staff.ctx, `#my-shifts`)
	waitTrue(t, staff.ctx, apptest.StreamOpen, 10*time.Second)
	before := apptest.Text(t, staff.ctx, `#my-shifts .when`)
	apptest.Screenshot(t, staff.ctx, "staffing-my-shifts-before")
	// The manager moves Kim's shift half an hour later, through instance A.
	moved := c.eventAt.Add(3*time.Hour + 30*time.Minute)
	mustStatus(t, c.do(t, "PATCH", "/api/v1/venues/"+c.venue+"/staffing/shifts/"+kimShift, map[string]any{
		"starts_at": moved.UTC().Format(time.RFC3339), "ends_at": moved.Add(25 * time.Minute).UTC().Format(time.RFC3339)}), http.StatusOK)
	want := moved.In(newYork).Format("15:04")
	took := apptest.Eventually(t, time.Second, "the moved shift on instance B's page", func() bool {
		s, err := chromedp.Run(staff.ctx, chromedp.Evaluate[string](`(document.querySelector('#my-shifts .when')||{}).innerText||''`))
		return err == nil && strings.Contains(s, " "+want+"–")
	})
	t.Logf("shift moved from %q; instance B's page showed %s after %v", before, want, took)
	apptest.Screenshot(t, staff.ctx, "staffing-my-shifts-moved")
	// Confirm from the page.
	if err := chromedp.Do(staff.ctx, chromedp.Click(chromedp.CSS(`[data-assignment="`+a.ID.String()+`"] form button`))); err != nil {
		t.Fatal(err)
	}
	waitTrue(t, staff.ctx, `(document.querySelector('.st')||{}).innerText === 'confirmed'`, 10*time.Second)
	apptest.Screenshot(t, staff.ctx, "staffing-my-shifts-confirmed")
}

type chromeCtx struct{ ctx context.Context }

func waitTrue(t *testing.T, ctx context.Context, expr string, within time.Duration) {
	t.Helper()
	apptest.Eventually(t, within, expr, func() bool {
		ok, err := chromedp.Run(ctx, chromedp.Evaluate[bool](expr))
		return err == nil && ok
	})
}
