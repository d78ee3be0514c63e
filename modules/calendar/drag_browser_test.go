package calendar_test

import (
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"marquee/app/apptest"
)

type eventRow struct {
	StageID  string    `gorm:"column:stage_id"`
	StartsAt time.Time `gorm:"column:starts_at"`
	EndsAt   time.Time `gorm:"column:ends_at"`
	Version  int       `gorm:"column:version"`
}

func (c *chain) eventRow(t *testing.T, id string) eventRow {
	t.Helper()
	var r eventRow
	if err := c.env.App.DB.Raw(`SELECT stage_id, starts_at, ends_at, version FROM "`+c.t.Schema+`".cal_events WHERE id = ?`, id).Scan(&r).Error; err != nil {
		t.Fatal(err)
	}
	return r
}

// signIn opens path in a browser signed in as the chain's owner.
func (c *chain) signIn(t *testing.T, path string) (ctxDone func(sel string), do func(...chromedp.Action[chromedp.Void])) {
	t.Helper()
	ctx := apptest.Browser(t)
	c.browser = ctx
	err := chromedp.Do(ctx,
		chromedp.EmulateViewport(1280, 900),
		chromedp.Navigate(c.env.HostURL(c.slug)+"/portal/login?next="+url.QueryEscape(path)),
		chromedp.WaitVisible(chromedp.CSS(`#login-form`)),
		chromedp.SendKeys(chromedp.CSS(`input[name=email]`), "owner@"+c.slug+".test"),
		chromedp.SendKeys(chromedp.CSS(`input[name=password]`), apptest.Password),
		chromedp.Submit(chromedp.CSS(`#login-form`)),
	)
	if err != nil {
		t.Fatalf("sign in: %v", err)
	}
	return func(sel string) { t.Helper(); apptest.WaitVisible(t, ctx, sel) },
		func(a ...chromedp.Action[chromedp.Void]) {
			t.Helper()
			if err := chromedp.Do(ctx, a...); err != nil {
				t.Fatal(err)
			}
		}
}

// dragEvent drags an event's block with real mouse events so that the
// block's top edge (its occupied window's start: the show less its setup)
// lands at minutes past 06:00 in the day cell (lane, day) of the week grid.
func dragEvent(t *testing.T, c *chain, eventID string, lane, day, minutes int) {
	t.Helper()
	type point struct{ FromX, FromY, ToX, ToY float64 }
	p, err := chromedp.Run(c.browser, chromedp.Evaluate[point](`(() => {
		document.getElementById('week-grid').scrollIntoView({block: 'start'});
		const b = document.querySelector('#week-grid a.blk[data-id="`+eventID+`"]').getBoundingClientRect();
		const cell = document.querySelectorAll('#week-grid .lane')[`+itoa(lane)+`].querySelectorAll('.cell')[`+itoa(day)+`].getBoundingClientRect();
		const grab = 4; // pressed 4 px below the block's top edge
		return {FromX: b.left + b.width / 2, FromY: b.top + grab,
		        ToX: cell.left + cell.width / 2, ToY: cell.top + cell.height * `+itoa(minutes)+` / 1440 + grab};
	})()`))
	if err != nil {
		t.Fatalf("drag coordinates: %v", err)
	}
	acts := []chromedp.Action[chromedp.Void]{
		chromedp.MouseEvent(chromedp.MousePressed, p.FromX, p.FromY, chromedp.ButtonLeft, chromedp.ClickCount(1)),
	}
	const steps = 8
	for i := 1; i <= steps; i++ {
		x := p.FromX + (p.ToX-p.FromX)*float64(i)/steps
		y := p.FromY + (p.ToY-p.FromY)*float64(i)/steps
		acts = append(acts, chromedp.MouseEvent(chromedp.MouseMoved, x, y, chromedp.ButtonLeft))
	}
	acts = append(acts, chromedp.MouseEvent(chromedp.MouseReleased, p.ToX, p.ToY, chromedp.ButtonLeft, chromedp.ClickCount(1)))
	if err := chromedp.Do(c.browser, acts...); err != nil {
		t.Fatalf("drag: %v", err)
	}
}

func itoa(n int) string { return strconv.Itoa(n) }

// In a real browser: an event dragged on the week grid to another day,
// time and stage is moved by the server (the database decides, as for the
// form); dragged onto a booked window it is refused in words, naming the
// event in the way, and drawn where it still is.
func TestBrowserDragToMove(t *testing.T) {
	env, mod := startEnv(t)
	c := newChain(t, env, mod, "drag")
	ny, _ := time.LoadLocation("America/New_York")
	moving := c.createEvent(t, c.venue, map[string]any{"title": "Drag Me", "category": "concert", "stage_id": c.stageA,
		"starts_at": localAt(t, 10, 20, 0), "ends_at": localAt(t, 10, 23, 0), "setup_minutes": 60, "teardown_minutes": 30, "status": "confirmed"})
	c.createEvent(t, c.venue, map[string]any{"title": "Thursday Headliner", "category": "concert", "stage_id": c.stageB,
		"starts_at": localAt(t, 12, 20, 0), "ends_at": localAt(t, 12, 23, 0), "setup_minutes": 60, "teardown_minutes": 30, "status": "on_sale"})
	wait, do := c.signIn(t, "/portal/venues/"+c.venue+"/calendar?week=2031-06-09")
	wait(`#week-grid a.blk.drag[data-id="` + moving.ID + `"]`)

	// Tuesday on the main stage → Wednesday 19:00 on the club room: the
	// block's top (setup from 18:00) goes to 12 hours past 06:00.
	dragEvent(t, c, moving.ID, 1, 2, 12*60)
	wait(`#flash`)
	if f := apptest.Text(t, c.browser, `#flash`); f != "Event moved." {
		t.Fatalf("flash after the drag: %q", f)
	}
	r := c.eventRow(t, moving.ID)
	if r.StageID != c.stageB || !r.StartsAt.Equal(time.Date(2031, 6, 11, 19, 0, 0, 0, ny)) ||
		!r.EndsAt.Equal(time.Date(2031, 6, 11, 22, 0, 0, 0, ny)) || r.Version != 2 {
		t.Fatalf("after the drag: %+v", r)
	}
	if a := apptest.Text(t, c.browser, `#agenda`); !strings.Contains(a, "Wed 11 Jun 19:00–22:00") {
		t.Fatalf("agenda after the drag: %q", a)
	}
	apptest.Screenshot(t, c.browser, "calendar-drag-moved")

	// Onto Thursday's headliner (same stage, 20:30): refused in words, the
	// event stays on Wednesday, in the database and on the page.
	dragEvent(t, c, moving.ID, 1, 3, 13*60+30)
	wait(`#form-error`)
	if a := apptest.Text(t, c.browser, `#form-error`); !strings.Contains(a, "“Drag Me” was not moved") ||
		!strings.Contains(a, "Schedule conflict") || !strings.Contains(a, "Thursday Headliner") {
		t.Fatalf("refused drag: %q", a)
	}
	if got := c.eventRow(t, moving.ID); got != r {
		t.Fatalf("a refused drag changed the event: %+v, was %+v", got, r)
	}
	cell, err := chromedp.Run(c.browser, chromedp.Evaluate[string](`document.querySelector('#week-grid a.blk[data-id="`+moving.ID+`"]').closest('.cell').dataset.date`))
	if err != nil || cell != "2031-06-11" {
		t.Fatalf("the refused event is drawn on %q (%v), want Wednesday", cell, err)
	}
	apptest.Screenshot(t, c.browser, "calendar-drag-refused")

	// A press without a move is a click: it opens the event, moving nothing.
	do(chromedp.Click(chromedp.CSS(`#week-grid a.blk[data-id="` + moving.ID + `"]`)))
	wait(`#event-form`)
	if got := c.eventRow(t, moving.ID); got != r {
		t.Fatalf("a click moved the event: %+v", got)
	}
}
