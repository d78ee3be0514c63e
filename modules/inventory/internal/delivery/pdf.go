// Package delivery turns an order's tickets into what the buyer keeps: one
// PDF with every ticket (QR of the v2 token, seat in words, zone, event,
// venue-local time, terms), signed Apple Wallet passes that the pass web
// service keeps up to date, and Google Wallet "save" links.
package delivery

import (
	"bytes"
	"fmt"
	"marquee/app"
	"strings"
	"time"

	"codeberg.org/go-pdf/fpdf"
	"github.com/google/uuid"
	"github.com/skip2/go-qrcode"
)

// Event is what a ticket says about its event.
type Event struct {
	ID       uuid.UUID
	Chain    string // the chain's name, the organiser
	Title    string
	Venue    string
	Timezone string // IANA, the venue's
	StartsAt time.Time
	EndsAt   time.Time
	// Latitude and Longitude place the venue (0, 0: unknown).
	Latitude, Longitude float64
}

// Ticket is one admission as delivered.
type Ticket struct {
	ID     uuid.UUID
	Token  string // the signed v2 token the QR carries
	Zone   string
	Tier   string
	Seat   string // A-12-7, or "" for general admission
	Holder string
	Status string // valid, void
}

// Terms are printed on every ticket.
const Terms = "One admission for the event, zone and seat shown. The QR code is checked once at the door; " +
	"keep it private. If this ticket is transferred or resold, a new code is issued and this one stops working. " +
	"If the event is cancelled or the order refunded, the ticket is void. Times are the venue's local time."

// Local is the event's start in the venue's time zone, in words.
func (e Event) Local() string {
	loc, err := app.Timezone(e.Timezone)
	if err != nil {
		loc = time.UTC
	}
	return e.StartsAt.In(loc).Format("Monday 2 January 2006, 15:04 MST")
}

// SeatInWords says a seat id (section-row-number) the way a person reads it.
func SeatInWords(seat string) string {
	if seat == "" {
		return "General admission (no reserved seat)"
	}
	parts := strings.Split(seat, "-")
	if len(parts) != 3 {
		return "Seat " + seat
	}
	return fmt.Sprintf("Section %s, Row %s, Seat %s", parts[0], parts[1], parts[2])
}

// QRPNG draws text as a QR code PNG of size pixels.
func QRPNG(text string, size int) ([]byte, error) {
	return qrcode.Encode(text, qrcode.Medium, size)
}

// TicketsPDF lays out all of an order's tickets, one per page, in one PDF.
// Void tickets are printed as void, without a code.
func TicketsPDF(ev Event, orderID uuid.UUID, tickets []Ticket, created time.Time) ([]byte, error) {
	pdf := fpdf.New("P", "mm", "A4", "")
	pdf.SetCreationDate(created)
	pdf.SetCatalogSort(true) // the same tickets make the same bytes
	pdf.SetTitle(ev.Title+" tickets", true)
	pdf.SetAuthor(ev.Chain, true)
	pdf.SetAutoPageBreak(false, 10)
	tr := pdf.UnicodeTranslatorFromDescriptor("") // UTF-8 to the core fonts' cp1252
	for i, tk := range tickets {
		pdf.AddPage()
		pdf.SetFillColor(24, 24, 40)
		pdf.Rect(0, 0, 210, 34, "F")
		pdf.SetTextColor(255, 255, 255)
		pdf.SetFont("Helvetica", "", 10)
		pdf.SetXY(15, 8)
		pdf.CellFormat(180, 5, tr(fmt.Sprintf("%s  ·  Ticket %d of %d", ev.Chain, i+1, len(tickets))), "", 1, "L", false, 0, "")
		pdf.SetFont("Helvetica", "B", 20)
		pdf.SetX(15)
		pdf.CellFormat(180, 12, tr(clip(ev.Title, 48)), "", 1, "L", false, 0, "")
		pdf.SetTextColor(20, 20, 20)
		pdf.SetXY(15, 44)
		pdf.SetFont("Helvetica", "B", 13)
		pdf.CellFormat(105, 7, tr(ev.Local()), "", 1, "L", false, 0, "")
		pdf.SetX(15)
		pdf.SetFont("Helvetica", "", 12)
		pdf.CellFormat(105, 7, tr(ev.Venue), "", 1, "L", false, 0, "")
		y := 66.0
		field := func(label, value string) {
			pdf.SetXY(15, y)
			pdf.SetFont("Helvetica", "", 9)
			pdf.SetTextColor(110, 110, 120)
			pdf.CellFormat(105, 5, tr(strings.ToUpper(label)), "", 1, "L", false, 0, "")
			pdf.SetX(15)
			pdf.SetFont("Helvetica", "B", 14)
			pdf.SetTextColor(20, 20, 20)
			pdf.MultiCell(105, 7, tr(value), "", "L", false)
			y = pdf.GetY() + 4
		}
		field("Zone", tk.Zone)
		field("Seat", SeatInWords(tk.Seat))
		field("Ticket type", tk.Tier)
		field("Name", tk.Holder)
		field("Order", orderID.String())
		if tk.Status == "valid" && tk.Token != "" {
			png, err := QRPNG(tk.Token, 600)
			if err != nil {
				return nil, err
			}
			name := "qr-" + tk.ID.String()
			pdf.RegisterImageOptionsReader(name, fpdf.ImageOptions{ImageType: "PNG"}, bytes.NewReader(png))
			pdf.ImageOptions(name, 125, 42, 72, 72, false, fpdf.ImageOptions{ImageType: "PNG"}, 0, "")
			pdf.SetXY(125, 115)
			pdf.SetFont("Helvetica", "", 8)
			pdf.SetTextColor(110, 110, 120)
			pdf.CellFormat(72, 4, "Ticket "+tk.ID.String(), "", 1, "C", false, 0, "")
		} else {
			pdf.SetXY(125, 70)
			pdf.SetFont("Helvetica", "B", 28)
			pdf.SetTextColor(180, 30, 30)
			pdf.CellFormat(72, 14, "VOID", "1", 1, "C", false, 0, "")
		}
		pdf.SetDrawColor(200, 200, 205)
		pdf.Line(15, 150, 195, 150)
		pdf.SetXY(15, 155)
		pdf.SetFont("Helvetica", "B", 9)
		pdf.SetTextColor(60, 60, 70)
		pdf.CellFormat(180, 5, "Terms", "", 1, "L", false, 0, "")
		pdf.SetX(15)
		pdf.SetFont("Helvetica", "", 9)
		pdf.MultiCell(180, 4.5, tr(Terms), "", "L", false)
	}
	if len(tickets) == 0 {
		pdf.AddPage()
		pdf.SetFont("Helvetica", "", 12)
		pdf.CellFormat(180, 10, "This order has no tickets.", "", 1, "L", false, 0, "")
	}
	var buf bytes.Buffer
	if err := pdf.Output(&buf); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

func clip(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}
