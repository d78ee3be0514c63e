package door

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"regexp"
	"strconv"
	"time"

	"github.com/google/uuid"

	"marquee/app"
	"marquee/tenants"
)

// The door manifest: what an offline scanner needs besides the keys — every
// ticket of the event with its zone and state — in a compact binary form,
// and its delta since a cursor. Layout (docs: DESIGN.md "Offline scanning"):
//
//	"MQDM" | version 0x01 | uint32 BE header length H | H bytes of JSON (ManifestHeader) | records
//
// and each record is RecordSize bytes: ticket id (16), zone index into the
// header's zones (1; 0xFF: not one of them), state (1: ManifestValid …).
const (
	ManifestMagic   = "MQDM"
	ManifestVersion = 1
	RecordSize      = 18
)

// Ticket states in a manifest record.
const (
	ManifestValid   = 0 // valid, never admitted
	ManifestInside  = 1 // valid, inside now
	ManifestOutside = 2 // valid, admitted and let out
	ManifestRevoked = 3 // void or re-issued: its token must be refused
)

// ManifestZone is a zone the records index.
type ManifestZone struct {
	ID   uuid.UUID `json:"id"`
	Name string    `json:"name"`
}

// ManifestHeader is the JSON head of a manifest.
type ManifestHeader struct {
	Format  string    `json:"format"`
	EventID uuid.UUID `json:"event_id"`
	Tenant  string    `json:"tenant"`
	// Full: the records are every ticket (no since, or a since the server
	// cannot continue); else only the tickets changed since Since.
	Full  bool   `json:"full"`
	Since string `json:"since,omitempty"`
	// Cursor is the since of the next delta.
	Cursor      string         `json:"cursor"`
	GeneratedAt time.Time      `json:"generated_at"`
	Count       int            `json:"count"`
	RecordSize  int            `json:"record_size"`
	Zones       []ManifestZone `json:"zones"`
	Gates       []Gate         `json:"gates"`
	Reentry     bool           `json:"reentry"`
	// RevocationSeq is the latest revocation the records include: a device
	// sends it with its syncs.
	RevocationSeq int64      `json:"revocation_seq"`
	ValidFrom     *time.Time `json:"valid_from,omitempty"`
	ValidUntil    *time.Time `json:"valid_until,omitempty"`
	EveryoneOutAt *time.Time `json:"everyone_out_at,omitempty"`
}

// manifestSQL reads an event's tickets with their door state: all, or
// (with a cursor) those whose ticket or state row was written by a
// transaction the cursor's snapshot did not see. The cursor is a
// pg_snapshot taken before the rows are read, so a change that commits
// after it is sent next time; one it already saw is never missed, and one
// seen both now and next time comes twice, which is harmless. A holder
// inside counts as out when the event's "everyone out at" time lies between
// their last passage and $3 (the header's generated_at), as in clearedSQL:
// a device then judges the records as they stand, and counts the others
// out itself once that time passes (scanner.js). A row's xmin
// (32 bits) is widened to an xid8 against the current snapshot's xmax.
const manifestSQL = `WITH snap AS (SELECT pg_snapshot_xmax(pg_current_snapshot())::text::bigint AS x)
SELECT t.id, t.zone_id, t.status, coalesce(s.inside AND NOT (d.everyone_out_at IS NOT NULL AND $3::timestamptz >= d.everyone_out_at
		AND coalesce((SELECT ` + happenedSQL + ` FROM inv_checkins c WHERE c.id = s.last_checkin), s.last_at) < d.everyone_out_at), false),
	coalesce(s.entries, 0)
FROM inv_tickets t LEFT JOIN inv_door_state s ON s.ticket_id = t.id LEFT JOIN inv_door_events d ON d.event_id = t.event_id CROSS JOIN snap
WHERE t.event_id = $1 AND ($2::text = ''
	OR NOT pg_visible_in_snapshot((snap.x - ((snap.x - t.xmin::text::bigint) % 4294967296 + 4294967296) % 4294967296)::text::xid8, nullif($2, '')::pg_snapshot)
	OR (s.ticket_id IS NOT NULL AND NOT pg_visible_in_snapshot((snap.x - ((snap.x - s.xmin::text::bigint) % 4294967296 + 4294967296) % 4294967296)::text::xid8, nullif($2, '')::pg_snapshot)))
ORDER BY t.id`

// cursorPattern is a pg_snapshot's text form: xmin:xmax:xip,…
var cursorPattern = regexp.MustCompile(`^([0-9]{1,19}):([0-9]{1,19}):([0-9]{1,19}(,[0-9]{1,19})*)?$`)

// xidSpan is how far back (in transactions) a cursor may lie; older, the
// manifest is sent whole (rows' xmin are 32 bits).
const xidSpan = 1 << 31

// Manifest builds an event's manifest, whole (since "") or the delta since
// a cursor it handed out.
func (s *Service) Manifest(ctx context.Context, t tenants.Tenant, eventID uuid.UUID, since string) ([]byte, ManifestHeader, error) {
	h := ManifestHeader{Format: "marquee-door-manifest/1", EventID: eventID, Tenant: t.Slug, Full: true, RecordSize: RecordSize,
		Zones: []ManifestZone{}, Gates: []Gate{}}
	var sinceXmin, sinceXmax int64
	if since != "" {
		m := cursorPattern.FindStringSubmatch(since)
		if m == nil || len(since) > 4096 {
			return nil, h, app.InvalidField("invalid_since", "since", "since is a cursor a manifest handed out")
		}
		sinceXmin, _ = strconv.ParseInt(m[1], 10, 64)
		sinceXmax, _ = strconv.ParseInt(m[2], 10, 64)
	}
	var recs bytes.Buffer
	// The records' inside flags are as of this instant (the "everyone out
	// at" time applied), and the header says so.
	generated := s.d.Now().UTC()
	err := s.d.App.PgxTx(ctx, t, tenants.TxOptions{ReadOnly: true}, func(tx *tenants.Pgx) error {
		recs.Reset()
		var xmax int64
		if err := tx.QueryRow(`SELECT pg_current_snapshot()::text, pg_snapshot_xmax(pg_current_snapshot())::text::bigint`).Scan(&h.Cursor, &xmax); err != nil {
			return err
		}
		cursor := since
		if since != "" && (sinceXmax > xmax || sinceXmin > sinceXmax || xmax-sinceXmin >= xidSpan) {
			cursor = "" // another server's cursor, or too old: send it all
		}
		h.Full = cursor == ""
		if !h.Full {
			h.Since = since
		}
		st, err := readSettingsPgx(tx, eventID)
		if err != nil {
			return err
		}
		h.Gates, h.Reentry, h.RevocationSeq, h.ValidFrom, h.ValidUntil, h.EveryoneOutAt = st.Gates, st.Reentry, st.RevocationSeq, st.ValidFrom, st.ValidUntil, st.EveryoneOutAt
		zoneIdx := map[uuid.UUID]byte{}
		rows, err := tx.Query(`SELECT id, name FROM inv_zones WHERE event_id = $1 ORDER BY sort, name`, eventID)
		if err != nil {
			return err
		}
		h.Zones = h.Zones[:0]
		for rows.Next() {
			var z ManifestZone
			if err := rows.Scan(&z.ID, &z.Name); err != nil {
				rows.Close()
				return err
			}
			if len(h.Zones) < 255 {
				zoneIdx[z.ID] = byte(len(h.Zones))
			}
			h.Zones = append(h.Zones, z)
		}
		if err := rows.Err(); err != nil {
			return err
		}
		rows, err = tx.Query(manifestSQL, eventID, cursor, generated)
		if err != nil {
			return err
		}
		defer rows.Close()
		h.Count = 0
		var rec [RecordSize]byte
		for rows.Next() {
			var id, zone uuid.UUID
			var status string
			var inside bool
			var entries int
			if err := rows.Scan(&id, &zone, &status, &inside, &entries); err != nil {
				return err
			}
			copy(rec[:16], id[:])
			rec[16] = 0xFF
			if i, ok := zoneIdx[zone]; ok {
				rec[16] = i
			}
			switch {
			case status != "valid":
				rec[17] = ManifestRevoked
			case inside:
				rec[17] = ManifestInside
			case entries > 0:
				rec[17] = ManifestOutside
			default:
				rec[17] = ManifestValid
			}
			recs.Write(rec[:])
			h.Count++
		}
		return rows.Err()
	})
	if err != nil {
		return nil, h, err
	}
	h.GeneratedAt = generated
	head, err := json.Marshal(h)
	if err != nil {
		return nil, h, err
	}
	out := make([]byte, 0, 9+len(head)+recs.Len())
	out = append(out, ManifestMagic...)
	out = append(out, ManifestVersion)
	out = binary.BigEndian.AppendUint32(out, uint32(len(head)))
	out = append(out, head...)
	out = append(out, recs.Bytes()...)
	return out, h, nil
}

// ManifestRecord is one decoded record.
type ManifestRecord struct {
	TicketID uuid.UUID
	Zone     int // index into the header's zones; -1: none
	State    int
}

// ParseManifest decodes a manifest (for tests, the bench and tools).
func ParseManifest(b []byte) (ManifestHeader, []ManifestRecord, error) {
	var h ManifestHeader
	bad := app.Invalid("invalid_manifest", "not a door manifest")
	if len(b) < 9 || string(b[:4]) != ManifestMagic || b[4] != ManifestVersion {
		return h, nil, bad
	}
	n := int(binary.BigEndian.Uint32(b[5:9]))
	if 9+n > len(b) || json.Unmarshal(b[9:9+n], &h) != nil {
		return h, nil, bad
	}
	body := b[9+n:]
	if len(body)%RecordSize != 0 || len(body)/RecordSize != h.Count {
		return h, nil, bad
	}
	out := make([]ManifestRecord, 0, h.Count)
	for off := 0; off < len(body); off += RecordSize {
		r := ManifestRecord{Zone: int(body[off+16]), State: int(body[off+17])}
		copy(r.TicketID[:], body[off:off+16])
		if r.Zone == 0xFF {
			r.Zone = -1
		}
		out = append(out, r)
	}
	return h, out, nil
}

// readSettingsPgx is readSettings on a pgx transaction.
func readSettingsPgx(tx *tenants.Pgx, eventID uuid.UUID) (Settings, error) {
	st := Settings{EventID: eventID, Gates: []Gate{}}
	if err := tx.QueryRow(`SELECT coalesce(bool_or(reentry), false), max(valid_from), max(valid_until), coalesce(max(revocation_seq), 0), max(everyone_out_at)
		FROM inv_door_events WHERE event_id = $1`, eventID).Scan(&st.Reentry, &st.ValidFrom, &st.ValidUntil, &st.RevocationSeq, &st.EveryoneOutAt); err != nil {
		return st, err
	}
	st.EveryoneOutAt = utcPtr(st.EveryoneOutAt)
	rows, err := tx.Query(`SELECT name, zone_ids FROM inv_door_gates WHERE event_id = $1 ORDER BY name`, eventID)
	if err != nil {
		return st, err
	}
	defer rows.Close()
	for rows.Next() {
		g := Gate{Zones: []uuid.UUID{}}
		if err := rows.Scan(&g.Name, &g.Zones); err != nil {
			return st, err
		}
		st.Gates = append(st.Gates, g)
	}
	return st, rows.Err()
}
