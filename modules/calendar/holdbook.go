package calendar

import (
	"context"

	"github.com/google/uuid"
	"gorm.io/gorm"

	"marquee/app"
	"marquee/tenants"
)

// holdBook answers other modules' questions about holds and confirms one
// into an event (app.CalendarHolds): booking turns the hold an offer was
// made for into the show once the artist's contract is signed.
type holdBook struct{ s *Service }

func holdInfo(h Hold) app.HoldInfo {
	v := viewHold(h, "UTC")
	return app.HoldInfo{ID: h.ID, VenueID: h.VenueID, StageID: h.StageID, Title: h.Title, Status: string(v.Status),
		Rank: v.Rank, StartsAt: h.StartsAt.UTC(), EndsAt: h.EndsAt.UTC(), ExpiresAt: utcPtr(h.ExpiresAt), EventID: h.EventID}
}

// Hold implements app.CalendarHolds.
func (b holdBook) Hold(ctx context.Context, t tenants.Tenant, id uuid.UUID) (app.HoldInfo, error) {
	var out app.HoldInfo
	err := b.s.tx(ctx, t, func(tx *gorm.DB) error {
		var hs []Hold
		if err := tx.Raw(holdQuery+`WHERE h.id = ?`, id).Scan(&hs).Error; err != nil {
			return err
		}
		if len(hs) == 0 {
			return app.NotFound("hold")
		}
		out = holdInfo(hs[0])
		return nil
	})
	return out, err
}

// ActiveHolds implements app.CalendarHolds.
func (b holdBook) ActiveHolds(ctx context.Context, t tenants.Tenant, limit int) ([]app.HoldInfo, error) {
	out := []app.HoldInfo{}
	err := b.s.tx(ctx, t, func(tx *gorm.DB) error {
		var hs []Hold
		err := tx.Raw(holdQuery+`WHERE h.status = 'active' AND (h.expires_at IS NULL OR h.expires_at > now()) AND h.starts_at > now()
			ORDER BY h.starts_at, h.arrival LIMIT ?`, min(max(limit, 1), 500)).Scan(&hs).Error
		for _, h := range hs {
			out = append(out, holdInfo(h))
		}
		return err
	})
	return out, err
}

// ConfirmHold implements app.CalendarHolds inside the caller's transaction.
func (b holdBook) ConfirmHold(tx *gorm.DB, _ tenants.Tenant, id uuid.UUID, title string) (uuid.UUID, error) {
	var venue []uuid.UUID
	if err := tx.Raw(`SELECT venue_id FROM cal_holds WHERE id = ?`, id).Scan(&venue).Error; err != nil {
		return uuid.Nil, err
	}
	if len(venue) == 0 {
		return uuid.Nil, app.NotFound("hold")
	}
	h, err := lockHold(tx, venue[0], id)
	if err != nil {
		return uuid.Nil, err
	}
	if h.Status == HoldConfirmed && h.EventID != nil {
		return *h.EventID, nil
	}
	ev, err := confirmLocked(tx, h, ConfirmInput{Title: title, Status: StatusConfirmed})
	if err != nil {
		return uuid.Nil, mapStoreError(err)
	}
	return ev.ID, nil
}
