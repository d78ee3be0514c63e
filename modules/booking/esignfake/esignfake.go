// Package esignfake is a local e-signature provider shaped like DocuSign:
// it takes envelopes at POST /v2.1/accounts/{account}/envelopes (bearer
// token), and when an envelope is completed it delivers a Connect message
// (JSON, SIM format) signed like Connect: base64(HMAC-SHA256(key, raw
// body)) in X-DocuSign-Signature-1. `marquee demo` runs one in process so
// "send for e-signature" works without an account; with AutoComplete every
// signer signs as soon as the envelope arrives.
package esignfake

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"marquee/modules/booking"
)

// Server is a running fake provider.
type Server struct {
	account, token string
	key            []byte
	// AutoComplete has every signer sign a new envelope at once.
	AutoComplete bool
	// OnError, if set, is told of a delivery that failed (the demo logs it).
	OnError func(error)

	ln  net.Listener
	srv *http.Server

	mu        sync.Mutex
	callback  string // the Connect listener's URL on the platform
	hostFor   func(tenant string) string
	envelopes map[string]envelope
	n         int
	wg        sync.WaitGroup
}

type envelope struct {
	def    booking.DocuSignEnvelope
	tenant string
}

// Start listens on addr (e.g. "127.0.0.1:0") for the account, accepting the
// bearer token, signing Connect deliveries with key.
func Start(addr, account, token string, key []byte) (*Server, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	s := &Server{account: account, token: token, key: key, ln: ln, envelopes: map[string]envelope{}}
	s.srv = &http.Server{Handler: http.HandlerFunc(s.serve), ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = s.srv.Serve(ln) }()
	return s, nil
}

// URL is the provider's REST base (MARQUEE_ESIGN_URL).
func (s *Server) URL() string { return "http://" + s.ln.Addr().String() }

// DeliverTo sets where Connect messages go: the platform's listener URL, and
// the Host header naming the chain an envelope came from.
func (s *Server) DeliverTo(callback string, hostFor func(tenant string) string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.callback, s.hostFor = callback, hostFor
}

// Close stops the server after the deliveries under way.
func (s *Server) Close() error {
	err := s.srv.Close()
	s.wg.Wait()
	return err
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost || r.URL.Path != "/v2.1/accounts/"+s.account+"/envelopes" || r.Header.Get("Authorization") != "Bearer "+s.token {
		http.Error(w, `{"errorCode":"INVALID_REQUEST"}`, http.StatusBadRequest)
		return
	}
	var def booking.DocuSignEnvelope
	if err := json.NewDecoder(io.LimitReader(r.Body, 32<<20)).Decode(&def); err != nil || len(def.Documents) != 1 || len(def.Recipients.Signers) == 0 {
		http.Error(w, `{"errorCode":"INVALID_REQUEST_BODY"}`, http.StatusBadRequest)
		return
	}
	tenant := ""
	for _, f := range def.CustomFields.TextCustomFields {
		if f.Name == booking.TenantCustomField {
			tenant = f.Value
		}
	}
	s.mu.Lock()
	s.n++
	id := fmt.Sprintf("4b1e7a0c-0000-4000-8000-%012d", s.n)
	s.envelopes[id] = envelope{def: def, tenant: tenant}
	s.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	_, _ = fmt.Fprintf(w, `{"envelopeId":%q,"status":"sent","statusDateTime":%q}`, id, time.Now().UTC().Format(time.RFC3339))
	if s.AutoComplete {
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			// Sent while the platform may not have recorded the envelope
			// yet: its 404 is retried, as Connect retries.
			if err := s.Complete(context.Background(), id); err != nil && s.OnError != nil {
				s.OnError(err)
			}
		}()
	}
}

// Complete has every signer of the envelope sign and delivers
// envelope-completed to the platform, retrying a few times as Connect does.
func (s *Server) Complete(ctx context.Context, id string) error {
	s.mu.Lock()
	env, ok := s.envelopes[id]
	callback, hostFor := s.callback, s.hostFor
	s.mu.Unlock()
	if !ok {
		return fmt.Errorf("esignfake: no envelope %s", id)
	}
	if callback == "" {
		return errors.New("esignfake: no Connect listener set")
	}
	var msg booking.ConnectMessage
	now := time.Now().UTC().Format(time.RFC3339)
	msg.Event, msg.APIVersion, msg.GeneratedDateTime = "envelope-completed", "v2.1", now
	msg.URI = "/restapi/v2.1/accounts/" + s.account + "/envelopes/" + id
	msg.Data.AccountID, msg.Data.EnvelopeID = s.account, id
	msg.Data.EnvelopeSummary.Status = "completed"
	for _, sg := range env.def.Recipients.Signers {
		sg.Status, sg.SignedDateTime = "completed", now
		msg.Data.EnvelopeSummary.Recipients.Signers = append(msg.Data.EnvelopeSummary.Recipients.Signers, sg)
	}
	body, err := json.Marshal(msg)
	if err != nil {
		return err
	}
	var last error
	for attempt := 0; attempt < 5; attempt++ {
		if attempt > 0 {
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(time.Duration(attempt) * time.Second):
			}
		}
		msg.RetryCount = attempt
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, callback, bytes.NewReader(body))
		if err != nil {
			return err
		}
		if hostFor != nil {
			req.Host = hostFor(env.tenant)
		}
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("X-DocuSign-Signature-1", booking.ConnectSignature(s.key, body))
		req.Header.Set("x-authorization-digest", "HMACSHA256")
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			last = err
			continue
		}
		b, _ := io.ReadAll(io.LimitReader(res.Body, 4096))
		_ = res.Body.Close()
		if res.StatusCode/100 == 2 {
			return nil
		}
		last = fmt.Errorf("esignfake: Connect delivery of %s answered %d: %s", id, res.StatusCode, strings.TrimSpace(string(b)))
	}
	return last
}
