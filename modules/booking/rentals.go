package booking

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/mail"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"
	"gorm.io/gorm"

	"marquee/app"
	"marquee/modules/booking/internal/rental"
	"marquee/modules/booking/internal/terms"
	"marquee/tenants"
)

// Rental statuses: the hold waits for the deposit, then it is the event.
const (
	RentalAwaitingDeposit = "awaiting_deposit"
	RentalConfirmed       = "confirmed"
)

// Rental is a venue rented to an outside promoter for a calendar hold.
type Rental struct {
	ID              uuid.UUID  `gorm:"column:id" json:"id"`
	HoldID          uuid.UUID  `gorm:"column:hold_id" json:"hold_id"`
	VenueID         uuid.UUID  `gorm:"column:venue_id" json:"venue_id"`
	EventID         *uuid.UUID `gorm:"column:event_id" json:"event_id"`
	Title           string     `gorm:"column:title" json:"title"`
	RenterName      string     `gorm:"column:renter_name" json:"renter_name"`
	RenterEmail     string     `gorm:"column:renter_email" json:"renter_email"`
	Currency        string     `gorm:"column:currency" json:"currency"`
	FeeMinor        int64      `gorm:"column:fee_minor" json:"fee_minor"`
	DepositMinor    int64      `gorm:"column:deposit_minor" json:"deposit_minor"`
	DepositDue      *string    `gorm:"column:deposit_due" json:"deposit_due"`
	Status          string     `gorm:"column:status" json:"status"`
	DepositPaidAt   *time.Time `gorm:"column:deposit_paid_at" json:"deposit_paid_at"`
	PaymentIntentID *string    `gorm:"column:payment_intent_id" json:"payment_intent_id"`
	PaymentError    string     `gorm:"column:payment_error" json:"payment_error"`
	ConfirmError    string     `gorm:"column:confirm_error" json:"confirm_error"`
	ConfirmedAt     *time.Time `gorm:"column:confirmed_at" json:"confirmed_at"`
	Version         int        `gorm:"column:version" json:"version"`
	CreatedAt       time.Time  `gorm:"column:created_at" json:"created_at"`
}

// RentalView is a rental with its add-ons, totals, invoice and history.
type RentalView struct {
	Rental
	AddOns  []rental.AddOn `json:"add_ons"`
	Totals  rental.Totals  `json:"totals"`
	Invoice *InvoiceInfo   `json:"invoice"`
	History []RentalEvent  `json:"history"`
}

// InvoiceInfo is an issued invoice, without its PDF.
type InvoiceInfo struct {
	Number     int       `gorm:"column:number" json:"number"`
	Code       string    `gorm:"-" json:"code"`
	TotalMinor int64     `gorm:"column:total_minor" json:"total_minor"`
	Currency   string    `gorm:"column:currency" json:"currency"`
	SHA256     string    `gorm:"column:sha256" json:"sha256"`
	SizeBytes  int64     `gorm:"column:size_bytes" json:"size_bytes"`
	IssuedAt   time.Time `gorm:"column:issued_at" json:"issued_at"`
	ObjectKey  string    `gorm:"column:object_key" json:"-"`
}

// RentalEvent is one line of a rental's history.
type RentalEvent struct {
	At     time.Time `gorm:"column:at" json:"at"`
	Actor  string    `gorm:"column:actor" json:"actor"`
	IP     string    `gorm:"column:ip" json:"ip"`
	Action string    `gorm:"column:action" json:"action"`
	Note   string    `gorm:"column:note" json:"note"`
}

// RentalInput is a new rental's terms.
type RentalInput struct {
	HoldID       uuid.UUID
	Title        string
	RenterName   string
	RenterEmail  string
	Currency     string
	FeeMinor     int64
	DepositMinor int64
	DepositDue   string // YYYY-MM-DD or empty
	AddOns       []rental.AddOn
}

const maxAddOns = 50

// check cleans and validates the terms: every amount in minor units within
// the platform's largest, the currency known, the deposit at most the total.
func (in *RentalInput) check() error {
	var err error
	if in.Title, err = cleanText("title", in.Title, 200, true); err != nil {
		return err
	}
	if in.RenterName, err = cleanText("renter_name", in.RenterName, 200, true); err != nil {
		return err
	}
	addr, perr := mail.ParseAddress(strings.TrimSpace(in.RenterEmail))
	if perr != nil || len(addr.Address) > 320 {
		return app.InvalidField("invalid_email", "renter_email", "the renter's email address is not valid")
	}
	in.RenterEmail = addr.Address
	if _, ok := terms.Exponent(in.Currency); !ok {
		return app.InvalidField("invalid_currency", "currency", "currency must be an ISO 4217 code such as USD or EUR")
	}
	amount := func(field string, v int64) error {
		if v < 0 || v > terms.MaxAmount {
			return app.InvalidField("invalid_amount", field, "%s is 0 to %d minor units", field, int64(terms.MaxAmount))
		}
		return nil
	}
	if err := amount("fee_minor", in.FeeMinor); err != nil {
		return err
	}
	if err := amount("deposit_minor", in.DepositMinor); err != nil {
		return err
	}
	if len(in.AddOns) > maxAddOns {
		return app.InvalidField("invalid_request", "add_ons", "at most %d add-ons", maxAddOns)
	}
	total := in.FeeMinor
	for i := range in.AddOns {
		a := &in.AddOns[i]
		f := fmt.Sprintf("add_ons[%d]", i)
		if !slices.Contains(rental.Kinds, a.Kind) {
			return app.InvalidField("invalid_request", f+".kind", "kind is one of %v", rental.Kinds)
		}
		if a.Name, err = cleanText(f+".name", a.Name, 100, true); err != nil {
			return err
		}
		if a.Quantity < 1 || a.Quantity > 10000 {
			return app.InvalidField("invalid_quantity", f+".quantity", "quantity is 1 to 10000")
		}
		if err := amount(f+".unit_minor", a.UnitMinor); err != nil {
			return err
		}
		line, ok := rental.LineAmount(a.Quantity, a.UnitMinor)
		if !ok || total > terms.MaxAmount-line {
			return app.InvalidField("invalid_amount", f, "the rental's total would exceed %d minor units", int64(terms.MaxAmount))
		}
		total += line
	}
	if in.DepositMinor > total {
		return app.InvalidField("invalid_amount", "deposit_minor", "the deposit is at most the rental's total (%d)", total)
	}
	if in.DepositMinor > 0 && in.DepositMinor < 50 {
		// Stripe takes no smaller charge.
		return app.InvalidField("invalid_amount", "deposit_minor", "a deposit is 0 (none) or at least 50 minor units")
	}
	if in.DepositDue != "" {
		if _, err := time.Parse(time.DateOnly, in.DepositDue); err != nil {
			return app.InvalidField("invalid_request", "deposit_due", "deposit_due is a date, YYYY-MM-DD")
		}
	}
	return nil
}

const rentalCols = `id, hold_id, venue_id, event_id, title, renter_name, renter_email, currency, fee_minor, deposit_minor,
	to_char(deposit_due, 'YYYY-MM-DD') AS deposit_due, status, deposit_paid_at, payment_intent_id, payment_error, confirm_error,
	confirmed_at, version, created_at`

func findRental(tx *gorm.DB, id uuid.UUID, lock bool) (Rental, error) {
	q := `SELECT ` + rentalCols + ` FROM bkg_rentals WHERE id = ?`
	if lock {
		q += ` FOR UPDATE`
	}
	var rs []Rental
	if err := tx.Raw(q, id).Scan(&rs).Error; err != nil {
		return Rental{}, err
	}
	if len(rs) == 0 {
		return Rental{}, app.NotFound("rental")
	}
	r := rs[0]
	r.CreatedAt = r.CreatedAt.UTC()
	for _, p := range []**time.Time{&r.DepositPaidAt, &r.ConfirmedAt} {
		if *p != nil {
			u := (*p).UTC()
			*p = &u
		}
	}
	return r, nil
}

func rentalAddOns(tx *gorm.DB, id uuid.UUID) ([]rental.AddOn, error) {
	out := []rental.AddOn{}
	err := tx.Raw(`SELECT kind, name, quantity, unit_minor FROM bkg_rental_addons WHERE rental_id = ? ORDER BY line`, id).Scan(&out).Error
	return out, err
}

func findInvoice(tx *gorm.DB, rentalID uuid.UUID) (*InvoiceInfo, error) {
	var rows []InvoiceInfo
	if err := tx.Raw(`SELECT number, total_minor, currency, sha256, size_bytes, issued_at, object_key FROM bkg_invoices WHERE rental_id = ?`,
		rentalID).Scan(&rows).Error; err != nil || len(rows) == 0 {
		return nil, err
	}
	inv := rows[0]
	inv.Code, inv.IssuedAt = rental.Code(inv.Number), inv.IssuedAt.UTC()
	return &inv, nil
}

func rentalHistory(tx *gorm.DB, id uuid.UUID) ([]RentalEvent, error) {
	out := []RentalEvent{}
	err := tx.Raw(`SELECT at, actor, ip, action, note FROM bkg_rental_history WHERE rental_id = ? ORDER BY id`, id).Scan(&out).Error
	for i := range out {
		out[i].At = out[i].At.UTC()
	}
	return out, err
}

func addRentalHistory(tx *gorm.DB, id uuid.UUID, a Actor, action, note string) error {
	return tx.Exec(`INSERT INTO bkg_rental_history (rental_id, actor, ip, action, note) VALUES (?, ?, ?, ?, ?)`,
		id, a.Kind+": "+a.author(), a.IP, action, note).Error
}

func rentalView(tx *gorm.DB, id uuid.UUID) (RentalView, error) {
	r, err := findRental(tx, id, false)
	if err != nil {
		return RentalView{}, err
	}
	v := RentalView{Rental: r}
	if v.AddOns, err = rentalAddOns(tx, id); err != nil {
		return RentalView{}, err
	}
	v.Totals = rental.Compute(r.Currency, r.FeeMinor, v.AddOns, r.DepositMinor, r.DepositPaidAt != nil)
	if v.Invoice, err = findInvoice(tx, id); err != nil {
		return RentalView{}, err
	}
	v.History, err = rentalHistory(tx, id)
	return v, err
}

// CreateRental records a venue rental for an active calendar hold: the
// hold stays a hold until the deposit is paid.
func (s *Service) CreateRental(ctx context.Context, t tenants.Tenant, in RentalInput, actor Actor) (RentalView, error) {
	if err := in.check(); err != nil {
		return RentalView{}, err
	}
	h, err := s.app.Holds().Hold(ctx, t, in.HoldID)
	if err != nil {
		return RentalView{}, err
	}
	if h.Status != "active" {
		return RentalView{}, app.Conflict("hold_not_active", "the hold is %s", h.Status)
	}
	id := uuid.Must(uuid.NewV7())
	var due *string
	if in.DepositDue != "" {
		due = &in.DepositDue
	}
	var out RentalView
	err = s.tx(ctx, t, func(tx *gorm.DB) error {
		q := tx.Exec(`INSERT INTO bkg_rentals (id, hold_id, venue_id, title, renter_name, renter_email, currency, fee_minor, deposit_minor, deposit_due)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (hold_id) DO NOTHING`,
			id, h.ID, h.VenueID, in.Title, in.RenterName, in.RenterEmail, in.Currency, in.FeeMinor, in.DepositMinor, due)
		if q.Error != nil {
			return q.Error
		}
		if q.RowsAffected == 0 {
			return app.Conflict("rental_exists", "the hold is rented already")
		}
		for i, a := range in.AddOns {
			if err := tx.Exec(`INSERT INTO bkg_rental_addons (rental_id, line, kind, name, quantity, unit_minor) VALUES (?, ?, ?, ?, ?, ?)`,
				id, i+1, a.Kind, a.Name, a.Quantity, a.UnitMinor).Error; err != nil {
				return err
			}
		}
		if err := addRentalHistory(tx, id, actor, "create", fmt.Sprintf("rented to %s", in.RenterName)); err != nil {
			return err
		}
		var err error
		out, err = rentalView(tx, id)
		return err
	})
	return out, err
}

// Rental reads one rental.
func (s *Service) Rental(ctx context.Context, t tenants.Tenant, id uuid.UUID) (RentalView, error) {
	var out RentalView
	err := s.tx(ctx, t, func(tx *gorm.DB) error {
		var err error
		out, err = rentalView(tx, id)
		return err
	})
	return out, err
}

// RentalSummary is a rental in a list.
type RentalSummary struct {
	Rental
	TotalMinor    int64  `gorm:"column:total_minor" json:"total_minor"`
	InvoiceNumber *int   `gorm:"column:invoice_number" json:"invoice_number"`
	InvoiceCode   string `gorm:"-" json:"invoice_code"`
}

// Rentals lists rentals, newest first.
func (s *Service) Rentals(ctx context.Context, t tenants.Tenant, limit int) ([]RentalSummary, error) {
	if limit < 1 || limit > 200 {
		limit = 50
	}
	out := []RentalSummary{}
	err := s.tx(ctx, t, func(tx *gorm.DB) error {
		return tx.Raw(`SELECT `+rentalCols+`,
			fee_minor + COALESCE((SELECT sum(quantity * unit_minor) FROM bkg_rental_addons a WHERE a.rental_id = r.id), 0) AS total_minor,
			(SELECT number FROM bkg_invoices i WHERE i.rental_id = r.id) AS invoice_number
			FROM bkg_rentals r ORDER BY id DESC LIMIT ?`, limit).Scan(&out).Error
	})
	for i := range out {
		if n := out[i].InvoiceNumber; n != nil {
			out[i].InvoiceCode = rental.Code(*n)
		}
	}
	return out, err
}

// confirmRentalLocked books the rental's hold as the event, in the caller's
// transaction and with the rental's row locked: the row lock makes every
// confirmer (webhook deliveries, staff) take turns, and the status check
// lets exactly one of them confirm.
func (s *Service) confirmRentalLocked(tx *gorm.DB, t tenants.Tenant, r Rental, actor Actor) error {
	ev, err := s.app.Holds().ConfirmHold(tx, t, r.HoldID, r.Title)
	if err != nil {
		return err
	}
	q := tx.Exec(`UPDATE bkg_rentals SET status = 'confirmed', event_id = ?, confirmed_at = ?, confirm_error = '', version = version + 1
		WHERE id = ? AND status = 'awaiting_deposit' AND (deposit_minor = 0 OR deposit_paid_at IS NOT NULL)`, ev, s.app.Now().UTC(), r.ID)
	if q.Error != nil {
		return q.Error
	}
	if q.RowsAffected != 1 {
		return app.Conflict("rental_already_confirmed", "the rental was confirmed meanwhile")
	}
	return addRentalHistory(tx, r.ID, actor, "confirm", "the hold is the event "+ev.String())
}

// ConfirmRental confirms the rental's hold by hand: only once the deposit
// is paid (or when there is none), and once (409 rental_already_confirmed).
// It is how staff retry a confirmation the payment could not make (an
// event in the way, since moved).
func (s *Service) ConfirmRental(ctx context.Context, t tenants.Tenant, id uuid.UUID, actor Actor) (RentalView, error) {
	var out RentalView
	err := s.tx(ctx, t, func(tx *gorm.DB) error {
		r, err := findRental(tx, id, true)
		if err != nil {
			return err
		}
		if r.Status == RentalConfirmed {
			return app.Conflict("rental_already_confirmed", "the rental is confirmed already (event %s)", r.EventID)
		}
		if r.DepositMinor > 0 && r.DepositPaidAt == nil {
			return app.Conflict("rental_deposit_unpaid", "the rental is confirmed once its deposit of %s is paid", terms.Format(r.DepositMinor, r.Currency))
		}
		if err := s.confirmRentalLocked(tx, t, r, actor); err != nil {
			return err
		}
		out, err = rentalView(tx, id)
		return err
	})
	return out, err
}

// invoiceObjectKey names an invoice's PDF: the number is the chain's, so a
// transaction that took a number and rolled back leaves a file that the next
// invoice with that number overwrites.
func invoiceObjectKey(number int) string {
	return fmt.Sprintf("booking/invoices/%s.pdf", rental.Code(number))
}

// IssueInvoice issues the rental's invoice once (a second call returns it):
// the next number of the chain's one counter, taken in the transaction that
// writes the invoice, so numbers have no gaps and no duplicates however many
// are issued at once.
func (s *Service) IssueInvoice(ctx context.Context, t tenants.Tenant, id uuid.UUID, actor Actor) (InvoiceInfo, bool, error) {
	// The window and zone come from the calendar, read before the
	// transaction: nothing waits on another connection while the chain's
	// counter is held.
	var before Rental
	if err := s.tx(ctx, t, func(tx *gorm.DB) error {
		var err error
		before, err = findRental(tx, id, false)
		return err
	}); err != nil {
		return InvoiceInfo{}, false, err
	}
	place := s.rentalPlace(ctx, t, before)
	var out InvoiceInfo
	var created bool
	err := s.tx(ctx, t, func(tx *gorm.DB) error {
		created = false
		r, err := findRental(tx, id, true)
		if err != nil {
			return err
		}
		if inv, err := findInvoice(tx, id); err != nil || inv != nil {
			if inv != nil {
				out = *inv
			}
			return err
		}
		addOns, err := rentalAddOns(tx, id)
		if err != nil {
			return err
		}
		var number int
		// The counter row is the chain's one lock for numbering: taken
		// last, held to the commit, given back by a rollback.
		if err := tx.Raw(`UPDATE bkg_invoice_counter SET last_number = last_number + 1 WHERE id = 1 RETURNING last_number`).
			Row().Scan(&number); err != nil {
			return err
		}
		now := s.app.Now().UTC().Truncate(time.Second)
		doc := invoiceDocument(t, r, place, addOns, number, now)
		pdf, err := rental.Render(doc)
		if err != nil {
			return err
		}
		key := invoiceObjectKey(number)
		info, err := s.app.Objects(t).Put(ctx, key, "application/pdf", bytes.NewReader(pdf))
		if err != nil {
			return app.Unavailable("invoice_storage_unavailable", time.Minute, "the invoice could not be stored: %v", err)
		}
		raw, _ := json.Marshal(doc)
		if err := tx.Exec(`INSERT INTO bkg_invoices (number, rental_id, document, total_minor, currency, object_key, sha256, size_bytes, issued_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`, number, id, string(raw), doc.Totals.TotalMinor, r.Currency, key, info.SHA256, info.Size, now).Error; err != nil {
			return err
		}
		if err := addRentalHistory(tx, id, actor, "invoice", rental.Code(number)); err != nil {
			return err
		}
		inv, err := findInvoice(tx, id)
		if err == nil && inv != nil {
			out, created = *inv, true
		}
		return err
	})
	return out, created, err
}

// place is where and when a rental is, as people read it.
type place struct {
	loc    *time.Location
	zone   string
	window string
}

// rentalPlace reads the rented window from the calendar, in the venue's
// timezone once the event exists (UTC before: a hold carries no zone).
func (s *Service) rentalPlace(ctx context.Context, t tenants.Tenant, r Rental) place {
	p := place{loc: time.UTC, zone: "UTC"}
	if ev := s.app.Events(); ev != nil && r.EventID != nil {
		if e, err := ev.Event(ctx, t, *r.EventID); err == nil && e.Timezone != "" {
			if l, err := app.Timezone(e.Timezone); err == nil {
				p.loc, p.zone = l, e.Timezone
			}
		}
	}
	if h, err := s.app.Holds().Hold(ctx, t, r.HoldID); err == nil {
		p.window = fmt.Sprintf("%s to %s (%s)", h.StartsAt.In(p.loc).Format("Mon 2 Jan 2006 15:04"), h.EndsAt.In(p.loc).Format("15:04"), p.zone)
	}
	return p
}

// invoiceDocument is what the invoice shows.
func invoiceDocument(t tenants.Tenant, r Rental, p place, addOns []rental.AddOn, number int, now time.Time) rental.Invoice {
	loc := p.loc
	doc := rental.Invoice{Number: number, Chain: t.Name, IssuedAt: now, IssuedOn: now.In(loc).Format("2 January 2006"),
		RentalID: r.ID.String(), Title: r.Title, Renter: r.RenterName, Email: r.RenterEmail, Window: p.window,
		Totals: rental.Compute(r.Currency, r.FeeMinor, addOns, r.DepositMinor, r.DepositPaidAt != nil)}
	if doc.Chain == "" {
		doc.Chain = t.Slug
	}
	if r.DepositDue != nil {
		doc.DepositDue = *r.DepositDue
	}
	if r.DepositPaidAt != nil {
		doc.DepositOn = r.DepositPaidAt.In(loc).Format("2 Jan 2006")
	}
	return doc
}

// InvoicePDF reads the rental's invoice PDF, checked against its digest.
func (s *Service) InvoicePDF(ctx context.Context, t tenants.Tenant, id uuid.UUID) ([]byte, string, error) {
	var inv *InvoiceInfo
	err := s.tx(ctx, t, func(tx *gorm.DB) error {
		if _, err := findRental(tx, id, false); err != nil {
			return err
		}
		var err error
		inv, err = findInvoice(tx, id)
		return err
	})
	if err != nil {
		return nil, "", err
	}
	if inv == nil {
		return nil, "", app.NotFound("invoice")
	}
	b, err := s.readObject(ctx, t, inv.ObjectKey, inv.SHA256)
	return b, inv.Code + ".pdf", err
}

// isConflict reports whether err is anything but an app conflict.
func isConflict(err error) bool {
	var e *app.Error
	return errors.As(err, &e) && e.Kind == app.KindConflict
}
