package ops

import (
	"context"

	"marquee/app"
	"marquee/tenants"
)

// Dashboard reads an event's dashboard. The stream position is read first,
// so every change after the state read here is at a higher number: a
// viewer that opens the stream from StreamSeq may see a change twice (each
// carries whole state, so applying it again is harmless), never miss one.
func (s *Service) Dashboard(ctx context.Context, t tenants.Tenant, ev app.EventInfo, withRevenue, fullIncidents bool) (Dashboard, error) {
	seq, err := s.hub.Seq(ctx, t, ev.ID)
	if err != nil {
		s.app.Log.Warn("ops: stream position unavailable", "tenant", t.Slug, "err", err)
	}
	d := Dashboard{StreamSeq: seq, Event: DashboardEvent{ID: ev.ID, Title: ev.Title, VenueName: ev.VenueName, Timezone: ev.Timezone,
		StartsAt: ev.StartsAt, EndsAt: ev.EndsAt, Live: liveWindow(ev, s.app.Now())}}
	if d.Zones, err = s.Occupancy(ctx, t, ev); err != nil {
		return d, err
	}
	d.Zones = app.NonNil(d.Zones)
	if withRevenue {
		rev, err := s.Revenue(ctx, t, ev.ID)
		if err != nil {
			return d, err
		}
		d.Revenue = &rev
	}
	incs, err := s.Incidents(ctx, t, ev.ID, "")
	if err != nil {
		return d, err
	}
	d.Incidents.Recent = []Incident{}
	for _, i := range incs {
		switch i.Status {
		case "open":
			d.Incidents.Open++
		case "acknowledged":
			d.Incidents.Acknowledged++
		default:
			d.Incidents.Resolved++
		}
		if len(d.Incidents.Recent) < 20 {
			d.Incidents.Recent = append(d.Incidents.Recent, redact(i, fullIncidents))
		}
	}
	d.Staffing = s.staffing(ctx, t, ev)
	d.Alerts, err = s.Alerts(ctx, t, ev.ID, 20)
	return d, err
}

// staffing reads the event's coverage from the staffing contract when a
// module provides it. A failure there marks the section unavailable
// instead of taking the dashboard down with it.
func (s *Service) staffing(ctx context.Context, t tenants.Tenant, ev app.EventInfo) *StaffingSummary {
	cov := s.app.StaffingCoverage()
	if cov == nil {
		return nil
	}
	roles, err := cov.CoverageForEvent(ctx, t, ev.ID)
	if err != nil {
		s.app.Log.Warn("ops: staffing coverage unavailable", "tenant", t.Slug, "event", ev.ID, "err", err)
		return &StaffingSummary{Roles: []app.RoleCoverage{}, Unavailable: true}
	}
	out := &StaffingSummary{Roles: app.NonNil(roles)}
	for _, r := range roles {
		out.Required += r.Required
		out.Assigned += r.Assigned
		out.Confirmed += r.Confirmed
		out.Gap += r.Gap
	}
	return out
}
