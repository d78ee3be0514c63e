package calendar_test

import (
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"marquee/app/apptest"
)

// In a real browser: the event form sets the promoter and the on-sale
// schedule (venue time, stored UTC), both shown on the event page and on
// the week; a schedule that does not hold together is refused beside the
// form. On the week, a 2nd hold's confirm is refused in words and its
// Challenge gives the 1st hold a deadline the agenda shows.
func TestBrowserPromoterScheduleAndChallenge(t *testing.T) {
	env, mod := startEnv(t)
	c := newChain(t, env, mod, "sched")
	ny, _ := time.LoadLocation("America/New_York")
	e := c.createEvent(t, c.venue, map[string]any{"title": "Summer Opener", "category": "concert", "stage_id": c.stageA,
		"starts_at": localAt(t, 13, 20, 0), "ends_at": localAt(t, 13, 23, 0), "setup_minutes": 60, "teardown_minutes": 30, "status": "confirmed"})
	first := c.createHold(t, map[string]any{"stage_id": c.stageB, "title": "Quiet Quartet", "promoter": "Jazz Nights LLC",
		"starts_at": localAt(t, 14, 20, 0), "ends_at": localAt(t, 14, 22, 0)})
	second := c.createHold(t, map[string]any{"stage_id": c.stageB, "title": "Loud Trio",
		"starts_at": localAt(t, 14, 20, 0), "ends_at": localAt(t, 14, 22, 0)})
	wait, do := c.signIn(t, "/portal/venues/"+c.venue+"/events/"+e.ID)
	wait(`#event-form`)
	save := func(want string, values map[string]string) {
		t.Helper()
		var acts []chromedp.Action[chromedp.Void]
		for name, v := range values {
			acts = append(acts, chromedp.SetValue(chromedp.CSS(`#event-form [name=`+name+`]`), v))
		}
		acts = append(acts, chromedp.Evaluate[chromedp.Void](`document.querySelectorAll('#form-error, .flash').forEach(e => e.remove())`),
			chromedp.Click(chromedp.CSS(`#save-event`)))
		do(acts...)
		wait(want)
	}
	// A presale that runs past the on-sale is refused beside the form.
	save(`#form-error`, map[string]string{"promoter": "Live Nation", "status": "on_sale", "on_sale": "2031-06-06T10:00",
		"presale_starts": "2031-06-04T10:00", "presale_ends": "2031-06-07T10:00", "presale_code": "fanclub"})
	if a := apptest.Text(t, c.browser, `#form-error`); !strings.Contains(a, "presale ends by the on-sale") {
		t.Fatalf("refused schedule: %q", a)
	}
	save(`.flash`, map[string]string{"presale_ends": "2031-06-05T22:00"})
	summary := apptest.Text(t, c.browser, `#event-summary`)
	for _, want := range []string{"Promoter: Live Nation", "Public on-sale Fri 6 Jun 2031 10:00 EDT", "Presale Wed 4 Jun 10:00 – Thu 5 Jun 22:00, code FANCLUB"} {
		if !strings.Contains(summary, want) {
			t.Fatalf("event summary lacks %q: %q", want, summary)
		}
	}
	var stored struct {
		Promoter string    `gorm:"column:promoter"`
		OnSale   time.Time `gorm:"column:on_sale_at"`
		Code     string    `gorm:"column:presale_code"`
	}
	if err := env.App.DB.Raw(`SELECT promoter, on_sale_at, presale_code FROM "`+c.t.Schema+`".cal_events WHERE id = ?`, e.ID).Scan(&stored).Error; err != nil {
		t.Fatal(err)
	}
	if stored.Promoter != "Live Nation" || !stored.OnSale.Equal(time.Date(2031, 6, 6, 14, 0, 0, 0, time.UTC)) || stored.Code != "FANCLUB" {
		t.Fatalf("stored: %+v (on-sale 10:00 New York is 14:00 UTC)", stored)
	}
	_ = ny
	apptest.Screenshot(t, c.browser, "calendar-event-schedule")

	// The week shows the promoter and the holds; the 2nd hold's confirm is
	// refused naming the 1st, and its challenge gives the 1st a deadline.
	do(chromedp.Click(chromedp.CSS(`#back-to-week`)))
	wait(`#agenda`)
	if a := apptest.Text(t, c.browser, `#agenda`); !strings.Contains(a, "Promoter: Live Nation") || !strings.Contains(a, "Promoter: Jazz Nights LLC") {
		t.Fatalf("agenda lacks the promoters: %q", a)
	}
	do(chromedp.Evaluate[chromedp.Void](`window.confirm = () => true`),
		chromedp.Click(chromedp.CSS(`#agenda-`+second.ID+` form[action$="/confirm"] button`)))
	wait(`#form-error`)
	if a := apptest.Text(t, c.browser, `#form-error`); !strings.Contains(a, "Quiet Quartet") || !strings.Contains(a, "challenge it") {
		t.Fatalf("confirm of the 2nd hold: %q", a)
	}
	if got := c.hold(t, second.ID); got.Status != "active" {
		t.Fatalf("the refused confirm changed the hold: %+v", got)
	}
	if n, err := chromedp.Run(c.browser, chromedp.Evaluate[int](`document.querySelectorAll('#agenda-`+first.ID+` .challenge-hold').length`)); err != nil || n != 0 {
		t.Fatalf("the 1st hold offers a challenge: %d %v", n, err)
	}
	do(chromedp.Evaluate[chromedp.Void](`window.confirm = () => true`),
		chromedp.Click(chromedp.CSS(`#agenda-`+second.ID+` .challenge-hold`)))
	wait(`#flash`)
	if f := apptest.Text(t, c.browser, `#flash`); !strings.Contains(f, "Challenge sent") {
		t.Fatalf("flash after the challenge: %q", f)
	}
	row := c.holdRow(t, first.ID)
	if row.By == nil || row.By.String() != second.ID || row.Deadline == nil {
		t.Fatalf("the 1st hold after the challenge: %+v", row)
	}
	note := apptest.Text(t, c.browser, `#agenda-`+first.ID+` .challenge-note`)
	if want := row.Deadline.In(ny).Format("Mon 2 Jan 15:04"); !strings.Contains(note, "confirm or release by "+want) {
		t.Fatalf("challenge note %q, want the deadline %s", note, want)
	}
	apptest.Screenshot(t, c.browser, "calendar-challenge")
}
