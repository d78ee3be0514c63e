package ops

import (
	"context"
	"time"

	"github.com/google/uuid"
	"gorm.io/gorm"

	"marquee/app"
	"marquee/tenants"
)

// sampleTask refreshes every live event with zones once a minute: the
// minute's history row even when no reading arrived (the door moves on its
// own), alerts the door alone pushed over a threshold, and the dashboards.
// Running it twice in a minute rewrites the same minute: idempotent.
func (m *Module) sampleTask(ctx context.Context, t tenants.Tenant, _ []byte) error {
	evs, err := m.svc.LiveEvents(ctx, t)
	if err != nil {
		return err
	}
	for _, ev := range evs {
		if _, _, err := m.svc.Refresh(ctx, t, ev); err != nil {
			return err
		}
	}
	return nil
}

// LiveEvents lists the events in their live window now that have zones.
func (s *Service) LiveEvents(ctx context.Context, t tenants.Tenant) ([]app.EventInfo, error) {
	var ids []struct{ EventID uuid.UUID }
	if err := s.tx(ctx, t, func(tx *gorm.DB) error {
		return tx.Raw(`SELECT DISTINCT event_id FROM ops_zones`).Scan(&ids).Error
	}); err != nil || len(ids) == 0 {
		return nil, err
	}
	now := s.app.Now()
	evs, err := s.app.Events().Events(ctx, t, app.EventFilter{From: now.Add(-36 * time.Hour), To: now.Add(3 * time.Hour), Limit: 500})
	if err != nil {
		return nil, err
	}
	var out []app.EventInfo
	for _, ev := range evs {
		for _, id := range ids {
			if ev.ID == id.EventID && ev.Status != "cancelled" && liveWindow(ev, now) {
				out = append(out, ev)
			}
		}
	}
	return out, nil
}

// rollupTask rewrites the revenue totals of every event that sold in the
// last two days from the sales themselves, so a run repeated (a retry, a
// second scheduler) writes the same rows.
func (m *Module) rollupTask(ctx context.Context, t tenants.Tenant, _ []byte) error {
	_, err := m.svc.Rollup(ctx, t)
	return err
}

// Rollup rewrites the revenue totals; it returns the events rolled up.
func (s *Service) Rollup(ctx context.Context, t tenants.Tenant) (int, error) {
	now := s.app.Now().UTC().Truncate(time.Microsecond)
	n := 0
	err := s.tx(ctx, t, func(tx *gorm.DB) error {
		n = 0
		var events []struct{ EventID uuid.UUID }
		if err := tx.Raw(`SELECT DISTINCT event_id FROM ops_pos_objects WHERE event_id IS NOT NULL AND updated_at > ?`, now.Add(-48*time.Hour)).Scan(&events).Error; err != nil {
			return err
		}
		for _, ev := range events {
			lines, err := revenueLines(tx, ev.EventID)
			if err != nil {
				return err
			}
			if err := tx.Exec(`DELETE FROM ops_revenue_totals WHERE event_id = ?`, ev.EventID).Error; err != nil {
				return err
			}
			for _, l := range lines {
				if err := tx.Exec(`INSERT INTO ops_revenue_totals (event_id, category, stand, currency, sales_minor, refunds_minor, net_minor, payments, rolled_up_at)
					VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`, ev.EventID, l.Category, l.Stand, l.Currency, l.SalesMinor, l.RefundsMinor, l.NetMinor, l.Payments, now).Error; err != nil {
					return err
				}
			}
			n++
		}
		return nil
	})
	return n, err
}

// SampleNow runs the per-minute sampler for a chain at once (tests, bench).
func (m *Module) SampleNow(ctx context.Context, t tenants.Tenant) error {
	return m.sampleTask(ctx, t, nil)
}
