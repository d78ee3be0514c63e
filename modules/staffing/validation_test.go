package staffing_test

import (
	"testing"
	"time"

	"marquee/app/apptest"
)

// Bad input gets a problem document with a stable code and writes nothing:
// shifts ending before they start, negative places, unknown roles, another
// chain's staff member or event, malformed ids and dates.
func TestBadInputChangesNothing(t *testing.T) {
	e := startEnv(t, nil)
	c := newChain(t, e, "bad")
	other := newChain(t, e, "other")
	stranger := other.staff(t, "stranger", false, []string{"bar"}, nil)
	mine := c.staff(t, "mine", false, []string{"bar"}, nil)
	shift := c.shift(t, "bar", c.eventAt, c.eventAt.Add(4*time.Hour), 2)
	shifts := c.venue + "/staffing/shifts"
	at := func(d time.Duration) string { return c.eventAt.Add(d).UTC().Format(time.RFC3339) }
	noShift := map[string]int{"stf_shifts": 0, "stf_assignments": 0}
	noStaff := map[string]int{"stf_staff": 0, "stf_staff_roles": 0, "stf_staff_certs": 0}
	sc := func(name, method, path string, body any, status int, code string, changes map[string]int) apptest.Scenario {
		return apptest.Scenario{Name: name, Method: method, Path: path, Tenant: c.slug, Token: c.tok, Body: body, Status: status, Code: code, Changes: changes}
	}
	shiftBody := func(kv ...any) map[string]any {
		b := map[string]any{"event_id": c.event, "role_id": c.roles["bar"], "starts_at": at(0), "ends_at": at(4 * time.Hour), "places": 3}
		for i := 0; i+1 < len(kv); i += 2 {
			b[kv[i].(string)] = kv[i+1]
		}
		return b
	}
	apptest.RunScenarios(t, e.Env, []apptest.Scenario{
		sc("ends before it starts", "POST", "/api/v1/venues/"+shifts, shiftBody("ends_at", at(-time.Hour)), 400, "invalid_range", noShift),
		sc("ends as it starts", "POST", "/api/v1/venues/"+shifts, shiftBody("ends_at", at(0)), 400, "invalid_range", noShift),
		sc("longer than a day", "POST", "/api/v1/venues/"+shifts, shiftBody("ends_at", at(25*time.Hour)), 400, "invalid_range", noShift),
		sc("places below zero", "POST", "/api/v1/venues/"+shifts, shiftBody("places", -1), 400, "invalid_places", noShift),
		sc("unknown role", "POST", "/api/v1/venues/"+shifts, shiftBody("role_id", other.roles["bar"]), 400, "unknown_role", noShift),
		sc("role not a uuid", "POST", "/api/v1/venues/"+shifts, shiftBody("role_id", "bar"), 400, "invalid_request", noShift),
		sc("another chain's event", "POST", "/api/v1/venues/"+shifts, shiftBody("event_id", other.event), 400, "unknown_event", noShift),
		sc("unknown field", "POST", "/api/v1/venues/"+shifts, shiftBody("colour", "red"), 400, "invalid_json", noShift),
		sc("another chain's staff member", "POST", "/api/v1/venues/"+shifts+"/"+shift+"/assignments", map[string]any{"staff_id": stranger.id}, 400, "unknown_staff", noShift),
		sc("staff id not a uuid", "POST", "/api/v1/venues/"+shifts+"/"+shift+"/assignments", map[string]any{"staff_id": "x"}, 400, "invalid_request", noShift),
		sc("shift of another venue's path", "POST", "/api/v1/venues/"+other.venue+"/staffing/shifts/"+shift+"/assignments", map[string]any{"staff_id": mine.id}, 404, "not_found", noShift),
		sc("move to end before start", "PATCH", "/api/v1/venues/"+shifts+"/"+shift, map[string]any{"ends_at": at(-time.Hour)}, 400, "invalid_range", noShift),
		sc("negative places on change", "PATCH", "/api/v1/venues/"+shifts+"/"+shift, map[string]any{"places": -3}, 400, "invalid_places", noShift),
		sc("empty change", "PATCH", "/api/v1/venues/"+shifts+"/"+shift, map[string]any{}, 400, "invalid_request", noShift),
		sc("staff with an unknown role", "POST", "/api/v1/staffing/staff", map[string]any{"name": "X", "roles": []string{other.roles["bar"]}}, 400, "unknown_role", noStaff),
		sc("staff with another chain's certification", "POST", "/api/v1/staffing/staff", map[string]any{"name": "X", "certifications": []any{map[string]any{"certification_id": other.certs["first_aid"]}}}, 400, "unknown_certification", noStaff),
		sc("staff with a bad expiry", "POST", "/api/v1/staffing/staff", map[string]any{"name": "X", "certifications": []any{map[string]any{"certification_id": c.certs["first_aid"], "expires_on": "soon"}}}, 400, "invalid_request", noStaff),
		sc("staff with another chain's venue", "POST", "/api/v1/staffing/staff", map[string]any{"name": "X", "home_venues": []string{other.venue}}, 400, "unknown_venue", noStaff),
		sc("staff without a name", "POST", "/api/v1/staffing/staff", map[string]any{"email": "x@y.test"}, 400, "invalid_request", noStaff),
		sc("staff linked to another chain's user", "POST", "/api/v1/staffing/staff", map[string]any{"name": "X", "user_id": other.e.User(t, other.t, "u@"+other.slug+".test", "", "").ID.String()}, 400, "unknown_user", noStaff),
		sc("change another chain's staff member", "PATCH", "/api/v1/staffing/staff/"+stranger.id, map[string]any{"name": "Y"}, 404, "not_found", noStaff),
		sc("certification including itself by cycle", "PUT", "/api/v1/staffing/certifications/"+c.certs["first_aid"], map[string]any{"name": "First aid", "includes": []string{c.certs["senior_first_aid"]}}, 400, "certification_cycle",
			map[string]int{"stf_cert_includes": 0, "stf_cert_closure": 0}),
		sc("requirement with an unknown role", "PUT", "/api/v1/events/"+c.event+"/staffing/requirements", map[string]any{"requirements": []any{map[string]any{"role_id": other.roles["bar"], "rule": "fixed", "fixed_count": 2}}}, 400, "unknown_role",
			map[string]int{"stf_requirements": 0}),
		sc("ratio without per_attendees", "PUT", "/api/v1/events/"+c.event+"/staffing/requirements", map[string]any{"requirements": []any{map[string]any{"role_id": c.roles["bar"], "rule": "ratio", "minimum": 2}}}, 400, "invalid_request",
			map[string]int{"stf_requirements": 0}),
		sc("negative fixed count", "PUT", "/api/v1/events/"+c.event+"/staffing/requirements", map[string]any{"requirements": []any{map[string]any{"role_id": c.roles["bar"], "rule": "fixed", "fixed_count": -1}}}, 400, "invalid_request",
			map[string]int{"stf_requirements": 0}),
		sc("another chain's event coverage", "GET", "/api/v1/events/"+other.event+"/staffing/coverage", nil, 404, "not_found", nil),
		sc("publish a day that is not a date", "POST", "/api/v1/venues/"+c.venue+"/staffing/days/tomorrow/publish", nil, 400, "invalid_request", map[string]int{"stf_publications": 0}),
		sc("settings with an unknown rule", "PUT", "/api/v1/staffing/settings", map[string]any{"min_rest_minutes": 600, "rest_rule": "strict", "max_week_minutes": 2880, "week_rule": "warn",
			"crowd_role_id": nil, "crowd_minimum": 2, "crowd_per": 250, "security_role_id": nil, "security_bands": []any{map[string]any{"from_capacity": 0, "count": 1}}}, 400, "invalid_request", nil),
		sc("a good shift still goes in", "POST", "/api/v1/venues/"+shifts, shiftBody(), 201, "", map[string]int{"stf_shifts": 1}),
	})
}
