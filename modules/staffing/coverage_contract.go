package staffing

import (
	"context"

	"github.com/google/uuid"

	"marquee/app"
	"marquee/tenants"
)

// coverageContract offers the event coverage to other modules (the live
// dashboard) through app.StaffingCoverage.
type coverageContract struct{ m *Module }

// CoverageForEvent implements app.StaffingCoverage: the event's coverage
// role by role, as the staffing pages count it.
func (c coverageContract) CoverageForEvent(ctx context.Context, t tenants.Tenant, eventID uuid.UUID) ([]app.RoleCoverage, error) {
	ev, err := c.m.app.Events().Event(ctx, t, eventID)
	if err != nil {
		return nil, err
	}
	cov, err := c.m.svc.EventCoverage(ctx, t, ev)
	if err != nil {
		return nil, err
	}
	out := make([]app.RoleCoverage, 0, len(cov.Roles))
	for _, r := range cov.Roles {
		out = append(out, app.RoleCoverage{Role: r.RoleName, Required: r.Required, Assigned: r.Assigned, Confirmed: r.Confirmed, Gap: r.Gap})
	}
	return out, nil
}
