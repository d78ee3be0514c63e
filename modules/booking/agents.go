package booking

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"net/mail"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
	"gorm.io/gorm"

	"marquee/app"
	"marquee/tenants"
)

// AgentInput is a new agent.
type AgentInput struct {
	Name, Email, Agency string
}

// CreateAgent adds an artist agent.
func (s *Service) CreateAgent(ctx context.Context, t tenants.Tenant, in AgentInput) (Agent, error) {
	a := Agent{ID: uuid.Must(uuid.NewV7())}
	var err error
	if a.Name, err = cleanText("name", in.Name, 200, true); err != nil {
		return Agent{}, err
	}
	if a.Agency, err = cleanText("agency", in.Agency, 200, false); err != nil {
		return Agent{}, err
	}
	addr, perr := mail.ParseAddress(strings.TrimSpace(in.Email))
	if perr != nil || len(addr.Address) > 320 {
		return Agent{}, app.InvalidField("invalid_email", "email", "the email address is not valid")
	}
	a.Email = addr.Address
	err = s.tx(ctx, t, func(tx *gorm.DB) error {
		if err := insertAgent(tx, a); err != nil {
			return err
		}
		var err error
		a, err = findAgent(tx, a.ID)
		return err
	})
	return a, err
}

// Agents lists the chain's artist agents.
func (s *Service) Agents(ctx context.Context, t tenants.Tenant) ([]Agent, error) {
	var out []Agent
	err := s.tx(ctx, t, func(tx *gorm.DB) error {
		var err error
		out, err = listAgents(tx)
		return err
	})
	return out, err
}

// CreateArtist adds an artist represented by an agent.
func (s *Service) CreateArtist(ctx context.Context, t tenants.Tenant, name string, agentID uuid.UUID) (ArtistRecord, error) {
	a := ArtistRecord{ID: uuid.Must(uuid.NewV7()), AgentID: agentID}
	var err error
	if a.Name, err = cleanText("name", name, 200, true); err != nil {
		return ArtistRecord{}, err
	}
	err = s.tx(ctx, t, func(tx *gorm.DB) error {
		if _, err := findAgent(tx, agentID); err != nil {
			return err
		}
		if err := insertArtist(tx, a); err != nil {
			return err
		}
		var err error
		a, err = findArtist(tx, a.ID)
		return err
	})
	return a, err
}

// Artists lists the chain's artists with their agents.
func (s *Service) Artists(ctx context.Context, t tenants.Tenant) ([]ArtistRecord, error) {
	var out []ArtistRecord
	err := s.tx(ctx, t, func(tx *gorm.DB) error {
		var err error
		out, err = listArtists(tx)
		return err
	})
	return out, err
}

// Agent links: a signed, expiring token naming the chain and the agent. It
// needs no storage; its key is derived from the deployment's secret for
// this purpose alone, so no other signed value of the platform verifies as
// an agent link.
const agentLinkPurpose = "booking agent link v1"

// MaxAgentLinkLifetime bounds a link's validity.
const MaxAgentLinkLifetime = 30 * 24 * time.Hour

// AgentLink is a link handed to an agent.
type AgentLink struct {
	AgentID   uuid.UUID `json:"agent_id"`
	Token     string    `json:"token"`
	ExpiresAt time.Time `json:"expires_at"`
}

func (s *Service) linkMAC(payload string) []byte {
	m := hmac.New(sha256.New, s.app.SigningKey(agentLinkPurpose))
	m.Write([]byte(payload))
	return m.Sum(nil)
}

// NewAgentLink signs a link for an agent, valid for d.
func (s *Service) NewAgentLink(ctx context.Context, t tenants.Tenant, agentID uuid.UUID, d time.Duration) (AgentLink, error) {
	if d <= 0 || d > MaxAgentLinkLifetime {
		return AgentLink{}, app.InvalidField("invalid_request", "valid_hours", "a link is valid for 1 hour to %d days", int(MaxAgentLinkLifetime.Hours()/24))
	}
	err := s.tx(ctx, t, func(tx *gorm.DB) error {
		_, err := findAgent(tx, agentID)
		return err
	})
	if err != nil {
		return AgentLink{}, err
	}
	exp := s.app.Now().Add(d).UTC().Truncate(time.Second)
	payload := t.Slug + "|" + agentID.String() + "|" + strconv.FormatInt(exp.Unix(), 10)
	token := base64.RawURLEncoding.EncodeToString([]byte(payload)) + "." + base64.RawURLEncoding.EncodeToString(s.linkMAC(payload))
	return AgentLink{AgentID: agentID, Token: token, ExpiresAt: exp}, nil
}

// AgentFromLink checks a link's signature, chain and expiry, and returns
// the agent it was given to.
func (s *Service) AgentFromLink(ctx context.Context, t tenants.Tenant, token string) (Agent, error) {
	invalid := app.Errorf(app.KindUnauthenticated, "agent_link_invalid", "the agent link is missing or not valid for this chain")
	p64, s64, ok := strings.Cut(token, ".")
	payload, err1 := base64.RawURLEncoding.DecodeString(p64)
	sig, err2 := base64.RawURLEncoding.DecodeString(s64)
	if !ok || err1 != nil || err2 != nil || !hmac.Equal(sig, s.linkMAC(string(payload))) {
		return Agent{}, invalid
	}
	parts := strings.Split(string(payload), "|")
	if len(parts) != 3 || parts[0] != t.Slug {
		return Agent{}, invalid
	}
	agentID, err := uuid.Parse(parts[1])
	exp, err2 := strconv.ParseInt(parts[2], 10, 64)
	if err != nil || err2 != nil {
		return Agent{}, invalid
	}
	if !s.app.Now().Before(time.Unix(exp, 0)) {
		return Agent{}, app.Errorf(app.KindUnauthenticated, "agent_link_expired", "the agent link expired at %s; ask the promoter for a new one",
			time.Unix(exp, 0).UTC().Format(time.RFC3339))
	}
	var a Agent
	err = s.tx(ctx, t, func(tx *gorm.DB) error {
		var err error
		a, err = findAgent(tx, agentID)
		return err
	})
	var e *app.Error
	if errors.As(err, &e) && e.Kind == app.KindNotFound {
		return Agent{}, invalid // an agent removed since the link was signed
	}
	return a, err
}

// cleanText trims s and checks its length (in characters).
func cleanText(field, s string, maxLen int, required bool) (string, error) {
	s = strings.TrimSpace(s)
	if required && s == "" {
		return "", app.InvalidField("invalid_request", field, "%s is required", field)
	}
	if utf8.RuneCountInString(s) > maxLen {
		return "", app.InvalidField("invalid_request", field, "%s is at most %d characters", field, maxLen)
	}
	return s, nil
}
