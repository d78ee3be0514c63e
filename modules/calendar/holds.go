package calendar

import (
	"context"
	"errors"
	"time"

	"github.com/google/uuid"
	"github.com/hibiken/asynq"
	"gorm.io/gorm"

	"marquee/app"
	"marquee/jobs"
	"marquee/tenants"
)

// HoldInput is a new hold.
type HoldInput struct {
	StageID         uuid.UUID
	Title           string
	Category        string
	PromoterID      *uuid.UUID
	Promoter        string
	StartsAt        time.Time
	EndsAt          time.Time
	SetupMinutes    int
	TeardownMinutes int
	ExpiresAt       *time.Time
}

func (in HoldInput) hold(venueID uuid.UUID, now time.Time) (Hold, error) {
	h := Hold{ID: uuid.Must(uuid.NewV7()), VenueID: venueID, StageID: in.StageID, PromoterID: in.PromoterID,
		StartsAt: in.StartsAt, EndsAt: in.EndsAt, SetupMinutes: in.SetupMinutes, TeardownMinutes: in.TeardownMinutes,
		ExpiresAt: in.ExpiresAt, Status: HoldActive}
	var err error
	if h.Title, err = cleanText("title", in.Title, 200, true); err != nil {
		return Hold{}, err
	}
	if h.Promoter, err = cleanText("promoter", in.Promoter, 200, false); err != nil {
		return Hold{}, err
	}
	if in.Category == "" {
		in.Category = "concert"
	}
	if h.Category, err = checkCategory("category", in.Category); err != nil {
		return Hold{}, err
	}
	if in.StageID == uuid.Nil {
		return Hold{}, invalid("stage_id", "is required")
	}
	if h.ExpiresAt != nil && (!h.ExpiresAt.After(now) || h.ExpiresAt.Sub(now) > MaxHoldLifetime) {
		return Hold{}, invalid("expires_at", "must be in the future, within %d days", int(MaxHoldLifetime.Hours()/24))
	}
	return h, checkSlot(h.StartsAt, h.EndsAt, h.SetupMinutes, h.TeardownMinutes)
}

// CreateHold places a tentative hold. Holds may overlap; the stage's row is
// locked while the hold is added, so arrival order (and so rank) is the
// order in which holds on a stage commit.
func (s *Service) CreateHold(ctx context.Context, t tenants.Tenant, venueID uuid.UUID, in HoldInput, k *app.IdempotencyKey) (HoldView, bool, error) {
	h, err := in.hold(venueID, time.Now())
	if err != nil {
		return HoldView{}, false, err
	}
	var out HoldView
	var replayed bool
	err = s.tx(ctx, t, func(tx *gorm.DB) error {
		out = HoldView{}
		var err error
		replayed, err = app.Once(tx, k, &out, func() error {
			v, err := findVenue(tx, venueID, false)
			if err != nil {
				return err
			}
			if _, err := findStage(tx, venueID, h.StageID, true); err != nil {
				return err
			}
			if err := insertHold(tx, h); err != nil {
				return err
			}
			got, err := findHold(tx, venueID, h.ID)
			out = viewHold(got, v.Timezone)
			return err
		})
		return err
	})
	if err == nil && !replayed && h.ExpiresAt != nil {
		s.scheduleExpiry(ctx, t, h.ID, *h.ExpiresAt)
	}
	return out, replayed, err
}

// scheduleExpiry queues the hold's expiry task. If Redis is unavailable the
// sweeper still expires the hold within a minute, so a failure is only logged.
func (s *Service) scheduleExpiry(ctx context.Context, t tenants.Tenant, holdID uuid.UUID, at time.Time) {
	_, err := s.app.Jobs.Enqueue(ctx, t, TaskHoldExpire, holdTask{HoldID: holdID},
		asynq.ProcessAt(at), asynq.Queue(jobs.QueueCritical), asynq.MaxRetry(10),
		asynq.TaskID("calendar-hold-expire:"+t.Slug+":"+holdID.String()))
	if err != nil && !errors.Is(err, asynq.ErrTaskIDConflict) {
		s.app.Log.Warn("hold expiry not scheduled; the sweeper will expire it", "tenant", t.Slug, "hold", holdID, "err", err)
	}
}

// Hold reads one hold of a venue with its current rank.
func (s *Service) Hold(ctx context.Context, t tenants.Tenant, venueID, id uuid.UUID) (HoldView, error) {
	var out HoldView
	err := s.tx(ctx, t, func(tx *gorm.DB) error {
		v, err := findVenue(tx, venueID, false)
		if err != nil {
			return err
		}
		h, err := findHold(tx, venueID, id)
		out = viewHold(h, v.Timezone)
		return err
	})
	return out, err
}

// Holds lists a venue's live holds overlapping w, with their ranks.
func (s *Service) Holds(ctx context.Context, t tenants.Tenant, venueID uuid.UUID, w Window) ([]HoldView, error) {
	var out []HoldView
	err := s.tx(ctx, t, func(tx *gorm.DB) error {
		v, err := findVenue(tx, venueID, false)
		if err != nil {
			return err
		}
		hs, err := liveHolds(tx, []uuid.UUID{venueID}, w)
		out = make([]HoldView, 0, len(hs))
		for _, h := range hs {
			out = append(out, viewHold(h, v.Timezone))
		}
		return err
	})
	return out, err
}

// ReleaseHold gives a hold up; the holds behind it move up a rank. Releasing
// a hold that is already released or expired changes nothing.
func (s *Service) ReleaseHold(ctx context.Context, t tenants.Tenant, venueID, id uuid.UUID) (HoldView, error) {
	var out HoldView
	err := s.tx(ctx, t, func(tx *gorm.DB) error {
		v, err := findVenue(tx, venueID, false)
		if err != nil {
			return err
		}
		h, err := lockHold(tx, venueID, id)
		if err != nil {
			return err
		}
		switch h.Status {
		case HoldConfirmed:
			return app.Conflict("hold_confirmed", "the hold became an event; cancel the event instead").With("event_id", h.EventID)
		case HoldActive:
			if _, err := closeHold(tx, id, HoldReleased, nil); err != nil {
				return err
			}
		}
		got, err := findHold(tx, venueID, id)
		out = viewHold(got, v.Timezone)
		return err
	})
	return out, err
}

// ConfirmInput turns a hold into an event; empty fields keep the hold's.
type ConfirmInput struct {
	Title    string
	Category string
	Status   Status
}

// ConfirmHold books the hold's stage and window as an event, through the
// same exclusion constraints as any booking: if an event is in the way the
// answer is 409 and the hold stays as it was.
func (s *Service) ConfirmHold(ctx context.Context, t tenants.Tenant, venueID, id uuid.UUID, in ConfirmInput, k *app.IdempotencyKey) (EventView, bool, error) {
	if in.Status == "" {
		in.Status = StatusConfirmed
	}
	if in.Status != StatusConfirmed && in.Status != StatusOnSale {
		return EventView{}, false, invalid("status", "a confirmed hold becomes a confirmed or on_sale event")
	}
	var out EventView
	var replayed bool
	err := s.tx(ctx, t, func(tx *gorm.DB) error {
		out = EventView{}
		var err error
		replayed, err = app.Once(tx, k, &out, func() error {
			h, err := lockHold(tx, venueID, id)
			if err != nil {
				return err
			}
			if h.Status == HoldConfirmed {
				return app.Conflict("hold_confirmed", "the hold is already confirmed").With("event_id", h.EventID)
			}
			out, err = confirmLocked(tx, h, in)
			return err
		})
		return err
	})
	if err == nil && !replayed {
		s.app.EventsChanged(ctx, t, out.ID)
	}
	return out, replayed, err
}

// confirmLocked books a hold locked by lockHold as an event and closes it.
func confirmLocked(tx *gorm.DB, h Hold, in ConfirmInput) (EventView, error) {
	switch h.Status {
	case HoldConfirmed:
		return EventView{}, app.Conflict("hold_confirmed", "the hold is already confirmed").With("event_id", h.EventID)
	case HoldReleased, HoldExpired:
		if deref(h.CloseReason) == closeChallengeLapsed {
			return EventView{}, app.Conflict("challenge_lapsed", "the hold was challenged and did not confirm by its deadline: it was released")
		}
		return EventView{}, app.Conflict("hold_not_active", "the hold is %s", h.Status)
	}
	// A challenged hold confirms only before its deadline, read under its
	// lock: the deadline's task, waiting on the same lock, then finds it
	// confirmed (or, once past, this confirm is refused and the task
	// releases it). One outcome either way.
	if lapsed, err := challengeLapsed(tx, h.ID); err != nil || lapsed {
		if err == nil {
			err = app.Conflict("challenge_lapsed", "the hold was challenged and did not confirm by its deadline: it is released")
		}
		return EventView{}, err
	}
	if err := clearWayAhead(tx, h); err != nil {
		return EventView{}, err
	}
	stage := h.StageID
	e, err := EventInput{StageID: &stage, Title: or(in.Title, h.Title), Category: or(in.Category, h.Category),
		Status: in.Status, PromoterID: h.PromoterID, Promoter: h.Promoter, StartsAt: h.StartsAt, EndsAt: h.EndsAt,
		SetupMinutes: h.SetupMinutes, TeardownMinutes: h.TeardownMinutes}.event(h.VenueID)
	if err != nil {
		return EventView{}, err
	}
	e.HoldID = &h.ID
	tz, err := place(tx, &e)
	if err != nil {
		return EventView{}, err
	}
	if _, err := closeHold(tx, h.ID, HoldConfirmed, &e.ID); err != nil {
		return EventView{}, err
	}
	return viewEvent(e, tz), nil
}

func or(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// ExpireHold is the hold-expiry task's work: idempotent, and a no-op unless
// the hold is still active and due.
func (s *Service) ExpireHold(ctx context.Context, t tenants.Tenant, id uuid.UUID) (bool, error) {
	var done bool
	err := s.tx(ctx, t, func(tx *gorm.DB) error {
		var err error
		done, err = expireHold(tx, id)
		return err
	})
	return done, err
}

// SweepHolds expires every lapsed hold of the tenant, and releases every
// hold whose challenge deadline passed, in batches, and returns how many it
// closed. (Old idempotency keys are the core's to sweep.)
func (s *Service) SweepHolds(ctx context.Context, t tenants.Tenant) (int64, error) {
	const batch = 500
	var total int64
	for {
		var n int64
		err := s.tx(ctx, t, func(tx *gorm.DB) error {
			expired, err := sweepHolds(tx, batch)
			if err != nil {
				return err
			}
			lapsed, err := sweepChallenges(tx, batch)
			n = expired + lapsed
			return err
		})
		if err != nil {
			return total, err
		}
		total += n
		if n < batch {
			return total, nil
		}
	}
}
