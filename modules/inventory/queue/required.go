package queue

import (
	"context"

	"github.com/google/uuid"

	"marquee/tenants"
)

// Required reports whether the event's room is in force now (the inventory's
// AdmissionRoom): the storefront sends a buyer to the queue before the seat
// map, so nobody picks seats only to be turned away at Hold.
func (r *Room) Required(ctx context.Context, t tenants.Tenant, event uuid.UUID) (bool, error) {
	s, err := r.Settings(ctx, t, event)
	if err != nil {
		return false, err
	}
	return s.Open(r.now()), nil
}
