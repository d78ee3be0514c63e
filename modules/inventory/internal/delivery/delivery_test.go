package delivery_test

import (
	"archive/zip"
	"bytes"
	"crypto/sha1"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/google/uuid"
	"github.com/smallstep/pkcs7"

	"marquee/modules/inventory/internal/delivery"
)

var (
	testEvent = delivery.Event{ID: uuid.MustParse("0193a000-0000-7000-8000-000000000001"), Chain: "Acme Live", Title: "Nightwish — Yesterwynde Tour",
		Venue: "Acme Arena", Timezone: "Europe/Berlin", StartsAt: time.Date(2027, 3, 14, 19, 30, 0, 0, time.UTC), EndsAt: time.Date(2027, 3, 14, 23, 0, 0, 0, time.UTC),
		Latitude: 52.5, Longitude: 13.4}
	testTicket = delivery.Ticket{ID: uuid.MustParse("0193a000-0000-7000-8000-0000000000aa"), Token: "2.AAEC-signed-token", Zone: "Floor", Tier: "Standard", Seat: "B-12-7", Holder: "Zoë Müller", Status: "valid"}
)

func TestSeatInWords(t *testing.T) {
	for in, want := range map[string]string{"B-12-7": "Section B, Row 12, Seat 7", "": "General admission (no reserved seat)", "odd": "Seat odd"} {
		if got := delivery.SeatInWords(in); got != want {
			t.Errorf("%q: %q, want %q", in, got, want)
		}
	}
}

// The .pkpass is a zip whose manifest lists every other file's SHA-1, and
// whose detached signature over the manifest verifies up to the root the
// WWDR intermediate chains to.
func TestPassIsSignedAndVerifies(t *testing.T) {
	dir := t.TempDir()
	creds, err := delivery.NewDevCredentials(dir, "pass.test.marquee", "TEAM123456")
	if err != nil {
		t.Fatal(err)
	}
	s, err := delivery.LoadPassSigner("pass.test.marquee", "TEAM123456", creds.CertFile, creds.KeyFile, creds.WWDRFile)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := s.Build(delivery.Pass{Serial: testTicket.ID.String(), AuthToken: "token-0123456789abcdef", WebServiceURL: "https://acme.example/api/v1/wallet", Event: testEvent, Ticket: testTicket})
	if err != nil {
		t.Fatal(err)
	}
	files := unzip(t, raw)
	for _, need := range []string{"pass.json", "manifest.json", "signature", "icon.png"} {
		if files[need] == nil {
			t.Fatalf("%s missing; have %v", need, keys(files))
		}
	}
	var manifest map[string]string
	if err := json.Unmarshal(files["manifest.json"], &manifest); err != nil {
		t.Fatal(err)
	}
	if len(manifest) != len(files)-2 {
		t.Fatalf("manifest lists %d files, the pass has %d besides manifest and signature", len(manifest), len(files)-2)
	}
	for name, sum := range manifest {
		h := sha1.Sum(files[name])
		if hex.EncodeToString(h[:]) != sum {
			t.Fatalf("%s: manifest %s, actual %x", name, sum, h)
		}
	}
	p7, err := pkcs7.Parse(files["signature"])
	if err != nil {
		t.Fatal(err)
	}
	if len(p7.Content) != 0 {
		t.Fatal("the signature is not detached")
	}
	p7.Content = files["manifest.json"]
	roots := x509.NewCertPool()
	roots.AddCert(creds.Root)
	if err := p7.VerifyWithChain(roots); err != nil {
		t.Fatalf("signature does not verify: %v", err)
	}
	if len(p7.Certificates) != 2 {
		t.Fatalf("signature carries %d certificates, want the pass certificate and WWDR", len(p7.Certificates))
	}
	var signingTime time.Time
	if err := p7.UnmarshalSignedAttribute(pkcs7.OIDAttributeSigningTime, &signingTime); err != nil || time.Since(signingTime) > time.Minute {
		t.Fatalf("signing time %v: %v", signingTime, err)
	}
	// A changed file no longer matches its manifest entry.
	p7.Content = bytes.Replace(files["manifest.json"], []byte(manifest["pass.json"]), []byte(strings.Repeat("0", 40)), 1)
	if err := p7.VerifyWithChain(roots); err == nil {
		t.Fatal("a tampered manifest verified")
	}

	var pass map[string]any
	if err := json.Unmarshal(files["pass.json"], &pass); err != nil {
		t.Fatal(err)
	}
	bc := pass["barcodes"].([]any)[0].(map[string]any)
	if pass["passTypeIdentifier"] != "pass.test.marquee" || pass["serialNumber"] != testTicket.ID.String() || bc["message"] != testTicket.Token ||
		bc["format"] != "PKBarcodeFormatQR" || pass["relevantDate"] != "2027-03-14T19:30:00Z" || pass["expirationDate"] != "2027-03-15T23:00:00Z" ||
		pass["eventTicket"] == nil || pass["authenticationToken"] != "token-0123456789abcdef" {
		t.Fatalf("pass.json: %s", files["pass.json"])
	}
	if !strings.Contains(string(files["pass.json"]), "Sunday 14 March 2027, 20:30 CET") {
		t.Fatalf("the time is not the venue's: %s", files["pass.json"])
	}

	// A void pass has no code and says so.
	raw, err = s.Build(delivery.Pass{Serial: testTicket.ID.String(), Event: testEvent, Ticket: testTicket, Voided: true})
	if err != nil {
		t.Fatal(err)
	}
	files = unzip(t, raw)
	pass = nil
	if err := json.Unmarshal(files["pass.json"], &pass); err != nil {
		t.Fatal(err)
	}
	if pass["voided"] != true || pass["barcodes"] != nil {
		t.Fatalf("void pass: %s", files["pass.json"])
	}
}

func TestGoogleSaveJWTVerifies(t *testing.T) {
	dir := t.TempDir()
	creds, err := delivery.NewDevCredentials(dir, "pass.test.marquee", "TEAM123456")
	if err != nil {
		t.Fatal(err)
	}
	g, err := delivery.LoadGoogleSigner("3388000000012345678", "wallet@marquee-test.iam.gserviceaccount.com", creds.GoogleKeyFile)
	if err != nil {
		t.Fatal(err)
	}
	token, err := g.SaveJWT(testEvent, testTicket, false, "https://acme.example", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	var claims delivery.SaveClaims
	parsed, err := jwt.ParseWithClaims(token, &claims, func(tk *jwt.Token) (any, error) { return &creds.GoogleKey.PublicKey, nil },
		jwt.WithValidMethods([]string{"RS256"}), jwt.WithAudience("google"), jwt.WithIssuer("wallet@marquee-test.iam.gserviceaccount.com"))
	if err != nil || !parsed.Valid {
		t.Fatalf("save JWT does not verify: %v", err)
	}
	obj := claims.Payload.EventTicketObjects[0]
	class := claims.Payload.EventTicketClasses[0]
	if claims.Typ != "savetowallet" || obj["classId"] != class["id"] || obj["state"] != "ACTIVE" ||
		obj["barcode"].(map[string]any)["value"] != testTicket.Token || class["id"] != "3388000000012345678.event-"+testEvent.ID.String() {
		t.Fatalf("claims: %+v", claims)
	}
	if !strings.HasPrefix(delivery.SaveURL(token), "https://pay.google.com/gp/v/save/ey") {
		t.Fatal(delivery.SaveURL(token))
	}
}

// The PDF holds one page per ticket; MARQUEE_PDF_OUT keeps it to look at.
func TestTicketsPDF(t *testing.T) {
	second := testTicket
	second.ID, second.Seat = uuid.MustParse("0193a000-0000-7000-8000-0000000000ab"), "B-12-8"
	void := testTicket
	void.ID, void.Seat, void.Status = uuid.MustParse("0193a000-0000-7000-8000-0000000000ac"), "", "void"
	b, err := delivery.TicketsPDF(testEvent, uuid.MustParse("0193a000-0000-7000-8000-0000000000ff"), []delivery.Ticket{testTicket, second, void}, time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(b, []byte("%PDF-")) || bytes.Count(b, []byte("/Type /Page\n")) != 3 {
		t.Fatalf("not a 3-page PDF (%d bytes, %d pages)", len(b), bytes.Count(b, []byte("/Type /Page\n")))
	}
	if out := os.Getenv("MARQUEE_PDF_OUT"); out != "" {
		if err := os.WriteFile(filepath.Join(out, "tickets.pdf"), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
}

func unzip(t *testing.T, raw []byte) map[string][]byte {
	t.Helper()
	zr, err := zip.NewReader(bytes.NewReader(raw), int64(len(raw)))
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]byte{}
	for _, f := range zr.File {
		rc, err := f.Open()
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(rc)
		_ = rc.Close()
		if err != nil {
			t.Fatal(err)
		}
		out[f.Name] = b
	}
	return out
}

func keys(m map[string][]byte) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}
