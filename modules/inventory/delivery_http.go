package inventory

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/google/uuid"

	"marquee/app"
	"marquee/config"
	"marquee/modules/inventory/internal/delivery"
	"marquee/modules/inventory/internal/orders"
	"marquee/tenants"
)

// Delivery: the order's PDF, a resend of its tickets mail, wallet links,
// and Apple's pass web service (webServiceURL = <storefront>/api/v1/wallet).

const mediaPkpass = "application/vnd.apple.pkpass"

func (m *Module) registerDelivery(r *app.Registrar) error {
	cfg := m.app.Config
	apple, err := delivery.LoadPassSigner(cfg.WalletPassTypeID, cfg.WalletTeamID, cfg.WalletCertFile, cfg.WalletKeyFile, cfg.WalletWWDRFile)
	if err != nil {
		return err
	}
	google, err := delivery.LoadGoogleSigner(cfg.GoogleWalletIssuerID, cfg.GoogleWalletServiceAccount, cfg.GoogleWalletKeyFile)
	if err != nil {
		return err
	}
	m.svc.delivery = delivery.New(m.svc.d, apple, google, m.svc.buyers)
	r.MailComposer(orders.MailTickets, m.composeTickets)

	pub := app.Public().EvenWhenSuspended() // buyers keep what they paid for
	r.API(http.MethodGet, "/orders/:orderId/tickets.pdf", pub, "All of an order's tickets in one PDF (signed link or staff)",
		app.Raw(m.orderPDF).Produces("application/pdf", ""))
	r.API(http.MethodPost, "/orders/:orderId/resend", pub, "Send the order's tickets mail again (signed link or staff); at most one resend per 10 minutes, repeats answer the same message",
		app.Handle(m.resendTickets).Status(http.StatusAccepted)).NoBody()
	r.API(http.MethodGet, "/tickets/:ticketId/wallet/apple", pub, "The ticket's signed Apple Wallet pass (the link's signature)",
		app.Raw(m.ticketPkpass).Produces(mediaPkpass, "").Query("sig", "the ticket link's signature"))
	r.API(http.MethodGet, "/tickets/:ticketId/wallet/google", pub, "The ticket's Google Wallet save link (the link's signature)",
		app.Handle(m.ticketGoogle).Query("sig", "the ticket link's signature"))
	// Apple's pass web service.
	r.API(http.MethodPost, "/wallet/v1/devices/:deviceId/registrations/:passTypeId/:serial", pub, "Apple Wallet: register a device for a pass's updates (Authorization: ApplePass <token>); 201 new, 200 known",
		app.Raw(m.walletRegister).Accepts("application/json", walletRegistration{}).Produces("application/json", struct{}{}).Status(http.StatusCreated))
	r.API(http.MethodDelete, "/wallet/v1/devices/:deviceId/registrations/:passTypeId/:serial", pub, "Apple Wallet: unregister a device from a pass (Authorization: ApplePass <token>)",
		app.Raw(m.walletUnregister).Produces("application/json", struct{}{}))
	r.API(http.MethodGet, "/wallet/v1/devices/:deviceId/registrations/:passTypeId", pub, "Apple Wallet: the device's passes changed since a tag (204: none)",
		app.Raw(m.walletUpdated).Produces("application/json", delivery.Updated{}).Query("passesUpdatedSince", "the lastUpdated of the previous answer"))
	r.API(http.MethodGet, "/wallet/v1/passes/:passTypeId/:serial", pub, "Apple Wallet: the pass as it is now (Authorization: ApplePass <token>; If-Modified-Since answers 304 when unchanged)",
		app.Raw(m.walletPass).Produces(mediaPkpass, ""))
	r.API(http.MethodPost, "/wallet/v1/log", pub, "Apple Wallet: devices report problems with passes",
		app.Raw(m.walletLog).Accepts("application/json", walletLogs{}).Produces("application/json", struct{}{}))
	return nil
}

// publicBase is the chain's storefront origin, for links in mail and passes.
func (m *Module) publicBase(t tenants.Tenant) string {
	cfg := m.app.Config
	if cfg.Development {
		host := t.Slug + "." + cfg.BaseDomain
		if _, port, err := net.SplitHostPort(cfg.HTTPAddr); err == nil && port != "80" {
			host += ":" + port
		}
		return "http://" + host
	}
	return "https://" + t.Slug + "." + cfg.BaseDomain
}

func (m *Module) composeTickets(ctx context.Context, t tenants.Tenant, q app.QueuedMail) (app.ComposedMail, error) {
	return m.svc.delivery.Compose(m.publicBase, m.googleURLs)(ctx, t, q)
}

// googleURLs signs each ticket's save link for the mail (direct links:
// a mail client follows nothing but a plain URL).
func (m *Module) googleURLs(ctx context.Context, t tenants.Tenant, ticketID uuid.UUID) string {
	u, err := m.svc.delivery.GoogleSaveURL(ctx, t, m.publicBase(t), ticketID)
	if err != nil {
		return ""
	}
	return u
}

func (m *Module) orderPDF(c *gin.Context) {
	o, _, err := m.orderAccess(c)
	if err != nil {
		app.Fail(c, err)
		return
	}
	b, err := m.svc.delivery.PDF(c.Request.Context(), app.TenantOf(c), o.ID)
	if err != nil {
		app.Fail(c, err)
		return
	}
	c.Header("Cache-Control", "no-store")
	c.Header("Content-Disposition", fmt.Sprintf(`attachment; filename="tickets-%s.pdf"`, o.ID.String()[:8]))
	c.Data(http.StatusOK, "application/pdf", b)
}

// Resent is the answer to a resend.
type Resent struct {
	MailID uuid.UUID `json:"mail_id"`
	// Queued is false when a resend was asked for in the last 10 minutes:
	// that message is the answer.
	Queued bool   `json:"queued"`
	Status string `json:"status"`
}

func (m *Module) resendTickets(c *gin.Context, _ app.None) (Resent, error) {
	o, _, err := m.orderAccess(c)
	if err != nil {
		return Resent{}, err
	}
	if o.Status != "paid" {
		return Resent{}, app.Conflict("order_not_paid", "only a paid order's tickets can be sent")
	}
	ctx, t := c.Request.Context(), app.TenantOf(c)
	bucket := m.app.Now().UTC().Truncate(10 * time.Minute).Format("200601021504")
	id, fresh, err := m.svc.orders.QueueTicketsMail(ctx, t, o.ID, "resend:"+bucket)
	if err != nil {
		return Resent{}, err
	}
	if fresh {
		m.app.Mail.Dispatch(ctx, t, id)
	}
	list, err := m.app.Mail.ByRef(ctx, t, o.ID.String())
	status := app.MailQueued
	for _, q := range list {
		if q.ID == id {
			status = q.Status
		}
	}
	return Resent{MailID: id, Queued: fresh, Status: status}, err
}

func (m *Module) ticketLink(c *gin.Context) (uuid.UUID, error) {
	id, err := app.PathUUID(c, "ticketId", "ticket")
	if err != nil {
		return uuid.Nil, err
	}
	if !m.svc.delivery.TicketLinkOK(app.TenantOf(c), id, c.Query("sig")) {
		return uuid.Nil, app.NotFound("ticket")
	}
	return id, nil
}

func (m *Module) ticketPkpass(c *gin.Context) {
	id, err := m.ticketLink(c)
	if err != nil {
		app.Fail(c, err)
		return
	}
	t := app.TenantOf(c)
	p, err := m.svc.delivery.Pkpass(c.Request.Context(), t, m.publicBase(t), id)
	if err != nil {
		app.Fail(c, err)
		return
	}
	m.servePass(c, p)
}

func (m *Module) servePass(c *gin.Context, p delivery.PassResult) {
	c.Header("Last-Modified", p.Modified.UTC().Format(http.TimeFormat))
	c.Header("Cache-Control", "no-cache")
	c.Header("Content-Disposition", `attachment; filename="ticket.pkpass"`)
	c.Data(http.StatusOK, mediaPkpass, p.Pkpass)
}

// GoogleLink is a ticket's Google Wallet save link.
type GoogleLink struct {
	URL string `json:"url"`
}

func (m *Module) ticketGoogle(c *gin.Context, _ app.None) (GoogleLink, error) {
	id, err := m.ticketLink(c)
	if err != nil {
		return GoogleLink{}, err
	}
	t := app.TenantOf(c)
	u, err := m.svc.delivery.GoogleSaveURL(c.Request.Context(), t, m.publicBase(t), id)
	return GoogleLink{URL: u}, err
}

type walletRegistration struct {
	PushToken string `json:"pushToken"`
}

// walletPath reads and checks the web service's path: the pass type must
// be ours, the serial a ticket id, and for pass requests the ApplePass
// token that pass's.
func (m *Module) walletPath(c *gin.Context, auth bool) (uuid.UUID, bool) {
	d := m.svc.delivery
	if d.Apple == nil {
		app.Fail(c, delivery.ErrNoWallet)
		return uuid.Nil, false
	}
	if c.Param("passTypeId") != d.Apple.PassTypeID {
		app.Fail(c, app.NotFound("pass type"))
		return uuid.Nil, false
	}
	if dev := c.Param("deviceId"); dev != "" && (len(dev) > 128 || !printable(dev)) {
		app.Fail(c, app.InvalidField("invalid_device", "deviceId", "deviceId is 1 to 128 printable characters"))
		return uuid.Nil, false
	}
	if !auth {
		return uuid.Nil, true
	}
	serial, err := uuid.Parse(c.Param("serial"))
	if err != nil || !d.PassTokenOK(app.TenantOf(c), serial, c.GetHeader("Authorization")) {
		app.Fail(c, app.Unauthenticated("send the pass's authentication token as Authorization: ApplePass <token>"))
		return uuid.Nil, false
	}
	return serial, true
}

func printable(s string) bool {
	for _, r := range s {
		if r < 0x21 || r > 0x7e {
			return false
		}
	}
	return true
}

func (m *Module) walletRegister(c *gin.Context) {
	serial, ok := m.walletPath(c, true)
	if !ok {
		return
	}
	var body walletRegistration
	raw, err := io.ReadAll(io.LimitReader(c.Request.Body, 4096))
	if err != nil || json.Unmarshal(raw, &body) != nil || body.PushToken == "" || len(body.PushToken) > 256 {
		app.Fail(c, app.InvalidField("invalid_push_token", "pushToken", "the body must be {\"pushToken\": \"…\"}"))
		return
	}
	fresh, err := m.svc.delivery.Register(c.Request.Context(), app.TenantOf(c), c.Param("deviceId"), c.Param("passTypeId"), serial, body.PushToken)
	if err != nil {
		app.Fail(c, err)
		return
	}
	status := http.StatusOK
	if fresh {
		status = http.StatusCreated
	}
	c.JSON(status, gin.H{})
}

func (m *Module) walletUnregister(c *gin.Context) {
	serial, ok := m.walletPath(c, true)
	if !ok {
		return
	}
	if _, err := m.svc.delivery.Unregister(c.Request.Context(), app.TenantOf(c), c.Param("deviceId"), c.Param("passTypeId"), serial); err != nil {
		app.Fail(c, err)
		return
	}
	c.JSON(http.StatusOK, gin.H{})
}

func (m *Module) walletUpdated(c *gin.Context) {
	if _, ok := m.walletPath(c, false); !ok {
		return
	}
	t := app.TenantOf(c)
	u, err := m.svc.delivery.UpdatedSince(c.Request.Context(), t, m.publicBase(t), c.Param("deviceId"), c.Param("passTypeId"), c.Query("passesUpdatedSince"))
	if err != nil {
		app.Fail(c, err)
		return
	}
	if len(u.SerialNumbers) == 0 {
		c.Status(http.StatusNoContent)
		return
	}
	c.JSON(http.StatusOK, u)
}

func (m *Module) walletPass(c *gin.Context) {
	serial, ok := m.walletPath(c, true)
	if !ok {
		return
	}
	t := app.TenantOf(c)
	p, err := m.svc.delivery.Pkpass(c.Request.Context(), t, m.publicBase(t), serial)
	if err != nil {
		app.Fail(c, err)
		return
	}
	if since, err := http.ParseTime(c.GetHeader("If-Modified-Since")); err == nil && !p.Modified.Truncate(time.Second).After(since) {
		c.Status(http.StatusNotModified)
		return
	}
	m.servePass(c, p)
}

type walletLogs struct {
	Logs []string `json:"logs"`
}

func (m *Module) walletLog(c *gin.Context) {
	var body walletLogs
	raw, _ := io.ReadAll(io.LimitReader(c.Request.Body, 64<<10))
	if json.Unmarshal(raw, &body) == nil {
		for i, l := range body.Logs {
			if i == 20 {
				break
			}
			if len(l) > 300 {
				l = l[:300]
			}
			m.app.Log.Warn("apple wallet device log", "tenant", app.TenantOf(c).Slug, "message", l)
		}
	}
	c.JSON(http.StatusOK, gin.H{})
}

// DevWallet writes throwaway wallet signing credentials into dir and points
// c at them (the demo; never a deployment: they chain to no Apple root).
func DevWallet(dir string, c *config.Config) error {
	const passType, team = "pass.localhost.marquee.tickets", "DEMOTEAM00"
	creds, err := delivery.NewDevCredentials(dir, passType, team)
	if err != nil {
		return err
	}
	c.WalletPassTypeID, c.WalletTeamID = passType, team
	c.WalletCertFile, c.WalletKeyFile, c.WalletWWDRFile = creds.CertFile, creds.KeyFile, creds.WWDRFile
	c.GoogleWalletIssuerID, c.GoogleWalletServiceAccount, c.GoogleWalletKeyFile = "3388000000000000000", "demo-wallet@marquee.localhost", creds.GoogleKeyFile
	return nil
}
