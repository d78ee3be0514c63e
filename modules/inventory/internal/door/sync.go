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
// A batch runs in one transaction that reads its tickets FOR SHARE (a
// transfer or resale re-issuing one at that instant is ordered before or
// after the whole batch, as with an online scan) and locks their state rows,
// both in ticket order (so concurrent batches and online scans serialise per
// ticket and never deadlock), and decides in Go under those locks.

// MaxUploadTransit is how much longer than a device's own round-trip
// measurement of its clock offset the sent_at estimate may be: a batch
// upload slower than this on the venue's network falls back to sent_at.
const MaxUploadTransit = 2 * time.Minute

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
	// time at arrival minus SentAt is the device's clock offset, plus the
	// upload's transit (so never less than the true offset).
	SentAt time.Time
	// MeasuredOffset, when the device sends one, is server minus device
	// time as the device measured it by a round trip to the door clock just
	// before sending (error at most half that round trip). It is used when
	// it agrees with SentAt's bound: no later than it, by at most
	// MaxUploadTransit.
	MeasuredOffset *time.Duration
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
	// was is the result the log holds (earlier passages), result the
	// replay's; fresh marks the batch's own.
	was, result string
	fresh       bool
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

// ClockOffset is the device's clock offset for a batch that arrived at
// received: sent_at's estimate (arrival minus sent_at) counts the upload's
// transit too, which under a loaded network or a large batch is enough to
// reorder a device's scan after an online one made a moment later; the
// device's round-trip measurement is taken instead when it is consistent
// with it (the true offset is never above sent_at's estimate).
func ClockOffset(received, sentAt time.Time, measured *time.Duration) time.Duration {
	bound := received.Sub(sentAt)
	offset := bound
	if measured != nil && *measured <= bound && bound-*measured <= MaxUploadTransit {
		offset = *measured
	}
	return offset.Round(time.Millisecond)
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
	offset := ClockOffset(received, b.SentAt, b.MeasuredOffset)
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
	// The batch's tickets, read FOR SHARE in ticket order, as an online
	// scan reads its ticket: a re-issue (transfer, resale, key rotation)
	// holds the row FOR UPDATE until it commits, so a batch arriving at that
	// instant waits and then judges the ticket's new version (revoked), and
	// a re-issue that comes second waits for the batch's commit and sees its
	// entries (transfer.LockHolding reads them after taking the lock).
	// Without the lock the batch could judge a ticket valid that a transfer
	// committed meanwhile, while the transfer saw no entry: both would win.
	// Tickets before state rows, the online scan's order: no deadlock.
	tks := map[uuid.UUID]ticketRow{}
	rows, err := tx.Query(`SELECT id, event_id, zone_id, status, key_id FROM inv_tickets WHERE id = ANY($1::uuid[]) ORDER BY id FOR SHARE`, ticketIDs)
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
	rows, err = tx.Query(`SELECT ticket_id, inside, entries, exits, first_checkin, last_checkin FROM inv_door_state
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
	// Every passage of the batch's tickets so far: the scans that let a
	// holder through (online successful ones, offline ones the device let
	// through and the server did not refuse, and scans a conflict names),
	// not annulled. The batch's own passages are merged into them and each
	// ticket's fold is replayed in the order the passages happened.
	passages := map[uuid.UUID][]*passage{}
	rows, err = tx.Query(`SELECT c.id, c.ticket_id, c.type, c.result, c.device_id, c.gate, c.scanned_at, c.received_at, `+happenedSQL+`
		FROM inv_checkins c WHERE c.ticket_id = ANY($1::uuid[]) AND c.event_id = $2 AND c.annulled_at IS NULL
			AND c.result IN ('admit', 'exited', 'already_admitted', 'not_inside')
			AND (c.successful OR (c.offline AND c.device_result IN ('admit', 'exited')) OR EXISTS (SELECT 1 FROM inv_door_conflicts x WHERE x.checkin_id = c.id))`,
		ticketIDs, b.EventID)
	if err != nil {
		return err
	}
	for rows.Next() {
		p := &passage{}
		var ticket uuid.UUID
		if err := rows.Scan(&p.CheckinID, &ticket, &p.typ, &p.was, &p.DeviceID, &p.Gate, &p.ScannedAt, &p.ReceivedAt, &p.happened); err != nil {
			rows.Close()
			return err
		}
		p.ScannedAt, p.ReceivedAt, p.happened = p.ScannedAt.UTC(), p.ReceivedAt.UTC(), p.happened.UTC()
		passages[ticket] = append(passages[ticket], p)
	}
	if err := rows.Err(); err != nil {
		return err
	}
	var fromConflicts []conflictRow
	rows, err = tx.Query(`SELECT checkin_id, ticket_id, admission_id, reason FROM inv_door_conflicts WHERE ticket_id = ANY($1::uuid[]) AND event_id = $2`, ticketIDs, b.EventID)
	if err != nil {
		return err
	}
	for rows.Next() {
		var c conflictRow
		if err := rows.Scan(&c.checkin, &c.ticket, &c.admission, &c.reason); err != nil {
			rows.Close()
			return err
		}
		fromConflicts = append(fromConflicts, c)
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
	var outAt *time.Time
	if err := tx.QueryRow(`SELECT coalesce((SELECT reentry FROM inv_door_events WHERE event_id = $1), false),
		coalesce((SELECT revocation_seq FROM inv_door_events WHERE event_id = $1), 0),
		(SELECT everyone_out_at FROM inv_door_events WHERE event_id = $1)`, b.EventID).Scan(&reentry, &revSeq, &outAt); err != nil {
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

	// Decide, earliest first: verdicts per scan, then each ticket's
	// passages (earlier ones and the batch's) folded in the order they
	// happened.
	rules := map[string][]int{}
	hit := func(rule string, i int) { rules[rule] = append(rules[rule], i) }
	var recs []newRecord
	fresh := map[uuid.UUID][]*passage{}
	decisions := map[uuid.UUID]*SyncDecision{}
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
		default:
			p := &passage{Passage: Passage{CheckinID: id, ScannedAt: it.sc.ScannedAt.UTC(), ReceivedAt: received, Gate: it.sc.Gate, DeviceID: b.DeviceID},
				typ: it.sc.Type, happened: it.happened, fresh: true}
			fresh[it.v.TicketID] = append(fresh[it.v.TicketID], p)
		}
		recs = append(recs, newRecord{id: id, ticket: it.v.TicketID, zone: tk.zone, typ: it.sc.Type, result: d.Result, gate: it.sc.Gate,
			nonce: it.sc.Nonce, deviceResult: it.sc.DeviceResult, scanned: it.sc.ScannedAt.UTC(), happened: it.happened})
		prior[k] = d
		out.Scans[it.i] = d
		decisions[id] = &out.Scans[it.i]
	}

	// Replay each ticket that has new passages.
	w := syncWrites{state: state, ticketIDs: ticketIDs}
	for ticket, news := range fresh {
		all := append(passages[ticket], news...)
		f := foldPassages(all, reentry, outAt)
		st := state[ticket]
		if st.inside != f.inside || st.entries != f.entries || st.exits != f.exits || !sameID(st.first, f.first) || !sameID(st.last, f.last) {
			st.inside, st.entries, st.exits, st.first, st.last, st.dirty = f.inside, f.entries, f.exits, f.first, f.last, true
		}
		w.refolded = append(w.refolded, ticket)
		for _, p := range all {
			c, inConflict := f.conflicts[p.CheckinID]
			if inConflict {
				c.ticket = ticket
				w.conflicts = append(w.conflicts, c)
			}
			if !p.fresh {
				if p.result != p.was {
					w.changedIDs, w.changedResults = append(w.changedIDs, p.CheckinID), append(w.changedResults, p.result)
					// An admission that happened later than a batch's scan
					// became a conflict: that scan took its place.
					if p.was == Admit && inConflict {
						if d := decisions[c.admission]; d != nil {
							sup := p.CheckinID
							d.Superseded = &sup
							out.Conflicts++
							hit(RuleAdmittedElsewhere, d.Index)
						}
					}
				}
				continue
			}
			d := decisions[p.CheckinID]
			d.Result = p.result
			if inConflict {
				d.Conflict = true
				out.Conflicts++
				if a := f.byID[c.admission]; a != nil {
					ap := a.Passage
					d.Admission = &ap
				}
				if c.reason == "reentry" {
					hit(RuleReentry, d.Index)
				} else {
					hit(RuleAdmittedElsewhere, d.Index)
				}
			}
		}
	}
	for i := range recs {
		if d := decisions[recs[i].id]; d != nil {
			recs[i].result = d.Result
			if d.Result == Admit {
				out.Admitted++
			}
		}
	}
	for ticket := range fresh {
		for _, c := range fromConflicts {
			if c.ticket == ticket {
				w.oldConflicts = append(w.oldConflicts, c)
			}
		}
	}
	for _, r := range []string{RuleAdmittedElsewhere, RuleReentry, RuleRevokedAfterManifest, RuleRevoked, RuleZone, RuleValidity, RuleWrongEvent} {
		if len(rules[r]) > 0 {
			slices.Sort(rules[r])
			out.Unenforced = append(out.Unenforced, UnenforcedRule{Rule: r, Detail: ruleText[r], Scans: slices.Compact(rules[r])})
		}
	}
	w.recs = recs
	return s.syncWrite(tx, b, w, received, offset)
}

func sameID(a, b *uuid.UUID) bool { return (a == nil) == (b == nil) && (a == nil || *a == *b) }

// fold is a ticket's door state replayed from its passages.
type fold struct {
	inside         bool
	entries, exits int
	first, last    *uuid.UUID
	// conflicts are the passages that let the holder in without being the
	// admission, with the admission they name.
	conflicts map[uuid.UUID]conflictRow
	byID      map[uuid.UUID]*passage
}

// foldPassages replays a ticket's passages in the order they happened (the
// earlier arrival first on a tie), setting each one's result: an entry of a
// holder outside is the admission (the first ever, or a re-entry when the
// event allows it), else a conflict — double admission while inside (naming
// the entry that has them inside), re-entry refused after an exit (naming
// the first admission); an exit of a holder inside lets them out, else it
// finds nobody inside. After the event's "everyone out at" time, a holder
// whose last passage came before it counts as out (the implied exit).
func foldPassages(ps []*passage, reentry bool, outAt *time.Time) fold {
	slices.SortStableFunc(ps, func(x, y *passage) int {
		if c := x.happened.Compare(y.happened); c != 0 {
			return c
		}
		if c := x.ReceivedAt.Compare(y.ReceivedAt); c != 0 {
			return c
		}
		return compareUUID(x.CheckinID, y.CheckinID)
	})
	f := fold{conflicts: map[uuid.UUID]conflictRow{}, byID: map[uuid.UUID]*passage{}}
	var first, cur, last *passage
	for _, p := range ps {
		f.byID[p.CheckinID] = p
		if outAt != nil && f.inside && !p.happened.Before(*outAt) && last != nil && last.happened.Before(*outAt) {
			f.inside, f.exits = false, f.exits+1
		}
		switch {
		case p.typ == Exit && f.inside:
			p.result, f.inside, f.exits, last = Exited, false, f.exits+1, p
		case p.typ == Exit:
			p.result = NotInside
		case !f.inside && (f.entries == 0 || reentry):
			p.result, f.inside, f.entries, cur, last = Admit, true, f.entries+1, p, p
			if first == nil {
				first = p
			}
		case !f.inside:
			p.result = AlreadyAdmitted
			f.conflicts[p.CheckinID] = conflictRow{checkin: p.CheckinID, admission: first.CheckinID, reason: "reentry"}
		default:
			p.result = AlreadyAdmitted
			f.conflicts[p.CheckinID] = conflictRow{checkin: p.CheckinID, admission: cur.CheckinID, reason: "double_admission"}
		}
	}
	if first != nil {
		f.first = &first.CheckinID
	}
	if last != nil {
		f.last = &last.CheckinID
	}
	return f
}

// syncWrites is what a batch writes.
type syncWrites struct {
	recs []newRecord
	// refolded tickets: their conflicts are replaced by conflicts.
	refolded                []uuid.UUID
	conflicts, oldConflicts []conflictRow
	// Earlier records whose result the replay changed.
	changedIDs     []uuid.UUID
	changedResults []string
	state          map[uuid.UUID]*stateRow
	ticketIDs      []uuid.UUID
}

// errSyncRaced: a record of the batch collided with one committed by an
// online scan with the same nonce meanwhile (a device bug); the batch is
// refused whole, nothing written.
var errSyncRaced = app.Conflict("sync_nonce_raced", "a scan of the batch reused a nonce an online scan of the same ticket committed meanwhile; send the batch again")

func (s *Service) syncWrite(tx *tenants.Pgx, b SyncBatch, w syncWrites, received time.Time, offset time.Duration) error {
	if len(w.recs) > 0 {
		n := len(w.recs)
		ids, tks, zones := make([]uuid.UUID, n), make([]uuid.UUID, n), make([]uuid.UUID, n)
		typs, results, gates, nonces, devs := make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n)
		scanned, happened := make([]time.Time, n), make([]time.Time, n)
		for i, r := range w.recs {
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
	if len(w.changedIDs) > 0 {
		// Earlier passages the replay judged otherwise (an admission that
		// happened after a batch's scan, an exit now finding nobody inside…).
		if _, err := tx.Exec(`UPDATE inv_checkins c SET result = u.result, successful = u.result IN ('admit', 'exited')
			FROM unnest($1::uuid[], $2::text[]) AS u(id, result) WHERE c.id = u.id`, w.changedIDs, w.changedResults); err != nil {
			return err
		}
	}
	if len(w.refolded) > 0 {
		// The replayed tickets' conflicts are the replay's: gone where a scan
		// is not one any more, kept (with when they were found) or renamed
		// where it still is, new where it became one.
		keep := map[uuid.UUID]bool{}
		for _, c := range w.conflicts {
			keep[c.checkin] = true
		}
		var drop []uuid.UUID
		for _, c := range w.oldConflicts {
			if !keep[c.checkin] {
				drop = append(drop, c.checkin)
			}
		}
		if len(drop) > 0 {
			if _, err := tx.Exec(`DELETE FROM inv_door_conflicts WHERE checkin_id = ANY($1::uuid[])`, drop); err != nil {
				return err
			}
		}
	}
	if len(w.conflicts) > 0 {
		n := len(w.conflicts)
		cs, tks, as, rs := make([]uuid.UUID, n), make([]uuid.UUID, n), make([]uuid.UUID, n), make([]string, n)
		for i, c := range w.conflicts {
			cs[i], tks[i], as[i], rs[i] = c.checkin, c.ticket, c.admission, c.reason
		}
		if _, err := tx.Exec(`INSERT INTO inv_door_conflicts (checkin_id, event_id, ticket_id, admission_id, reason, found_at)
			SELECT u.c, $1, u.t, u.a, u.r, $2 FROM unnest($3::uuid[], $4::uuid[], $5::uuid[], $6::text[]) AS u(c, t, a, r)
			ON CONFLICT (checkin_id) DO UPDATE SET admission_id = EXCLUDED.admission_id, reason = EXCLUDED.reason
			WHERE (inv_door_conflicts.admission_id, inv_door_conflicts.reason) IS DISTINCT FROM (EXCLUDED.admission_id, EXCLUDED.reason)`,
			b.EventID, received, cs, tks, as, rs); err != nil {
			return err
		}
	}
	state, ticketIDs := w.state, w.ticketIDs
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
