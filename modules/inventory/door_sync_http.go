package inventory

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/google/uuid"

	"marquee/app"
	"marquee/policies"
)

// Handlers of offline scanning: the door manifest, the sync of a device's
// offline log, and the conflict report. Like online check-in they are
// checked at the event's venue (inventory.door), so door staff sync and
// read manifests at their own venue only.

// ManifestMediaType is the door manifest's binary form (DESIGN.md).
const ManifestMediaType = "application/octet-stream"

func (m *Module) doorManifest(c *gin.Context) {
	ev, err := m.staffEvent(c, ObjDoor, policies.Read)
	if err != nil {
		app.Fail(c, err)
		return
	}
	body, h, err := m.svc.DoorManifest(c.Request.Context(), app.TenantOf(c), ev.ID, c.Query("since"))
	if err != nil {
		app.Fail(c, err)
		return
	}
	c.Header("Cache-Control", "no-store")
	c.Header("X-Manifest-Count", strconv.Itoa(h.Count))
	c.Header("X-Manifest-Cursor", h.Cursor)
	c.Header("Vary", "Accept-Encoding")
	if strings.Contains(c.GetHeader("Accept-Encoding"), "gzip") {
		var buf bytes.Buffer
		zw, _ := gzip.NewWriterLevel(&buf, gzip.BestSpeed)
		if _, err := zw.Write(body); err == nil && zw.Close() == nil {
			c.Header("Content-Encoding", "gzip")
			body = buf.Bytes()
		}
	}
	c.Data(http.StatusOK, ManifestMediaType, body)
}

// syncScan is one scan of a device's offline log.
type syncScan struct {
	Token string `json:"token"`
	// Type is entry (default) or exit.
	Type  string `json:"type"`
	Gate  string `json:"gate"`
	Nonce string `json:"nonce"`
	// ScannedAt is the device's clock at the scan.
	ScannedAt *time.Time `json:"scanned_at"`
	// Result is what the device showed: admit or exited let the holder
	// through; already_admitted, wrong_zone, revoked, not_yet_valid,
	// expired, wrong_event, not_inside refused them.
	Result string `json:"result"`
}

// syncRequest is a device's upload of its offline log.
type syncRequest struct {
	DeviceID string `json:"device_id"`
	// SentAt is the device's clock when sending: its offset from the
	// server's corrects every scanned_at of the batch.
	SentAt *time.Time `json:"sent_at"`
	// ClockOffsetMS (optional) is server minus device time in milliseconds
	// as the device measured it by a round trip to the door clock
	// (GET /events/{id}/door-clock) just before sending: more precise than
	// sent_at's estimate, which includes the upload's transit; used when
	// consistent with it.
	ClockOffsetMS *int64 `json:"clock_offset_ms"`
	// RevocationSeq is the revocation_seq of the device's manifest.
	RevocationSeq int64      `json:"revocation_seq"`
	Scans         []syncScan `json:"scans"`
}

// maxClockOffsetMS bounds a device's stated clock offset: a week, as far
// back as a scan may be synced.
const maxClockOffsetMS = 7 * 24 * 3600 * 1000

var entryResults = []string{ResultAdmit, ResultAlreadyAdmitted, ResultWrongZone, ResultRevoked, ResultNotYetValid, ResultExpired, ResultWrongEvent}
var exitResults = []string{ResultExited, ResultNotInside, ResultWrongEvent}

func (r syncRequest) Validate() error {
	if err := textField("device_id", r.DeviceID, 64); err != nil {
		return err
	}
	if r.SentAt == nil || r.SentAt.IsZero() {
		return app.InvalidField("invalid_sent_at", "sent_at", "sent_at is the device's clock when it sent the batch")
	}
	if r.ClockOffsetMS != nil && (*r.ClockOffsetMS > maxClockOffsetMS || *r.ClockOffsetMS < -maxClockOffsetMS) {
		return app.InvalidField("invalid_clock_offset", "clock_offset_ms", "clock_offset_ms is server minus device time in milliseconds (within a week)")
	}
	if r.RevocationSeq < 0 {
		return app.InvalidField("invalid_revocation_seq", "revocation_seq", "revocation_seq is the manifest's (0 or more)")
	}
	if len(r.Scans) == 0 {
		return app.InvalidField("invalid_scans", "scans", "scans lists 1 to %d scans", MaxSyncScans)
	}
	if len(r.Scans) > MaxSyncScans {
		return app.Errorf(app.KindPayloadTooLarge, "sync_too_many_scans", "a batch holds at most %d scans; send the log in several batches", MaxSyncScans).
			With("max_scans", MaxSyncScans)
	}
	for i, s := range r.Scans {
		at := func(f string) string { return fmt.Sprintf("scans[%d].%s", i, f) }
		if s.Token == "" || len(s.Token) > 2048 {
			return app.InvalidField("invalid_ticket_token", at("token"), "token is the scanned ticket token (1 to 2,048 characters)")
		}
		results := entryResults
		switch s.Type {
		case ScanEntry, "":
		case ScanExit:
			results = exitResults
		default:
			return app.InvalidField("invalid_type", at("type"), "type is entry or exit")
		}
		if l := len(s.Gate); l < 1 || l > 40 {
			return app.InvalidField("invalid_gate", at("gate"), "gate is 1 to 40 characters")
		}
		if l := len(s.Nonce); l < 1 || l > 64 {
			return app.InvalidField("invalid_nonce", at("nonce"), "nonce is 1 to 64 characters")
		}
		if s.ScannedAt == nil || s.ScannedAt.IsZero() {
			return app.InvalidField("invalid_scanned_at", at("scanned_at"), "scanned_at is the device's clock at the scan")
		}
		ok := false
		for _, v := range results {
			ok = ok || v == s.Result
		}
		if !ok {
			return app.InvalidField("invalid_device_result", at("result"), "result is what the device showed: one of %s for this type", strings.Join(results, ", "))
		}
	}
	return nil
}

func (m *Module) syncCheckins(c *gin.Context, req syncRequest) (SyncResult, error) {
	ev, err := m.staffEvent(c, ObjDoor, policies.Write)
	if err != nil {
		return SyncResult{}, err
	}
	b := SyncBatch{EventID: ev.ID, DeviceID: req.DeviceID, SentAt: *req.SentAt, RevocationSeq: req.RevocationSeq, Scans: make([]SyncScan, len(req.Scans))}
	if req.ClockOffsetMS != nil {
		d := time.Duration(*req.ClockOffsetMS) * time.Millisecond
		b.MeasuredOffset = &d
	}
	for i, s := range req.Scans {
		typ := s.Type
		if typ == "" {
			typ = ScanEntry
		}
		b.Scans[i] = SyncScan{Token: s.Token, Type: typ, Gate: s.Gate, Nonce: s.Nonce, ScannedAt: *s.ScannedAt, DeviceResult: s.Result}
	}
	if p := app.PrincipalOf(c); p.UserID != uuid.Nil {
		b.StaffID = &p.UserID
	}
	return m.svc.SyncCheckins(c.Request.Context(), app.TenantOf(c), b)
}

// DoorClock is the server's clock, read by a scanner in a round trip to
// measure its own clock's offset before it syncs.
type DoorClock struct {
	ServerTime time.Time `json:"server_time"`
}

func (m *Module) doorClock(c *gin.Context, _ app.None) (DoorClock, error) {
	if _, err := m.staffEvent(c, ObjDoor, policies.Read); err != nil {
		return DoorClock{}, err
	}
	c.Header("Cache-Control", "no-store")
	return DoorClock{ServerTime: m.svc.d.Now().UTC()}, nil
}

func (m *Module) doorConflicts(c *gin.Context, _ app.None) (ConflictReport, error) {
	ev, err := m.staffEvent(c, ObjDoor, policies.Read)
	if err != nil {
		return ConflictReport{}, err
	}
	limit, err := queryInt(c, "limit", 200, 1, 1000)
	if err != nil {
		return ConflictReport{}, err
	}
	c.Header("Cache-Control", "no-store")
	return m.svc.DoorConflicts(c.Request.Context(), app.TenantOf(c), ev.ID, int(limit))
}
