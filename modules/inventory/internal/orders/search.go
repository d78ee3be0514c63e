package orders

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"strings"
	"time"

	"github.com/google/uuid"
	"gorm.io/gorm"

	"marquee/app"
	"marquee/modules/inventory/internal/model"
	"marquee/tenants"
)

// OrderSearch selects one event's orders for the portal: Text matches the
// buyer's name or e-mail, the start of the order id, or a seat or holder of
// a ticket in it; Status, Tier (name) and Channel filter; Sort orders the
// list and After is the keyset cursor of the last order shown (Cursor of
// that order under the same sort).
type OrderSearch struct {
	EventID uuid.UUID
	Text    string
	Status  string
	Tier    string
	Channel string
	Sort    string
	After   string
	// Before / BeforeID: the cursor of the newest-first list (older links).
	Before   *time.Time
	BeforeID uuid.UUID
	Limit    int
}

// OrderSorts are the orders the list can be sorted in, first the default.
var OrderSorts = []struct{ Key, Label string }{
	{"newest", "Newest first"}, {"oldest", "Oldest first"},
	{"amount_desc", "Amount, high to low"}, {"amount_asc", "Amount, low to high"}, {"name", "Buyer name, A to Z"},
}

// orderSort is how one sort reads: its key column, and direction.
type orderSort struct {
	col  string
	desc bool
}

var orderSortCols = map[string]orderSort{
	"newest": {"created_at", true}, "oldest": {"created_at", false},
	"amount_desc": {"amount_minor", true}, "amount_asc": {"amount_minor", false},
	"name": {"lower(name)", false},
}

// cursor is the position after one order under a sort: its sort key (as
// text) and id. It is opaque to people; a forged one at worst skips rows.
type cursor struct {
	S  string    `json:"s"`
	V  string    `json:"v"`
	ID uuid.UUID `json:"id"`
}

// Cursor is the keyset cursor after o under sort (for the next page link).
func Cursor(sort string, o model.Order) string {
	if _, ok := orderSortCols[sort]; !ok {
		sort = "newest"
	}
	c := cursor{S: sort, ID: o.ID}
	switch orderSortCols[sort].col {
	case "created_at":
		c.V = o.CreatedAt.UTC().Format(time.RFC3339Nano)
	case "amount_minor":
		b, _ := json.Marshal(o.AmountMinor)
		c.V = string(b)
	default:
		c.V = strings.ToLower(o.Name)
	}
	b, _ := json.Marshal(c)
	return base64.RawURLEncoding.EncodeToString(b)
}

// filtered is the event's orders matching the search's text and filters.
func filtered(tx *gorm.DB, f OrderSearch) *gorm.DB {
	q := tx.Table("inv_orders").Where("event_id = ?", f.EventID)
	if f.Text != "" {
		like := "%" + strings.NewReplacer(`\`, `\\`, "%", `\%`, "_", `\_`).Replace(f.Text) + "%"
		q = q.Where(`(name ILIKE ? OR email ILIKE ? OR id::text LIKE ? OR EXISTS (SELECT 1 FROM inv_tickets k
			WHERE k.order_id = inv_orders.id AND (k.seat_id ILIKE ? OR k.holder_name ILIKE ? OR k.holder_email ILIKE ?)))`,
			like, like, strings.ToLower(strings.TrimSpace(f.Text))+"%", like, like, like)
	}
	if f.Status != "" {
		q = q.Where("status = ?", f.Status)
	}
	if f.Tier != "" {
		q = q.Where("EXISTS (SELECT 1 FROM inv_tickets k WHERE k.order_id = inv_orders.id AND k.tier_name = ?)", f.Tier)
	}
	if f.Channel != "" {
		q = q.Where("EXISTS (SELECT 1 FROM inv_holds h WHERE h.id = inv_orders.hold_id AND h.channel = ?)", f.Channel)
	}
	return q
}

// Search lists an event's orders a page at a time, in the search's sort.
func (s *Service) Search(ctx context.Context, t tenants.Tenant, f OrderSearch) ([]model.Order, error) {
	out := []model.Order{}
	sort, ok := orderSortCols[f.Sort]
	if !ok {
		f.Sort, sort = "newest", orderSortCols["newest"]
	}
	dir, cmp := "ASC", ">"
	if sort.desc {
		dir, cmp = "DESC", "<"
	}
	err := s.d.Tx(ctx, t, func(tx *gorm.DB) error {
		q := filtered(tx, f).Select(model.OrderCols)
		switch {
		case f.After != "":
			var c cursor
			raw, err := base64.RawURLEncoding.DecodeString(f.After)
			if err == nil {
				err = json.Unmarshal(raw, &c)
			}
			if err != nil || c.S != f.Sort {
				return app.Invalid("invalid_order_cursor", "the page link is not valid for this list; start from the first page")
			}
			var v any = c.V
			switch sort.col {
			case "created_at":
				at, err := time.Parse(time.RFC3339Nano, c.V)
				if err != nil {
					return app.Invalid("invalid_order_cursor", "the page link is not valid for this list; start from the first page")
				}
				v = at
			case "amount_minor":
				var n int64
				if err := json.Unmarshal([]byte(c.V), &n); err != nil {
					return app.Invalid("invalid_order_cursor", "the page link is not valid for this list; start from the first page")
				}
				v = n
			}
			q = q.Where("("+sort.col+", id) "+cmp+" (?, ?)", v, c.ID)
		case f.Before != nil && f.Sort == "newest":
			q = q.Where("(created_at, id) < (?, ?)", *f.Before, f.BeforeID)
		}
		return q.Order(sort.col + " " + dir + ", id " + dir).Limit(f.Limit).Scan(&out).Error
	})
	return out, err
}

// AttendeeRow is one ticket of a listed order, for the CSV export (orders
// without tickets, e.g. pending, come once with the ticket fields empty).
type AttendeeRow struct {
	OrderID      uuid.UUID  `gorm:"column:order_id"`
	CreatedAt    time.Time  `gorm:"column:created_at"`
	PaidAt       *time.Time `gorm:"column:paid_at"`
	Name         string     `gorm:"column:name"`
	Email        string     `gorm:"column:email"`
	OrderStatus  string     `gorm:"column:order_status"`
	OrderAmount  int64      `gorm:"column:amount_minor"`
	Currency     string     `gorm:"column:currency"`
	Channel      string     `gorm:"column:channel"`
	TicketID     *uuid.UUID `gorm:"column:ticket_id"`
	Tier         *string    `gorm:"column:tier_name"`
	Zone         *string    `gorm:"column:zone_name"`
	SeatID       *string    `gorm:"column:seat_id"`
	HolderName   *string    `gorm:"column:holder_name"`
	HolderEmail  *string    `gorm:"column:holder_email"`
	TicketStatus *string    `gorm:"column:ticket_status"`
	PriceMinor   *int64     `gorm:"column:price_minor"`
}

// ExportBatch is how many orders an export reads per query.
const ExportBatch = 500

// Attendees streams the orders the search selects (any sort; Limit
// ignored) with their tickets, in pages of ExportBatch orders, to fn.
func (s *Service) Attendees(ctx context.Context, t tenants.Tenant, f OrderSearch, fn func([]AttendeeRow) error) error {
	f.Limit, f.After, f.Before = ExportBatch, "", nil
	for {
		page, err := s.Search(ctx, t, f)
		if err != nil || len(page) == 0 {
			return err
		}
		ids := make([]uuid.UUID, len(page))
		for i, o := range page {
			ids[i] = o.ID
		}
		var rows []AttendeeRow
		if err := s.d.Tx(ctx, t, func(tx *gorm.DB) error {
			return tx.Raw(`SELECT o.id AS order_id, o.created_at, o.paid_at, o.name, o.email, o.status AS order_status, o.amount_minor, o.currency, h.channel,
				k.id AS ticket_id, k.tier_name, k.zone_name, k.seat_id, k.holder_name, k.holder_email, k.status AS ticket_status, l.price_minor
				FROM inv_orders o JOIN inv_holds h ON h.id = o.hold_id
				LEFT JOIN inv_tickets k ON k.order_id = o.id
				LEFT JOIN LATERAL (SELECT unit_price_minor AS price_minor FROM inv_hold_lines hl WHERE hl.hold_id = o.hold_id
					AND (hl.seat_id = k.seat_id OR (k.seat_id IS NULL AND hl.seat_id IS NULL AND hl.tier_id = k.tier_id)) ORDER BY hl.line LIMIT 1) l ON true
				WHERE o.id IN ? ORDER BY array_position(?::uuid[], o.id), k.seat_id NULLS LAST, k.issued_at, k.id`, ids, uuidArray(ids)).Scan(&rows).Error
		}); err != nil {
			return err
		}
		if err := fn(rows); err != nil {
			return err
		}
		if len(page) < ExportBatch {
			return nil
		}
		f.After = Cursor(f.Sort, page[len(page)-1])
	}
}

// uuidArray writes ids as a PostgreSQL array literal.
func uuidArray(ids []uuid.UUID) string {
	parts := make([]string, len(ids))
	for i, id := range ids {
		parts[i] = id.String()
	}
	return "{" + strings.Join(parts, ",") + "}"
}

// TicketPrices is what each ticket of an order cost (all-in unit price of
// its hold line); tickets that came on resale are absent.
func (s *Service) TicketPrices(ctx context.Context, t tenants.Tenant, orderID uuid.UUID) (map[uuid.UUID]int64, error) {
	var rows []struct {
		ID    uuid.UUID `gorm:"column:id"`
		Price int64     `gorm:"column:price_minor"`
	}
	err := s.d.Tx(ctx, t, func(tx *gorm.DB) error {
		return tx.Raw(`SELECT k.id, l.price_minor FROM inv_tickets k JOIN inv_orders o ON o.id = k.order_id
			JOIN LATERAL (SELECT unit_price_minor AS price_minor FROM inv_hold_lines hl WHERE hl.hold_id = o.hold_id
				AND (hl.seat_id = k.seat_id OR (k.seat_id IS NULL AND hl.seat_id IS NULL AND hl.tier_id = k.tier_id)) ORDER BY hl.line LIMIT 1) l ON true
			WHERE k.order_id = ?`, orderID).Scan(&rows).Error
	})
	out := make(map[uuid.UUID]int64, len(rows))
	for _, r := range rows {
		out[r.ID] = r.Price
	}
	return out, err
}

// SalesRow is tickets sold (valid now) and their revenue, for one event,
// tier and channel, in one hour (UTC) of payment.
type SalesRow struct {
	EventID  uuid.UUID `gorm:"column:event_id"`
	Tier     string    `gorm:"column:tier_name"`
	Channel  string    `gorm:"column:channel"`
	Currency string    `gorm:"column:currency"`
	Hour     time.Time `gorm:"column:hour"`
	Sold     int64     `gorm:"column:sold"`
	Revenue  int64     `gorm:"column:revenue"`
}

// Sales reads the valid tickets of the events by tier, channel and hour of
// payment, with what they were sold for.
func (s *Service) Sales(ctx context.Context, t tenants.Tenant, eventIDs []uuid.UUID) ([]SalesRow, error) {
	out := []SalesRow{}
	if len(eventIDs) == 0 {
		return out, nil
	}
	err := s.d.Tx(ctx, t, func(tx *gorm.DB) error {
		return tx.Raw(`SELECT k.event_id, k.tier_name, h.channel, o.currency, date_trunc('hour', coalesce(o.paid_at, o.created_at) AT TIME ZONE 'UTC') AS hour,
				count(*) AS sold, coalesce(sum(l.price_minor), 0) AS revenue
			FROM inv_tickets k JOIN inv_orders o ON o.id = k.order_id JOIN inv_holds h ON h.id = o.hold_id
			LEFT JOIN LATERAL (SELECT unit_price_minor AS price_minor FROM inv_hold_lines hl WHERE hl.hold_id = o.hold_id
				AND (hl.seat_id = k.seat_id OR (k.seat_id IS NULL AND hl.seat_id IS NULL AND hl.tier_id = k.tier_id)) ORDER BY hl.line LIMIT 1) l ON true
			WHERE k.event_id IN ? AND k.status = 'valid'
			GROUP BY 1, 2, 3, 4, 5 ORDER BY 5`, eventIDs).Scan(&out).Error
	})
	for i := range out {
		out[i].Hour = time.Date(out[i].Hour.Year(), out[i].Hour.Month(), out[i].Hour.Day(), out[i].Hour.Hour(), 0, 0, 0, time.UTC)
	}
	return out, err
}
