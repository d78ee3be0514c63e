package booking_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"marquee/modules/booking"
)

// fakeESign is a local e-signature provider following DocuSign's shapes:
// it takes envelopes at POST /v2.1/accounts/{account}/envelopes, and when a
// test has the signers sign, it delivers a Connect message (JSON, SIM
// format) to the callback, signed like Connect: base64(HMAC-SHA256(key, raw
// body)) in X-DocuSign-Signature-1.
type fakeESign struct {
	srv       *httptest.Server
	key       []byte
	callback  string // the webhook's URL
	host      string // the chain's host name
	mu        sync.Mutex
	envelopes map[string]booking.DocuSignEnvelope
	n         int
}

func newFakeESign(t *testing.T, key []byte) *fakeESign {
	f := &fakeESign{key: key, envelopes: map[string]booking.DocuSignEnvelope{}}
	f.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || !strings.HasPrefix(r.URL.Path, "/v2.1/accounts/acct-1/envelopes") ||
			r.Header.Get("Authorization") != "Bearer fake-token" {
			http.Error(w, `{"errorCode":"INVALID_REQUEST"}`, http.StatusBadRequest)
			return
		}
		var env booking.DocuSignEnvelope
		if err := json.NewDecoder(r.Body).Decode(&env); err != nil || len(env.Documents) != 1 || len(env.Recipients.Signers) != 2 {
			http.Error(w, `{"errorCode":"INVALID_REQUEST_BODY"}`, http.StatusBadRequest)
			return
		}
		f.mu.Lock()
		f.n++
		id := fmt.Sprintf("4b1e7a0c-0000-4000-8000-%012d", f.n)
		f.envelopes[id] = env
		f.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		_, _ = fmt.Fprintf(w, `{"envelopeId":%q,"status":"sent","statusDateTime":%q}`, id, time.Now().UTC().Format(time.RFC3339))
	}))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeESign) provider() booking.DocuSign {
	return booking.DocuSign{BaseURL: f.srv.URL, AccountID: "acct-1", Token: "fake-token"}
}

// documentSHA256 is the digest of the PDF the envelope carried.
func (f *fakeESign) documentSHA256(t *testing.T, id string) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	env, ok := f.envelopes[id]
	if !ok {
		t.Fatalf("the provider has no envelope %s", id)
	}
	b, err := base64.StdEncoding.DecodeString(env.Documents[0].DocumentBase64)
	if err != nil {
		t.Fatal(err)
	}
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// message is the Connect message the provider sends once the given roles signed.
func (f *fakeESign) message(t *testing.T, id, event string, roles ...string) []byte {
	f.mu.Lock()
	env := f.envelopes[id]
	f.mu.Unlock()
	var msg booking.ConnectMessage
	msg.Event, msg.APIVersion, msg.GeneratedDateTime = event, "v2.1", time.Now().UTC().Format(time.RFC3339)
	msg.URI = "/restapi/v2.1/accounts/acct-1/envelopes/" + id
	msg.Data.AccountID, msg.Data.EnvelopeID = "acct-1", id
	msg.Data.EnvelopeSummary.Status = "sent"
	if event == "envelope-completed" {
		msg.Data.EnvelopeSummary.Status = "completed"
	}
	for _, s := range env.Recipients.Signers {
		for _, r := range roles {
			if s.RoleName == r {
				s.Status, s.SignedDateTime = "completed", time.Now().UTC().Format(time.RFC3339)
			}
		}
		msg.Data.EnvelopeSummary.Recipients.Signers = append(msg.Data.EnvelopeSummary.Recipients.Signers, s)
	}
	b, err := json.Marshal(msg)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// deliver posts a Connect message with the given signature header value
// ("" signs it with the provider's key).
func (f *fakeESign) deliver(t *testing.T, body []byte, signature string) *http.Response {
	if signature == "" {
		signature = booking.ConnectSignature(f.key, body)
	}
	req, err := http.NewRequest(http.MethodPost, f.callback, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Host = f.host
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-DocuSign-Signature-1", signature)
	req.Header.Set("x-authorization-digest", "HMACSHA256")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = res.Body.Close() })
	return res
}
