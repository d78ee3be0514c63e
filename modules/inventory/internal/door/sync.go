package door

import (
	"context"
	"errors"
	"slices"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"marquee/app"
	"marquee/modules/inventory/internal/tickets"
	"marquee/tenants"
)

// Offline scanning: a device that scanned without the network uploads its
// log as a batch (POST /events/{id}/checkins/sync). Its scans already
// happened — the holder went through or did not — so the server does not
// answer them, it records them and says what they were:
//
//   - the earliest admission of a ticket is the admission, wherever and
//     whenever it arrived: an offline scan that happened before the online
//     one (or another device's offline one) that admitted the ticket takes
//     its place, and the later one becomes a conflict;
//   - every other scan that let the holder in is a conflict (double
//     admission, or a re-entry the event does not allow), kept for the
//     conflict report;
//   - scans the device refused are logged as refused;
//   - and the batch lists the rules the device could not enforce offline.
//
// "When" is the device's time corrected by its clock offset, measured when
// the batch is sent (server time at arrival minus the device's sent_at).
// A batch runs in one transaction that locks the state rows of its tickets
// in ticket order (so concurrent batches and online scans serialise per
// ticket and never deadlock) and decides in Go under those locks.

// MaxSyncScans bounds one sync batch (a device sends a longer log in
// several batches, each idempotent).
const MaxSyncScans = 1000

// SyncScan is one scan in a device's offline log.
type SyncScan struct {
	Token string
	Type  string
	Gate  string
	Nonce string
	// ScannedAt is the device's clock at the scan.
	ScannedAt time.Time
	// DeviceResult is what the device showed: admit / exited let the holder
	// through, anything else refused them.
	DeviceResult string
}

// SyncBatch is a device's upload.
type SyncBatch struct {
	EventID  uuid.UUID
	DeviceID string
	// SentAt is the device's clock when it sent the batch: the server's
	// time at arrival minus SentAt is the device's clock offset.
	SentAt time.Time
	// RevocationSeq is the last revocation the device's manifest knew: a
	// ticket revoked after it is a rule the device could not enforce.
	RevocationSeq int64
	Scans         []SyncScan
	StaffID       *uuid.UUID
}

// Rules the server reports as not enforceable offline, when a batch hit them.
const (
	RuleAdmittedElsewhere    = "admitted_elsewhere"
	RuleReentry              = "reentry"
	RuleRevokedAfterManifest = "revoked_after_manifest"
	RuleRevoked              = "revoked"
	RuleZone                 = "zone_changed"
	RuleValidity             = "validity_window"
	RuleWrongEvent           = "wrong_event"
)

var ruleText = map[string]string{
	RuleAdmittedElsewhere:    "another device (or an online scan) had admitted the ticket; the earliest scan is the admission, the others are conflicts",
	RuleReentry:              "the ticket had been admitted and let out; the event does not allow re-entry",
	RuleRevokedAfterManifest: "the ticket was revoked (re-issued, refunded, cancelled) after the device's manifest",
	RuleRevoked:              "the ticket was revoked before the device's manifest: the device ignored its manifest",
	RuleZone:                 "the gate does not serve the ticket's zone (gates or the ticket's zone changed after the manifest)",
	RuleValidity:             "the scan fell outside the ticket's validity window (by the corrected clock)",
	RuleWrongEvent:           "the ticket is another event's",
}

// UnenforcedRule is a rule some scans of a batch broke because the device
// could not know: which scans (indexes into the batch).
type UnenforcedRule struct {
	Rule   string `json:"rule"`
	Detail string `json:"detail"`
	Scans  []int  `json:"scans"`
}

// SyncDecision is what the server made of one scan of a batch.
type SyncDecision struct {
	Index     int       `json:"index"`
	Nonce     string    `json:"nonce"`
	CheckinID uuid.UUID `json:"checkin_id"`
	TicketID  uuid.UUID `json:"ticket_id"`
	// Result is the log's: admit (this scan is the ticket's admission),
	// already_admitted (the holder was let in again: Conflict), exited,
	// not_inside, or a refusal (the device's, or the server's verdict for a
	// scan the device let through: revoked, wrong_zone, …).
	Result       string `json:"result"`
	DeviceResult string `json:"device_result"`
	// Replayed: this nonce was synced before; the answer is that record's.
	Replayed bool `json:"replayed"`
	// Conflict: the device let the holder in, but another scan is the
	// admission (Admission says which).
	Conflict  bool     `json:"conflict"`
	Admission *Passage `json:"admission,omitempty"`
	// Superseded is the later admission this scan took the place of.
	Superseded *uuid.UUID `json:"superseded,omitempty"`
	HappenedAt time.Time  `json:"happened_at"`
}

// SyncResult answers a batch.
type SyncResult struct {
	EventID  uuid.UUID `json:"event_id"`
	DeviceID string    `json:"device_id"`
	// ClockOffsetMS is server minus device time at sending, added to every
	// scanned_at of the batch.
	ClockOffsetMS int64            `json:"clock_offset_ms"`
	ReceivedAt    time.Time        `json:"received_at"`
	Scans         []SyncDecision   `json:"scans"`
	Admitted      int              `json:"admitted"`
	Conflicts     int              `json:"conflicts"`
	Replayed      int              `json:"replayed"`
	Unenforced    []UnenforcedRule `json:"unenforced"`
	// RevocationSeq is the server's latest: fetch the manifest delta.
	RevocationSeq int64 `json:"revocation_seq"`
}

// happenedSQL is when a logged scan happened: synced scans carry it, a
// forced online one when the device says, an online one when it arrived.
const happenedSQL = `coalesce(c.happened_at, CASE WHEN c.forced THEN c.scanned_at ELSE c.received_at END)`

// syncItem is a verified scan of the batch, ready to decide.
type syncItem struct {
	i        int
	sc       SyncScan
	v        tickets.Verified
	happened time.Time
}

type stateRow struct {
	inside         bool
	entries, exits int
	first, last    *uuid.UUID
	dirty          bool
}

type passage struct {
	Passage
	typ      string
	happened time.Time
}

type ticketRow struct {
	event, zone uuid.UUID
	status      string
	kid         *int
}

type newRecord struct {
	id, ticket, zone    uuid.UUID
	typ, result, gate   string
	nonce, deviceResult string
	scanned, happened   time.Time
}

type conflictRow struct {
	checkin, ticket, admission uuid.UUID
	reason                     string
}

// Sync records a device's offline log. Every token is verified first: one
// that does not verify refuses the whole batch (ticket_invalid, with its
// index) and nothing is written — a device uploads only scans whose
// signature it verified itself.
func (s *Service) Sync(ctx context.Context, t tenants.Tenant, b SyncBatch) (SyncResult, error) {
	received := s.d.Now().UTC()
	offset := received.Sub(b.SentAt).Round(time.Millisecond)
	out := SyncResult{EventID: b.EventID, DeviceID: b.DeviceID, ClockOffsetMS: offset.Milliseconds(), ReceivedAt: received,
		Scans: make([]SyncDecision, len(b.Scans)), Unenforced: []UnenforcedRule{}}
	items := make([]syncItem, 0, len(b.Scans))
	var ticketIDs []uuid.UUID
	for i, sc := range b.Scans {
		v, err := s.tk.Verify(ctx, t, sc.Token)
		if errors.Is(err, tickets.ErrBadToken) {
			return SyncResult{}, invalidAt(i)
		}
		if err != nil {
			return SyncResult{}, err
		}
		happened := sc.ScannedAt.Add(offset).UTC()
		if d := received.Sub(happened); d < -time.Minute || d > maxSyncAge {
			return SyncResult{}, app.InvalidField("invalid_scanned_at", "scans", "scan %d happened at %s by the corrected clock: not within the last week", i, happened.Format(time.RFC3339)).With("index", i)
		}
		items = append(items, syncItem{i: i, sc: sc, v: v, happened: happened})
		ticketIDs = append(ticketIDs, v.TicketID)
	}
	// Earliest first (the batch's own order breaks ties): within the batch,
	// the first admission of a ticket is the earliest one.
	slices.SortStableFunc(items, func(x, y syncItem) int { return x.happened.Compare(y.happened) })
	slices.SortFunc(ticketIDs, func(x, y uuid.UUID) int { return compareUUID(x, y) })
	ticketIDs = slices.Compact(ticketIDs)

	err := s.d.PgxTx(ctx, t, func(tx *tenants.Pgx) error {
		out.Admitted, out.Conflicts, out.Replayed = 0, 0, 0
		out.Unenforced = []UnenforcedRule{}
		return s.syncTx(tx, b, items, ticketIDs, received, offset, &out)
	})
	if err != nil {
		return SyncResult{}, err
	}
	return out, nil
}

// invalidAt refuses a batch for its scan i, whose token does not verify
// (or names no ticket here).
func invalidAt(i int) error {
	return app.Invalid("ticket_invalid", "scan %d: the ticket token does not verify (forged, damaged or not this chain's); nothing was recorded", i).
		With("result", Invalid).With("index", i)
}

// maxSyncAge is how old an offline scan may be when it arrives.
const maxSyncAge = 7 * 24 * time.Hour

func compareUUID(x, y uuid.UUID) int {
	for i := range x {
		if x[i] != y[i] {
			return int(x[i]) - int(y[i])
		}
	}
	return 0
}

func (s *Service) syncTx(tx *tenants.Pgx, b SyncBatch, items []syncItem, ticketIDs []uuid.UUID, received time.Time, offset time.Duration, out *SyncResult) error {
	// Lock the batch's tickets' state rows in ticket order, creating empty
	// ones where none exist (removed again below if nothing happened):
	// an online scan of the same ticket waits for this batch, and this
	// batch for it.
	if _, err := tx.Exec(`INSERT INTO inv_door_state (ticket_id, event_id, zone_id, inside, entries, exits, last_at)
		SELECT t.id, t.event_id, t.zone_id, false, 0, 0, $3 FROM inv_tickets t WHERE t.id = ANY($1::uuid[]) AND t.event_id = $2 ORDER BY t.id
		ON CONFLICT (ticket_id) DO NOTHING`, ticketIDs, b.EventID, received); err != nil {
		return err
	}
	state := map[uuid.UUID]*stateRow{}
	rows, err := tx.Query(`SELECT ticket_id, inside, entries, exits, first_checkin, last_checkin FROM inv_door_state
		WHERE ticket_id = ANY($1::uuid[]) AND event_id = $2 ORDER BY ticket_id FOR UPDATE`, ticketIDs, b.EventID)
	if err != nil {
		return err
	}
	for rows.Next() {
		var id uuid.UUID
		st := &stateRow{}
		if err := rows.Scan(&id, &st.inside, &st.entries, &st.exits, &st.first, &st.last); err != nil {
			rows.Close()
			return err
		}
		state[id] = st
	}
	if err := rows.Err(); err != nil {
		return err
	}
	// The scans that admitted them (and the ones before, for conflicts).
	var refs []uuid.UUID
	for _, st := range state {
		for _, p := range []*uuid.UUID{st.first, st.last} {
			if p != nil {
				refs = append(refs, *p)
			}
		}
	}
	passages := map[uuid.UUID]*passage{}
	rows, err = tx.Query(`SELECT c.id, c.type, c.device_id, c.gate, c.scanned_at, c.received_at, `+happenedSQL+` FROM inv_checkins c WHERE c.id = ANY($1::uuid[])`, refs)
	if err != nil {
		return err
	}
	for rows.Next() {
		p := &passage{}
		if err := rows.Scan(&p.CheckinID, &p.typ, &p.DeviceID, &p.Gate, &p.ScannedAt, &p.ReceivedAt, &p.happened); err != nil {
			rows.Close()
			return err
		}
		p.ScannedAt, p.ReceivedAt = p.ScannedAt.UTC(), p.ReceivedAt.UTC()
		passages[p.CheckinID] = p
	}
	if err := rows.Err(); err != nil {
		return err
	}
	tks := map[uuid.UUID]ticketRow{}
	rows, err = tx.Query(`SELECT id, event_id, zone_id, status, key_id FROM inv_tickets WHERE id = ANY($1::uuid[])`, ticketIDs)
	if err != nil {
		return err
	}
	for rows.Next() {
		var id uuid.UUID
		var r ticketRow
		if err := rows.Scan(&id, &r.event, &r.zone, &r.status, &r.kid); err != nil {
			rows.Close()
			return err
		}
		tks[id] = r
	}
	if err := rows.Err(); err != nil {
		return err
	}
	revokedAt := map[uuid.UUID]int64{}
	rows, err = tx.Query(`SELECT ticket_id, max(seq) FROM inv_ticket_revocations WHERE event_id = $2 AND ticket_id = ANY($1::uuid[]) GROUP BY ticket_id`, ticketIDs, b.EventID)
	if err != nil {
		return err
	}
	for rows.Next() {
		var id uuid.UUID
		var seq int64
		if err := rows.Scan(&id, &seq); err != nil {
			rows.Close()
			return err
		}
		revokedAt[id] = seq
	}
	if err := rows.Err(); err != nil {
		return err
	}
	// Scans synced before (same ticket and nonce): read after the locks, so
	// a concurrent upload of the same batch is seen once it committed.
	type key struct {
		ticket uuid.UUID
		nonce  string
	}
	prior := map[key]SyncDecision{}
	ptk, pnonce := make([]uuid.UUID, len(items)), make([]string, len(items))
	for i, it := range items {
		ptk[i], pnonce[i] = it.v.TicketID, it.sc.Nonce
	}
	rows, err = tx.Query(`SELECT c.id, c.ticket_id, c.nonce, c.result, coalesce(c.device_result, c.result), `+happenedSQL+`
		FROM inv_checkins c JOIN unnest($1::uuid[], $2::text[]) AS u(ticket, nonce) ON c.ticket_id = u.ticket AND c.nonce = u.nonce
		WHERE c.event_id = $3`, ptk, pnonce, b.EventID)
	if err != nil {
		return err
	}
	for rows.Next() {
		var d SyncDecision
		if err := rows.Scan(&d.CheckinID, &d.TicketID, &d.Nonce, &d.Result, &d.DeviceResult, &d.HappenedAt); err != nil {
			rows.Close()
			return err
		}
		d.Replayed, d.HappenedAt = true, d.HappenedAt.UTC()
		prior[key{d.TicketID, d.Nonce}] = d
	}
	if err := rows.Err(); err != nil {
		return err
	}
	var reentry bool
	var revSeq int64
	if err := tx.QueryRow(`SELECT coalesce((SELECT reentry FROM inv_door_events WHERE event_id = $1), false),
		coalesce((SELECT revocation_seq FROM inv_door_events WHERE event_id = $1), 0)`, b.EventID).Scan(&reentry, &revSeq); err != nil {
		return err
	}
	out.RevocationSeq = revSeq
	gates := map[string][]uuid.UUID{}
	rows, err = tx.Query(`SELECT name, zone_ids FROM inv_door_gates WHERE event_id = $1`, b.EventID)
	if err != nil {
		return err
	}
	for rows.Next() {
		var name string
		var zones []uuid.UUID
		if err := rows.Scan(&name, &zones); err != nil {
			rows.Close()
			return err
		}
		gates[name] = zones
	}
	if err := rows.Err(); err != nil {
		return err
	}

	// Decide, earliest first.
	rules := map[string][]int{}
	hit := func(rule string, i int) { rules[rule] = append(rules[rule], i) }
	var recs []newRecord
	var conflicts []conflictRow
	var demoted, moveFrom, moveTo []uuid.UUID
	for _, it := range items {
		k := key{it.v.TicketID, it.sc.Nonce}
		if d, ok := prior[k]; ok {
			d.Index = it.i
			out.Scans[it.i] = d
			out.Replayed++
			continue
		}
		tk, known := tks[it.v.TicketID]
		if !known {
			// Signed by this event's key but not a ticket here: nothing to
			// record (as online); refuse the batch rather than drop a scan.
			return invalidAt(it.i)
		}
		id := uuid.Must(uuid.NewV7())
		d := SyncDecision{Index: it.i, Nonce: it.sc.Nonce, CheckinID: id, TicketID: it.v.TicketID, DeviceResult: it.sc.DeviceResult, HappenedAt: it.happened}
		letThrough := it.sc.DeviceResult == Admit || it.sc.DeviceResult == Exited
		verdict := ""
		switch {
		case it.v.EventID != b.EventID || tk.event != b.EventID:
			verdict = WrongEvent
		case it.sc.Type == Exit:
		case tk.status != "valid" || (it.v.KeyID > 0 && tk.kid != nil && *tk.kid != int(it.v.KeyID)):
			verdict = Revoked
		default:
			if pre := it.v.Validity.Check(it.happened); pre != "" {
				verdict = pre
			} else if zs, ok := gates[it.sc.Gate]; ok && !slices.Contains(zs, tk.zone) {
				verdict = WrongZone
			}
		}
		st := state[it.v.TicketID]
		switch {
		case !letThrough:
			d.Result = it.sc.DeviceResult // refused at the door: logged as the device showed it
		case verdict != "":
			d.Result = verdict
			switch verdict {
			case Revoked:
				if revokedAt[it.v.TicketID] > b.RevocationSeq {
					hit(RuleRevokedAfterManifest, it.i)
				} else {
					hit(RuleRevoked, it.i)
				}
			case WrongZone:
				hit(RuleZone, it.i)
			case WrongEvent:
				hit(RuleWrongEvent, it.i)
			default:
				hit(RuleValidity, it.i)
			}
		case it.sc.Type == Exit:
			if st.inside {
				st.inside, st.exits, st.last, st.dirty = false, st.exits+1, &id, true
				d.Result = Exited
			} else {
				d.Result = NotInside
			}
		case !st.inside && (st.entries == 0 || reentry):
			st.inside, st.entries, st.last, st.dirty = true, st.entries+1, &id, true
			if st.first == nil {
				st.first = &id
			}
			d.Result = Admit
		case !st.inside:
			// Admitted and let out before; re-entry is not allowed.
			d.Result, d.Conflict = AlreadyAdmitted, true
			if p := pick(passages, st.first); p != nil {
				d.Admission = &p.Passage
				conflicts = append(conflicts, conflictRow{checkin: id, ticket: it.v.TicketID, admission: p.CheckinID, reason: "reentry"})
			}
			hit(RuleReentry, it.i)
		default:
			// Inside: by its latest entry (or, after an annulled exit left
			// no latest passage, its first).
			cur := pick(passages, st.last)
			if cur == nil || cur.typ != Entry {
				cur = pick(passages, st.first)
			}
			if cur == nil {
				d.Result, d.Conflict = AlreadyAdmitted, true
			} else if it.happened.Before(cur.happened) {
				// This scan happened first: it is the admission, the
				// later one (online or another device's) a conflict.
				d.Result, d.Superseded = Admit, &cur.CheckinID
				demoted = append(demoted, cur.CheckinID)
				conflicts = append(conflicts, conflictRow{checkin: cur.CheckinID, ticket: it.v.TicketID, admission: id, reason: "double_admission"})
				moveFrom, moveTo = append(moveFrom, cur.CheckinID), append(moveTo, id)
				if st.first != nil && *st.first == cur.CheckinID {
					st.first = &id
				}
				st.last, st.dirty = &id, true
			} else {
				d.Result, d.Conflict = AlreadyAdmitted, true
				d.Admission = &cur.Passage
				conflicts = append(conflicts, conflictRow{checkin: id, ticket: it.v.TicketID, admission: cur.CheckinID, reason: "double_admission"})
			}
			hit(RuleAdmittedElsewhere, it.i)
		}
		if d.Result == Admit {
			out.Admitted++
		}
		if d.Conflict {
			out.Conflicts++
		}
		if d.Superseded != nil {
			out.Conflicts++
		}
		recs = append(recs, newRecord{id: id, ticket: it.v.TicketID, zone: tk.zone, typ: it.sc.Type, result: d.Result, gate: it.sc.Gate,
			nonce: it.sc.Nonce, deviceResult: it.sc.DeviceResult, scanned: it.sc.ScannedAt.UTC(), happened: it.happened})
		passages[id] = &passage{Passage: Passage{CheckinID: id, ScannedAt: it.sc.ScannedAt.UTC(), ReceivedAt: received, Gate: it.sc.Gate, DeviceID: b.DeviceID},
			typ: it.sc.Type, happened: it.happened}
		prior[k] = d
		out.Scans[it.i] = d
	}
	for _, r := range []string{RuleAdmittedElsewhere, RuleReentry, RuleRevokedAfterManifest, RuleRevoked, RuleZone, RuleValidity, RuleWrongEvent} {
		if len(rules[r]) > 0 {
			out.Unenforced = append(out.Unenforced, UnenforcedRule{Rule: r, Detail: ruleText[r], Scans: rules[r]})
		}
	}
	return s.syncWrite(tx, b, recs, conflicts, demoted, moveFrom, moveTo, state, ticketIDs, received, offset)
}

// pick is the passage id names, if known.
func pick(ps map[uuid.UUID]*passage, id *uuid.UUID) *passage {
	if id == nil {
		return nil
	}
	return ps[*id]
}

// errSyncRaced: a record of the batch collided with one committed by an
// online scan with the same nonce meanwhile (a device bug); the batch is
// refused whole, nothing written.
var errSyncRaced = app.Conflict("sync_nonce_raced", "a scan of the batch reused a nonce an online scan of the same ticket committed meanwhile; send the batch again")

func (s *Service) syncWrite(tx *tenants.Pgx, b SyncBatch, recs []newRecord, conflicts []conflictRow, demoted, moveFrom, moveTo []uuid.UUID,
	state map[uuid.UUID]*stateRow, ticketIDs []uuid.UUID, received time.Time, offset time.Duration) error {
	if len(recs) > 0 {
		n := len(recs)
		ids, tks, zones := make([]uuid.UUID, n), make([]uuid.UUID, n), make([]uuid.UUID, n)
		typs, results, gates, nonces, devs := make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n)
		scanned, happened := make([]time.Time, n), make([]time.Time, n)
		for i, r := range recs {
			ids[i], tks[i], zones[i], typs[i], results[i], gates[i], nonces[i], devs[i], scanned[i], happened[i] =
				r.id, r.ticket, r.zone, r.typ, r.result, r.gate, r.nonce, r.deviceResult, r.scanned, r.happened
		}
		tag, err := tx.Exec(`INSERT INTO inv_checkins (id, event_id, ticket_id, zone_id, type, result, successful, gate, device_id, nonce, forced, scanned_by,
				scanned_at, received_at, offline, device_result, clock_offset_ms, happened_at)
			SELECT u.id, $1, u.ticket, u.zone, u.typ, u.result, u.result IN ('admit', 'exited'), u.gate, $2, u.nonce, true, $3,
				u.scanned, $4, true, u.dev, $5, u.happened
			FROM unnest($6::uuid[], $7::uuid[], $8::uuid[], $9::text[], $10::text[], $11::text[], $12::text[], $13::text[], $14::timestamptz[], $15::timestamptz[])
				AS u(id, ticket, zone, typ, result, gate, nonce, dev, scanned, happened)
			ON CONFLICT (event_id, ticket_id, nonce) DO NOTHING`,
			b.EventID, b.DeviceID, b.StaffID, received, offset.Milliseconds(), ids, tks, zones, typs, results, gates, nonces, devs, scanned, happened)
		if err != nil {
			return err
		}
		if tag.RowsAffected() != int64(n) {
			return errSyncRaced
		}
	}
	if len(demoted) > 0 {
		if _, err := tx.Exec(`UPDATE inv_checkins SET result = 'already_admitted', successful = false WHERE id = ANY($1::uuid[]) AND annulled_at IS NULL`, demoted); err != nil {
			return err
		}
		// Conflicts that named a superseded admission name its successor.
		if _, err := tx.Exec(`UPDATE inv_door_conflicts c SET admission_id = u.to_id FROM unnest($1::uuid[], $2::uuid[]) AS u(from_id, to_id)
			WHERE c.admission_id = u.from_id`, moveFrom, moveTo); err != nil {
			return err
		}
	}
	if len(conflicts) > 0 {
		n := len(conflicts)
		cs, tks, as, rs := make([]uuid.UUID, n), make([]uuid.UUID, n), make([]uuid.UUID, n), make([]string, n)
		for i, c := range conflicts {
			cs[i], tks[i], as[i], rs[i] = c.checkin, c.ticket, c.admission, c.reason
		}
		if _, err := tx.Exec(`INSERT INTO inv_door_conflicts (checkin_id, event_id, ticket_id, admission_id, reason, found_at)
			SELECT u.c, $1, u.t, u.a, u.r, $2 FROM unnest($3::uuid[], $4::uuid[], $5::uuid[], $6::text[]) AS u(c, t, a, r)`,
			b.EventID, received, cs, tks, as, rs); err != nil {
			return err
		}
	}
	var sIDs []uuid.UUID
	var sInside []bool
	var sEntries, sExits []int32
	var sFirst, sLast []*uuid.UUID
	for id, st := range state {
		if st.dirty {
			sIDs, sInside, sEntries, sExits = append(sIDs, id), append(sInside, st.inside), append(sEntries, int32(st.entries)), append(sExits, int32(st.exits))
			sFirst, sLast = append(sFirst, st.first), append(sLast, st.last)
		}
	}
	if len(sIDs) > 0 {
		if _, err := tx.Exec(`UPDATE inv_door_state s SET inside = u.inside, entries = u.entries, exits = u.exits, first_checkin = u.first, last_checkin = u.last, last_at = $1
			FROM unnest($2::uuid[], $3::boolean[], $4::integer[], $5::integer[], $6::uuid[], $7::uuid[]) AS u(ticket, inside, entries, exits, first, last)
			WHERE s.ticket_id = u.ticket`, received, sIDs, sInside, sEntries, sExits, sFirst, sLast); err != nil {
			return err
		}
	}
	_, err := tx.Exec(`DELETE FROM inv_door_state WHERE ticket_id = ANY($1::uuid[]) AND entries = 0 AND exits = 0 AND first_checkin IS NULL`, ticketIDs)
	return err
}

// ConflictScan is one side of a conflict.
type ConflictScan struct {
	CheckinID  uuid.UUID `json:"checkin_id"`
	DeviceID   string    `json:"device_id"`
	Gate       string    `json:"gate"`
	Offline    bool      `json:"offline"`
	HappenedAt time.Time `json:"happened_at"`
	ScannedAt  time.Time `json:"scanned_at"`
	ReceivedAt time.Time `json:"received_at"`
}

// Conflict is a ticket let in by more than one scan: the admission (the
// earliest) and one other.
type Conflict struct {
	TicketID  uuid.UUID    `json:"ticket_id"`
	ZoneID    uuid.UUID    `json:"zone_id"`
	Zone      string       `json:"zone"`
	Reason    string       `json:"reason"`
	Admission ConflictScan `json:"admission"`
	Other     ConflictScan `json:"other"`
	// ApartMS is how long after the admission the other scan happened.
	ApartMS int64     `json:"apart_ms"`
	FoundAt time.Time `json:"found_at"`
}

// ConflictReport is an event's conflicts, newest found first.
type ConflictReport struct {
	EventID   uuid.UUID  `json:"event_id"`
	Total     int        `json:"total"`
	Tickets   int        `json:"tickets"`
	Conflicts []Conflict `json:"conflicts"`
}

// Conflicts reads an event's conflict report (at most limit rows; the
// totals count all).
func (s *Service) Conflicts(ctx context.Context, t tenants.Tenant, eventID uuid.UUID, limit int) (ConflictReport, error) {
	out := ConflictReport{EventID: eventID, Conflicts: []Conflict{}}
	err := s.d.App.PgxTx(ctx, t, tenants.TxOptions{ReadOnly: true}, func(tx *tenants.Pgx) error {
		if err := tx.QueryRow(`SELECT count(*), count(DISTINCT ticket_id) FROM inv_door_conflicts WHERE event_id = $1`, eventID).Scan(&out.Total, &out.Tickets); err != nil {
			return err
		}
		rows, err := tx.Query(`SELECT x.ticket_id, a.zone_id, coalesce(z.name, ''), x.reason, x.found_at,
				a.id, a.device_id, a.gate, a.offline, `+happenedExpr("a")+`, a.scanned_at, a.received_at,
				o.id, o.device_id, o.gate, o.offline, `+happenedExpr("o")+`, o.scanned_at, o.received_at
			FROM inv_door_conflicts x JOIN inv_checkins a ON a.id = x.admission_id JOIN inv_checkins o ON o.id = x.checkin_id
			LEFT JOIN inv_zones z ON z.id = a.zone_id
			WHERE x.event_id = $1 ORDER BY x.found_at DESC, x.checkin_id LIMIT $2`, eventID, limit)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var c Conflict
			a, o := &c.Admission, &c.Other
			if err := rows.Scan(&c.TicketID, &c.ZoneID, &c.Zone, &c.Reason, &c.FoundAt,
				&a.CheckinID, &a.DeviceID, &a.Gate, &a.Offline, &a.HappenedAt, &a.ScannedAt, &a.ReceivedAt,
				&o.CheckinID, &o.DeviceID, &o.Gate, &o.Offline, &o.HappenedAt, &o.ScannedAt, &o.ReceivedAt); err != nil {
				return err
			}
			for _, p := range []*ConflictScan{a, o} {
				p.HappenedAt, p.ScannedAt, p.ReceivedAt = p.HappenedAt.UTC(), p.ScannedAt.UTC(), p.ReceivedAt.UTC()
			}
			c.FoundAt = c.FoundAt.UTC()
			c.ApartMS = o.HappenedAt.Sub(a.HappenedAt).Milliseconds()
			out.Conflicts = append(out.Conflicts, c)
		}
		return rows.Err()
	})
	if errors.Is(err, pgx.ErrNoRows) {
		err = nil
	}
	return out, err
}

func happenedExpr(alias string) string {
	return `coalesce(` + alias + `.happened_at, CASE WHEN ` + alias + `.forced THEN ` + alias + `.scanned_at ELSE ` + alias + `.received_at END)`
}
