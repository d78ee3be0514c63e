package inventory_test

import (
	"context"
	"encoding/json"
	"math"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/google/uuid"

	"marquee/app/apptest"
)

// In a real browser, at desktop and phone sizes: staff build a small seat
// map in the editor (two sections, curved rows with an aisle, two
// accessible seats, letters and right-to-left numbering), price it as money,
// save; the event goes on sale; a buyer holds and pays a seat of the new map
// on the storefront; the editor then shows that seat locked, and refuses in
// words (keeping what was typed) a change that would remove it.
func TestBrowserBuildSeatMapAndSell(t *testing.T) {
	// Serial: a browser test: one Chromium at a time is what 2 cores take.
	env, inv := startEnv(t)
	s := newShop(t, env, inv, "builder")
	host := env.HostURL(s.slug)
	for _, size := range []struct {
		name  string
		w, h  int64
		phone bool
	}{{"desktop", 1280, 900, false}, {"phone", 390, 844, true}} {
		t.Run(size.name, func(t *testing.T) {
			start := time.Date(2033, 3, 1, 19, 0, 0, 0, time.UTC).AddDate(0, 0, int(eventSeq.Add(1)))
			res := s.do(t, "POST", "/api/v1/venues/"+s.venue+"/events", map[string]any{"stage_id": s.stage, "title": "Built Night " + size.name,
				"category": "concert", "status": "confirmed", "starts_at": start.Format(time.RFC3339), "ends_at": start.Add(3 * time.Hour).Format(time.RFC3339)})
			mustStatus(t, res, http.StatusCreated)
			var e struct{ ID string }
			res.JSON(t, &e)
			ev := e.ID

			ctx := apptest.Browser(t)
			p := browserPage{t, ctx}
			if size.phone {
				p.do(chromedp.EmulateViewport(size.w, size.h, chromedp.EmulateScale(3), chromedp.EmulateMobile))
			} else {
				p.do(chromedp.EmulateViewport(size.w, size.h))
			}
			p.do(chromedp.Navigate(host+"/portal/login?next=/portal/inventory/"+ev),
				chromedp.WaitVisible(chromedp.CSS(`#login-form`)),
				chromedp.SendKeys(chromedp.CSS(`input[name=email]`), "owner@"+s.slug+".test"),
				chromedp.SendKeys(chromedp.CSS(`input[name=password]`), apptest.Password),
				chromedp.Submit(chromedp.CSS(`#login-form`)))
			p.wait(`#configure-link`)
			p.tap(size.phone, `#configure-link`)
			p.wait(`#editor`)
			// set types into a field as a person would: clear it, type, leave it.
			set := func(sel, value string) {
				t.Helper()
				p.truth(`(document.querySelector(` + jsString(sel) + `).value = '') === ''`)
				p.do(chromedp.SendKeys(chromedp.CSS(sel), value))
				p.truth(`(function(el){ el.dispatchEvent(new Event('input', {bubbles:true})); el.dispatchEvent(new Event('change', {bubbles:true})); return true; })(document.querySelector(` + jsString(sel) + `))`)
			}
			choose := func(sel, value string) {
				t.Helper()
				p.truth(`(function(el){ el.value = ` + jsString(value) + `; el.dispatchEvent(new Event('change', {bubbles:true})); return true; })(document.querySelector(` + jsString(sel) + `))`)
			}
			set(`#zones .zone-row:nth-child(1) input[name=zone_name]`, "Stalls")
			choose(`#zones .zone-row:nth-child(1) select[name=zone_kind]`, "reserved")
			p.tap(size.phone, `#add-section`)
			p.tap(size.phone, `#add-section`)
			a, b := `.section-card[data-index="0"] `, `.section-card[data-index="1"] `
			set(a+`.b-rows`, "3")
			set(a+`.b-seats`, "8")
			choose(a+`.b-shape`, "curved")
			set(a+`.b-curve`, "18")
			set(a+`.b-aisles`, "4")
			set(a+`.b-accessible`, "1-1, 1-2")
			set(b+`.b-rows`, "2")
			set(b+`.b-seats`, "6")
			choose(b+`.b-labels`, "letters")
			set(b+`.b-first`, "A")
			choose(b+`.b-dir`, "rtl")
			p.until(`document.querySelectorAll('#preview .seat').length === 36`, "36 seats in the preview")
			if n := p.num(`document.querySelectorAll('#preview .seat.acc').length`); n != 2 {
				t.Fatalf("%v accessible seats in the preview", n)
			}
			// An aisle after seat 4 in section A: seats 4 and 5 are two seat widths apart.
			if gap := p.num(`document.querySelector('[data-seat="A-2-5"]').getAttribute('data-x') - document.querySelector('[data-seat="A-2-4"]').getAttribute('data-x')`); gap != 24 {
				t.Fatalf("aisle gap %v", gap)
			}
			set(`#tiers .tier-row:nth-child(1) input[name=tier_name]`, "Stalls")
			set(`#tiers .tier-row:nth-child(1) input[name=tier_zone]`, "Stalls")
			set(`#tiers .tier-row:nth-child(1) input[name=tier_price]`, "45.50")
			set(`input[name=quota_web]`, "36")
			if w := p.num(`document.documentElement.scrollWidth`); w > float64(size.w) {
				t.Fatalf("the editor is %v px wide at %d px", w, size.w)
			}
			p.do(chromedp.ScrollIntoView(chromedp.CSS(`#preview`)))
			apptest.Screenshot(t, ctx, "ticketing-builder-"+size.name)
			elementShot(t, ctx, `#builder-card`, "ticketing-builder-card-"+size.name)
			built := evalString(t, p, `JSON.stringify(seatMapBuilder.seats().map(function(s){ return [s.id, s.x, s.y, s.accessible]; }))`)
			p.do(chromedp.Click(chromedp.CSS(`#save`)))
			p.wait(`#saved`)

			// What the server made of it is what the preview drew.
			res = s.do(t, "GET", "/api/v1/events/"+ev+"/seatmap", nil)
			mustStatus(t, res, http.StatusOK)
			var sm struct {
				Seats []struct {
					ID         string
					X, Y       float64
					Accessible bool
				}
			}
			res.JSON(t, &sm)
			var drawn [][4]any
			if err := json.Unmarshal([]byte(built), &drawn); err != nil {
				t.Fatal(err)
			}
			if len(drawn) != len(sm.Seats) || len(sm.Seats) != 36 {
				t.Fatalf("preview drew %d seats, the server made %d", len(drawn), len(sm.Seats))
			}
			for i, st := range sm.Seats {
				d := drawn[i]
				if d[0] != st.ID || math.Abs(d[1].(float64)-st.X) > 0.01 || math.Abs(d[2].(float64)-st.Y) > 0.01 || d[3] != st.Accessible {
					t.Fatalf("seat %d: preview %v, server %s (%v, %v) accessible %v", i, d, st.ID, st.X, st.Y, st.Accessible)
				}
			}
			if n := s.count(t, `SELECT count(*) FROM inv_tiers WHERE event_id = ? AND price_minor = 4550 AND currency = 'EUR'`, ev); n != 1 {
				t.Fatal("the tier's 45.50 was not stored as 4550 EUR minor units")
			}
			if n := s.count(t, `SELECT count(*) FROM inv_seats WHERE event_id = ? AND id IN ('B-A-6', 'B-B-1')`, ev); n != 2 {
				t.Fatal("section B's rows are not lettered")
			}

			// On sale, then a buyer takes seat A-2-3 of the new map.
			res = s.do(t, "PATCH", "/api/v1/venues/"+s.venue+"/events/"+ev, map[string]any{"status": "on_sale"})
			mustStatus(t, res, http.StatusOK)
			// The hold path reads the calendar's status through a cache of a
			// few seconds: wait until it says on sale.
			apptest.Eventually(t, 10*time.Second, "the event on sale for holds", func() bool {
				info, err := inv.Service().Event(context.Background(), s.t, uuid.MustParse(ev))
				return err == nil && info.Status == "on_sale"
			})
			buyerCtx := apptest.Browser(t)
			bp := browserPage{t, buyerCtx}
			if size.phone {
				bp.do(chromedp.EmulateViewport(size.w, size.h, chromedp.EmulateScale(3), chromedp.EmulateMobile))
			} else {
				bp.do(chromedp.EmulateViewport(size.w, size.h))
			}
			bp.do(chromedp.Navigate(host + "/events/" + ev))
			bp.wait(`#seatmap svg`)
			bp.until(`document.querySelectorAll('#seatmap .seat').length === 36`, "the new map on the storefront")
			bp.tap(size.phone, `.sec-btn[data-section="A"]`)
			bp.until(`document.querySelector('.sec-btn[data-section="A"]').getAttribute('aria-pressed') === 'true'`, "section A chosen")
			bp.tap(size.phone, `#seat-A-2-3`)
			bp.until(`document.querySelectorAll('#seatmap .seat.selected').length === 1`, "a seat picked")
			apptest.Screenshot(t, buyerCtx, "ticketing-storefront-"+size.name)
			bp.tap(size.phone, `#hold-seats`)
			bp.wait(`#hold`)
			bp.do(chromedp.SendKeys(chromedp.CSS(`#checkout input[name=email]`), "builder-"+size.name+"@example.com"),
				chromedp.SendKeys(chromedp.CSS(`#checkout input[name=name]`), "Ada Lovelace"))
			bp.tap(size.phone, `#to-payment`)
			bp.wait(`#pay-test`)
			bp.tap(size.phone, `#pay-test`)
			bp.wait(`#tickets`)
			if st := bp.text(`#order-status`); st != "paid" {
				t.Fatalf("order status %q", st)
			}
			if body := bp.text(`main`); !strings.Contains(body, "Section A, Row 2, Seat 3") || !strings.Contains(body, "EUR 45.50") {
				t.Fatalf("order page: %s", body)
			}
			if st := s.seatState(t, ev, "A-2-3"); st != "sold" {
				t.Fatalf("seat A-2-3 is %s after paying", st)
			}
			if !strings.Contains(s.storePage(t, ev), `aria-label="Section A, Row 1, Seat 1 (wheelchair accessible), EUR 45.50"`) {
				t.Fatal("the storefront does not name the accessible seat")
			}

			// The editor shows the sold seat locked and says what may change.
			p.do(chromedp.Navigate(host + "/portal/inventory/" + ev + "/ticketing"))
			p.wait(`#after-sales`)
			p.until(`document.querySelector('#preview [data-seat="A-2-3"]').classList.contains('locked')`, "the sold seat locked in the builder")
			if n := p.num(`document.querySelectorAll('#preview .seat.locked').length`); n != 1 {
				t.Fatalf("%v seats locked, want the one sold", n)
			}
			if note := p.text(`#after-sales`); !strings.Contains(note, "removing or renumbering a sold seat") {
				t.Fatalf("after-sales note %q", note)
			}
			if !p.truth(`document.querySelector('#tiers .tier-row:nth-child(1) input[name=tier_price]').readOnly`) {
				t.Fatal("the sold tier's price is editable")
			}
			p.do(chromedp.ScrollIntoView(chromedp.CSS(`#preview`)))
			apptest.Screenshot(t, ctx, "ticketing-locked-"+size.name)
			elementShot(t, ctx, `#builder-card`, "ticketing-locked-card-"+size.name)

			// Removing row 2 of section A would remove the sold seat: refused in
			// words, the form keeps the change, nothing moves.
			set(a+`.b-rows`, "1")
			p.until(`document.querySelectorAll('#preview .seat').length === 20`, "row 2 and 3 gone from the preview")
			p.do(chromedp.Click(chromedp.CSS(`#save`)))
			p.wait(`#form-error`)
			if msg := p.text(`#form-error`); !strings.Contains(msg, "Section A, Row 2, Seat 3 is sold, so it cannot be removed or renumbered") {
				t.Fatalf("refusal %q", msg)
			}
			if !p.truth(`location.search.indexOf('form=') >= 0`) || p.num(`document.querySelectorAll('#preview .seat').length`) != 20 ||
				!p.truth(`document.querySelector('.section-card[data-index="0"] .b-rows').value === '1'`) {
				t.Fatal("the refused form did not come back as typed")
			}
			if n := s.count(t, `SELECT count(*) FROM inv_seats WHERE event_id = ?`, ev); n != 36 {
				t.Fatalf("%d seats after a refused change", n)
			}
			apptest.Screenshot(t, ctx, "ticketing-refused-"+size.name)

			// A safe change after sales: another row in section B.
			p.do(chromedp.Navigate(host + "/portal/inventory/" + ev + "/ticketing"))
			p.wait(`#after-sales`)
			set(b+`.b-rows`, "3")
			p.until(`document.querySelectorAll('#preview .seat').length === 42`, "a third row in section B")
			p.do(chromedp.Click(chromedp.CSS(`#save`)))
			p.wait(`#saved`)
			if n := s.count(t, `SELECT count(*) FROM inv_seats WHERE event_id = ?`, ev); n != 42 {
				t.Fatalf("%d seats after adding a row", n)
			}
			if st := s.seatState(t, ev, "A-2-3"); st != "sold" {
				t.Fatalf("seat A-2-3 is %s after adding a row", st)
			}
		})
	}
}

// elementShot saves a screenshot of one element (the full page of a phone
// is too tall to look at).
func elementShot(t *testing.T, ctx context.Context, sel, name string) {
	t.Helper()
	png, err := chromedp.Run(ctx, chromedp.Screenshot(chromedp.CSS(sel)))
	if err != nil {
		t.Fatalf("screenshot of %s: %v", sel, err)
	}
	path := filepath.Join(os.TempDir(), "marquee-screenshots", name+".png")
	if err := os.WriteFile(path, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot: %s", path)
}

func (s *shop) storePage(t *testing.T, ev string) string {
	t.Helper()
	res := s.env.Do(t, "GET", s.slug, "/events/"+ev, "", nil, "Accept", "text/html")
	mustStatus(t, res, http.StatusOK)
	return string(res.Body)
}

func jsString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

func evalString(t *testing.T, p browserPage, js string) string {
	t.Helper()
	v, err := chromedp.Run(p.ctx, chromedp.Evaluate[string](js))
	if err != nil {
		t.Fatalf("eval %s: %v", js, err)
	}
	return v
}
