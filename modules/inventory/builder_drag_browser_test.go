package inventory_test

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/input"
	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"

	"marquee/app/apptest"
)

// In the seat-map builder, staff drag section B on the preview (a mouse on
// the desktop, a finger on a phone): it lands on the grid, the sections
// around it stay where they were, and once saved the server's seats of B
// have moved by exactly the dragged offset, A's not at all, and every seat
// is where the preview drew it.
func TestBrowserDragSectionInBuilder(t *testing.T) {
	// Serial: a browser test: one Chromium at a time is what 2 cores take.
	env, inv := startEnv(t)
	s := newShop(t, env, inv, "dragmap")
	host := env.HostURL(s.slug)
	rows := func(n, seats int) []map[string]any {
		var rs []map[string]any
		for r := 1; r <= n; r++ {
			rs = append(rs, map[string]any{"label": string(rune('0' + r)), "seats": seats})
		}
		return rs
	}
	// Each size drags B by whole grid steps (stepX, stepY of 12 units),
	// plus a little less than half a step, which the grid absorbs; on a
	// phone to the left, where the narrow screen has room.
	for _, size := range []struct {
		name         string
		w, h         int64
		phone        bool
		stepX, stepY int
	}{{"desktop", 1280, 900, false, 5, 3}, {"phone", 390, 844, true, -2, 4}} {
		t.Run(size.name, func(t *testing.T) {
			start := time.Date(2034, 3, 1, 19, 0, 0, 0, time.UTC).AddDate(0, 0, int(eventSeq.Add(1)))
			res := s.do(t, "POST", "/api/v1/venues/"+s.venue+"/events", map[string]any{"stage_id": s.stage, "title": "Drag Night " + size.name,
				"category": "concert", "status": "confirmed", "starts_at": start.Format(time.RFC3339), "ends_at": start.Add(3 * time.Hour).Format(time.RFC3339)})
			mustStatus(t, res, http.StatusCreated)
			var e struct{ ID string }
			res.JSON(t, &e)
			ev := e.ID
			s.configure(t, ev, map[string]any{
				"zones":  []map[string]any{{"name": "Stalls", "kind": "reserved"}},
				"tiers":  []map[string]any{{"name": "Stalls", "zone": "Stalls", "price": 4000, "currency": "EUR", "max_per_order": 8}},
				"quotas": map[string]int{"web": 14},
				"layout": map[string]any{"sections": []map[string]any{
					{"name": "A", "zone": "Stalls", "rows": rows(2, 4)}, {"name": "B", "zone": "Stalls", "rows": rows(2, 3)}}},
			})
			seatsBefore := serverSeats(t, s, ev)

			ctx := apptest.Browser(t)
			p := browserPage{t, ctx}
			if size.phone {
				p.do(chromedp.EmulateViewport(size.w, size.h, chromedp.EmulateScale(3), chromedp.EmulateMobile))
			} else {
				p.do(chromedp.EmulateViewport(size.w, size.h))
			}
			p.do(chromedp.Navigate(host+"/portal/login?next=/portal/inventory/"+ev+"/ticketing"),
				chromedp.WaitVisible(chromedp.CSS(`#login-form`)),
				chromedp.SendKeys(chromedp.CSS(`input[name=email]`), "owner@"+s.slug+".test"),
				chromedp.SendKeys(chromedp.CSS(`input[name=password]`), apptest.Password),
				chromedp.Submit(chromedp.CSS(`#login-form`)))
			p.wait(`#preview .sec-g[data-section="B"]`)
			p.until(`document.querySelectorAll('#preview .seat').length === 14`, "14 seats in the preview")
			// B starts where the server placed it, after A: 4 seats and the gap.
			if x := p.num(`Number(document.querySelector('#preview .sec-g[data-section="B"] .seat').getAttribute('data-x'))`); x != 4*12+36 {
				t.Fatalf("section B drawn at x %v", x)
			}
			p.do(chromedp.ScrollIntoView(chromedp.CSS(`#preview .sec-g[data-section="B"]`)))

			wantX, wantY := 84+12*size.stepX, 12*size.stepY
			dx, dy := float64(12*size.stepX+4), float64(12*size.stepY-5)
			scale := p.num(`document.getElementById('preview').getScreenCTM().a`)
			fromX := p.num(`(function(r){ return r.left + r.width / 2; })(document.querySelector('#preview .sec-g[data-section="B"] .sec-hit').getBoundingClientRect())`)
			fromY := p.num(`(function(r){ return r.top + r.height / 2; })(document.querySelector('#preview .sec-g[data-section="B"] .sec-hit').getBoundingClientRect())`)
			toX, toY := fromX+dx*scale, fromY+dy*scale
			if toX < 0 || toX >= float64(size.w) {
				t.Fatalf("the drag would end outside the viewport: %v of %d", toX, size.w)
			}
			if size.phone {
				p.do(touchDrag(fromX, fromY, toX, toY, 8))
			} else {
				p.do(chromedp.DragAndDropXY(fromX, fromY, toX, toY, 8))
			}
			p.until(fmt.Sprintf(`(function(l){ return l.sections[1].x === %d && l.sections[1].y === %d; })(seatMapBuilder.layout())`, wantX, wantY),
				fmt.Sprintf("B placed at %d, %d in the layout", wantX, wantY))
			if !p.truth(`(function(l){ return l.sections[0].x === 0 && l.sections[0].y === 0; })(seatMapBuilder.layout())`) {
				t.Fatalf("section A moved or was not pinned: %s", evalString(t, p, `JSON.stringify(seatMapBuilder.layout().sections[0])`))
			}
			if n := p.num(`document.querySelectorAll('#preview .seat.acc').length`); n != 0 {
				t.Fatalf("the drag toggled %v seats accessible", n)
			}
			if hint := p.text(`#drag-hint`); hint != fmt.Sprintf("Section B placed at x %d, y %d.", wantX, wantY) {
				t.Fatalf("hint %q", hint)
			}
			// The arrow keys move the focused section one grid step.
			p.do(chromedp.Focus(chromedp.CSS(`#preview .sec-g[data-section="A"]`)), chromedp.KeyEvent(kb.ArrowDown))
			p.until(`seatMapBuilder.layout().sections[0].y === 12`, "A one step down by keyboard")

			p.do(chromedp.ScrollIntoView(chromedp.CSS(`#preview`)))
			elementShot(t, ctx, `#builder-card`, "builder-drag-"+size.name)
			built := evalString(t, p, `JSON.stringify(seatMapBuilder.seats().map(function(s){ return [s.id, s.x, s.y]; }))`)
			p.do(chromedp.Click(chromedp.CSS(`#save`)))
			p.wait(`#saved`)

			after := serverSeats(t, s, ev)
			if len(after) != 14 {
				t.Fatalf("%d seats after saving", len(after))
			}
			for id, was := range seatsBefore {
				now, ok := after[id]
				if !ok {
					t.Fatalf("seat %s gone after the move", id)
				}
				want := [2]float64{was[0], was[1] + 12} // A: one step down
				if id[0] == 'B' {
					want = [2]float64{was[0] + float64(12*size.stepX), was[1] + float64(12*size.stepY)}
				}
				if now != want {
					t.Errorf("seat %s at %v, was %v, want %v", id, now, was, want)
				}
			}
			var drawn [][3]any
			if err := json.Unmarshal([]byte(built), &drawn); err != nil {
				t.Fatal(err)
			}
			for _, d := range drawn {
				now := after[d[0].(string)]
				if math.Abs(d[1].(float64)-now[0]) > 0.01 || math.Abs(d[2].(float64)-now[1]) > 0.01 {
					t.Errorf("seat %v: preview (%v, %v), server %v", d[0], d[1], d[2], now)
				}
			}
			// Reopened, the editor draws B where it was dropped.
			p.do(chromedp.Navigate(host + "/portal/inventory/" + ev + "/ticketing"))
			p.wait(`#preview .sec-g[data-section="B"]`)
			if x := p.num(`Number(document.querySelector('#preview [data-seat="B-1-1"]').getAttribute('data-x'))`); x != float64(wantX) {
				t.Fatalf("reopened, B-1-1 drawn at x %v", x)
			}
		})
	}

	// The server refuses a section placed absurdly far away, and keeps the map.
	ev := s.event(t, "Far Night")
	res := s.do(t, "PUT", "/api/v1/events/"+ev+"/inventory", map[string]any{
		"zones": []map[string]any{{"name": "Stalls", "kind": "reserved"}},
		"tiers": []map[string]any{{"name": "Stalls", "zone": "Stalls", "price": 4000, "currency": "EUR"}},
		"layout": map[string]any{"sections": []map[string]any{
			{"name": "A", "zone": "Stalls", "x": 1e9, "y": 0, "rows": rows(1, 2)}}},
	})
	if res.Status != http.StatusBadRequest || res.Code() != "invalid_layout" {
		t.Fatalf("a section at x 1e9: %d %s", res.Status, res.Body)
	}
	if n := s.count(t, `SELECT count(*) FROM inv_seats WHERE event_id = ?`, ev); n != 0 {
		t.Fatalf("a refused layout left %d seats", n)
	}
}

// serverSeats reads where the server placed each seat.
func serverSeats(t *testing.T, s *shop, ev string) map[string][2]float64 {
	t.Helper()
	res := s.do(t, "GET", "/api/v1/events/"+ev+"/seatmap", nil)
	mustStatus(t, res, http.StatusOK)
	var sm struct {
		Seats []struct {
			ID   string
			X, Y float64
		}
	}
	res.JSON(t, &sm)
	out := map[string][2]float64{}
	for _, st := range sm.Seats {
		out[st.ID] = [2]float64{st.X, st.Y}
	}
	return out
}

// touchDrag drags one finger from one point to another in steps (touch
// events; the page sees pointer events of type touch).
func touchDrag(fromX, fromY, toX, toY float64, steps int) chromedp.Action[chromedp.Void] {
	return chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		touch := func(typ input.DispatchTouchEventType, x, y float64) error {
			one, id := 1.0, 0.0
			p := input.DispatchTouchEventParams{Type: typ, TouchPoints: []*input.TouchPoint{{X: x, Y: y, RadiusX: &one, RadiusY: &one, Force: &one, ID: &id}}}
			if typ == input.DispatchTouchEventTypeTouchEnd {
				p.TouchPoints = []*input.TouchPoint{}
			}
			_, err := cdp.Call(ctx, t, input.DispatchTouchEvent, p)
			return err
		}
		if err := touch(input.DispatchTouchEventTypeTouchStart, fromX, fromY); err != nil {
			return err
		}
		for i := 1; i <= steps; i++ {
			f := float64(i) / float64(steps)
			if err := touch(input.DispatchTouchEventTypeTouchMove, fromX+(toX-fromX)*f, fromY+(toY-fromY)*f); err != nil {
				return err
			}
		}
		return touch(input.DispatchTouchEventTypeTouchEnd, toX, toY)
	})
}
