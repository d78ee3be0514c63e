package ops_test

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"gorm.io/gorm"

	"marquee/app"
	"marquee/app/apptest"
	"marquee/modules/ops"
	"marquee/policies"
)

// An incident goes from report to resolution with a timeline that only
// grows: door staff report and add notes, the security lead acknowledges,
// assigns and resolves; a resolved incident takes nothing more; door staff
// see confidential incidents redacted; the database refuses to edit or
// delete the timeline.
func TestIncidentLifecycle(t *testing.T) {
	e := startEnv(t, nil)
	c := newChain(t, e, "inc")
	door := e.User(t, c.t, "door@"+c.slug+".test", policies.RoleDoorStaff, c.venue)
	lead := e.User(t, c.t, "lead@"+c.slug+".test", policies.RoleSecurityLead, c.venue)
	doorTok, leadTok := e.Login(t, c.slug, "door@"+c.slug+".test"), e.Login(t, c.slug, "lead@"+c.slug+".test")
	base := "/api/v1/events/" + c.event + "/incidents"
	as := func(tok, method, path string, body any) apptest.Response {
		t.Helper()
		return e.Do(t, method, c.slug, path, tok, body)
	}
	res := as(doorTok, "POST", base, map[string]any{"category": "medical", "severity": "high", "zone": "Floor", "location": "barrier left",
		"description": "Guest fainted", "confidential": true})
	mustStatus(t, res, http.StatusCreated)
	inc := decode[ops.Incident](t, res.Body)
	if !inc.Redacted || inc.Description != "(confidential)" || inc.Status != "open" {
		t.Fatalf("door staff's view of their confidential report: %+v", inc)
	}
	id := inc.ID.String()
	mustStatus(t, as(doorTok, "POST", base+"/"+id+"/acknowledge", nil), http.StatusForbidden)
	mustStatus(t, as(leadTok, "POST", base+"/"+id+"/acknowledge", nil), http.StatusOK)
	mustStatus(t, as(leadTok, "POST", base+"/"+id+"/assign", map[string]any{"user_id": lead.ID}), http.StatusOK)
	mustStatus(t, as(doorTok, "POST", base+"/"+id+"/notes", map[string]any{"text": "Paramedics called"}), http.StatusOK)
	res = as(leadTok, "POST", base+"/"+id+"/resolve", map[string]any{"resolution": "Taken to hospital"})
	mustStatus(t, res, http.StatusOK)
	inc = decode[ops.Incident](t, res.Body)
	kinds := []string{}
	for _, s := range inc.Timeline {
		kinds = append(kinds, s.Kind)
	}
	if inc.Status != "resolved" || inc.Redacted || inc.Description != "Guest fainted" || inc.AssigneeID == nil || *inc.AssigneeID != lead.ID ||
		strings.Join(kinds, ",") != "reported,acknowledged,assigned,note,resolved" {
		t.Fatalf("resolved: %+v", inc)
	}
	res = as(doorTok, "POST", base+"/"+id+"/notes", map[string]any{"text": "late note"})
	if res.Status != http.StatusConflict || res.Code() != "incident_resolved" {
		t.Fatalf("note after resolution: %d %s", res.Status, res.Body)
	}
	list := decode[app.List[ops.Incident]](t, as(doorTok, "GET", base, nil).Body)
	if len(list.Items) != 1 || !list.Items[0].Redacted {
		t.Fatalf("door staff's list: %+v", list)
	}
	open := decode[app.List[ops.Incident]](t, as(leadTok, "GET", base+"?status=open", nil).Body)
	if len(open.Items) != 0 {
		t.Fatalf("open incidents: %+v", open)
	}
	// The timeline is append-only in the database itself.
	for _, q := range []string{`UPDATE ops_incident_timeline SET body = 'edited'`, `DELETE FROM ops_incident_timeline`} {
		err := e.App.Tx(context.Background(), c.t, func(tx *gorm.DB) error { return tx.Exec(q).Error })
		if err == nil || !strings.Contains(err.Error(), "append-only") {
			t.Fatalf("%s: %v", q, err)
		}
	}
	// Another venue's door staff see nothing of it.
	other := c.id(t, c.do(t, "POST", "/api/v1/venues", map[string]any{"name": "Other", "timezone": "Europe/Berlin", "capacity": 500}))
	e.User(t, c.t, "far@"+c.slug+".test", policies.RoleDoorStaff, other)
	far := e.Login(t, c.slug, "far@"+c.slug+".test")
	mustStatus(t, as(far, "GET", base, nil), http.StatusForbidden)
	_ = door
	apptest.RunScenarios(t, e.Env, []apptest.Scenario{
		{Name: "bad category", Method: "POST", Path: base, Tenant: c.slug, Token: doorTok, Body: map[string]any{"category": "alien", "severity": "low", "description": "x"},
			Status: 400, Code: "invalid_category", Changes: map[string]int{"ops_incidents": 0, "ops_incident_timeline": 0}},
		{Name: "empty description", Method: "POST", Path: base, Tenant: c.slug, Token: doorTok, Body: map[string]any{"category": "crowd", "severity": "low", "description": " "},
			Status: 400, Code: "invalid_request", Changes: map[string]int{"ops_incidents": 0, "ops_incident_timeline": 0}},
		{Name: "huge description", Method: "POST", Path: base, Tenant: c.slug, Token: doorTok, Body: map[string]any{"category": "crowd", "severity": "low", "description": strings.Repeat("x", 5000)},
			Status: 400, Code: "invalid_request", Changes: map[string]int{"ops_incidents": 0, "ops_incident_timeline": 0}},
		{Name: "assign a stranger", Method: "POST", Path: base + "/" + id + "/assign", Tenant: c.slug, Token: leadTok, Body: map[string]any{"user_id": "01900000-0000-7000-8000-0000000000ff"},
			Status: 400, Code: "unknown_user", Changes: map[string]int{"ops_incident_timeline": 0}},
	})
}
