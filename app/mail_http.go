package app

import (
	"net/http"
	"strconv"

	"github.com/gin-gonic/gin"
	"github.com/google/uuid"

	"marquee/policies"
)

func (a *App) registerMailRoutes(r *Registrar) {
	r.API(http.MethodGet, "/mail", Require("mail", policies.Read), "The chain's outgoing mail and its delivery status (queued, sent, failed, bounced), newest first",
		Handle(a.apiListMail).Query("status", "queued, sent, failed or bounced").Query("ref", "only messages about this (an order id)").Query("after", "cursor").Query("limit", "1 to 200 (50)"))
	r.API(http.MethodPost, "/mail/:mailId/retry", Require("mail", policies.Write), "Send a failed or bounced message again, optionally to a corrected address",
		Handle(a.apiRetryMail).OptionalBody())
	r.Portal(http.MethodGet, "/mail", Require("mail", policies.Read), a.portalMailPage)
	r.Nav("Mail", "/portal/mail", 85, Require("mail", policies.Read))
}

func mailStatusOK(s string) bool {
	return s == "" || s == MailQueued || s == MailSent || s == MailFailed || s == MailBounced
}

func (a *App) apiListMail(c *gin.Context, _ None) (Page[QueuedMail], error) {
	after, limit, err := pageParams(c)
	if err != nil {
		return Page[QueuedMail]{}, err
	}
	status := c.Query("status")
	if !mailStatusOK(status) {
		return Page[QueuedMail]{}, InvalidField("invalid_status", "status", "status must be queued, sent, failed or bounced")
	}
	ctx, t := c.Request.Context(), TenantOf(c)
	if ref := c.Query("ref"); ref != "" {
		if len(ref) > 200 {
			return Page[QueuedMail]{}, InvalidField("invalid_ref", "ref", "ref is at most 200 characters")
		}
		list, err := a.Mail.ByRef(ctx, t, ref)
		return Page[QueuedMail]{Items: NonNil(list)}, err
	}
	cursor := uuid.Nil
	if after != "" {
		if cursor, err = uuid.Parse(after); err != nil {
			return Page[QueuedMail]{}, InvalidField("invalid_cursor", "after", "after must be a cursor returned by this list")
		}
	}
	list, err := a.Mail.List(ctx, t, status, cursor, limit)
	out := Page[QueuedMail]{Items: NonNil(list)}
	if len(list) == limit {
		out.Next = list[len(list)-1].ID.String()
	}
	return out, err
}

type retryMailRequest struct {
	// To replaces the recipient (a corrected address); empty keeps it.
	To string `json:"to"`
}

func (r retryMailRequest) Validate() error {
	if r.To == "" {
		return nil
	}
	_, err := normalizeEmail(r.To)
	return err
}

// MailRetried is the answer to a retry.
type MailRetried struct {
	ID     uuid.UUID `json:"id"`
	Status string    `json:"status"`
}

func (a *App) apiRetryMail(c *gin.Context, req retryMailRequest) (MailRetried, error) {
	id, err := PathUUID(c, "mailId", "mail")
	if err != nil {
		return MailRetried{}, err
	}
	if err := a.Mail.Retry(c.Request.Context(), TenantOf(c), id, req.To); err != nil {
		return MailRetried{}, err
	}
	return MailRetried{ID: id, Status: MailQueued}, nil
}

type mailPageView struct {
	Statuses []string
	Counts   map[string]int64
	Status   string
	Items    []QueuedMail
}

func (a *App) portalMailPage(c *gin.Context) {
	ctx, t := c.Request.Context(), TenantOf(c)
	status := c.Query("status")
	if !mailStatusOK(status) {
		status = ""
	}
	counts, err := a.Mail.Counts(ctx, t)
	if err != nil {
		Fail(c, err)
		return
	}
	list, err := a.Mail.List(ctx, t, status, uuid.Nil, 200)
	if err != nil {
		Fail(c, err)
		return
	}
	content, err := RenderTemplate(coreTemplates, "mail", mailPageView{Statuses: []string{MailQueued, MailSent, MailFailed, MailBounced}, Counts: counts, Status: status, Items: list})
	if err != nil {
		Fail(c, err)
		return
	}
	a.RenderPortal(c, http.StatusOK, "Mail ("+strconv.FormatInt(counts[MailFailed]+counts[MailBounced], 10)+" need attention)", content)
}
