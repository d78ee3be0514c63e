package ops_test

import (
	"bytes"
	"image"
	"image/color"
	"image/png"
	"net/http"
	"strings"
	"testing"

	"marquee/app/apptest"
	"marquee/modules/ops"
	"marquee/policies"
)

// pngPhoto is a small real PNG.
func pngPhoto(t testing.TB) []byte {
	t.Helper()
	img := image.NewRGBA(image.Rect(0, 0, 64, 48))
	for x := range 64 {
		for y := range 48 {
			img.Set(x, y, color.RGBA{uint8(x * 4), uint8(y * 5), 120, 255})
		}
	}
	var b bytes.Buffer
	if err := png.Encode(&b, img); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// Door staff attach a photo to the incident they report; it is stored in
// the core's object storage and served to the tenant's staff with the
// incident's permissions: a confidential incident's photo only to its
// handlers, nothing to another chain. Wrong types, forged bytes, huge
// bodies and resolved incidents are refused with nothing written.
func TestIncidentPhotos(t *testing.T) {
	e := startEnv(t, nil)
	c := newChain(t, e, "photo")
	e.User(t, c.t, "door@"+c.slug+".test", policies.RoleDoorStaff, c.venue)
	e.User(t, c.t, "lead@"+c.slug+".test", policies.RoleSecurityLead, c.venue)
	door, lead := e.Login(t, c.slug, "door@"+c.slug+".test"), e.Login(t, c.slug, "lead@"+c.slug+".test")
	base := "/api/v1/events/" + c.event + "/incidents"
	report := func(confidential bool) string {
		res := e.Do(t, "POST", c.slug, base, door, map[string]any{"category": "facilities", "severity": "low", "zone": "Floor",
			"description": "Broken barrier", "confidential": confidential})
		mustStatus(t, res, http.StatusCreated)
		return decode[ops.Incident](t, res.Body).ID.String()
	}
	open, secret := report(false), report(true)
	img := pngPhoto(t)
	upload := func(tok, incident, ctype string, body []byte) apptest.Response {
		res, err := e.Try("POST", c.slug, base+"/"+incident+"/photos", tok, body, "Content-Type", ctype)
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	res := upload(door, open, "image/png", img)
	mustStatus(t, res, http.StatusCreated)
	p := decode[ops.Photo](t, res.Body)
	if p.Size != int64(len(img)) || p.ContentType != "image/png" || !strings.HasSuffix(p.URL, "/photos/"+p.ID.String()) {
		t.Fatalf("photo %+v", p)
	}
	got := e.Do(t, "GET", c.slug, p.URL, door, nil)
	if got.Status != http.StatusOK || !bytes.Equal(got.Body, img) || got.Header.Get("Content-Type") != "image/png" || got.Header.Get("X-Content-Type-Options") != "nosniff" {
		t.Fatalf("read back: %d %q %d bytes", got.Status, got.Header.Get("Content-Type"), len(got.Body))
	}
	inc := decode[ops.Incident](t, e.Do(t, "GET", c.slug, base+"/"+open, door, nil).Body)
	if len(inc.Photos) != 1 || inc.Photos[0].ID != p.ID || inc.Timeline[len(inc.Timeline)-1].Kind != "photo" {
		t.Fatalf("incident after the photo: %+v", inc)
	}
	// Another chain's staff cannot read it, even with the path.
	other := newChain(t, e, "photo2")
	if r := e.Do(t, "GET", other.slug, p.URL, other.tok, nil); r.Status != http.StatusNotFound {
		t.Fatalf("another chain read the photo: %d", r.Status)
	}
	if r := e.Do(t, "GET", c.slug, p.URL, "", nil); r.Status != http.StatusUnauthorized {
		t.Fatalf("anonymous read: %d", r.Status)
	}
	// A confidential incident's photo: its handlers only; door staff's
	// view of the incident lists none.
	res = upload(door, secret, "image/png", img)
	mustStatus(t, res, http.StatusCreated)
	sp := decode[ops.Photo](t, res.Body)
	if r := e.Do(t, "GET", c.slug, sp.URL, door, nil); r.Status != http.StatusForbidden {
		t.Fatalf("door staff read a confidential photo: %d", r.Status)
	}
	if r := e.Do(t, "GET", c.slug, sp.URL, lead, nil); r.Status != http.StatusOK || !bytes.Equal(r.Body, img) {
		t.Fatalf("the lead could not read it: %d", r.Status)
	}
	if inc := decode[ops.Incident](t, e.Do(t, "GET", c.slug, base+"/"+secret, door, nil).Body); len(inc.Photos) != 0 {
		t.Fatal("a redacted incident lists its photos")
	}

	none := map[string]int{"ops_incident_photos": 0, "ops_incident_timeline": 0}
	path := base + "/" + open + "/photos"
	raw := func(name, ctype string, body []byte, status int, code string) apptest.Scenario {
		return apptest.Scenario{Name: name, Method: "POST", Path: path, Tenant: c.slug, Token: door, Body: body,
			Headers: map[string]string{"Content-Type": ctype}, Status: status, Code: code, Changes: none}
	}
	apptest.RunScenarios(t, e.Env, []apptest.Scenario{
		raw("a script named a png", "image/png", []byte("<script>alert(1)</script>"), 400, "invalid_incident_photo"),
		raw("not an image type", "text/html", []byte("<html></html>"), 400, "invalid_incident_photo"),
		raw("a png named a jpeg", "image/jpeg", img, 400, "invalid_incident_photo"),
		raw("empty", "image/png", nil, 400, "invalid_incident_photo"),
		raw("huge", "image/png", append(append([]byte{}, img...), make([]byte, 2<<20)...), 413, ""),
		{Name: "unknown incident", Method: "POST", Path: base + "/01900000-0000-7000-8000-0000000000aa/photos", Tenant: c.slug, Token: door, Body: img,
			Headers: map[string]string{"Content-Type": "image/png"}, Status: 404, Changes: none},
	})
	mustStatus(t, e.Do(t, "POST", c.slug, base+"/"+open+"/resolve", lead, map[string]any{"resolution": "fixed"}), http.StatusOK)
	if r := upload(door, open, "image/png", img); r.Status != http.StatusConflict || r.Code() != "incident_resolved" {
		t.Fatalf("photo on a resolved incident: %d %s", r.Status, r.Body)
	}
}
