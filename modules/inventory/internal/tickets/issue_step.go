package tickets

import (
	"time"

	"github.com/google/uuid"

	"marquee/modules/inventory/internal/model"
	"marquee/tenants"
)

// Line is a sold hold's line as Issue reads it (with its tier's and zone's
// names).
type Line struct {
	TierID   uuid.UUID `json:"tier_id"`
	TierName string    `json:"tier_name"`
	ZoneID   uuid.UUID `json:"zone_id"`
	ZoneName string    `json:"zone_name"`
	SeatID   *string   `json:"seat_id"`
	Quantity int       `json:"quantity"`
}

// IssueStep is Issue for a piped transaction (the payment's fast path): the
// same tickets, signed with the event's newest key as the payment's
// transaction read it (its id and sealed private key) and the door's
// validity window, written by one statement. It answers the step and how
// many tickets it writes.
func (s *Service) IssueStep(t tenants.Tenant, o model.Order, kid int, privateEnc []byte, validity Validity, lines []Line) (tenants.Step, int, error) {
	sg, err := s.unseal(t, o.EventID, eventKeyRow{KID: kid, PrivateEnc: privateEnc})
	if err != nil {
		return tenants.Step{}, 0, err
	}
	ic := issueContext{signer: sg, validity: validity}
	var ids, zones, zoneNames, tiers, tierNames, tokens []string
	var seats []*string
	for _, l := range lines {
		for i := 0; i < l.Quantity; i++ {
			id := uuid.Must(uuid.NewV7())
			ids, zones, zoneNames = append(ids, id.String()), append(zones, l.ZoneID.String()), append(zoneNames, l.ZoneName)
			tiers, tierNames, seats = append(tiers, l.TierID.String()), append(tierNames, l.TierName), append(seats, l.SeatID)
			tokens = append(tokens, ic.token(t, o.EventID, id, l.ZoneID))
		}
	}
	now := time.Now().UTC().Truncate(time.Second)
	return tenants.Step{SQL: issueStepSQL, Args: []any{o.ID, o.EventID, o.Name, o.Email, now, int(sg.kid),
		ids, zones, zoneNames, tiers, tierNames, seats, tokens}}, len(ids), nil
}

const issueStepSQL = `INSERT INTO inv_tickets (id, order_id, event_id, zone_id, zone_name, tier_id, tier_name, seat_id, holder_name, holder_email, status, token, issued_at, key_id)
SELECT r.id, $1, $2, r.zone_id, r.zone_name, r.tier_id, r.tier_name, r.seat_id, $3, $4, 'valid', r.token, $5, $6
FROM unnest($7::uuid[], $8::uuid[], $9::text[], $10::uuid[], $11::text[], $12::text[], $13::text[]) AS r(id, zone_id, zone_name, tier_id, tier_name, seat_id, token)`
