package delivery

import (
	"crypto/rsa"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// GoogleSigner makes Google Wallet "save" links: a JWT signed (RS256) with
// the issuer's service-account key, carrying the event ticket class and
// object.
type GoogleSigner struct {
	IssuerID       string
	ServiceAccount string
	key            *rsa.PrivateKey
}

// NewGoogleSigner builds a signer from the service account's PEM key.
func NewGoogleSigner(issuerID, serviceAccount string, keyPEM []byte) (*GoogleSigner, error) {
	if issuerID == "" || serviceAccount == "" {
		return nil, errors.New("google wallet: the issuer id and service account are required")
	}
	k, err := ParsePrivateKey(keyPEM)
	if err != nil {
		return nil, fmt.Errorf("google wallet: key: %w", err)
	}
	rk, ok := k.(*rsa.PrivateKey)
	if !ok {
		return nil, errors.New("google wallet: the service account key must be RSA")
	}
	return &GoogleSigner{IssuerID: issuerID, ServiceAccount: serviceAccount, key: rk}, nil
}

// LoadGoogleSigner reads the key file; nil, nil when none is configured.
func LoadGoogleSigner(issuerID, serviceAccount, keyFile string) (*GoogleSigner, error) {
	if keyFile == "" {
		return nil, nil
	}
	b, err := os.ReadFile(keyFile) // #nosec G304: a path from the deployment's configuration
	if err != nil {
		return nil, fmt.Errorf("google wallet: %w", err)
	}
	return NewGoogleSigner(issuerID, serviceAccount, b)
}

// SaveClaims are the claims of a save link.
type SaveClaims struct {
	jwt.RegisteredClaims
	Typ     string      `json:"typ"`
	Origins []string    `json:"origins"`
	Payload SavePayload `json:"payload"`
}

// SavePayload carries the class and object to save.
type SavePayload struct {
	EventTicketClasses []map[string]any `json:"eventTicketClasses"`
	EventTicketObjects []map[string]any `json:"eventTicketObjects"`
}

// SaveJWT signs the save link's token for one ticket; origin is the
// storefront the button is on.
func (g *GoogleSigner) SaveJWT(ev Event, tk Ticket, voided bool, origin string, now time.Time) (string, error) {
	classID := g.IssuerID + ".event-" + ev.ID.String()
	state := "ACTIVE"
	if voided {
		state = "INACTIVE"
	}
	class := map[string]any{
		"id": classID, "issuerName": ev.Chain, "reviewStatus": "UNDER_REVIEW",
		"eventId":   ev.ID.String(),
		"eventName": localized(ev.Title),
		"venue":     map[string]any{"name": localized(ev.Venue), "address": localized(ev.Venue)},
		"dateTime":  map[string]any{"start": ev.StartsAt.UTC().Format(time.RFC3339), "end": ev.EndsAt.UTC().Format(time.RFC3339)},
		"finePrint": localized(Terms),
	}
	seat := map[string]any{"section": localized(tk.Zone)}
	if tk.Seat != "" {
		seat["seat"] = localized(SeatInWords(tk.Seat))
	}
	object := map[string]any{
		"id": g.IssuerID + ".ticket-" + tk.ID.String(), "classId": classID, "state": state,
		"ticketHolderName": tk.Holder, "ticketNumber": tk.ID.String(),
		"ticketType": localized(tk.Tier), "seatInfo": seat,
		"validTimeInterval": map[string]any{"end": map[string]any{"date": ev.EndsAt.Add(24 * time.Hour).UTC().Format(time.RFC3339)}},
	}
	if !voided {
		object["barcode"] = map[string]any{"type": "QR_CODE", "value": tk.Token, "alternateText": tk.ID.String()[:8]}
	}
	claims := SaveClaims{
		RegisteredClaims: jwt.RegisteredClaims{Issuer: g.ServiceAccount, Audience: jwt.ClaimStrings{"google"}, IssuedAt: jwt.NewNumericDate(now)},
		Typ:              "savetowallet", Origins: []string{origin},
		Payload: SavePayload{EventTicketClasses: []map[string]any{class}, EventTicketObjects: []map[string]any{object}},
	}
	return jwt.NewWithClaims(jwt.SigningMethodRS256, claims).SignedString(g.key)
}

// SaveURL is the link that adds the ticket to Google Wallet.
func SaveURL(token string) string { return "https://pay.google.com/gp/v/save/" + token }

func localized(s string) map[string]any {
	return map[string]any{"defaultValue": map[string]any{"language": "en-US", "value": s}}
}
