package booking

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/google/uuid"
	"gorm.io/gorm"

	"marquee/app"
	"marquee/policies"
	"marquee/tenants"
)

// Acknowledgment is one party's agreement to a settlement sheet.
type Acknowledgment struct {
	Party        Party     `gorm:"column:party" json:"party"`
	Name         string    `gorm:"column:name" json:"name"`
	At           time.Time `gorm:"column:at" json:"at"`
	IP           string    `gorm:"column:ip" json:"ip"`
	SheetSHA256  string    `gorm:"column:sheet_sha256" json:"sheet_sha256"`
	WalkoutMinor int64     `gorm:"column:walkout_minor" json:"walkout_minor"`
	Currency     string    `gorm:"column:currency" json:"currency"`
	// Current says the acknowledged sheet is the one computed now.
	Current bool `gorm:"-" json:"current"`
}

// SheetDigest is the SHA-256 of the external sheet's JSON: what a party
// acknowledges. Any change of a number changes it.
func SheetDigest(v SettlementView) string {
	ext := v.Sheet.External()
	b, _ := json.Marshal(ext)
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

func listAcks(tx *gorm.DB, id uuid.UUID) ([]Acknowledgment, error) {
	out := []Acknowledgment{}
	err := tx.Raw(`SELECT party, name, at, ip, sheet_sha256, walkout_minor, currency FROM bkg_settlement_acks WHERE booking_id = ? ORDER BY at`, id).Scan(&out).Error
	for i := range out {
		out[i].At = out[i].At.UTC()
	}
	return out, err
}

// SettlementAs is Settlement for an actor (an agent sees only their
// artists' bookings, and only the external view), with the sheet's digest
// and the acknowledgments.
func (s *Service) SettlementAs(ctx context.Context, t tenants.Tenant, id uuid.UUID, internal bool, actor Actor) (SettlementView, error) {
	if actor.AgentID != uuid.Nil {
		internal = false
		if err := s.tx(ctx, t, func(tx *gorm.DB) error { _, err := findBooking(tx, id, scope{actor.AgentID}, false); return err }); err != nil {
			return SettlementView{}, err
		}
	}
	v, err := s.Settlement(ctx, t, id, internal)
	if err != nil {
		return v, err
	}
	v.SheetSHA256 = SheetDigest(v)
	err = s.tx(ctx, t, func(tx *gorm.DB) error {
		var err error
		v.Acknowledgments, err = listAcks(tx, id)
		return err
	})
	for i := range v.Acknowledgments {
		v.Acknowledgments[i].Current = v.Acknowledgments[i].SheetSHA256 == v.SheetSHA256
	}
	return v, err
}

// AckInput acknowledges the sheet whose digest the party read.
type AckInput struct {
	Name        string `json:"name"`
	SheetSHA256 string `json:"sheet_sha256"`
}

// Acknowledge records the actor's party's agreement to the sheet computed
// now, if it is the one they read (its digest); once per party. When both
// parties agreed to the same sheet, its results go to the ledger: the
// walkout paid out and each withholding, linked to the booking.
func (s *Service) Acknowledge(ctx context.Context, t tenants.Tenant, id uuid.UUID, in AckInput, actor Actor) (SettlementView, error) {
	name, err := cleanText("name", in.Name, 200, true)
	if err != nil {
		return SettlementView{}, err
	}
	digest := strings.ToLower(strings.TrimSpace(in.SheetSHA256))
	if !sha256Hex.MatchString(digest) {
		return SettlementView{}, app.InvalidField("invalid_request", "sheet_sha256", "the SHA-256 of the sheet you read, 64 hex digits")
	}
	v, err := s.SettlementAs(ctx, t, id, false, actor)
	if err != nil {
		return SettlementView{}, err
	}
	if v.SheetSHA256 != digest {
		return SettlementView{}, app.Conflict("settlement_changed", "the settlement changed since you read it; reload it and acknowledge what it is now").
			With("sheet_sha256", v.SheetSHA256)
	}
	err = s.tx(ctx, t, func(tx *gorm.DB) error {
		// The booking's row orders the two parties' acknowledgments, so the
		// one that completes the pair sees the other.
		if _, err := findBooking(tx, id, scope{actor.AgentID}, true); err != nil {
			return err
		}
		q := tx.Exec(`INSERT INTO bkg_settlement_acks (booking_id, party, name, at, ip, sheet_sha256, walkout_minor, currency)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING`, id, string(actor.Party), name, s.app.Now().UTC(), actor.IP, digest,
			v.Sheet.WalkoutMinor, v.Sheet.Currency)
		if q.Error != nil {
			return q.Error
		}
		if q.RowsAffected == 0 {
			return app.Conflict("settlement_already_acknowledged", "the %s acknowledged this settlement already", actor.Party)
		}
		acks, err := listAcks(tx, id)
		if err != nil {
			return err
		}
		if len(acks) == len(parties) && acks[0].SheetSHA256 == acks[1].SheetSHA256 {
			if err := s.recordSettled(tx, id, v); err != nil {
				return err
			}
		}
		return addHistory(tx, id, actor, "acknowledge_settlement", "", "", v.TermsVersionPtr(), "walkout "+fmt.Sprint(v.Sheet.WalkoutMinor)+" "+v.Sheet.Currency)
	})
	if err != nil {
		return SettlementView{}, err
	}
	return s.SettlementAs(ctx, t, id, false, actor)
}

// TermsVersionPtr is the terms version as the history wants it.
func (v SettlementView) TermsVersionPtr() *int { n := v.TermsVersion; return &n }

// recordSettled appends the agreed settlement's results to the ledger.
func (s *Service) recordSettled(tx *gorm.DB, id uuid.UUID, v SettlementView) error {
	ref, cur := "booking:"+id.String(), v.Sheet.Currency
	if _, err := s.app.Ledger.Append(tx, "booking.settlement_walkout", ref, v.Sheet.WalkoutMinor, cur,
		fmt.Sprintf("settlement agreed by both parties: walkout (earnings %d, deposits paid %d, withholdings %d)",
			v.Sheet.EarningsMinor, v.Sheet.DepositsPaidMinor, v.Sheet.WithholdingsMinor)); err != nil {
		return err
	}
	for _, w := range v.Sheet.Withholdings {
		if !w.Applies || w.AmountMinor == 0 {
			continue
		}
		if _, err := s.app.Ledger.Append(tx, "booking.withholding", ref, w.AmountMinor, cur, "tax withheld for "+w.Jurisdiction); err != nil {
			return err
		}
	}
	return nil
}

// ---- HTTP

func (m *Module) exportSettlement(c *gin.Context, a Actor) {
	id, err := bookingID(c)
	if err != nil {
		app.Fail(c, err)
		return
	}
	internal := c.Query("view") == "internal"
	if internal && (a.AgentID != uuid.Nil || !m.app.Can(c, ObjSettlements, policies.Read)) {
		app.Fail(c, app.Forbidden("forbidden", "the internal view is the promoter's (booking.settlements:read)"))
		return
	}
	v, err := m.svc.SettlementAs(c.Request.Context(), app.TenantOf(c), id, internal, a)
	if err != nil {
		app.Fail(c, err)
		return
	}
	name := "settlement-" + id.String()[:8] + "-" + v.View
	c.Header("X-Sheet-SHA256", v.SheetSHA256)
	switch c.DefaultQuery("format", "pdf") {
	case "csv":
		var buf bytes.Buffer
		if err := v.Sheet.CSV(&buf); err != nil {
			app.Fail(c, err)
			return
		}
		c.Header("Content-Disposition", `attachment; filename="`+name+`.csv"`)
		c.Data(http.StatusOK, "text/csv; charset=utf-8", buf.Bytes())
	case "pdf":
		title := v.BookingID.String()[:8]
		if d, err := m.svc.Get(c.Request.Context(), app.TenantOf(c), id, a); err == nil {
			title = d.Title + " - " + d.ArtistName
		}
		b, err := v.Sheet.PDF(title, v.View, m.app.Now())
		if err != nil {
			app.Fail(c, err)
			return
		}
		c.Header("Content-Disposition", `inline; filename="`+name+`.pdf"`)
		c.Data(http.StatusOK, "application/pdf", b)
	default:
		app.Fail(c, app.InvalidField("invalid_request", "format", "pdf or csv"))
	}
}

func (m *Module) settlementExport(c *gin.Context) { m.exportSettlement(c, Actor{Party: Promoter}) }

func (m *Module) agentSettlementExport(c *gin.Context) {
	a, err := m.agentActor(c)
	if err != nil {
		app.Fail(c, err)
		return
	}
	m.exportSettlement(c, a)
}

func (m *Module) agentSettlement(c *gin.Context, _ app.None) (SettlementView, error) {
	a, err := m.agentActor(c)
	if err != nil {
		return SettlementView{}, err
	}
	id, err := bookingID(c)
	if err != nil {
		return SettlementView{}, err
	}
	return m.svc.SettlementAs(c.Request.Context(), app.TenantOf(c), id, false, a)
}

func (m *Module) acknowledge(c *gin.Context, req AckInput) (SettlementView, error) {
	id, err := bookingID(c)
	if err != nil {
		return SettlementView{}, err
	}
	return m.svc.Acknowledge(c.Request.Context(), app.TenantOf(c), id, req, m.staff(c))
}

func (m *Module) agentAcknowledge(c *gin.Context, req AckInput) (SettlementView, error) {
	a, err := m.agentActor(c)
	if err != nil {
		return SettlementView{}, err
	}
	id, err := bookingID(c)
	if err != nil {
		return SettlementView{}, err
	}
	return m.svc.Acknowledge(c.Request.Context(), app.TenantOf(c), id, req, a)
}
