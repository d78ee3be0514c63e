package door

import (
	"context"
	"time"

	"github.com/google/uuid"
	"gorm.io/gorm"

	"marquee/app"
	"marquee/tenants"
)

// Checkin is one record of the entry/exit log.
type Checkin struct {
	ID         uuid.UUID  `gorm:"column:id" json:"id"`
	EventID    uuid.UUID  `gorm:"column:event_id" json:"event_id"`
	TicketID   uuid.UUID  `gorm:"column:ticket_id" json:"ticket_id"`
	ZoneID     uuid.UUID  `gorm:"column:zone_id" json:"zone_id"`
	Type       string     `gorm:"column:type" json:"type"`
	Result     string     `gorm:"column:result" json:"result"`
	Successful bool       `gorm:"column:successful" json:"successful"`
	Gate       string     `gorm:"column:gate" json:"gate"`
	DeviceID   string     `gorm:"column:device_id" json:"device_id"`
	Forced     bool       `gorm:"column:forced" json:"forced"`
	ScannedAt  time.Time  `gorm:"column:scanned_at" json:"scanned_at"`
	ReceivedAt time.Time  `gorm:"column:received_at" json:"received_at"`
	AnnulledAt *time.Time `gorm:"column:annulled_at" json:"annulled_at,omitempty"`
	// Offline scans (synced): what the device showed, its clock offset and
	// the corrected time the scan happened.
	Offline       bool       `gorm:"column:offline" json:"offline"`
	DeviceResult  *string    `gorm:"column:device_result" json:"device_result,omitempty"`
	ClockOffsetMS *int64     `gorm:"column:clock_offset_ms" json:"clock_offset_ms,omitempty"`
	HappenedAt    *time.Time `gorm:"column:happened_at" json:"happened_at,omitempty"`
}

const checkinCols = `id, event_id, ticket_id, zone_id, type, result, successful, gate, device_id, forced, scanned_at, received_at, annulled_at,
	offline, device_result, clock_offset_ms, happened_at`

// Annul undoes a successful scan the turnstile did not let through: only
// the device that made it, within AnnulWindow of its arrival, and only the
// ticket's latest passage (an entry annulled: the holder is outside again
// and may be admitted; an exit annulled: inside again). Annulling twice
// answers the annulled record.
func (s *Service) Annul(ctx context.Context, t tenants.Tenant, eventID, checkinID uuid.UUID, deviceID string) (Checkin, error) {
	var out Checkin
	err := s.d.Tx(ctx, t, func(tx *gorm.DB) error {
		var cs []Checkin
		if err := tx.Raw(`SELECT `+checkinCols+` FROM inv_checkins WHERE id = ? AND event_id = ?`, checkinID, eventID).Scan(&cs).Error; err != nil {
			return err
		}
		if len(cs) == 0 {
			return app.NotFound("checkin")
		}
		c := cs[0]
		switch {
		case c.DeviceID != deviceID:
			return app.Forbidden("annul_other_device", "only the device that made a scan may annul it")
		case c.AnnulledAt != nil:
			out = c
			return nil
		case !c.Successful:
			return app.Conflict("annul_unsuccessful", "only an admission or an exit can be annulled; this scan changed nothing")
		case s.d.Now().Sub(c.ReceivedAt) > AnnulWindow:
			return app.Conflict("annul_too_late", "a scan can be annulled within %s of its arrival", AnnulWindow)
		}
		// The ticket's row is locked: a scan of it waits, and the latest
		// passage cannot change between this check and the update.
		var last []*uuid.UUID
		if err := tx.Raw(`SELECT last_checkin FROM inv_door_state WHERE ticket_id = ? FOR UPDATE`, c.TicketID).Scan(&last).Error; err != nil {
			return err
		}
		if len(last) == 0 || last[0] == nil || *last[0] != c.ID {
			return app.Conflict("annul_not_latest", "the ticket was scanned again since; only its latest passage can be annulled")
		}
		if err := tx.Exec(`UPDATE inv_door_state SET inside = (? = 'exit'), entries = entries - (? = 'entry')::int, exits = exits - (? = 'exit')::int,
			first_checkin = CASE WHEN ? = 'entry' AND entries = 1 THEN NULL ELSE first_checkin END, last_checkin = NULL, last_at = ?
			WHERE ticket_id = ?`, c.Type, c.Type, c.Type, c.Type, s.d.Now().UTC(), c.TicketID).Error; err != nil {
			return err
		}
		var done []Checkin
		if err := tx.Raw(`UPDATE inv_checkins SET annulled_at = ? WHERE id = ? RETURNING `+checkinCols, s.d.Now().UTC(), c.ID).Scan(&done).Error; err != nil {
			return err
		}
		out = done[0]
		return nil
	})
	return out, err
}

// Checkins lists an event's log, newest first, after the cursor (a check-in
// id from the previous page) when given.
func (s *Service) Checkins(ctx context.Context, t tenants.Tenant, eventID uuid.UUID, before *uuid.UUID, limit int) ([]Checkin, error) {
	out := []Checkin{}
	err := s.d.App.TxWith(ctx, t, tenants.TxOptions{ReadOnly: true}, func(tx *gorm.DB) error {
		q := `SELECT ` + checkinCols + ` FROM inv_checkins WHERE event_id = ?`
		args := []any{eventID}
		if before != nil {
			q += ` AND (received_at, id) < (SELECT received_at, id FROM inv_checkins WHERE id = ?)`
			args = append(args, *before)
		}
		return tx.Raw(q+` ORDER BY received_at DESC, id DESC LIMIT ?`, append(args, limit)...).Scan(&out).Error
	})
	return out, err
}

// Attendance is an event's door count (the app's contract type: the ops
// module reads it through app.Attendance).
type (
	Attendance     = app.EventAttendance
	ZoneAttendance = app.ZoneAttendance
)

// Attendance counts an event's door per zone from the log's fold
// (inv_door_state, written by the same statement as every successful log
// record): sold = valid tickets, admitted = tickets with a standing entry,
// inside = tickets inside now (none whose last passage came before the
// event's "everyone out at" time, once it is past), last scan = the latest
// passage.
func (s *Service) Attendance(ctx context.Context, t tenants.Tenant, eventID uuid.UUID) (Attendance, error) {
	a := Attendance{EventID: eventID, Zones: []ZoneAttendance{}}
	var rows []struct {
		ZoneID   uuid.UUID  `gorm:"column:zone_id"`
		Zone     string     `gorm:"column:zone"`
		Sold     int        `gorm:"column:sold"`
		Admitted int        `gorm:"column:admitted"`
		Inside   int        `gorm:"column:inside"`
		LastScan *time.Time `gorm:"column:last_scan"`
	}
	err := s.d.App.TxWith(ctx, t, tenants.TxOptions{ReadOnly: true}, func(tx *gorm.DB) error {
		if err := tx.Raw(`SELECT z.id AS zone_id, z.name AS zone,
				(SELECT count(*) FROM inv_tickets tk WHERE tk.event_id = z.event_id AND tk.zone_id = z.id AND tk.status = 'valid') AS sold,
				coalesce(st.admitted, 0) AS admitted, coalesce(st.inside, 0) AS inside, st.last_scan
			FROM inv_zones z
			LEFT JOIN (SELECT s.zone_id, count(*) FILTER (WHERE s.entries > 0) AS admitted, max(s.last_at) AS last_scan,
					count(*) FILTER (WHERE s.inside AND NOT (d.everyone_out_at IS NOT NULL AND ?::timestamptz >= d.everyone_out_at
						AND coalesce((SELECT `+happenedSQL+` FROM inv_checkins c WHERE c.id = s.last_checkin), s.last_at) < d.everyone_out_at)) AS inside
				FROM inv_door_state s LEFT JOIN inv_door_events d ON d.event_id = s.event_id WHERE s.event_id = ? GROUP BY s.zone_id) st ON st.zone_id = z.id
			WHERE z.event_id = ? ORDER BY z.sort, z.name`, s.d.Now().UTC(), eventID, eventID).Scan(&rows).Error; err != nil {
			return err
		}
		return tx.Raw(`SELECT now()`).Row().Scan(&a.AsOf)
	})
	for _, r := range rows {
		z := ZoneAttendance{ZoneID: r.ZoneID, Zone: r.Zone, Sold: r.Sold, Admitted: r.Admitted, Inside: r.Inside, LastScan: r.LastScan}
		if z.LastScan != nil {
			utc := z.LastScan.UTC()
			z.LastScan = &utc
		}
		a.Zones = append(a.Zones, z)
		a.Sold, a.Admitted, a.Inside = a.Sold+z.Sold, a.Admitted+z.Admitted, a.Inside+z.Inside
		if z.LastScan != nil && (a.LastScan == nil || z.LastScan.After(*a.LastScan)) {
			a.LastScan = z.LastScan
		}
	}
	a.AsOf = a.AsOf.UTC()
	return a, err
}

// Revocation is one token scanners must refuse.
type Revocation struct {
	Seq       int64     `gorm:"column:seq" json:"seq"`
	TicketID  uuid.UUID `gorm:"column:ticket_id" json:"ticket_id"`
	Reason    string    `gorm:"column:reason" json:"reason"`
	RevokedAt time.Time `gorm:"column:revoked_at" json:"revoked_at"`
}

// Revocations is a delta of an event's revocation list.
type Revocations struct {
	EventID uuid.UUID `json:"event_id"`
	Since   int64     `json:"since"`
	// Until is the last sequence number in this page: ask again with
	// since=until; More says there are more already.
	Until       int64        `json:"until"`
	More        bool         `json:"more"`
	Revocations []Revocation `json:"revocations"`
}

// RevocationsSince reads the revocations after seq since, at most limit.
// Sequence numbers are gapless and commit in order (see migration 00100),
// so a scanner that keeps the last one it saw never misses one.
func (s *Service) RevocationsSince(ctx context.Context, t tenants.Tenant, eventID uuid.UUID, since int64, limit int) (Revocations, error) {
	out := Revocations{EventID: eventID, Since: since, Until: since, Revocations: []Revocation{}}
	err := s.d.App.TxWith(ctx, t, tenants.TxOptions{ReadOnly: true}, func(tx *gorm.DB) error {
		return tx.Raw(`SELECT seq, ticket_id, reason, revoked_at FROM inv_ticket_revocations WHERE event_id = ? AND seq > ? ORDER BY seq LIMIT ?`,
			eventID, since, limit+1).Scan(&out.Revocations).Error
	})
	if len(out.Revocations) > limit {
		out.Revocations, out.More = out.Revocations[:limit], true
	}
	if n := len(out.Revocations); n > 0 {
		out.Until = out.Revocations[n-1].Seq
	}
	return out, err
}
