package inventory

import (
	"github.com/gin-gonic/gin"
	"github.com/google/uuid"

	"marquee/app"
)

// The cart's handlers (its rules are in internal/holds/cart.go).

// addItemsBody is the body of POST /holds/{holdId}/items.
type addItemsBody struct {
	Seats []string           `json:"seats"`
	Tiers []addItemsTierBody `json:"tiers"`
	// PresaleCode is needed during the event's presale, as for a new hold.
	PresaleCode string `json:"presale_code"`
}

type addItemsTierBody struct {
	TierID   string `json:"tier_id"`
	Quantity int    `json:"quantity"`
}

// addHoldItems answers POST /holds/{holdId}/items: more seats or GA tickets
// into the buyer's existing hold (its expiry unchanged).
func (m *Module) addHoldItems(c *gin.Context, body addItemsBody) (Hold, error) {
	id, err := app.PathUUID(c, "holdId", "hold")
	if err != nil {
		return Hold{}, err
	}
	buyer := m.buyer(c)
	if buyer == "" {
		return Hold{}, app.Invalid("buyer_required", "send X-Buyer-Token (POST /api/v1/buyer-sessions mints one)")
	}
	key, err := app.KeyFrom(c, body, buyer, true)
	if err != nil {
		return Hold{}, err
	}
	req := AddItemsRequest{Key: key, Seats: body.Seats, BuyerID: buyer, ClientIP: c.ClientIP(), PresaleCode: body.PresaleCode}
	for _, tb := range body.Tiers {
		tid, err := uuid.Parse(tb.TierID)
		if err != nil {
			return Hold{}, invalid("tier_id", "tier_id must be a UUID")
		}
		req.Tiers = append(req.Tiers, TierQuantity{TierID: tid, Quantity: tb.Quantity})
	}
	return m.svc.AddToHold(c.Request.Context(), app.TenantOf(c), id, req)
}

// removeHoldSeat answers DELETE /holds/{holdId}/items/{seatId}.
func (m *Module) removeHoldSeat(c *gin.Context, _ app.None) (Hold, error) {
	id, err := app.PathUUID(c, "holdId", "hold")
	if err != nil {
		return Hold{}, err
	}
	return m.svc.RemoveSeat(c.Request.Context(), app.TenantOf(c), id, c.Param("seatId"), m.buyer(c))
}
