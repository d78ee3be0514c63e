package inventory_test

import (
	"archive/zip"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"gorm.io/gorm"

	"marquee/app/apptest"
	"marquee/config"
	"marquee/modules/inventory/internal/delivery"
)

const testPassType = "pass.test.marquee.tickets"

// walletEnv is an inventory app with throwaway wallet credentials.
func walletEnv(t *testing.T, prefix string) (*shop, string, string) {
	t.Helper()
	dir := t.TempDir()
	creds, err := delivery.NewDevCredentials(dir, testPassType, "TEAM123456")
	if err != nil {
		t.Fatal(err)
	}
	env, inv := startEnvConfig(t, func(c *config.Config) {
		c.WalletPassTypeID, c.WalletTeamID = testPassType, "TEAM123456"
		c.WalletCertFile, c.WalletKeyFile, c.WalletWWDRFile = creds.CertFile, creds.KeyFile, creds.WWDRFile
		c.GoogleWalletIssuerID, c.GoogleWalletServiceAccount, c.GoogleWalletKeyFile = "3388000000012345678", "wallet@marquee-test.iam.gserviceaccount.com", creds.GoogleKeyFile
	})
	s := newShop(t, env, inv, prefix)
	ev := s.event(t, "Delivery Night")
	cfg := s.configure(t, ev, simpleSetup(2, 10, 100, nil))
	return s, ev, tierID(t, cfg, "Stalls")
}

func paidOrder(t *testing.T, s *shop, ev string, body map[string]any) orderOut {
	t.Helper()
	b := s.buyer(t)
	h := s.mustHold(t, ev, b, body)
	o := s.order(t, b, h.ID)
	mustStatus(t, s.webhook(t, "evt_paid_"+o.ID.String(), "payment_intent.succeeded", o.Order), http.StatusOK)
	return o
}

// On payment the buyer gets one mail with one PDF of all the order's
// tickets and a wallet link per ticket; retried webhooks and senders mail
// it once; the order page's resend and PDF download work from its link.
func TestPaidOrderIsMailedOnceWithPDFAndWalletLinks(t *testing.T) {
	t.Parallel()
	s, ev, stalls := walletEnv(t, "deliver")
	o := paidOrder(t, s, ev, map[string]any{"seats": []string{"A-1-3", "A-1-4"}, "tier_id": stalls})
	// The same payment again, then every sender at once.
	s.webhook(t, "evt_paid_again_"+o.ID.String(), "payment_intent.succeeded", o.Order)
	ctx := context.Background()
	parallel(8, func(int) {
		if _, err := s.inv.Service().DrainOutbox(ctx, s.t, 100); err != nil {
			t.Error(err)
		}
	})
	got := s.env.Mail.To("fan@example.com")
	if len(got) != 1 {
		t.Fatalf("%d mails to the buyer, want 1", len(got))
	}
	m := got[0]
	if m.Subject != "Your tickets" || len(m.Attachments) != 1 || m.Attachments[0].ContentType != "application/pdf" {
		t.Fatalf("mail: %q, attachments %+v", m.Subject, m.Attachments)
	}
	pdf := m.Attachments[0].Data
	if !bytes.HasPrefix(pdf, []byte("%PDF-")) || bytes.Count(pdf, []byte("/Type /Page\n")) != 2 {
		t.Fatalf("the PDF does not hold the 2 tickets (%d bytes)", len(pdf))
	}
	if out := os.Getenv("MARQUEE_PDF_OUT"); out != "" {
		_ = os.WriteFile(filepath.Join(out, "order.pdf"), pdf, 0o600)
	}
	if strings.Count(m.HTML, "Add to Apple Wallet") != 2 || strings.Count(m.HTML, "https://pay.google.com/gp/v/save/") != 2 || !strings.Contains(m.Text, o.ID.String()) {
		t.Fatalf("mail body:\n%s\n%s", m.Text, m.HTML)
	}

	// The order page's PDF, from the signed link only.
	path := strings.Replace(o.OrderURL, "/orders/", "/api/v1/orders/", 1)
	pdfPath := strings.Replace(path, "?sig=", "/tickets.pdf?sig=", 1)
	res := s.env.Do(t, http.MethodGet, s.slug, pdfPath, "", nil)
	mustStatus(t, res, http.StatusOK)
	if res.Header.Get("Content-Type") != "application/pdf" || !bytes.HasPrefix(res.Body, []byte("%PDF-")) {
		t.Fatalf("PDF download: %s", res.Header)
	}
	mustStatus(t, s.env.Do(t, http.MethodGet, s.slug, "/api/v1/orders/"+o.ID.String()+"/tickets.pdf?sig=forged", "", nil), http.StatusNotFound)

	// Resend: one new mail per 10 minutes, however often asked.
	resendPath := strings.Replace(path, "?sig=", "/resend?sig=", 1)
	var first, second struct {
		MailID uuid.UUID `json:"mail_id"`
		Queued bool      `json:"queued"`
	}
	res = s.env.Do(t, http.MethodPost, s.slug, resendPath, "", nil)
	mustStatus(t, res, http.StatusAccepted)
	res.JSON(t, &first)
	res = s.env.Do(t, http.MethodPost, s.slug, resendPath, "", nil)
	mustStatus(t, res, http.StatusAccepted)
	res.JSON(t, &second)
	if !first.Queued || second.Queued || first.MailID != second.MailID {
		t.Fatalf("resends: %+v %+v", first, second)
	}
	if _, err := s.inv.Service().DrainOutbox(ctx, s.t, 100); err != nil {
		t.Fatal(err)
	}
	if n := len(s.env.Mail.To("fan@example.com")); n != 2 {
		t.Fatalf("%d mails after a resend, want 2", n)
	}
}

// A pass registered on a device is served again, changed, after the
// event's time moves; a refunded order's passes come back void.
func TestPassUpdatedWhenEventTimeChangesAndVoidedOnRefund(t *testing.T) {
	t.Parallel()
	s, ev, stalls := walletEnv(t, "passes")
	o := paidOrder(t, s, ev, map[string]any{"seats": []string{"A-2-1"}, "tier_id": stalls})
	tickets := ticketsOf(t, s, o)
	serial := tickets[0]

	// The buyer's link downloads the pass; its pass.json carries the token.
	pass := fetchLinkedPass(t, s, o, serial)
	token := pass["authenticationToken"].(string)
	if pass["webServiceURL"] == nil || pass["relevantDate"] == nil || pass["expirationDate"] == nil {
		t.Fatalf("pass: %v", pass)
	}
	base := "/api/v1/wallet/v1"
	reg := base + "/devices/device-1/registrations/" + testPassType + "/" + serial.String()
	apple := func(method, path string, body any, tok string, headers ...string) apptest.Response {
		return s.env.Do(t, method, s.slug, path, "", body, append([]string{"Authorization", "ApplePass " + tok}, headers...)...)
	}
	mustStatus(t, apple(http.MethodPost, reg, map[string]string{"pushToken": "push-1"}, "wrong"), http.StatusUnauthorized)
	mustStatus(t, apple(http.MethodPost, reg, map[string]string{"pushToken": "push-1"}, token), http.StatusCreated)
	again, err := s.env.Try(http.MethodPost, s.slug, reg, "", map[string]string{"pushToken": "push-1"}, "Authorization", "ApplePass "+token)
	if err != nil || again.Status != http.StatusOK {
		t.Fatalf("registered again: %v %d", err, again.Status)
	}
	var upd delivery.Updated
	res := s.env.Do(t, http.MethodGet, s.slug, base+"/devices/device-1/registrations/"+testPassType, "", nil)
	mustStatus(t, res, http.StatusOK)
	res.JSON(t, &upd)
	if len(upd.SerialNumbers) != 1 || upd.LastUpdated == "" {
		t.Fatalf("updated: %+v", upd)
	}
	passPath := base + "/passes/" + testPassType + "/" + serial.String()
	res = apple(http.MethodGet, passPath, nil, token)
	mustStatus(t, res, http.StatusOK)
	lastModified := res.Header.Get("Last-Modified")
	if nm, err := s.env.Try(http.MethodGet, s.slug, passPath, "", nil, "Authorization", "ApplePass "+token, "If-Modified-Since", lastModified); err != nil || nm.Status != http.StatusNotModified {
		t.Fatalf("unchanged pass: %v %d", err, nm.Status)
	}
	// Nothing changed: the device hears of nothing.
	nothing, err := s.env.Try(http.MethodGet, s.slug, base+"/devices/device-1/registrations/"+testPassType+"?passesUpdatedSince="+upd.LastUpdated, "", nil)
	if err != nil || nothing.Status != http.StatusNoContent {
		t.Fatalf("nothing changed: %v %d %s", err, nothing.Status, nothing.Body)
	}

	// The event moves by two hours.
	time.Sleep(1100 * time.Millisecond) // Last-Modified has whole seconds: the change must fall in a later one
	moved := time.Date(2040, 6, 1, 20, 0, 0, 0, time.UTC)
	mustStatus(t, s.do(t, http.MethodPatch, "/api/v1/venues/"+s.venue+"/events/"+ev, map[string]any{
		"starts_at": moved.Format(time.RFC3339), "ends_at": moved.Add(3 * time.Hour).Format(time.RFC3339)}), http.StatusOK)
	res = s.env.Do(t, http.MethodGet, s.slug, base+"/devices/device-1/registrations/"+testPassType+"?passesUpdatedSince="+upd.LastUpdated, "", nil)
	mustStatus(t, res, http.StatusOK)
	var after delivery.Updated
	res.JSON(t, &after)
	if len(after.SerialNumbers) != 1 || after.SerialNumbers[0] != serial.String() || after.LastUpdated <= upd.LastUpdated {
		t.Fatalf("after the move: %+v (before %+v)", after, upd)
	}
	res = apple(http.MethodGet, passPath, nil, token, "If-Modified-Since", lastModified)
	mustStatus(t, res, http.StatusOK)
	updated := passJSON(t, res.Body)
	if updated["relevantDate"] != "2040-06-01T20:00:00Z" || updated["expirationDate"] != "2040-06-02T23:00:00Z" || updated["voided"] == true {
		t.Fatalf("regenerated pass: relevant %v, expires %v", updated["relevantDate"], updated["expirationDate"])
	}
	if !strings.Contains(string(mustJSON(t, updated)), "Friday 1 June 2040, 22:00 CEST") {
		t.Fatalf("the new time is not shown in the venue's zone: %v", updated["eventTicket"])
	}

	// The order is refunded: the pass comes back void, without its code.
	mustStatus(t, s.do(t, http.MethodPost, "/api/v1/orders/"+o.ID.String()+"/refund", map[string]string{"reason": "test"}, "Idempotency-Key", uuid.NewString()), http.StatusOK)
	res = apple(http.MethodGet, passPath, nil, token)
	mustStatus(t, res, http.StatusOK)
	void := passJSON(t, res.Body)
	if void["voided"] != true || void["barcodes"] != nil {
		t.Fatalf("refunded pass: %v", void)
	}
	// Unregistered, the device hears of it no more.
	mustStatus(t, apple(http.MethodDelete, reg, nil, token), http.StatusOK)
	gone, err := s.env.Try(http.MethodGet, s.slug, base+"/devices/device-1/registrations/"+testPassType, "", nil)
	if err != nil || gone.Status != http.StatusNoContent {
		t.Fatalf("after unregistering: %v %d", err, gone.Status)
	}
	// Bad input.
	mustStatus(t, s.env.Do(t, http.MethodGet, s.slug, base+"/devices/device-1/registrations/"+testPassType+"?passesUpdatedSince=yesterday", "", nil), http.StatusBadRequest)
	mustStatus(t, apple(http.MethodGet, base+"/passes/pass.other/"+serial.String(), nil, token), http.StatusNotFound)
	mustStatus(t, apple(http.MethodPost, reg, map[string]string{"pushToken": ""}, token), http.StatusBadRequest)
}

func ticketsOf(t *testing.T, s *shop, o orderOut) []uuid.UUID {
	t.Helper()
	var ids []uuid.UUID
	s.sql(t, func(tx *gorm.DB) error {
		return tx.Raw(`SELECT id FROM inv_tickets WHERE order_id = ? ORDER BY id`, o.ID).Scan(&ids).Error
	})
	return ids
}

func fetchLinkedPass(t *testing.T, s *shop, o orderOut, serial uuid.UUID) map[string]any {
	t.Helper()
	// The link is in the mail's HTML.
	if _, err := s.inv.Service().DrainOutbox(context.Background(), s.t, 100); err != nil {
		t.Fatal(err)
	}
	mails := s.env.Mail.To("fan@example.com")
	if len(mails) == 0 {
		t.Fatal("no mail")
	}
	html := mails[len(mails)-1].HTML
	i := strings.Index(html, "/api/v1/tickets/"+serial.String()+"/wallet/apple?sig=")
	if i < 0 {
		t.Fatalf("no Apple Wallet link for %s in %s", serial, html)
	}
	link := html[i:]
	link = strings.ReplaceAll(link[:strings.IndexByte(link, '"')], "&amp;", "&")
	res := s.env.Do(t, http.MethodGet, s.slug, link, "", nil)
	mustStatus(t, res, http.StatusOK)
	if res.Header.Get("Content-Type") != "application/vnd.apple.pkpass" {
		t.Fatalf("content type %s", res.Header.Get("Content-Type"))
	}
	return passJSON(t, res.Body)
}

func passJSON(t *testing.T, pkpass []byte) map[string]any {
	t.Helper()
	zr, err := zip.NewReader(bytes.NewReader(pkpass), int64(len(pkpass)))
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range zr.File {
		if f.Name == "pass.json" {
			rc, _ := f.Open()
			b, _ := io.ReadAll(rc)
			_ = rc.Close()
			var out map[string]any
			if err := json.Unmarshal(b, &out); err != nil {
				t.Fatal(err)
			}
			return out
		}
	}
	t.Fatal("no pass.json")
	return nil
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
