package delivery

import (
	"archive/zip"
	"bytes"
	"crypto"
	"crypto/sha1" // #nosec G505: Apple's manifest.json is SHA-1 by specification
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"os"
	"sort"
	"time"

	"github.com/smallstep/pkcs7"
)

// PassSigner signs Apple Wallet passes with the Pass Type ID certificate,
// chained to Apple's WWDR intermediate.
type PassSigner struct {
	PassTypeID string
	TeamID     string
	cert       *x509.Certificate
	key        crypto.PrivateKey
	wwdr       *x509.Certificate
}

// NewPassSigner builds a signer from PEM: the pass certificate, its private
// key (PKCS#8, PKCS#1 or EC) and the WWDR intermediate.
func NewPassSigner(passTypeID, teamID string, certPEM, keyPEM, wwdrPEM []byte) (*PassSigner, error) {
	if passTypeID == "" || teamID == "" {
		return nil, errors.New("wallet: the pass type id and team id are required")
	}
	cert, err := parseCert(certPEM)
	if err != nil {
		return nil, fmt.Errorf("wallet: pass certificate: %w", err)
	}
	wwdr, err := parseCert(wwdrPEM)
	if err != nil {
		return nil, fmt.Errorf("wallet: WWDR certificate: %w", err)
	}
	key, err := ParsePrivateKey(keyPEM)
	if err != nil {
		return nil, fmt.Errorf("wallet: pass key: %w", err)
	}
	return &PassSigner{PassTypeID: passTypeID, TeamID: teamID, cert: cert, key: key, wwdr: wwdr}, nil
}

// LoadPassSigner reads the signer's files; nil, nil when none is configured.
func LoadPassSigner(passTypeID, teamID, certFile, keyFile, wwdrFile string) (*PassSigner, error) {
	if certFile == "" && keyFile == "" && wwdrFile == "" {
		return nil, nil
	}
	var pems [3][]byte
	for i, f := range []string{certFile, keyFile, wwdrFile} {
		b, err := os.ReadFile(f) // #nosec G304: a path from the deployment's configuration
		if err != nil {
			return nil, fmt.Errorf("wallet: %w", err)
		}
		pems[i] = b
	}
	return NewPassSigner(passTypeID, teamID, pems[0], pems[1], pems[2])
}

// NotAfter is when the pass certificate expires (passes signed after it
// do not install: pretix-passbook #43).
func (s *PassSigner) NotAfter() time.Time { return s.cert.NotAfter }

func parseCert(b []byte) (*x509.Certificate, error) {
	blk, _ := pem.Decode(b)
	if blk == nil {
		return nil, errors.New("no PEM block")
	}
	return x509.ParseCertificate(blk.Bytes)
}

// ParsePrivateKey reads a PEM private key in any of the usual encodings.
func ParsePrivateKey(b []byte) (crypto.PrivateKey, error) {
	blk, _ := pem.Decode(b)
	if blk == nil {
		return nil, errors.New("no PEM block")
	}
	if k, err := x509.ParsePKCS8PrivateKey(blk.Bytes); err == nil {
		return k, nil
	}
	if k, err := x509.ParsePKCS1PrivateKey(blk.Bytes); err == nil {
		return k, nil
	}
	return x509.ParseECPrivateKey(blk.Bytes)
}

// Pass is what one ticket's pass shows.
type Pass struct {
	Serial        string
	AuthToken     string
	WebServiceURL string
	Event         Event
	Ticket        Ticket
	// Voided marks a ticket that no longer admits (transferred, resold,
	// refunded, cancelled): Wallet greys it out.
	Voided bool
}

type passField struct {
	Key   string `json:"key"`
	Label string `json:"label"`
	Value string `json:"value"`
}

type passBarcode struct {
	Format          string `json:"format"`
	Message         string `json:"message"`
	MessageEncoding string `json:"messageEncoding"`
	AltText         string `json:"altText,omitempty"`
}

type passJSON struct {
	FormatVersion      int           `json:"formatVersion"`
	PassTypeIdentifier string        `json:"passTypeIdentifier"`
	SerialNumber       string        `json:"serialNumber"`
	TeamIdentifier     string        `json:"teamIdentifier"`
	OrganizationName   string        `json:"organizationName"`
	Description        string        `json:"description"`
	WebServiceURL      string        `json:"webServiceURL,omitempty"`
	AuthenticationTok  string        `json:"authenticationToken,omitempty"`
	RelevantDate       string        `json:"relevantDate"`
	ExpirationDate     string        `json:"expirationDate"`
	Voided             bool          `json:"voided,omitempty"`
	SharingProhibited  bool          `json:"sharingProhibited"`
	GroupingIdentifier string        `json:"groupingIdentifier"`
	BackgroundColor    string        `json:"backgroundColor"`
	ForegroundColor    string        `json:"foregroundColor"`
	LabelColor         string        `json:"labelColor"`
	Barcodes           []passBarcode `json:"barcodes,omitempty"`
	Locations          []passLoc     `json:"locations,omitempty"`
	EventTicket        struct {
		HeaderFields    []passField `json:"headerFields"`
		PrimaryFields   []passField `json:"primaryFields"`
		SecondaryFields []passField `json:"secondaryFields"`
		AuxiliaryFields []passField `json:"auxiliaryFields"`
		BackFields      []passField `json:"backFields"`
	} `json:"eventTicket"`
}

type passLoc struct {
	Latitude  float64 `json:"latitude"`
	Longitude float64 `json:"longitude"`
}

// PassJSON is the pass.json of a pass. The expiration date is always set
// (a day after the event ends): without it Wallet silently expires event
// passes about a year after they were added.
func (s *PassSigner) PassJSON(p Pass) ([]byte, error) {
	ends := p.Event.EndsAt
	if ends.IsZero() || ends.Before(p.Event.StartsAt) {
		ends = p.Event.StartsAt.Add(4 * time.Hour)
	}
	j := passJSON{
		FormatVersion: 1, PassTypeIdentifier: s.PassTypeID, SerialNumber: p.Serial, TeamIdentifier: s.TeamID,
		OrganizationName: p.Event.Chain, Description: "Ticket for " + p.Event.Title,
		WebServiceURL: p.WebServiceURL, AuthenticationTok: p.AuthToken,
		RelevantDate:   p.Event.StartsAt.UTC().Format(time.RFC3339),
		ExpirationDate: ends.Add(24 * time.Hour).UTC().Format(time.RFC3339),
		Voided:         p.Voided, SharingProhibited: true, GroupingIdentifier: p.Event.ID.String(),
		BackgroundColor: "rgb(24,24,40)", ForegroundColor: "rgb(255,255,255)", LabelColor: "rgb(190,190,210)",
	}
	if !p.Voided && p.Ticket.Token != "" {
		j.Barcodes = []passBarcode{{Format: "PKBarcodeFormatQR", Message: p.Ticket.Token, MessageEncoding: "iso-8859-1", AltText: "Ticket " + p.Ticket.ID.String()[:8]}}
	}
	if p.Event.Latitude != 0 || p.Event.Longitude != 0 {
		j.Locations = []passLoc{{Latitude: p.Event.Latitude, Longitude: p.Event.Longitude}}
	}
	et := &j.EventTicket
	et.HeaderFields = []passField{{Key: "zone", Label: "ZONE", Value: p.Ticket.Zone}}
	et.PrimaryFields = []passField{{Key: "event", Label: "EVENT", Value: p.Event.Title}}
	et.SecondaryFields = []passField{{Key: "when", Label: "WHEN", Value: p.Event.Local()}, {Key: "venue", Label: "VENUE", Value: p.Event.Venue}}
	et.AuxiliaryFields = []passField{{Key: "seat", Label: "SEAT", Value: SeatInWords(p.Ticket.Seat)}, {Key: "tier", Label: "TICKET", Value: p.Ticket.Tier}}
	et.BackFields = []passField{{Key: "holder", Label: "Name", Value: p.Ticket.Holder}, {Key: "ticket", Label: "Ticket", Value: p.Ticket.ID.String()}, {Key: "terms", Label: "Terms", Value: Terms}}
	if p.Voided {
		et.HeaderFields = append(et.HeaderFields, passField{Key: "status", Label: "STATUS", Value: "VOID"})
	}
	return json.MarshalIndent(j, "", "  ")
}

// Build makes the signed .pkpass: pass.json, the icons, manifest.json of
// every file's SHA-1, and the detached PKCS#7 signature over the manifest.
func (s *PassSigner) Build(p Pass) ([]byte, error) {
	pass, err := s.PassJSON(p)
	if err != nil {
		return nil, err
	}
	files := map[string][]byte{"pass.json": pass}
	for name, size := range map[string]int{"icon.png": 29, "icon@2x.png": 58, "icon@3x.png": 87, "logo.png": 50, "logo@2x.png": 100} {
		files[name] = iconPNG(size)
	}
	manifest := map[string]string{}
	for name, b := range files {
		h := sha1.Sum(b) // #nosec G401: the manifest format
		manifest[name] = hex.EncodeToString(h[:])
	}
	mb, err := json.MarshalIndent(manifest, "", "  ")
	if err != nil {
		return nil, err
	}
	sig, err := s.sign(mb)
	if err != nil {
		return nil, err
	}
	files["manifest.json"], files["signature"] = mb, sig
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	sort.Strings(names)
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for _, n := range names {
		w, err := zw.Create(n)
		if err != nil {
			return nil, err
		}
		if _, err := w.Write(files[n]); err != nil {
			return nil, err
		}
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// sign makes the detached PKCS#7 signature (DER) over the manifest, with
// content type, message digest and signing time attributes, carrying the
// pass certificate and the WWDR intermediate.
func (s *PassSigner) sign(manifest []byte) ([]byte, error) {
	sd, err := pkcs7.NewSignedData(manifest)
	if err != nil {
		return nil, err
	}
	if err := sd.AddSignerChain(s.cert, s.key, []*x509.Certificate{s.wwdr}, pkcs7.SignerInfoConfig{}); err != nil {
		return nil, err
	}
	sd.Detach()
	return sd.Finish()
}

// iconPNG is a plain square in the chain's pass colours (a chain's own
// artwork would replace it).
func iconPNG(size int) []byte {
	img := image.NewRGBA(image.Rect(0, 0, size, size))
	for y := range size {
		for x := range size {
			c := color.RGBA{24, 24, 40, 255}
			if x > size/4 && x < size*3/4 && y > size/4 && y < size*3/4 {
				c = color.RGBA{240, 180, 40, 255}
			}
			img.Set(x, y, c)
		}
	}
	var buf bytes.Buffer
	_ = png.Encode(&buf, img)
	return buf.Bytes()
}
