package staffing

import (
	"context"

	"marquee/tenants"
)

// recomputeTask runs TaskRecompute for one chain: requirements of its
// coming events follow their ticket sales. Recomputing is idempotent, so a
// task run twice (a retry, an overlapping fan-out) does no harm.
func (m *Module) recomputeTask(ctx context.Context, t tenants.Tenant, _ []byte) error {
	n, err := m.svc.RecomputeAll(ctx, t)
	if n > 0 {
		m.app.Log.Debug("staffing requirements recomputed", "tenant", t.Slug, "events", n)
	}
	return err
}
