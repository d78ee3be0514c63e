package integrations

import (
	"io"
	"net/http"

	"github.com/gin-gonic/gin"

	"marquee/app"
)

func publicBase(c *gin.Context) string {
	scheme := "http"
	if c.Request.TLS != nil || c.GetHeader("X-Forwarded-Proto") == "https" {
		scheme = "https"
	}
	return scheme + "://" + c.Request.Host
}

func (m *Module) createConnector(c *gin.Context, in ConnectorInput) (Connector, error) {
	return m.svc.CreateConnector(c.Request.Context(), app.TenantOf(c), in, publicBase(c))
}

func (m *Module) listConnectors(c *gin.Context, _ app.None) (app.List[Connector], error) {
	cs, err := m.svc.Connectors(c.Request.Context(), app.TenantOf(c))
	return app.ListOf(cs), err
}

func (m *Module) getConnector(c *gin.Context, _ app.None) (Connector, error) {
	id, err := app.PathUUID(c, "connectorId", "connector")
	if err != nil {
		return Connector{}, err
	}
	return m.svc.Connector(c.Request.Context(), app.TenantOf(c), id)
}

// ExternalEvents is a provider's catalogue, read to its last page.
type ExternalEvents struct {
	Items []ExternalEvent `json:"items"`
	Pages int             `json:"pages"`
}

func (m *Module) externalEvents(c *gin.Context, _ app.None) (ExternalEvents, error) {
	id, err := app.PathUUID(c, "connectorId", "connector")
	if err != nil {
		return ExternalEvents{}, err
	}
	if _, err := m.svc.Connector(c.Request.Context(), app.TenantOf(c), id); err != nil {
		return ExternalEvents{}, err
	}
	evs, pages, err := m.svc.ExternalEvents(c.Request.Context(), app.TenantOf(c), id)
	return ExternalEvents{Items: app.NonNil(evs), Pages: pages}, err
}

func (m *Module) createListing(c *gin.Context, in ListingInput) (Listing, error) {
	id, err := app.PathUUID(c, "connectorId", "connector")
	if err != nil {
		return Listing{}, err
	}
	return m.svc.CreateListing(c.Request.Context(), app.TenantOf(c), id, in)
}

func (m *Module) pollNow(c *gin.Context, _ app.None) (PollResult, error) {
	id, err := app.PathUUID(c, "connectorId", "connector")
	if err != nil {
		return PollResult{}, err
	}
	con, err := m.svc.Connector(c.Request.Context(), app.TenantOf(c), id)
	if err != nil {
		return PollResult{}, err
	}
	if con.Provider != ProviderTicketmaster {
		return PollResult{}, app.Conflict("not_polled", "only Ticketmaster connectors are polled; Eventbrite sends webhooks")
	}
	res, err := m.svc.Poll(c.Request.Context(), app.TenantOf(c), id)
	if err != nil {
		return res, providerErr(err)
	}
	return res, nil
}

func (m *Module) getChannels(c *gin.Context, _ app.None) (ChannelsView, error) {
	id, err := app.PathUUID(c, "eventId", "event")
	if err != nil {
		return ChannelsView{}, err
	}
	return m.svc.Channels(c.Request.Context(), app.TenantOf(c), id)
}

func (m *Module) putAllocation(c *gin.Context, in AllocationInput) (Listing, error) {
	id, err := app.PathUUID(c, "eventId", "event")
	if err != nil {
		return Listing{}, err
	}
	return m.svc.SetAllocation(c.Request.Context(), app.TenantOf(c), id, c.Param("channel"), in.Quota)
}

// ReconcileInput asks for a reconciliation; Final closes the sale.
type ReconcileInput struct {
	Final bool `json:"final"`
}

func (m *Module) reconcile(c *gin.Context, in ReconcileInput) (EventReconciliation, error) {
	id, err := app.PathUUID(c, "eventId", "event")
	if err != nil {
		return EventReconciliation{}, err
	}
	return m.svc.Reconcile(c.Request.Context(), app.TenantOf(c), id, in.Final)
}

func (m *Module) webhook(c *gin.Context) {
	id, err := app.PathUUID(c, "connectorId", "connector")
	if err != nil {
		app.Fail(c, app.NotFoundCode("webhook_not_found", "no webhook endpoint here"))
		return
	}
	body, err := io.ReadAll(io.LimitReader(c.Request.Body, maxWebhookBody+1))
	if err != nil || len(body) > maxWebhookBody {
		app.Fail(c, app.PayloadTooLarge("an Eventbrite delivery is at most %d bytes", maxWebhookBody))
		return
	}
	res, err := m.svc.HandleWebhook(c.Request.Context(), app.TenantOf(c), id, c.Param("secret"), c.GetHeader("X-Eventbrite-Delivery"), body)
	if err != nil {
		app.Fail(c, err)
		return
	}
	c.JSON(http.StatusOK, res)
}
