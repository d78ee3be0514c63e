package booking

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/google/uuid"
	"gorm.io/gorm"

	"marquee/app"
	"marquee/config"
	"marquee/tenants"
)

// ESignProvider is an external e-signature service: it collects both
// parties' signatures over the contract's PDF and reports them through a
// signed webhook (DocuSign Connect's shape). Built-in click-to-sign needs
// none.
type ESignProvider interface {
	Name() string
	// SendEnvelope sends the document to the signers; it returns the
	// provider's envelope id, which the webhook names.
	SendEnvelope(ctx context.Context, env Envelope) (string, error)
}

// Envelope is a document to sign and who signs it.
type Envelope struct {
	// Tenant is the chain's slug, carried as an envelope custom field so a
	// provider account shared by chains says whose envelope it reports.
	Tenant       string
	Subject      string
	DocumentName string
	Document     []byte
	Signers      []EnvelopeSigner
}

// EnvelopeSigner is one signer; RoleName is the party (promoter or artist).
type EnvelopeSigner struct {
	RoleName, Name, Email string
}

// Option configures the module.
type Option func(*Module)

// esignFromConfig is the provider the configuration names
// (MARQUEE_ESIGN_*), unless WithESign plugged one: none when unset.
func (m *Module) esignFromConfig(cfg config.Config) {
	if m.esign != nil || cfg.ESignURL == "" {
		return
	}
	m.esign = DocuSign{BaseURL: cfg.ESignURL, AccountID: cfg.ESignAccountID, Token: cfg.ESignToken}
	m.connectKeys = nil
	for _, k := range cfg.ESignConnectKeys {
		m.connectKeys = append(m.connectKeys, []byte(k))
	}
}

// WithESign plugs an e-signature provider and the HMAC keys its webhook
// deliveries are signed with (several while a key is rotated).
func WithESign(p ESignProvider, connectKeys ...[]byte) Option {
	return func(m *Module) { m.esign, m.connectKeys = p, connectKeys }
}

// DocuSign is an ESignProvider speaking the DocuSign eSignature REST API's
// envelope call (POST {base}/v2.1/accounts/{account}/envelopes).
type DocuSign struct {
	BaseURL   string
	AccountID string
	Token     string
	HTTP      *http.Client
}

// Name implements ESignProvider.
func (d DocuSign) Name() string { return "docusign" }

// DocuSignEnvelope is the envelope definition sent to the provider.
type DocuSignEnvelope struct {
	EmailSubject string             `json:"emailSubject"`
	Documents    []DocuSignDocument `json:"documents"`
	Recipients   struct {
		Signers []DocuSignSigner `json:"signers"`
	} `json:"recipients"`
	CustomFields struct {
		TextCustomFields []DocuSignTextField `json:"textCustomFields,omitempty"`
	} `json:"customFields"`
	Status string `json:"status"`
}

// DocuSignTextField is an envelope custom field (name, value, shown to no
// signer).
type DocuSignTextField struct {
	Name  string `json:"name"`
	Value string `json:"value"`
	Show  string `json:"show"`
}

// TenantCustomField names the envelope custom field carrying the chain.
const TenantCustomField = "marquee_tenant"

// DocuSignDocument is a document of an envelope.
type DocuSignDocument struct {
	DocumentBase64 string `json:"documentBase64"`
	DocumentID     string `json:"documentId"`
	FileExtension  string `json:"fileExtension"`
	Name           string `json:"name"`
}

// DocuSignSigner is a signer of an envelope (and of a Connect message).
type DocuSignSigner struct {
	Email          string `json:"email"`
	Name           string `json:"name"`
	RecipientID    string `json:"recipientId"`
	RoutingOrder   string `json:"routingOrder,omitempty"`
	RoleName       string `json:"roleName"`
	Status         string `json:"status,omitempty"`
	SignedDateTime string `json:"signedDateTime,omitempty"`
}

// SendEnvelope implements ESignProvider.
func (d DocuSign) SendEnvelope(ctx context.Context, env Envelope) (string, error) {
	def := DocuSignEnvelope{EmailSubject: env.Subject, Status: "sent",
		Documents: []DocuSignDocument{{DocumentBase64: base64.StdEncoding.EncodeToString(env.Document), DocumentID: "1",
			FileExtension: "pdf", Name: env.DocumentName}}}
	if env.Tenant != "" {
		def.CustomFields.TextCustomFields = []DocuSignTextField{{Name: TenantCustomField, Value: env.Tenant, Show: "false"}}
	}
	for i, s := range env.Signers {
		def.Recipients.Signers = append(def.Recipients.Signers, DocuSignSigner{Email: s.Email, Name: s.Name,
			RecipientID: strconv.Itoa(i + 1), RoutingOrder: "1", RoleName: s.RoleName})
	}
	body, _ := json.Marshal(def)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost,
		strings.TrimRight(d.BaseURL, "/")+"/v2.1/accounts/"+d.AccountID+"/envelopes", bytes.NewReader(body))
	if err != nil {
		return "", err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+d.Token)
	client := d.HTTP
	if client == nil {
		client = &http.Client{Timeout: 20 * time.Second}
	}
	res, err := client.Do(req)
	if err != nil {
		return "", err
	}
	defer func() { _ = res.Body.Close() }()
	var out struct {
		EnvelopeID string `json:"envelopeId"`
		Status     string `json:"status"`
	}
	b, _ := io.ReadAll(io.LimitReader(res.Body, 1<<20))
	if res.StatusCode/100 != 2 || json.Unmarshal(b, &out) != nil || out.EnvelopeID == "" {
		return "", fmt.Errorf("docusign: envelope not created (%d): %.200s", res.StatusCode, b)
	}
	return out.EnvelopeID, nil
}

// ConnectSignature is DocuSign Connect's HMAC: base64(HMAC-SHA256(key, raw body)).
func ConnectSignature(key, body []byte) string {
	m := hmac.New(sha256.New, key)
	m.Write(body)
	return base64.StdEncoding.EncodeToString(m.Sum(nil))
}

// ConnectMessage is a DocuSign Connect delivery (JSON, SIM format).
type ConnectMessage struct {
	Event             string `json:"event"`
	APIVersion        string `json:"apiVersion"`
	URI               string `json:"uri"`
	RetryCount        int    `json:"retryCount"`
	GeneratedDateTime string `json:"generatedDateTime"`
	Data              struct {
		AccountID       string `json:"accountId"`
		EnvelopeID      string `json:"envelopeId"`
		EnvelopeSummary struct {
			Status     string `json:"status"`
			Recipients struct {
				Signers []DocuSignSigner `json:"signers"`
			} `json:"recipients"`
		} `json:"envelopeSummary"`
	} `json:"data"`
}

// ConnectResult is what a delivery changed.
type ConnectResult struct {
	Outcome    string  `json:"outcome"` // recorded, duplicate or ignored
	Signed     []Party `json:"signed"`
	Sealing    bool    `json:"sealing"`
	EnvelopeID string  `json:"envelope_id"`
}

const maxConnectBody = 256 << 10

// verifyConnect accepts the body when one of X-DocuSign-Signature-1…-100
// is its HMAC under one of the configured keys (rotation: several keys,
// one header each).
func (m *Module) verifyConnect(h http.Header, body []byte) bool {
	for i := 1; i <= 100; i++ {
		v := h.Get("X-DocuSign-Signature-" + strconv.Itoa(i))
		if v == "" {
			break
		}
		got, err := base64.StdEncoding.DecodeString(v)
		if err != nil {
			continue
		}
		for _, k := range m.connectKeys {
			want, _ := base64.StdEncoding.DecodeString(ConnectSignature(k, body))
			if hmac.Equal(got, want) {
				return true
			}
		}
	}
	return false
}

// connectWebhook receives the provider's deliveries. The signature covers
// the raw body, so it is read (bounded) and verified before anything in it
// is looked at; a forged one is 401 and changes nothing.
func (m *Module) connectWebhook(c *gin.Context) {
	body, err := io.ReadAll(io.LimitReader(c.Request.Body, maxConnectBody+1))
	if err != nil || len(body) > maxConnectBody {
		app.Fail(c, app.PayloadTooLarge("a Connect message is at most %d bytes", maxConnectBody))
		return
	}
	if m.esign == nil || len(m.connectKeys) == 0 {
		app.Fail(c, app.NotFound("e-signature webhook"))
		return
	}
	if !m.verifyConnect(c.Request.Header, body) {
		app.Fail(c, app.Unauthenticated("the X-DocuSign-Signature does not verify"))
		return
	}
	var msg ConnectMessage
	if err := json.Unmarshal(body, &msg); err != nil || msg.Event == "" || msg.Data.EnvelopeID == "" || len(msg.Data.EnvelopeID) > 100 {
		app.Fail(c, app.Invalid("invalid_esign_event", "the body is not a Connect message with event and data.envelopeId"))
		return
	}
	res, err := m.svc.ApplyConnect(c.Request.Context(), app.TenantOf(c), m.esign.Name(), msg, c.ClientIP())
	if err != nil {
		app.Fail(c, err)
		return
	}
	c.JSON(http.StatusOK, res)
}

// SendForESign sends the contract to the provider; from then on the
// provider's webhook records the signatures and click-to-sign is closed.
func (s *Service) SendForESign(ctx context.Context, t tenants.Tenant, p ESignProvider, bookingID uuid.UUID, actor Actor) (ContractView, error) {
	if p == nil {
		return ContractView{}, app.Conflict("esign_not_configured", "no e-signature provider is configured; sign in the portal and through the agent link")
	}
	var c contractRow
	var b Booking
	var agentEmail string
	err := s.tx(ctx, t, func(tx *gorm.DB) error {
		var err error
		if b, err = findBooking(tx, bookingID, scope{}, false); err != nil {
			return err
		}
		if c, err = findContract(tx, bookingID, false); err != nil {
			return err
		}
		ag, err := findAgent(tx, b.AgentID)
		agentEmail = ag.Email
		return err
	})
	if err != nil {
		return ContractView{}, err
	}
	if c.Provider != "click" || c.Status != ContractSigning {
		return ContractView{}, app.Conflict("contract_signing_closed", "the contract is %s (%s); it is sent once, before anyone signed", c.Status, c.Provider)
	}
	doc, err := s.readObject(ctx, t, c.ObjectKey, c.SHA256)
	if err != nil {
		return ContractView{}, err
	}
	envID, err := p.SendEnvelope(ctx, Envelope{Tenant: t.Slug, Subject: "Contract: " + b.Title, DocumentName: "contract-" + b.ID.String()[:8] + ".pdf",
		Document: doc, Signers: []EnvelopeSigner{
			{RoleName: string(Promoter), Name: actor.Name, Email: actorEmail(actor)},
			{RoleName: string(Artist), Name: b.AgentName + " for " + b.ArtistName, Email: agentEmail}}})
	if err != nil {
		return ContractView{}, app.Unavailable("esign_unavailable", time.Minute, "the e-signature provider did not take the envelope: %v", err)
	}
	var out ContractView
	err = s.tx(ctx, t, func(tx *gorm.DB) error {
		q := tx.Exec(`UPDATE bkg_contracts SET provider = 'esign', envelope_id = ? WHERE id = ? AND provider = 'click' AND status = 'signing'
			AND NOT EXISTS (SELECT 1 FROM bkg_signatures WHERE contract_id = ?)`, envID, c.ID, c.ID)
		if q.Error != nil {
			return q.Error
		}
		if q.RowsAffected == 0 {
			return app.Conflict("contract_signing_closed", "someone signed or sent the contract meanwhile")
		}
		if err := addHistory(tx, bookingID, actor, "esign_sent", b.State, b.State, &c.TermsN, p.Name()+" envelope "+envID); err != nil {
			return err
		}
		c, err := findContract(tx, bookingID, false)
		if err != nil {
			return err
		}
		out, err = contractView(tx, c)
		return err
	})
	return out, err
}

func actorEmail(a Actor) string {
	if i, j := strings.LastIndex(a.Name, "<"), strings.LastIndex(a.Name, ">"); i >= 0 && j > i {
		return a.Name[i+1 : j]
	}
	return ""
}

// ApplyConnect records the signatures a verified delivery reports, once
// each; the last one moves the contract to sealing and queues the seal.
func (s *Service) ApplyConnect(ctx context.Context, t tenants.Tenant, provider string, msg ConnectMessage, ip string) (ConnectResult, error) {
	res := ConnectResult{Outcome: "ignored", Signed: []Party{}, EnvelopeID: msg.Data.EnvelopeID}
	if msg.Event != "recipient-completed" && msg.Event != "envelope-completed" {
		return res, nil
	}
	var contractID, bookingID uuid.UUID
	err := s.tx(ctx, t, func(tx *gorm.DB) error {
		res.Signed, res.Sealing, res.Outcome = []Party{}, false, "duplicate"
		var ids []struct {
			BookingID uuid.UUID `gorm:"column:booking_id"`
		}
		if err := tx.Raw(`SELECT booking_id FROM bkg_contracts WHERE envelope_id = ?`, msg.Data.EnvelopeID).Scan(&ids).Error; err != nil {
			return err
		}
		if len(ids) == 0 {
			return app.NotFound("envelope")
		}
		bookingID = ids[0].BookingID
		c, err := findContract(tx, bookingID, true)
		if err != nil {
			return err
		}
		contractID = c.ID
		if c.Status != ContractSigning {
			return nil // every signature is in already: a redelivery
		}
		b, err := findBooking(tx, bookingID, scope{}, false)
		if err != nil {
			return err
		}
		for _, sg := range msg.Data.EnvelopeSummary.Recipients.Signers {
			p := Party(sg.RoleName)
			if sg.Status != "completed" || (p != Promoter && p != Artist) {
				continue
			}
			at, err := time.Parse(time.RFC3339, sg.SignedDateTime)
			if err != nil {
				at = s.app.Now()
			}
			name, err := cleanText("name", sg.Name, 200, true)
			if err != nil {
				return err
			}
			seal, err := addSignature(tx, c, p, name, at, "via "+provider, c.SHA256, provider, provider+" envelope "+msg.Data.EnvelopeID)
			if e, ok := err.(*app.Error); ok && e.Code == "contract_already_signed" {
				continue
			}
			if err != nil {
				return err
			}
			res.Outcome = "recorded"
			res.Signed = append(res.Signed, p)
			res.Sealing = res.Sealing || seal
			actor := Actor{Kind: "provider", ID: msg.Data.EnvelopeID, Name: provider + ": " + name, IP: ip, Party: p}
			if err := addHistory(tx, bookingID, actor, "sign", b.State, b.State, &c.TermsN, "signed as "+name+" through "+provider); err != nil {
				return err
			}
		}
		return nil
	})
	if err == nil && res.Sealing {
		s.queueSeal(ctx, t, contractID, bookingID)
	}
	return res, err
}
