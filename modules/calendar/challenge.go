package calendar

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/hibiken/asynq"
	"gorm.io/gorm"

	"marquee/app"
	"marquee/jobs"
	"marquee/tenants"
)

// Challenges, as venue bookers know them from Prism: a hold behind a live
// 1st hold cannot confirm over it (the confirm is refused with the holds
// ahead named, hold_outranked). It challenges them instead: each gets a
// deadline to confirm or release. A hold that lets its deadline pass is
// released (close reason challenge_lapsed) by a task queued for that
// instant, by the sweeper, or by the challenger's own confirm, whichever
// comes first. Every decision about a challenged hold is taken under its
// row lock against the database's clock, so a confirm and the deadline
// racing each other have exactly one outcome.

// DefaultChallengeWindow is how long a challenged hold has to answer.
const DefaultChallengeWindow = 48 * time.Hour

// MaxChallengeWindow bounds the answer time a challenger may give.
const MaxChallengeWindow = 14 * 24 * time.Hour

// closeChallengeLapsed is the close reason of a hold released at its
// challenge deadline.
const closeChallengeLapsed = "challenge_lapsed"

// TaskChallengeLapse releases one challenged hold at its deadline (queued
// with asynq.ProcessAt and the id calendar-challenge-lapse:<tenant>:<hold>).
const TaskChallengeLapse = "calendar:challenge-lapse"

// AheadView is a live hold ranking ahead of another, as a refusal or a
// challenge names it.
type AheadView struct {
	ID                uuid.UUID  `json:"id"`
	Title             string     `json:"title"`
	Promoter          string     `json:"promoter,omitempty"`
	ChallengeDeadline *time.Time `json:"challenge_deadline,omitempty"`
}

// ChallengeView is the answer to a challenge: the challenger and the holds
// ahead of it with their deadlines.
type ChallengeView struct {
	Hold       HoldView    `json:"hold"`
	Challenged []AheadView `json:"challenged"`
}

type aheadRow struct {
	ID                uuid.UUID  `gorm:"column:id"`
	Title             string     `gorm:"column:title"`
	Promoter          string     `gorm:"column:promoter"`
	ChallengeDeadline *time.Time `gorm:"column:challenge_deadline"`
	Lapsed            bool       `gorm:"column:lapsed"`
}

// lockHoldsAhead locks the live holds ranking ahead of h (on its stage,
// overlapping its window, arrived before it), latest arrival first: every
// path that locks several holds takes them from later to earlier arrival,
// so two of them never wait on each other in a cycle. Whether a challenge
// lapsed is read after the locks are held.
func lockHoldsAhead(tx *gorm.DB, h Hold) ([]aheadRow, error) {
	w := h.Occupied()
	var ids []uuid.UUID
	err := tx.Raw(`SELECT id FROM cal_holds
		WHERE stage_id = ? AND status = 'active' AND (expires_at IS NULL OR expires_at > now())
		  AND occupied && tstzrange(?, ?, '[)') AND arrival < ?
		ORDER BY arrival DESC FOR UPDATE`, h.StageID, w.From, w.To, h.Arrival).Scan(&ids).Error
	if err != nil || len(ids) == 0 {
		return nil, err
	}
	var rows []aheadRow
	err = tx.Raw(`SELECT id, title, promoter, challenge_deadline,
			coalesce(challenge_deadline <= clock_timestamp(), false) AS lapsed
		FROM cal_holds WHERE id IN ? AND status = 'active' ORDER BY arrival`, ids).Scan(&rows).Error
	return rows, err
}

// challengeLapsed reads, under the hold's lock, whether its challenge
// deadline has passed.
func challengeLapsed(tx *gorm.DB, id uuid.UUID) (bool, error) {
	var lapsed bool
	err := tx.Raw(`SELECT coalesce(challenge_deadline <= clock_timestamp(), false) FROM cal_holds WHERE id = ?`, id).
		Row().Scan(&lapsed)
	return lapsed, err
}

// releaseLapsed releases a live hold whose challenge deadline has passed;
// it reports false (and changes nothing) otherwise, so running it twice, or
// after the hold confirmed or was released, is harmless.
func releaseLapsed(tx *gorm.DB, id uuid.UUID) (bool, error) {
	res := tx.Exec(`UPDATE cal_holds SET status = 'released', closed_at = now(), close_reason = ?
		WHERE id = ? AND status = 'active' AND challenge_deadline <= clock_timestamp()`, closeChallengeLapsed, id)
	return res.RowsAffected == 1, res.Error
}

// clearWayAhead is the challenge rule of a confirm: the holds ahead of h
// whose challenge lapsed are released now; any other live hold ahead
// refuses the confirm (hold_outranked, naming them).
func clearWayAhead(tx *gorm.DB, h Hold) error {
	ahead, err := lockHoldsAhead(tx, h)
	if err != nil {
		return err
	}
	var live []AheadView
	for _, a := range ahead {
		if a.Lapsed {
			if _, err := releaseLapsed(tx, a.ID); err != nil {
				return err
			}
			continue
		}
		live = append(live, AheadView{ID: a.ID, Title: a.Title, Promoter: a.Promoter, ChallengeDeadline: utcPtr(a.ChallengeDeadline)})
	}
	if len(live) == 0 {
		return nil
	}
	detail := fmt.Sprintf("%q holds this date ahead of this hold", live[0].Title)
	if len(live) > 1 {
		detail = fmt.Sprintf("%d holds rank ahead of this one on this date (first: %q)", len(live), live[0].Title)
	}
	if live[0].ChallengeDeadline != nil {
		detail += fmt.Sprintf("; challenged, it has until %s to confirm or release", live[0].ChallengeDeadline.Format(time.RFC3339))
	} else {
		detail += "; challenge it to give it a deadline to confirm or release"
	}
	return app.Conflict("hold_outranked", "%s", detail).With("ahead", live)
}

// ChallengeHold challenges, on behalf of hold id, every live hold ranking
// ahead of it: each must confirm or release within `within` (the default
// when zero), or it is released. A hold already challenged keeps its
// earlier deadline.
func (s *Service) ChallengeHold(ctx context.Context, t tenants.Tenant, venueID, id uuid.UUID, within time.Duration) (ChallengeView, error) {
	if within == 0 {
		within = DefaultChallengeWindow
	}
	if within < 0 || within > MaxChallengeWindow {
		return ChallengeView{}, invalid("respond_within_hours", "must be 1 to %d hours", int(MaxChallengeWindow.Hours()))
	}
	var out ChallengeView
	var queued []AheadView
	err := s.tx(ctx, t, func(tx *gorm.DB) error {
		out, queued = ChallengeView{}, nil
		v, err := findVenue(tx, venueID, false)
		if err != nil {
			return err
		}
		h, err := lockHold(tx, venueID, id)
		if err != nil {
			return err
		}
		if h.Status != HoldActive {
			return app.Conflict("hold_not_active", "the hold is %s", h.Status)
		}
		ahead, err := lockHoldsAhead(tx, h)
		if err != nil {
			return err
		}
		if len(ahead) == 0 {
			return app.Conflict("hold_not_challengeable", "no live hold ranks ahead of this one: confirm it")
		}
		for _, a := range ahead {
			if a.ChallengeDeadline == nil {
				var deadline time.Time
				if err := tx.Raw(`UPDATE cal_holds SET challenged_by = ?, challenge_deadline = clock_timestamp() + make_interval(secs => ?)
					WHERE id = ? RETURNING challenge_deadline`, id, within.Seconds(), a.ID).Row().Scan(&deadline); err != nil {
					return err
				}
				a.ChallengeDeadline = &deadline
				queued = append(queued, AheadView{ID: a.ID, ChallengeDeadline: &deadline})
			}
			out.Challenged = append(out.Challenged, AheadView{ID: a.ID, Title: a.Title, Promoter: a.Promoter, ChallengeDeadline: utcPtr(a.ChallengeDeadline)})
		}
		got, err := findHold(tx, venueID, id)
		out.Hold = viewHold(got, v.Timezone)
		return err
	})
	if err != nil {
		return ChallengeView{}, err
	}
	for _, q := range queued {
		s.scheduleLapse(ctx, t, q.ID, *q.ChallengeDeadline)
	}
	return out, nil
}

// scheduleLapse queues the deadline's task. If Redis is unavailable the
// sweeper releases the hold within a minute, and a challenger's confirm
// releases it at once, so a failure is only logged.
func (s *Service) scheduleLapse(ctx context.Context, t tenants.Tenant, holdID uuid.UUID, at time.Time) {
	_, err := s.app.Jobs.Enqueue(ctx, t, TaskChallengeLapse, holdTask{HoldID: holdID},
		asynq.ProcessAt(jobs.DueAt(at)), asynq.Queue(jobs.QueueCritical), asynq.MaxRetry(10),
		asynq.TaskID("calendar-challenge-lapse:"+t.Slug+":"+holdID.String()))
	if err != nil && !errors.Is(err, asynq.ErrTaskIDConflict) {
		s.app.Log.Warn("challenge deadline not scheduled; the sweeper will release the hold", "tenant", t.Slug, "hold", holdID, "err", err)
	}
}

// LapseChallenge is the deadline task's work: it releases the hold if, and
// only if, it is still active and its challenge deadline has passed.
func (s *Service) LapseChallenge(ctx context.Context, t tenants.Tenant, id uuid.UUID) (bool, error) {
	var done bool
	err := s.tx(ctx, t, func(tx *gorm.DB) error {
		var err error
		done, err = releaseLapsed(tx, id)
		return err
	})
	return done, err
}

// ChallengePending reports whether a hold is live, challenged, and its
// deadline not yet reached.
func (s *Service) ChallengePending(ctx context.Context, t tenants.Tenant, id uuid.UUID) (bool, error) {
	var pending bool
	err := s.tx(ctx, t, func(tx *gorm.DB) error {
		return tx.Raw(`SELECT EXISTS (SELECT 1 FROM cal_holds WHERE id = ? AND status = 'active'
			AND challenge_deadline > clock_timestamp())`, id).Row().Scan(&pending)
	})
	return pending, err
}

// sweepChallenges releases a batch of holds whose challenge lapsed (their
// own task lost or late); SKIP LOCKED as for expiry.
func sweepChallenges(tx *gorm.DB, batch int) (int64, error) {
	res := tx.Exec(`UPDATE cal_holds SET status = 'released', closed_at = now(), close_reason = ?
		WHERE id IN (SELECT id FROM cal_holds
		             WHERE status = 'active' AND challenge_deadline <= clock_timestamp()
		             ORDER BY challenge_deadline
		             LIMIT ? FOR UPDATE SKIP LOCKED)`, closeChallengeLapsed, batch)
	return res.RowsAffected, res.Error
}
