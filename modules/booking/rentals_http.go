package booking

import (
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/google/uuid"

	"marquee/app"
	"marquee/modules/booking/internal/rental"
	"marquee/modules/booking/internal/terms"
	"marquee/policies"
)

// ---- API

type rentalRequest struct {
	HoldID       string         `json:"hold_id"`
	Title        string         `json:"title"`
	RenterName   string         `json:"renter_name"`
	RenterEmail  string         `json:"renter_email"`
	Currency     string         `json:"currency"`
	FeeMinor     int64          `json:"fee_minor"`
	DepositMinor int64          `json:"deposit_minor"`
	DepositDue   string         `json:"deposit_due,omitempty"`
	AddOns       []rental.AddOn `json:"add_ons"`
}

func (r rentalRequest) input() (RentalInput, error) {
	hold, err := uuid.Parse(r.HoldID)
	if err != nil {
		return RentalInput{}, app.InvalidField("invalid_request", "hold_id", "hold_id must be a calendar hold's id")
	}
	return RentalInput{HoldID: hold, Title: r.Title, RenterName: r.RenterName, RenterEmail: r.RenterEmail, Currency: r.Currency,
		FeeMinor: r.FeeMinor, DepositMinor: r.DepositMinor, DepositDue: r.DepositDue, AddOns: r.AddOns}, nil
}

func rentalID(c *gin.Context) (uuid.UUID, error) { return app.PathUUID(c, "rentalId", "rental") }

func (m *Module) createRental(c *gin.Context, req rentalRequest) (RentalView, error) {
	in, err := req.input()
	if err != nil {
		return RentalView{}, err
	}
	v, err := m.svc.CreateRental(c.Request.Context(), app.TenantOf(c), in, m.staff(c))
	if err == nil {
		c.Header("Location", "/api/v1/rentals/"+v.ID.String())
	}
	return v, err
}

func (m *Module) listRentals(c *gin.Context, _ app.None) (app.List[RentalSummary], error) {
	items, err := m.svc.Rentals(c.Request.Context(), app.TenantOf(c), 200)
	return app.List[RentalSummary]{Items: app.NonNil(items)}, err
}

func (m *Module) getRental(c *gin.Context, _ app.None) (RentalView, error) {
	id, err := rentalID(c)
	if err != nil {
		return RentalView{}, err
	}
	return m.svc.Rental(c.Request.Context(), app.TenantOf(c), id)
}

func (m *Module) depositPayment(c *gin.Context, _ app.None) (DepositPayment, error) {
	id, err := rentalID(c)
	if err != nil {
		return DepositPayment{}, err
	}
	return m.svc.DepositPaymentIntent(c.Request.Context(), app.TenantOf(c), id)
}

func (m *Module) confirmRental(c *gin.Context, _ app.None) (RentalView, error) {
	id, err := rentalID(c)
	if err != nil {
		return RentalView{}, err
	}
	return m.svc.ConfirmRental(c.Request.Context(), app.TenantOf(c), id, m.staff(c))
}

func (m *Module) issueInvoice(c *gin.Context, _ app.None) (InvoiceInfo, error) {
	id, err := rentalID(c)
	if err != nil {
		return InvoiceInfo{}, err
	}
	inv, _, err := m.svc.IssueInvoice(c.Request.Context(), app.TenantOf(c), id, m.staff(c))
	return inv, err
}

func (m *Module) invoicePDF(c *gin.Context) {
	id, err := rentalID(c)
	if err != nil {
		app.Fail(c, err)
		return
	}
	b, name, err := m.svc.InvoicePDF(c.Request.Context(), app.TenantOf(c), id)
	if err != nil {
		app.Fail(c, err)
		return
	}
	c.Header("Content-Disposition", `inline; filename="`+name+`"`)
	c.Data(http.StatusOK, "application/pdf", b)
}

// rentalsWebhook is the platform's Stripe endpoint for rental deposits.
func (m *Module) rentalsWebhook(c *gin.Context) {
	payload, err := io.ReadAll(io.LimitReader(c.Request.Body, maxConnectBody+1))
	if err != nil || len(payload) > maxConnectBody {
		app.Fail(c, app.PayloadTooLarge("a Stripe event is at most %d bytes", maxConnectBody))
		return
	}
	res, err := m.svc.HandleRentalWebhook(c.Request.Context(), payload, c.GetHeader("Stripe-Signature"))
	if err != nil {
		app.Fail(c, err)
		return
	}
	c.JSON(http.StatusOK, res)
}

// ---- portal

type rentalsPage struct {
	Rentals []RentalSummary
	Holds   []holdOption
	Kinds   []string
	// AddOnRows are the form's empty add-on lines.
	AddOnRows []int
	CSRF      string
	CanEdit   bool
	Error     string
	Done      string
}

type holdOption struct {
	ID, Label string
}

func (m *Module) rentalsPage(c *gin.Context) {
	ctx, t := c.Request.Context(), app.TenantOf(c)
	list, err := m.svc.Rentals(ctx, t, 200)
	if err != nil {
		app.Fail(c, err)
		return
	}
	p := rentalsPage{Rentals: list, Kinds: rental.Kinds, AddOnRows: []int{1, 2, 3}, Error: c.Query("error"), Done: c.Query("done"),
		CSRF: m.app.CSRFToken(app.PrincipalOf(c).SessionID.String()), CanEdit: m.app.Can(c, ObjOffers, policies.Write)}
	rented := map[uuid.UUID]bool{}
	for _, r := range list {
		rented[r.HoldID] = true
	}
	if hs, err := m.app.Holds().ActiveHolds(ctx, t, 200); err == nil {
		for _, h := range hs {
			if !rented[h.ID] {
				p.Holds = append(p.Holds, holdOption{ID: h.ID.String(),
					Label: fmt.Sprintf("%s · %s UTC · hold %d", h.Title, h.StartsAt.Format("Mon 2 Jan 2006 15:04"), h.Rank)})
			}
		}
	}
	content, err := app.RenderTemplate(m.pages, "rentals", p)
	if err != nil {
		app.Fail(c, err)
		return
	}
	m.app.RenderPortal(c, http.StatusOK, "Venue rentals", content)
}

// parseMoney reads an amount typed in major units ("1500", "1,500.50")
// into minor units of the currency.
func parseMoney(field, s, currency string) (int64, error) {
	s = strings.ReplaceAll(strings.TrimSpace(s), ",", "")
	if s == "" {
		return 0, nil
	}
	exp, ok := terms.Exponent(currency)
	if !ok {
		return 0, app.InvalidField("invalid_currency", "currency", "currency must be an ISO 4217 code such as USD or EUR")
	}
	whole, frac, _ := strings.Cut(s, ".")
	if len(frac) > exp || whole == "" || strings.Trim(whole, "0123456789") != "" || strings.Trim(frac, "0123456789") != "" || len(whole) > 13 {
		return 0, app.InvalidField("invalid_amount", field, "%s is an amount such as 1500 or 1500.50", field)
	}
	for len(frac) < exp {
		frac += "0"
	}
	n, err := strconv.ParseInt(whole+frac, 10, 64)
	if err != nil {
		return 0, app.InvalidField("invalid_amount", field, "%s is too large", field)
	}
	return n, nil
}

func rentalForm(c *gin.Context) (RentalInput, error) {
	in := RentalInput{Title: c.PostForm("title"), RenterName: c.PostForm("renter_name"), RenterEmail: c.PostForm("renter_email"),
		Currency: strings.ToUpper(strings.TrimSpace(c.PostForm("currency"))), DepositDue: c.PostForm("deposit_due")}
	var err error
	if in.HoldID, err = uuid.Parse(c.PostForm("hold_id")); err != nil {
		return in, app.InvalidField("invalid_request", "hold_id", "choose a hold")
	}
	if in.FeeMinor, err = parseMoney("fee", c.PostForm("fee"), in.Currency); err != nil {
		return in, err
	}
	if in.DepositMinor, err = parseMoney("deposit", c.PostForm("deposit"), in.Currency); err != nil {
		return in, err
	}
	kinds, names, qtys, prices := c.PostFormArray("addon_kind"), c.PostFormArray("addon_name"), c.PostFormArray("addon_qty"), c.PostFormArray("addon_price")
	for i := range names {
		if strings.TrimSpace(names[i]) == "" || i >= len(kinds) || i >= len(qtys) || i >= len(prices) {
			continue
		}
		q, err := strconv.Atoi(strings.TrimSpace(qtys[i]))
		if err != nil {
			return in, app.InvalidField("invalid_quantity", "add_ons", "the quantity of %q is a whole number", names[i])
		}
		unit, err := parseMoney("add-on price", prices[i], in.Currency)
		if err != nil {
			return in, err
		}
		in.AddOns = append(in.AddOns, rental.AddOn{Kind: kinds[i], Name: names[i], Quantity: q, UnitMinor: unit})
	}
	return in, nil
}

// problemText is a refusal in words, for the page the form returns to.
func problemText(err error) string {
	if e, ok := err.(*app.Error); ok {
		return e.Detail
	}
	return "something went wrong; try again"
}

func (m *Module) portalCreateRental(c *gin.Context) {
	in, err := rentalForm(c)
	if err == nil {
		var v RentalView
		if v, err = m.svc.CreateRental(c.Request.Context(), app.TenantOf(c), in, m.staff(c)); err == nil {
			c.Redirect(http.StatusSeeOther, "/portal/rentals/"+v.ID.String()+"?done=created")
			return
		}
	}
	if _, ok := err.(*app.Error); !ok {
		app.Fail(c, err)
		return
	}
	c.Redirect(http.StatusSeeOther, "/portal/rentals?error="+url.QueryEscape(problemText(err)))
}

type rentalPage struct {
	RentalView
	Timezone   string
	Window     string
	Payment    *DepositPayment
	CSRF       string
	CanEdit    bool
	CanConfirm bool
	Error      string
	Done       string
}

func (m *Module) rentalPage(c *gin.Context) {
	id, err := rentalID(c)
	if err != nil {
		app.Fail(c, err)
		return
	}
	ctx, t := c.Request.Context(), app.TenantOf(c)
	v, err := m.svc.Rental(ctx, t, id)
	if err != nil {
		app.Fail(c, err)
		return
	}
	p := rentalPage{RentalView: v, Timezone: "UTC", Error: c.Query("error"), Done: c.Query("done"),
		CSRF: m.app.CSRFToken(app.PrincipalOf(c).SessionID.String()), CanEdit: m.app.Can(c, ObjOffers, policies.Write)}
	p.CanConfirm = p.CanEdit && v.Status == RentalAwaitingDeposit && (v.DepositMinor == 0 || v.DepositPaidAt != nil)
	loc := time.UTC
	if ev := m.app.Events(); ev != nil && v.EventID != nil {
		if e, err := ev.Event(ctx, t, *v.EventID); err == nil {
			if l, err := app.Timezone(e.Timezone); err == nil {
				loc, p.Timezone = l, e.Timezone
			}
		}
	}
	if h, err := m.app.Holds().Hold(ctx, t, v.HoldID); err == nil {
		p.Window = fmt.Sprintf("%s – %s", h.StartsAt.In(loc).Format("Mon 2 Jan 2006 15:04"), h.EndsAt.In(loc).Format("15:04"))
	}
	content, err := app.RenderTemplate(m.pages, "rental", p)
	if err != nil {
		app.Fail(c, err)
		return
	}
	m.app.RenderPortal(c, http.StatusOK, v.Title, content)
}

// rentalAction runs a portal button (deposit payment, confirm, invoice)
// and returns to the rental's page with the outcome or the refusal.
func (m *Module) rentalAction(do func(c *gin.Context, id uuid.UUID) (string, error)) gin.HandlerFunc {
	return func(c *gin.Context) {
		id, err := rentalID(c)
		if err != nil {
			app.Fail(c, err)
			return
		}
		done, err := do(c, id)
		q := "done=" + url.QueryEscape(done)
		if err != nil {
			if _, ok := err.(*app.Error); !ok {
				app.Fail(c, err)
				return
			}
			q = "error=" + url.QueryEscape(problemText(err))
		}
		c.Redirect(http.StatusSeeOther, "/portal/rentals/"+id.String()+"?"+q)
	}
}

func (m *Module) portalDeposit(c *gin.Context, id uuid.UUID) (string, error) {
	p, err := m.svc.DepositPaymentIntent(c.Request.Context(), app.TenantOf(c), id)
	return "deposit payment " + p.PaymentIntentID + " opened at Stripe", err
}

func (m *Module) portalConfirmRental(c *gin.Context, id uuid.UUID) (string, error) {
	_, err := m.svc.ConfirmRental(c.Request.Context(), app.TenantOf(c), id, m.staff(c))
	return "confirmed: the hold is the event", err
}

func (m *Module) portalInvoice(c *gin.Context, id uuid.UUID) (string, error) {
	inv, _, err := m.svc.IssueInvoice(c.Request.Context(), app.TenantOf(c), id, m.staff(c))
	return "invoice " + inv.Code + " issued", err
}
