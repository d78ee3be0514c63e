package inventory

import (
	"net/http"

	"github.com/gin-gonic/gin"
	"github.com/google/uuid"

	"marquee/app"
)

// The cart's handlers (its rules are in internal/holds/cart.go).

// addItemsBody is the body of POST /holds/{holdId}/items.
type addItemsBody struct {
	Seats []string           `json:"seats"`
	Tiers []addItemsTierBody `json:"tiers"`
}

type addItemsTierBody struct {
	TierID   string `json:"tier_id"`
	Quantity int    `json:"quantity"`
}

// addHoldItems answers POST /holds/{holdId}/items: more seats or GA tickets
// into the buyer's existing hold (its expiry unchanged).
func (m *Module) addHoldItems(c *gin.Context) {
	id, ok := app.PathID(c, "holdId", "hold")
	if !ok {
		return
	}
	buyer := m.buyer(c)
	if buyer == "" {
		app.Fail(c, app.Invalid("buyer_required", "send X-Buyer-Token (POST /api/v1/buyer-sessions mints one)"))
		return
	}
	var body addItemsBody
	if err := app.DecodeJSON(c, &body); err != nil {
		app.Fail(c, err)
		return
	}
	key, err := app.KeyFrom(c, body, buyer, true)
	if err != nil {
		app.Fail(c, err)
		return
	}
	req := AddItemsRequest{Key: key, Seats: body.Seats, BuyerID: buyer, ClientIP: c.ClientIP()}
	for _, tb := range body.Tiers {
		tid, err := uuid.Parse(tb.TierID)
		if err != nil {
			app.Fail(c, invalid("tier_id", "tier_id must be a UUID"))
			return
		}
		req.Tiers = append(req.Tiers, TierQuantity{TierID: tid, Quantity: tb.Quantity})
	}
	h, err := m.svc.AddToHold(c.Request.Context(), app.TenantOf(c), id, req)
	if err != nil {
		app.Fail(c, err)
		return
	}
	c.JSON(http.StatusOK, h)
}

// removeHoldSeat answers DELETE /holds/{holdId}/items/{seatId}.
func (m *Module) removeHoldSeat(c *gin.Context) {
	id, ok := app.PathID(c, "holdId", "hold")
	if !ok {
		return
	}
	h, err := m.svc.RemoveSeat(c.Request.Context(), app.TenantOf(c), id, c.Param("seatId"), m.buyer(c))
	if err != nil {
		app.Fail(c, err)
		return
	}
	c.JSON(http.StatusOK, h)
}
