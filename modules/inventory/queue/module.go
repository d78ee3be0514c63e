package queue

import (
	"github.com/gin-gonic/gin"

	"marquee/app"
	"marquee/modules/inventory"
)

// Module puts the waiting room in front of the inventory module's holds.
type Module struct {
	inv  *inventory.Module
	room *Room
}

// NewModule wires a waiting room to an inventory module; register it after
// the inventory module.
func NewModule(inv *inventory.Module) *Module { return &Module{inv: inv} }

// Name implements app.Module.
func (m *Module) Name() string { return "waiting-room" }

// Room returns the room (after registration).
func (m *Module) Room() *Room { return m.room }

// Register implements app.Module: the room's routes and admitter, and the
// room as the inventory's admission gate.
func (m *Module) Register(r *app.Registrar) error {
	m.room = New(r.Core())
	m.room.Prices = m.inv.Service().PriceRanges
	m.inv.SetAdmissionGate(m.room)
	Register(r, m.room, m.buyer)
	return nil
}

// buyer is the storefront's signed anonymous buyer, as the inventory knows it.
func (m *Module) buyer(c *gin.Context) (string, error) {
	tok := c.GetHeader(inventory.BuyerHeader)
	if tok == "" {
		tok, _ = c.Cookie(inventory.BuyerCookie)
	}
	id, ok := m.inv.Service().BuyerFromToken(app.TenantOf(c), tok)
	if !ok {
		return "", app.Invalid("buyer_required", "send X-Buyer-Token (POST /api/v1/buyer-sessions mints one)")
	}
	return id, nil
}
