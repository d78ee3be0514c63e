package stock

import (
	"fmt"

	"github.com/google/uuid"
	"gorm.io/gorm"
)

// A seat changes state only through these conditional updates (and the
// hold batch's and cart's, which take available seats): each locks the
// seats it moves in seat id order, so overlapping moves queue instead of
// deadlocking, and repeats the state it expects.

// ReleaseHeldSeats puts a closed hold's held seats back on sale.
func ReleaseHeldSeats(tx *gorm.DB, eventID, holdID uuid.UUID) ([]string, error) {
	var seats []struct {
		ID string `gorm:"column:id"`
	}
	if err := tx.Raw(`UPDATE inv_seats s SET state = 'available', hold_id = NULL
		FROM (SELECT id FROM inv_seats WHERE event_id = ? AND hold_id = ? ORDER BY id FOR UPDATE) l
		WHERE s.event_id = ? AND s.id = l.id AND s.state = 'held' AND s.hold_id = ?
		RETURNING s.id`, eventID, holdID, eventID, holdID).Scan(&seats).Error; err != nil {
		return nil, err
	}
	return seatIDs(seats), nil
}

// SellHeldSeats turns a sold hold's held seats into its order's sold ones;
// every seat line of the hold must have its seat held.
func SellHeldSeats(tx *gorm.DB, eventID, holdID, orderID uuid.UUID) ([]string, error) {
	var seats []struct {
		ID string `gorm:"column:id"`
	}
	if err := tx.Raw(`UPDATE inv_seats s SET state = 'sold', order_id = ?, hold_id = NULL
		FROM (SELECT id FROM inv_seats WHERE event_id = ? AND hold_id = ? ORDER BY id FOR UPDATE) l
		WHERE s.event_id = ? AND s.id = l.id AND s.state = 'held' AND s.hold_id = ?
		RETURNING s.id`, orderID, eventID, holdID, eventID, holdID).Scan(&seats).Error; err != nil {
		return nil, err
	}
	var want int64
	if err := tx.Raw(`SELECT count(*) FROM inv_hold_lines WHERE hold_id = ? AND seat_id IS NOT NULL`, holdID).Row().Scan(&want); err != nil {
		return nil, err
	}
	if int64(len(seats)) != want {
		return nil, fmt.Errorf("hold %s held %d of its %d seats", holdID, len(seats), want)
	}
	return seatIDs(seats), nil
}

// SellFreeSeats sells seats that are still available straight to an order
// (a late payment taken again); it returns those it sold, all of ids or
// fewer (the caller then rolls back).
func SellFreeSeats(tx *gorm.DB, eventID, orderID uuid.UUID, ids []string) ([]string, error) {
	var got []struct {
		ID string `gorm:"column:id"`
	}
	if err := tx.Raw(`UPDATE inv_seats s SET state = 'sold', order_id = ?
		FROM (SELECT id FROM inv_seats WHERE event_id = ? AND id IN ? AND state = 'available' ORDER BY id FOR UPDATE) l
		WHERE s.event_id = ? AND s.id = l.id AND s.state = 'available'
		RETURNING s.id`, orderID, eventID, ids, eventID).Scan(&got).Error; err != nil {
		return nil, err
	}
	return seatIDs(got), nil
}

// ReturnSoldSeats puts a refunded order's seats back on sale.
func ReturnSoldSeats(tx *gorm.DB, eventID, orderID uuid.UUID) ([]string, error) {
	var got []struct {
		ID string `gorm:"column:id"`
	}
	if err := tx.Raw(`UPDATE inv_seats s SET state = 'available', order_id = NULL
		FROM (SELECT id FROM inv_seats WHERE event_id = ? AND order_id = ? ORDER BY id FOR UPDATE) l
		WHERE s.event_id = ? AND s.id = l.id AND s.state = 'sold' AND s.order_id = ?
		RETURNING s.id`, eventID, orderID, eventID, orderID).Scan(&got).Error; err != nil {
		return nil, err
	}
	return seatIDs(got), nil
}

func seatIDs(rows []struct {
	ID string `gorm:"column:id"`
}) []string {
	ids := make([]string, len(rows))
	for i, r := range rows {
		ids[i] = r.ID
	}
	return ids
}
