package ops_test

import (
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/google/uuid"

	"marquee/app"
	"marquee/app/apptest"
	"marquee/modules/calendar"
	"marquee/modules/ops"
	"marquee/modules/staffing"
	"marquee/policies"
)

// On a phone (390 px): door staff report an incident with a photo from the
// dashboard's form; the photo is uploaded and shows in the feed; the
// staffing card shows who is missing tonight.
func TestBrowserPhoneReportWithPhoto(t *testing.T) {
	mod := ops.New()
	e := &env{Env: apptest.Start(t, dbURL, apptest.Options{Modules: []app.Module{calendar.New(), staffing.New(),
		&fakeDoor{zones: map[uuid.UUID][]app.ZoneAttendance{}}, mod}}), mod: mod}
	c := newChain(t, e, "phone")
	role := c.id(t, c.do(t, "POST", "/api/v1/staffing/roles", map[string]any{"key": "security", "name": "Security", "signup": "approve"}))
	mustStatus(t, c.do(t, "PUT", "/api/v1/events/"+c.event+"/staffing/requirements", map[string]any{"requirements": []any{
		map[string]any{"role_id": role, "rule": "fixed", "fixed_count": 4}}}), http.StatusOK)
	c.push(t, map[string]any{"zone": "Floor", "source": "manual", "count": 48})
	e.User(t, c.t, "door@"+c.slug+".test", policies.RoleDoorStaff, c.venue)
	photo := filepath.Join(t.TempDir(), "barrier.png")
	if err := os.WriteFile(photo, pngPhoto(t), 0o644); err != nil {
		t.Fatal(err)
	}

	ctx := signIn(t, e.Env, c.slug, "door@"+c.slug+".test", "/portal/ops/events/"+c.event)
	if err := chromedp.Do(ctx, chromedp.EmulateViewport(390, 844, chromedp.EmulateMobile)); err != nil {
		t.Fatal(err)
	}
	apptest.WaitVisible(t, ctx, `#zones .zone`)
	err := chromedp.Do(ctx,
		chromedp.Click(chromedp.CSS(`#report-box summary`)),
		chromedp.SetValue(chromedp.CSS(`#report-form select[name=category]`), "facilities"),
		chromedp.SendKeys(chromedp.CSS(`#report-form input[name=zone]`), "Floor"),
		chromedp.SendKeys(chromedp.CSS(`#report-form textarea[name=description]`), "Barrier bent at the front"),
		chromedp.SetUploadFiles(chromedp.CSS(`#report-form input[name=photo]`), []string{photo}),
		chromedp.Click(chromedp.CSS(`#report-form button`)),
	)
	if err != nil {
		t.Fatal(err)
	}
	waitTrue(t, ctx, `(function(){ var i = document.querySelector('#incidents .photos img'); return !!i && i.complete && i.naturalWidth > 0; })()`, 10*time.Second)
	if n := c.count(t, `SELECT count(*) FROM ops_incident_photos`); n != 1 {
		t.Fatalf("%d photos stored", n)
	}
	// The page scaled the photo to JPEG before sending it.
	if n := c.count(t, `SELECT count(*) FROM ops_incident_photos WHERE content_type = 'image/jpeg'`); n != 1 {
		t.Error("the page sent the photo unscaled")
	}
	apptest.WaitVisible(t, ctx, `#staffing-card`)
	if s := apptest.Text(t, ctx, `#staffing`); !strings.Contains(s, "Security") || !strings.Contains(s, "4") {
		t.Errorf("staffing: %q", s)
	}
	// The staffing card keeps its table inside the phone's width.
	if overflow, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`document.querySelector('#staffing table').getBoundingClientRect().right > document.querySelector('#staffing-card').getBoundingClientRect().right`)); err != nil || overflow {
		t.Errorf("the staffing card is wider than the phone (%v)", err)
	}
	apptest.Screenshot(t, ctx, "ops-phone-report")
}
