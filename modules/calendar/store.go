package calendar

import (
	"errors"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgconn"
	"gorm.io/gorm"

	"marquee/app"
)

// This file holds the SQL of the calendar. Every function runs on a
// transaction already scoped to one tenant (app.Tx); none opens its own.

// PostgreSQL error codes the store maps.
const (
	pgExclusionViolation = "23P01"
	pgForeignKey         = "23503"
	pgUnique             = "23505"
	pgDeadlock           = "40P01"
	pgSerialization      = "40001"
)

// pgCode returns the SQLSTATE and the constraint of a PostgreSQL error. The
// constraint comes back without the calendar's table prefix: migration 00070
// renamed the tables (venues -> cal_venues, ...) but left their constraints'
// names as they were, so code of the release before it maps them too; the
// contract migration (migrations/contract/tenant/00900) then renames them to
// cal_<old name>. Both spellings map to the same error here.
func pgCode(err error) (code, constraint string) {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return pe.Code, strings.TrimPrefix(pe.ConstraintName, tablePrefix)
	}
	return "", ""
}

// tablePrefix is the calendar's table prefix (ARCHITECTURE.md, "Names that scale").
const tablePrefix = "cal_"

// retryable reports a transaction that lost a race PostgreSQL could not
// order (a deadlock or serialization failure): running it again is safe.
func retryable(err error) bool {
	code, _ := pgCode(err)
	return code == pgDeadlock || code == pgSerialization
}

// mapStoreError turns constraint violations into the API's errors. An
// exclusion violation can only surface here if a placement bypassed the
// ON CONFLICT path; it is still a schedule conflict, never a 500.
func mapStoreError(err error) error {
	if err == nil {
		return nil
	}
	code, constraint := pgCode(err)
	switch {
	case code == pgExclusionViolation && strings.HasPrefix(constraint, "occupancy_"):
		return conflictError(time.UTC, nil)
	case code == pgExclusionViolation:
		return app.Conflict("conflict", "the change conflicts with existing records")
	case code == pgForeignKey && (constraint == "events_promoter_id_fkey" || constraint == "holds_promoter_id_fkey"):
		return invalid("promoter_id", "no such user in this chain")
	case code == pgForeignKey && (constraint == "events_stage_fkey" || constraint == "holds_stage_fkey"):
		return app.NotFound("stage")
	case code == pgForeignKey && (constraint == "events_venue_id_fkey" || constraint == "holds_venue_id_fkey"):
		return app.NotFound("venue")
	case code == pgForeignKey:
		return app.Conflict("in_use", "other records still refer to this; remove them first")
	case code == pgUnique && constraint == "stages_venue_name_key":
		return app.Conflict("stage_name_taken", "this venue already has a stage with that name")
	}
	return err
}

const venueCols = `id, name, address, timezone, latitude, longitude, capacity, created_at, updated_at`

func insertVenue(tx *gorm.DB, v *Venue) error {
	return tx.Raw(`INSERT INTO cal_venues (id, name, address, timezone, latitude, longitude, capacity)
		VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING created_at, updated_at`,
		v.ID, v.Name, v.Address, v.Timezone, v.Latitude, v.Longitude, v.Capacity).Row().Scan(&v.CreatedAt, &v.UpdatedAt)
}

func updateVenue(tx *gorm.DB, v *Venue) error {
	return tx.Raw(`UPDATE cal_venues SET name = ?, address = ?, timezone = ?, latitude = ?, longitude = ?, capacity = ?, updated_at = now()
		WHERE id = ? RETURNING updated_at`,
		v.Name, v.Address, v.Timezone, v.Latitude, v.Longitude, v.Capacity, v.ID).Row().Scan(&v.UpdatedAt)
}

// findVenue reads one venue; lock takes its row for a read-modify-write.
func findVenue(tx *gorm.DB, id uuid.UUID, lock bool) (Venue, error) {
	q := `SELECT ` + venueCols + ` FROM cal_venues WHERE id = ?`
	if lock {
		q += ` FOR NO KEY UPDATE`
	}
	var vs []Venue
	if err := tx.Raw(q, id).Scan(&vs).Error; err != nil {
		return Venue{}, err
	}
	if len(vs) == 0 {
		return Venue{}, app.NotFound("venue")
	}
	return vs[0], nil
}

func listVenues(tx *gorm.DB, ids []uuid.UUID) ([]Venue, error) {
	vs := []Venue{}
	var err error
	if ids == nil {
		err = tx.Raw(`SELECT ` + venueCols + ` FROM cal_venues ORDER BY name, id`).Scan(&vs).Error
	} else if len(ids) > 0 {
		err = tx.Raw(`SELECT `+venueCols+` FROM cal_venues WHERE id IN ? ORDER BY name, id`, ids).Scan(&vs).Error
	}
	return vs, err
}

func deleteVenue(tx *gorm.DB, id uuid.UUID) error {
	// Holds and events keep their venue (no cascade): a venue with a history
	// is not deleted by accident.
	res := tx.Exec(`DELETE FROM cal_venues WHERE id = ?`, id)
	if res.Error != nil {
		if code, _ := pgCode(res.Error); code == pgForeignKey {
			return app.Conflict("venue_in_use", "the venue has events or holds; it cannot be deleted")
		}
		return res.Error
	}
	if res.RowsAffected == 0 {
		return app.NotFound("venue")
	}
	return nil
}

const stageCols = `id, venue_id, name, capacity, kind, created_at, updated_at`

func insertStage(tx *gorm.DB, s *Stage) error {
	return tx.Raw(`INSERT INTO cal_stages (id, venue_id, name, capacity, kind) VALUES (?, ?, ?, ?, ?) RETURNING created_at, updated_at`,
		s.ID, s.VenueID, s.Name, s.Capacity, s.Kind).Row().Scan(&s.CreatedAt, &s.UpdatedAt)
}

func updateStage(tx *gorm.DB, s *Stage) error {
	return tx.Raw(`UPDATE cal_stages SET name = ?, capacity = ?, kind = ?, updated_at = now() WHERE id = ? AND venue_id = ? RETURNING updated_at`,
		s.Name, s.Capacity, s.Kind, s.ID, s.VenueID).Row().Scan(&s.UpdatedAt)
}

func findStage(tx *gorm.DB, venueID, id uuid.UUID, lock bool) (Stage, error) {
	q := `SELECT ` + stageCols + ` FROM cal_stages WHERE id = ? AND venue_id = ?`
	if lock {
		q += ` FOR NO KEY UPDATE`
	}
	var ss []Stage
	if err := tx.Raw(q, id, venueID).Scan(&ss).Error; err != nil {
		return Stage{}, err
	}
	if len(ss) == 0 {
		return Stage{}, app.NotFound("stage")
	}
	return ss[0], nil
}

func listStages(tx *gorm.DB, venueIDs []uuid.UUID) ([]Stage, error) {
	ss := []Stage{}
	if len(venueIDs) == 0 {
		return ss, nil
	}
	err := tx.Raw(`SELECT `+stageCols+` FROM cal_stages WHERE venue_id IN ? ORDER BY venue_id, created_at, id`, venueIDs).Scan(&ss).Error
	return ss, err
}

func deleteStage(tx *gorm.DB, venueID, id uuid.UUID) error {
	res := tx.Exec(`DELETE FROM cal_stages WHERE id = ? AND venue_id = ?`, id, venueID)
	if res.Error != nil {
		if code, _ := pgCode(res.Error); code == pgForeignKey {
			return app.Conflict("stage_in_use", "the stage has events or holds; it cannot be deleted")
		}
		return res.Error
	}
	if res.RowsAffected == 0 {
		return app.NotFound("stage")
	}
	return nil
}

const eventCols = `e.id, e.venue_id, e.stage_id, e.exclusive, e.title, e.category, e.status, e.promoter_id,
	e.starts_at, e.ends_at, e.setup_minutes, e.teardown_minutes, e.version, e.hold_id, e.created_at, e.updated_at,
	e.promoter, e.on_sale_at, e.presale_starts_at, e.presale_ends_at, e.presale_code`

// insertEvent tries to book a new event in one statement: the occupancy row
// goes in first with ON CONFLICT DO NOTHING and, only if it went in, the
// event. When any exclusion constraint refuses the row, nothing is written
// and no error is raised, so the losers of a race never deadlock; placed is
// false. A request that meets an in-flight transaction holding the slot waits
// for it to end and then knows. The event's foreign keys refuse a venue that
// does not exist and a stage of another venue (23503, mapped to 404).
func insertEvent(tx *gorm.DB, e *Event) (timezone string, placed bool, err error) {
	w := e.Occupied()
	var rows []struct {
		CreatedAt time.Time `gorm:"column:created_at"`
		UpdatedAt time.Time `gorm:"column:updated_at"`
		Timezone  string    `gorm:"column:timezone"`
	}
	err = tx.Raw(`
WITH placed AS (
    INSERT INTO cal_occupancy (event_id, version, venue_id, stage_id, exclusive, occupied)
    VALUES (@id, 1, @venue, @stage, @exclusive, tstzrange(@lo, @hi, '[)'))
    ON CONFLICT DO NOTHING
    RETURNING event_id
)
INSERT INTO cal_events (id, venue_id, stage_id, exclusive, title, category, status, promoter_id,
                    starts_at, ends_at, setup_minutes, teardown_minutes, occupied, version, hold_id,
                    promoter, on_sale_at, presale_starts_at, presale_ends_at, presale_code)
SELECT event_id, CAST(@venue AS uuid), CAST(@stage AS uuid), CAST(@exclusive AS boolean), CAST(@title AS text),
       CAST(@category AS text), CAST(@status AS text), CAST(@promoter AS uuid),
       CAST(@starts AS timestamptz), CAST(@ends AS timestamptz), CAST(@setup AS integer), CAST(@teardown AS integer),
       tstzrange(CAST(@lo AS timestamptz), CAST(@hi AS timestamptz), '[)'), 1, CAST(@hold AS uuid),
       CAST(@promoter_name AS text), CAST(@on_sale AS timestamptz), CAST(@presale_from AS timestamptz),
       CAST(@presale_to AS timestamptz), CAST(@presale_code AS text)
FROM placed
RETURNING created_at, updated_at, (SELECT v.timezone FROM cal_venues v WHERE v.id = cal_events.venue_id) AS timezone`, map[string]any{
		"id": e.ID, "venue": e.VenueID, "stage": e.StageID, "exclusive": e.Exclusive, "lo": w.From, "hi": w.To,
		"title": e.Title, "category": e.Category, "status": string(e.Status), "promoter": e.PromoterID,
		"starts": e.StartsAt, "ends": e.EndsAt, "setup": e.SetupMinutes, "teardown": e.TeardownMinutes, "hold": e.HoldID,
		"promoter_name": e.Promoter, "on_sale": e.OnSaleAt, "presale_from": e.PresaleStartsAt, "presale_to": e.PresaleEndsAt,
		"presale_code": e.PresaleCode,
	}).Scan(&rows).Error
	if code, constraint := pgCode(err); code == pgExclusionViolation && strings.HasPrefix(constraint, "occupancy_") {
		return "", false, nil // refused all the same: the caller reads what is in the way
	}
	if err != nil || len(rows) == 0 {
		return "", false, err
	}
	e.CreatedAt, e.UpdatedAt, e.Version = rows[0].CreatedAt, rows[0].UpdatedAt, 1
	return rows[0].Timezone, true, nil
}

// refusal explains why a placement was refused, reading afresh (a new
// statement sees the winner that committed while the insert waited): whether
// the venue exists, whether the stage is one of its own (or none, for
// exclusive use), and the live events of this venue in the way. Events of
// other venues are never read, so a stage id of another venue reveals nothing.
type refusal struct {
	Found    bool
	StageOK  bool
	Timezone string
	Blockers []Blocker
}

func explainRefusal(tx *gorm.DB, e *Event) (refusal, error) {
	w := e.Occupied()
	var rows []struct {
		Timezone  string     `gorm:"column:timezone"`
		StageOK   bool       `gorm:"column:stage_ok"`
		BlockerID *uuid.UUID `gorm:"column:blocker_id"`
		Blocker
	}
	err := tx.Raw(`
SELECT t.timezone, t.stage_ok, b.id AS blocker_id, b.id, b.title, b.status, b.stage_id, b.stage_name, b.exclusive,
       b.starts_at, b.ends_at, b.setup_minutes, b.teardown_minutes
FROM (SELECT v.timezone, (s.id IS NULL) = CAST(@exclusive AS boolean) AS stage_ok
      FROM cal_venues v LEFT JOIN cal_stages s ON s.id = CAST(@stage AS uuid) AND s.venue_id = v.id
      WHERE v.id = CAST(@venue AS uuid)) t
LEFT JOIN LATERAL (
    SELECT e.id, e.title, e.status, e.stage_id, coalesce(st.name, '') AS stage_name, e.exclusive,
           e.starts_at, e.ends_at, e.setup_minutes, e.teardown_minutes, lower(o.occupied) AS from_at
    FROM cal_occupancy o
    JOIN cal_events e ON e.id = o.event_id
    LEFT JOIN cal_stages st ON st.id = e.stage_id
    WHERE t.stage_ok AND o.venue_id = CAST(@venue AS uuid) AND o.event_id <> CAST(@self AS uuid)
      AND o.occupied && tstzrange(CAST(@lo AS timestamptz), CAST(@hi AS timestamptz), '[)')
      AND (o.exclusive OR CAST(@exclusive AS boolean) OR o.stage_id = CAST(@stage AS uuid))
    ORDER BY lower(o.occupied), e.id
    LIMIT 10
) b ON true
ORDER BY b.from_at, b.id`, map[string]any{
		"venue": e.VenueID, "stage": e.StageID, "exclusive": e.Exclusive, "self": e.ID, "lo": w.From, "hi": w.To,
	}).Scan(&rows).Error
	var r refusal
	if err != nil || len(rows) == 0 {
		return r, err
	}
	r.Found, r.StageOK, r.Timezone = true, rows[0].StageOK, rows[0].Timezone
	for _, row := range rows {
		if row.BlockerID != nil {
			r.Blockers = append(r.Blockers, row.Blocker)
		}
	}
	return r, nil
}

// movePlacement gives an existing event a new occupancy row (version
// e.Version) and then drops its older rows. Rows of one event never conflict
// with each other, so a move to an overlapping window is possible; rows of
// other events are refused by the constraints exactly as for an insert.
func movePlacement(tx *gorm.DB, e Event) (placed bool, err error) {
	w := e.Occupied()
	var got []struct {
		EventID uuid.UUID `gorm:"column:event_id"`
	}
	err = tx.Raw(`INSERT INTO cal_occupancy (event_id, version, venue_id, stage_id, exclusive, occupied)
		VALUES (?, ?, ?, ?, ?, tstzrange(?, ?, '[)'))
		ON CONFLICT DO NOTHING
		RETURNING event_id`, e.ID, e.Version, e.VenueID, e.StageID, e.Exclusive, w.From, w.To).Scan(&got).Error
	if code, constraint := pgCode(err); code == pgExclusionViolation && strings.HasPrefix(constraint, "occupancy_") {
		return false, nil
	}
	if err != nil || len(got) == 0 {
		return false, err
	}
	return true, tx.Exec(`DELETE FROM cal_occupancy WHERE event_id = ? AND version <> ?`, e.ID, e.Version).Error
}

// freePlacement removes an event's occupancy: its window is free at once.
func freePlacement(tx *gorm.DB, eventID uuid.UUID) error {
	return tx.Exec(`DELETE FROM cal_occupancy WHERE event_id = ?`, eventID).Error
}

func saveEvent(tx *gorm.DB, e *Event) error {
	w := e.Occupied()
	return tx.Raw(`UPDATE cal_events SET stage_id = ?, exclusive = ?, title = ?, category = ?, status = ?, promoter_id = ?,
		starts_at = ?, ends_at = ?, setup_minutes = ?, teardown_minutes = ?, occupied = tstzrange(?, ?, '[)'),
		version = ?, promoter = ?, on_sale_at = ?, presale_starts_at = ?, presale_ends_at = ?, presale_code = ?, updated_at = now()
		WHERE id = ? RETURNING updated_at`,
		e.StageID, e.Exclusive, e.Title, e.Category, string(e.Status), e.PromoterID,
		e.StartsAt, e.EndsAt, e.SetupMinutes, e.TeardownMinutes, w.From, w.To, e.Version,
		e.Promoter, e.OnSaleAt, e.PresaleStartsAt, e.PresaleEndsAt, e.PresaleCode, e.ID).Row().Scan(&e.UpdatedAt)
}

// blockersOf reads the live events whose placement refuses w for an event
// (self excluded) on stage, or on the whole venue when exclusive. It uses the
// constraints' own rules, so it names exactly what PostgreSQL refused.
func blockersOf(tx *gorm.DB, venueID uuid.UUID, stage *uuid.UUID, exclusive bool, w Window, self uuid.UUID) ([]Blocker, error) {
	var bs []Blocker
	err := tx.Raw(`SELECT e.id, e.title, e.status, e.stage_id, coalesce(s.name, '') AS stage_name, e.exclusive,
			e.starts_at, e.ends_at, e.setup_minutes, e.teardown_minutes
		FROM cal_occupancy o
		JOIN cal_events e ON e.id = o.event_id
		LEFT JOIN cal_stages s ON s.id = e.stage_id
		WHERE o.venue_id = ? AND o.occupied && tstzrange(?, ?, '[)') AND o.event_id <> ?
		  AND (o.exclusive OR ? OR o.stage_id = ?)
		ORDER BY lower(o.occupied), e.id
		LIMIT 10`, venueID, w.From, w.To, self, exclusive, stage).Scan(&bs).Error
	return bs, err
}

func findEvent(tx *gorm.DB, venueID, id uuid.UUID, lock bool) (Event, error) {
	q := `SELECT ` + eventCols + ` FROM cal_events e WHERE e.id = ? AND e.venue_id = ?`
	if lock {
		q += ` FOR UPDATE`
	}
	var es []Event
	if err := tx.Raw(q, id, venueID).Scan(&es).Error; err != nil {
		return Event{}, err
	}
	if len(es) == 0 {
		return Event{}, app.NotFound("event")
	}
	return es[0], nil
}

// EventFilter narrows an event list.
type EventFilter struct {
	Status     Status
	From, To   *time.Time // starts_at range
	AfterStart time.Time  // cursor: (starts_at, id) strictly after
	AfterID    uuid.UUID
	HasCursor  bool
	Limit      int
}

func listEvents(tx *gorm.DB, venueID uuid.UUID, f EventFilter) ([]Event, error) {
	q := tx.Table("cal_events e").Select(eventCols).Where("e.venue_id = ?", venueID)
	if f.Status != "" {
		q = q.Where("e.status = ?", string(f.Status))
	}
	if f.From != nil {
		q = q.Where("e.starts_at >= ?", *f.From)
	}
	if f.To != nil {
		q = q.Where("e.starts_at < ?", *f.To)
	}
	if f.HasCursor {
		q = q.Where("(e.starts_at, e.id) > (?, ?)", f.AfterStart, f.AfterID)
	}
	es := []Event{}
	err := q.Order("e.starts_at, e.id").Limit(f.Limit).Scan(&es).Error
	return es, err
}

// liveEvents reads the events of venues that occupy part of w.
func liveEvents(tx *gorm.DB, venueIDs []uuid.UUID, w Window) ([]Event, error) {
	es := []Event{}
	if len(venueIDs) == 0 {
		return es, nil
	}
	err := tx.Raw(`SELECT `+eventCols+` FROM cal_events e
		WHERE e.venue_id IN ? AND e.status <> 'cancelled' AND e.occupied && tstzrange(?, ?, '[)')
		ORDER BY e.starts_at, e.id`, venueIDs, w.From, w.To).Scan(&es).Error
	return es, err
}

// holdQuery reads holds with their rank, computed now from the arrival order
// of the live holds overlapping each one on its stage: when a hold ahead is
// released, confirmed or expires, the holds behind it move up at once.
const holdQuery = `SELECT h.id, h.venue_id, h.stage_id, h.title, h.category, h.promoter_id, h.starts_at, h.ends_at,
	h.setup_minutes, h.teardown_minutes, h.arrival, h.expires_at, h.event_id, h.created_at, h.closed_at,
	h.promoter, h.challenged_by, h.challenge_deadline, h.close_reason,
	CASE WHEN h.status = 'active' AND h.expires_at <= now() THEN 'expired' ELSE h.status END AS status,
	CASE WHEN h.status = 'active' AND (h.expires_at IS NULL OR h.expires_at > now()) THEN
		1 + (SELECT count(*) FROM cal_holds o
		     WHERE o.stage_id = h.stage_id AND o.status = 'active' AND (o.expires_at IS NULL OR o.expires_at > now())
		       AND o.occupied && h.occupied AND o.arrival < h.arrival)
	ELSE 0 END AS rank,
	EXISTS (SELECT 1 FROM cal_occupancy x
	        WHERE x.venue_id = h.venue_id AND x.occupied && h.occupied AND (x.exclusive OR x.stage_id = h.stage_id)) AS blocked
	FROM cal_holds h `

func findHold(tx *gorm.DB, venueID, id uuid.UUID) (Hold, error) {
	var hs []Hold
	if err := tx.Raw(holdQuery+`WHERE h.id = ? AND h.venue_id = ?`, id, venueID).Scan(&hs).Error; err != nil {
		return Hold{}, err
	}
	if len(hs) == 0 {
		return Hold{}, app.NotFound("hold")
	}
	return hs[0], nil
}

// lockHold takes a hold's row for a state change and reports its state.
func lockHold(tx *gorm.DB, venueID, id uuid.UUID) (Hold, error) {
	var hs []Hold
	err := tx.Raw(`SELECT id, venue_id, stage_id, title, category, promoter_id, starts_at, ends_at, setup_minutes, teardown_minutes,
			arrival, expires_at, event_id, created_at, closed_at, promoter, challenged_by, challenge_deadline, close_reason,
			CASE WHEN status = 'active' AND expires_at <= now() THEN 'expired' ELSE status END AS status
		FROM cal_holds WHERE id = ? AND venue_id = ? FOR UPDATE`, id, venueID).Scan(&hs).Error
	if err != nil {
		return Hold{}, err
	}
	if len(hs) == 0 {
		return Hold{}, app.NotFound("hold")
	}
	return hs[0], nil
}

// liveHolds reads the live holds of venues overlapping w, by arrival.
func liveHolds(tx *gorm.DB, venueIDs []uuid.UUID, w Window) ([]Hold, error) {
	hs := []Hold{}
	if len(venueIDs) == 0 {
		return hs, nil
	}
	err := tx.Raw(holdQuery+`WHERE h.venue_id IN ? AND h.status = 'active' AND (h.expires_at IS NULL OR h.expires_at > now())
		AND h.occupied && tstzrange(?, ?, '[)') ORDER BY h.starts_at, h.arrival`, venueIDs, w.From, w.To).Scan(&hs).Error
	return hs, err
}

func insertHold(tx *gorm.DB, h Hold) error {
	w := h.Occupied()
	return tx.Exec(`INSERT INTO cal_holds (id, venue_id, stage_id, title, category, promoter_id, starts_at, ends_at,
			setup_minutes, teardown_minutes, occupied, status, expires_at, promoter)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, tstzrange(?, ?, '[)'), 'active', ?, ?)`,
		h.ID, h.VenueID, h.StageID, h.Title, h.Category, h.PromoterID, h.StartsAt, h.EndsAt,
		h.SetupMinutes, h.TeardownMinutes, w.From, w.To, h.ExpiresAt, h.Promoter).Error
}

// closeHold ends a live hold; it reports false when the hold was not live.
func closeHold(tx *gorm.DB, id uuid.UUID, status HoldStatus, eventID *uuid.UUID) (bool, error) {
	res := tx.Exec(`UPDATE cal_holds SET status = ?, event_id = ?, closed_at = now() WHERE id = ? AND status = 'active'`,
		string(status), eventID, id)
	return res.RowsAffected == 1, res.Error
}

// expireHold marks one hold expired if, and only if, it is still active and
// its time has come: running it twice, early or after a release is harmless.
func expireHold(tx *gorm.DB, id uuid.UUID) (bool, error) {
	res := tx.Exec(`UPDATE cal_holds SET status = 'expired', closed_at = now()
		WHERE id = ? AND status = 'active' AND expires_at <= now()`, id)
	return res.RowsAffected == 1, res.Error
}

// sweepHolds expires a batch of lapsed holds. SKIP LOCKED lets several
// sweepers (or a sweeper and a request releasing a hold) run at once without
// waiting on each other; each lapsed hold is expired exactly once.
func sweepHolds(tx *gorm.DB, batch int) (int64, error) {
	res := tx.Exec(`UPDATE cal_holds SET status = 'expired', closed_at = now()
		WHERE id IN (SELECT id FROM cal_holds
		             WHERE status = 'active' AND expires_at <= now()
		             ORDER BY expires_at
		             LIMIT ? FOR UPDATE SKIP LOCKED)`, batch)
	return res.RowsAffected, res.Error
}

// claimKey records an Idempotency-Key before the work it guards. It returns
// the stored response when the key was used before; a concurrent request
// with the same key waits here until the first one commits or rolls back.
