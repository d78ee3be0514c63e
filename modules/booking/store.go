package booking

import (
	"encoding/json"
	"errors"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgconn"
	"gorm.io/gorm"

	"marquee/app"
	"marquee/modules/booking/internal/settlement"
	"marquee/modules/booking/internal/terms"
)

// This file holds the SQL of booking. Every function runs on a transaction
// already scoped to one tenant (Core.Tx); none opens its own.

const bookingCols = `b.id, b.artist_id, a.name AS artist_name, a.agent_id, g.name AS agent_name, b.title, b.hold_id, b.venue_id,
	b.event_id, b.state, b.awaiting, b.version, b.current_n, b.accepted_n, b.deadline, b.reason, b.created_at, b.updated_at`

const bookingFrom = ` FROM bkg_bookings b JOIN bkg_artists a ON a.id = b.artist_id JOIN bkg_agents g ON g.id = a.agent_id `

// scope limits a read to an agent's artists (agent links) or not at all.
type scope struct{ agentID uuid.UUID }

func (s scope) where(q string, args []any) (string, []any) {
	if s.agentID != uuid.Nil {
		// An agent sees their artists' offers once sent: a draft is the
		// promoter's alone.
		q += ` AND a.agent_id = ? AND b.current_n >= 1`
		args = append(args, s.agentID)
	}
	return q, args
}

// findBooking reads one booking; lock takes its row for a transition, so
// two transitions of one booking run one after the other and the second
// sees the first's version. Outside the scope it does not exist (404).
func findBooking(tx *gorm.DB, id uuid.UUID, sc scope, lock bool) (Booking, error) {
	q, args := sc.where(`SELECT `+bookingCols+bookingFrom+`WHERE b.id = ?`, []any{id})
	if lock {
		q += ` FOR UPDATE OF b`
	}
	var bs []Booking
	if err := tx.Raw(q, args...).Scan(&bs).Error; err != nil {
		return Booking{}, err
	}
	if len(bs) == 0 {
		return Booking{}, app.NotFound("booking")
	}
	b := bs[0]
	utc(&b)
	return b, nil
}

func utc(b *Booking) {
	b.CreatedAt, b.UpdatedAt = b.CreatedAt.UTC(), b.UpdatedAt.UTC()
	if b.Deadline != nil {
		d := b.Deadline.UTC()
		b.Deadline = &d
	}
}

// ListFilter selects bookings.
type ListFilter struct {
	State    State
	ArtistID uuid.UUID
	After    uuid.UUID // cursor: bookings older than this one (ids are time-ordered)
	Limit    int
}

func listBookings(tx *gorm.DB, f ListFilter, sc scope) ([]Summary, error) {
	q := `SELECT ` + bookingCols + `,
		coalesce(v.terms, b.draft_terms)->>'currency' AS currency,
		coalesce((coalesce(v.terms, b.draft_terms)->>'guarantee_minor')::bigint, 0) AS guarantee_minor,
		coalesce(coalesce(v.terms, b.draft_terms)->'deal'->>'type', '') AS deal_type` + bookingFrom +
		`LEFT JOIN bkg_versions v ON v.booking_id = b.id AND v.n = b.current_n WHERE true`
	var args []any
	q, args = sc.where(q, args)
	if f.State != "" {
		q += ` AND b.state = ?`
		args = append(args, string(f.State))
	}
	if f.ArtistID != uuid.Nil {
		q += ` AND b.artist_id = ?`
		args = append(args, f.ArtistID)
	}
	if f.After != uuid.Nil {
		q += ` AND b.id < ?`
		args = append(args, f.After)
	}
	q += ` ORDER BY b.id DESC LIMIT ?`
	args = append(args, f.Limit)
	out := []Summary{}
	err := tx.Raw(q, args...).Scan(&out).Error
	for i := range out {
		utc(&out[i].Booking)
	}
	return out, err
}

func insertBooking(tx *gorm.DB, b Booking, draft terms.Terms, createdBy *uuid.UUID) error {
	raw, err := json.Marshal(draft)
	if err != nil {
		return err
	}
	return tx.Exec(`INSERT INTO bkg_bookings (id, artist_id, title, hold_id, venue_id, event_id, state, draft_terms, created_by)
		VALUES (?, ?, ?, ?, ?, ?, 'draft', ?, ?)`, b.ID, b.ArtistID, b.Title, b.HoldID, b.VenueID, b.EventID, string(raw), createdBy).Error
}

// saveTransition writes a transition, on the condition that the row is
// still at the version the caller read: with the row locked this always
// holds, and it keeps a caller that forgot the lock from writing over a
// change it never saw.
func saveTransition(tx *gorm.DB, b Booking, readVersion int) error {
	res := tx.Exec(`UPDATE bkg_bookings SET state = ?, awaiting = ?, version = version + 1, current_n = ?, accepted_n = ?,
			deadline = ?, reason = ?, event_id = ?, updated_at = now()
		WHERE id = ? AND version = ?`,
		string(b.State), b.Awaiting, b.CurrentN, b.AcceptedN, b.Deadline, b.Reason, b.EventID, b.ID, readVersion)
	if res.Error != nil {
		return res.Error
	}
	if res.RowsAffected != 1 {
		return staleVersion(readVersion)
	}
	return nil
}

func saveDraftTerms(tx *gorm.DB, id uuid.UUID, t terms.Terms) error {
	raw, err := json.Marshal(t)
	if err != nil {
		return err
	}
	return tx.Exec(`UPDATE bkg_bookings SET draft_terms = ? WHERE id = ?`, string(raw), id).Error
}

func draftTerms(tx *gorm.DB, id uuid.UUID) (terms.Terms, error) {
	var raw []string
	if err := tx.Raw(`SELECT draft_terms::text FROM bkg_bookings WHERE id = ?`, id).Scan(&raw).Error; err != nil {
		return terms.Terms{}, err
	}
	if len(raw) == 0 {
		return terms.Terms{}, app.NotFound("booking")
	}
	return decodeTerms(raw[0])
}

func decodeTerms(raw string) (terms.Terms, error) {
	var t terms.Terms
	if err := json.Unmarshal([]byte(raw), &t); err != nil {
		return t, err
	}
	t.Normalize()
	return t, nil
}

func insertVersion(tx *gorm.DB, id uuid.UUID, n int, t terms.Terms, party Party, author string) error {
	raw, err := json.Marshal(t)
	if err != nil {
		return err
	}
	return tx.Exec(`INSERT INTO bkg_versions (booking_id, n, terms, party, author) VALUES (?, ?, ?, ?, ?)`,
		id, n, string(raw), string(party), author).Error
}

func findVersion(tx *gorm.DB, id uuid.UUID, n int) (Version, error) {
	var rows []struct {
		VersionInfo
		Terms string `gorm:"column:terms"`
	}
	if err := tx.Raw(`SELECT n, party, author, created_at, terms::text AS terms FROM bkg_versions WHERE booking_id = ? AND n = ?`, id, n).
		Scan(&rows).Error; err != nil {
		return Version{}, err
	}
	if len(rows) == 0 {
		return Version{}, app.NotFound("terms version")
	}
	t, err := decodeTerms(rows[0].Terms)
	return Version{N: rows[0].N, Party: rows[0].Party, Author: rows[0].Author, CreatedAt: rows[0].CreatedAt.UTC(), Terms: t}, err
}

func listVersions(tx *gorm.DB, id uuid.UUID) ([]VersionInfo, error) {
	out := []VersionInfo{}
	err := tx.Raw(`SELECT n, party, author, created_at FROM bkg_versions WHERE booking_id = ? ORDER BY n`, id).Scan(&out).Error
	for i := range out {
		out[i].CreatedAt = out[i].CreatedAt.UTC()
	}
	return out, err
}

func addHistory(tx *gorm.DB, id uuid.UUID, a Actor, action string, from, to State, termsN *int, note string) error {
	return tx.Exec(`INSERT INTO bkg_history (booking_id, actor_kind, actor_id, actor_name, ip, action, from_state, to_state, terms_n, note)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`, id, a.Kind, a.ID, a.Name, a.IP, action, string(from), string(to), termsN, note).Error
}

func listHistory(tx *gorm.DB, id uuid.UUID) ([]HistoryEntry, error) {
	out := []HistoryEntry{}
	err := tx.Raw(`SELECT id, at, actor_kind, actor_id, actor_name, ip, action, from_state, to_state, terms_n, note
		FROM bkg_history WHERE booking_id = ? ORDER BY id`, id).Scan(&out).Error
	for i := range out {
		out[i].At = out[i].At.UTC()
	}
	return out, err
}

func readActuals(tx *gorm.DB, id uuid.UUID) (settlement.Actuals, error) {
	var raw []string
	if err := tx.Raw(`SELECT actuals::text FROM bkg_bookings WHERE id = ?`, id).Scan(&raw).Error; err != nil {
		return settlement.Actuals{}, err
	}
	var a settlement.Actuals
	if len(raw) == 0 {
		return a, app.NotFound("booking")
	}
	return a, json.Unmarshal([]byte(raw[0]), &a)
}

func saveActuals(tx *gorm.DB, id uuid.UUID, a settlement.Actuals, readVersion int) error {
	raw, err := json.Marshal(a)
	if err != nil {
		return err
	}
	res := tx.Exec(`UPDATE bkg_bookings SET actuals = ?, version = version + 1, updated_at = now() WHERE id = ? AND version = ?`,
		string(raw), id, readVersion)
	if res.Error == nil && res.RowsAffected != 1 {
		return staleVersion(readVersion)
	}
	return res.Error
}

// expireOffer expires one open offer if, and only if, its deadline has
// passed: running it twice, early, or after an answer changes nothing.
func expireOffer(tx *gorm.DB, id uuid.UUID) (bool, error) {
	return expireWhere(tx, `id = ?`, id)
}

// sweepOffers expires a batch of lapsed offers. SKIP LOCKED lets a sweeper
// run beside a request answering one of them without waiting on it; each
// lapsed offer is expired exactly once.
func sweepOffers(tx *gorm.DB, batch int) (int64, error) {
	var ids []uuid.UUID
	err := tx.Raw(`SELECT id FROM bkg_bookings WHERE state IN ('offer_sent', 'counter_offer') AND deadline <= now()
		ORDER BY deadline LIMIT ? FOR UPDATE SKIP LOCKED`, batch).Scan(&ids).Error
	if err != nil || len(ids) == 0 {
		return 0, err
	}
	var n int64
	for _, id := range ids {
		done, err := expireWhere(tx, `id = ?`, id)
		if err != nil {
			return n, err
		}
		if done {
			n++
		}
	}
	return n, nil
}

func expireWhere(tx *gorm.DB, cond string, args ...any) (bool, error) {
	var rows []struct {
		ID       uuid.UUID `gorm:"column:id"`
		State    string    `gorm:"column:state"`
		CurrentN int       `gorm:"column:current_n"`
	}
	// The old state comes from the locked row, read before the update.
	err := tx.Raw(`WITH old AS (SELECT id, state FROM bkg_bookings WHERE `+cond+` AND state IN ('offer_sent', 'counter_offer')
			AND deadline <= now() FOR UPDATE)
		UPDATE bkg_bookings b SET state = 'expired', awaiting = NULL, version = b.version + 1, updated_at = now()
		FROM old WHERE b.id = old.id RETURNING b.id, old.state, b.current_n`, args...).Scan(&rows).Error
	if err != nil || len(rows) == 0 {
		return false, err
	}
	r := rows[0]
	n := r.CurrentN
	return true, addHistory(tx, r.ID, systemActor, "expire", State(r.State), Expired, &n, "the deadline passed without an answer")
}

func insertAgent(tx *gorm.DB, a Agent) error {
	err := tx.Exec(`INSERT INTO bkg_agents (id, name, email, agency) VALUES (?, ?, ?, ?)`, a.ID, a.Name, a.Email, a.Agency).Error
	var pe *pgconn.PgError
	if errors.As(err, &pe) && pe.Code == "23505" {
		return app.Conflict("duplicate", "an agent with this email exists already")
	}
	return err
}

func findAgent(tx *gorm.DB, id uuid.UUID) (Agent, error) {
	var out []Agent
	if err := tx.Raw(`SELECT id, name, email, agency, created_at FROM bkg_agents WHERE id = ?`, id).Scan(&out).Error; err != nil {
		return Agent{}, err
	}
	if len(out) == 0 {
		return Agent{}, app.NotFound("agent")
	}
	return out[0], nil
}

func listAgents(tx *gorm.DB) ([]Agent, error) {
	out := []Agent{}
	err := tx.Raw(`SELECT id, name, email, agency, created_at FROM bkg_agents ORDER BY name, id`).Scan(&out).Error
	return out, err
}

func insertArtist(tx *gorm.DB, a ArtistRecord) error {
	return tx.Exec(`INSERT INTO bkg_artists (id, name, agent_id) VALUES (?, ?, ?)`, a.ID, a.Name, a.AgentID).Error
}

const artistQuery = `SELECT a.id, a.name, a.agent_id, g.name AS agent_name, a.created_at FROM bkg_artists a JOIN bkg_agents g ON g.id = a.agent_id`

func findArtist(tx *gorm.DB, id uuid.UUID) (ArtistRecord, error) {
	var out []ArtistRecord
	if err := tx.Raw(artistQuery+` WHERE a.id = ?`, id).Scan(&out).Error; err != nil {
		return ArtistRecord{}, err
	}
	if len(out) == 0 {
		return ArtistRecord{}, app.NotFound("artist")
	}
	return out[0], nil
}

func listArtists(tx *gorm.DB) ([]ArtistRecord, error) {
	out := []ArtistRecord{}
	err := tx.Raw(artistQuery + ` ORDER BY a.name, a.id`).Scan(&out).Error
	return out, err
}

// staleVersion is the answer to a change that names a version the booking
// has left.
func staleVersion(named int) error {
	return app.Conflict("version_mismatch", "the booking changed since version %d; reload it and retry", named)
}
