// Package fakepos is a local stand-in for a Square point of sale: it builds
// payment and refund webhooks as Square delivers them (envelope, object
// versions, x-square-hmacsha256-signature over the notification URL and the
// raw body) and sends them. Tests and the demo seed drive the ops module's
// real webhook path with it.
package fakepos

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
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// POS is one merchant account with a webhook subscription.
type POS struct {
	MerchantID      string
	SignatureKey    string
	NotificationURL string // what the subscription signs, byte for byte
	// Target is where Send posts (the notification URL itself unless a
	// test server stands in for the public host); Host overrides the
	// request's Host header.
	Target string
	Host   string
	Client *http.Client
	// AccessToken is what ListPayments (Handler) requires as its bearer token.
	AccessToken string

	seq atomic.Int64

	mu       sync.Mutex
	payments map[string]Payment // the latest version of every payment built, for ListPayments
	refunds  map[string]Payment // and of every refund, for ListPaymentRefunds
}

// Delivery is one signed webhook.
type Delivery struct {
	EventID   string
	Type      string
	Body      []byte
	Signature string

	objectJSON []byte
}

// Money is an amount in minor units.
type Money struct {
	Amount   int64  `json:"amount"`
	Currency string `json:"currency"`
}

// Payment is a Square payment (or, with PaymentID set, a refund) object.
type Payment struct {
	ID          string    `json:"id"`
	Status      string    `json:"status"` // APPROVED, COMPLETED, CANCELED, FAILED; refunds PENDING, COMPLETED
	Version     int64     `json:"version"`
	AmountMoney Money     `json:"amount_money"`
	TotalMoney  *Money    `json:"total_money,omitempty"`
	LocationID  string    `json:"location_id"`
	OrderID     string    `json:"order_id,omitempty"`
	PaymentID   string    `json:"payment_id,omitempty"`
	CreatedAt   time.Time `json:"created_at"`
	UpdatedAt   time.Time `json:"updated_at"`
}

// Sign is Square's signature of a body delivered to notificationURL.
func Sign(key, notificationURL string, body []byte) string {
	m := hmac.New(sha256.New, []byte(key))
	m.Write([]byte(notificationURL))
	m.Write(body)
	return base64.StdEncoding.EncodeToString(m.Sum(nil))
}

// EventID returns a new unique delivery id.
func (p *POS) EventID() string {
	return fmt.Sprintf("evt-%s-%d-%d", p.MerchantID, time.Now().UnixNano(), p.seq.Add(1))
}

// PaymentEvent builds payment.created (version 1) or payment.updated.
func (p *POS) PaymentEvent(pay Payment) Delivery {
	typ := "payment.updated"
	if pay.Version <= 1 {
		typ = "payment.created"
	}
	if pay.TotalMoney == nil {
		pay.TotalMoney = &pay.AmountMoney
	}
	d := p.build(typ, "payment", pay)
	p.keep(&p.payments, pay, d)
	return d
}

// RefundEvent builds refund.created (version 1) or refund.updated.
func (p *POS) RefundEvent(ref Payment) Delivery {
	typ := "refund.updated"
	if ref.Version <= 1 {
		typ = "refund.created"
	}
	d := p.build(typ, "refund", ref)
	p.keep(&p.refunds, ref, d)
	return d
}

// keep records the latest version of an object, as the account's lists
// show it, whether its webhook is ever delivered or not.
func (p *POS) keep(into *map[string]Payment, obj Payment, d Delivery) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if *into == nil {
		*into = map[string]Payment{}
	}
	if cur, ok := (*into)[obj.ID]; !ok || obj.Version > cur.Version {
		var kept Payment
		_ = json.Unmarshal(d.objectJSON, &kept) // the object as sent, times filled in
		if ok {
			kept.CreatedAt = cur.CreatedAt // an object keeps the time it was made
		}
		(*into)[obj.ID] = kept
	}
}

// Refund is a refund as Square's ListPaymentRefunds shows it: unlike the
// webhook's object it carries no version, only when it last changed.
type Refund struct {
	ID          string    `json:"id"`
	Status      string    `json:"status"` // PENDING, COMPLETED, REJECTED, FAILED
	AmountMoney Money     `json:"amount_money"`
	LocationID  string    `json:"location_id"`
	PaymentID   string    `json:"payment_id"`
	OrderID     string    `json:"order_id,omitempty"`
	CreatedAt   time.Time `json:"created_at"`
	UpdatedAt   time.Time `json:"updated_at"`
}

// Handler serves Square's ListPayments (GET /v2/payments) and
// ListPaymentRefunds (GET /v2/refunds), with begin_time, end_time,
// sort_order, limit and cursor and a bearer token: every payment or refund
// this POS built, webhook delivered or not, at its latest version, by
// created_at; an opaque cursor pages on. Refunds are listed as Square lists
// them, without a version (Refund).
func (p *POS) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v2/payments", func(w http.ResponseWriter, r *http.Request) {
		p.serveList(w, r, "payments", &p.payments, func(o Payment) any { return o })
	})
	mux.HandleFunc("GET /v2/refunds", func(w http.ResponseWriter, r *http.Request) {
		p.serveList(w, r, "refunds", &p.refunds, func(o Payment) any {
			return Refund{ID: o.ID, Status: o.Status, AmountMoney: o.AmountMoney, LocationID: o.LocationID, PaymentID: o.PaymentID,
				OrderID: o.OrderID, CreatedAt: o.CreatedAt, UpdatedAt: o.UpdatedAt}
		})
	})
	return mux
}

// serveList answers one page of a list; objects is read under the lock.
func (p *POS) serveList(w http.ResponseWriter, r *http.Request, name string, objects *map[string]Payment, shape func(Payment) any) {
	if r.Header.Get("Authorization") != "Bearer "+p.AccessToken || p.AccessToken == "" {
		w.WriteHeader(http.StatusUnauthorized)
		_, _ = w.Write([]byte(`{"errors":[{"category":"AUTHENTICATION_ERROR","code":"UNAUTHORIZED"}]}`))
		return
	}
	q := r.URL.Query()
	begin, end := time.Time{}, time.Now().Add(time.Hour)
	for field, into := range map[string]*time.Time{"begin_time": &begin, "end_time": &end} {
		if v := q.Get(field); v != "" {
			t, err := time.Parse(time.RFC3339, v)
			if err != nil {
				http.Error(w, `{"errors":[{"code":"BAD_REQUEST","field":"`+field+`"}]}`, http.StatusBadRequest)
				return
			}
			*into = t
		}
	}
	limit, _ := strconv.Atoi(q.Get("limit"))
	if limit <= 0 || limit > 100 {
		limit = 100
	}
	from, _ := strconv.Atoi(q.Get("cursor"))
	p.mu.Lock()
	var list []Payment
	for _, o := range *objects {
		if !o.CreatedAt.Before(begin) && o.CreatedAt.Before(end) {
			list = append(list, o)
		}
	}
	p.mu.Unlock()
	slices.SortFunc(list, func(a, b Payment) int {
		if c := a.CreatedAt.Compare(b.CreatedAt); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
	page := []any{}
	if from < len(list) {
		for _, o := range list[from:min(from+limit, len(list))] {
			page = append(page, shape(o))
		}
	}
	out := map[string]any{name: page}
	if from+limit < len(list) {
		out["cursor"] = strconv.Itoa(from + limit)
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(out)
}

func (p *POS) build(typ, kind string, obj Payment) Delivery {
	id := p.EventID()
	if obj.UpdatedAt.IsZero() {
		obj.UpdatedAt = time.Now().UTC()
	}
	if obj.CreatedAt.IsZero() {
		obj.CreatedAt = obj.UpdatedAt
	}
	env := map[string]any{
		"merchant_id": p.MerchantID, "type": typ, "event_id": id, "created_at": time.Now().UTC().Format(time.RFC3339Nano),
		"data": map[string]any{"type": kind, "id": obj.ID, "object": map[string]any{kind: obj}},
	}
	body, err := json.Marshal(env)
	if err != nil {
		panic(err) // plain values always encode
	}
	objJSON, _ := json.Marshal(obj)
	return Delivery{EventID: id, Type: typ, Body: body, Signature: Sign(p.SignatureKey, p.NotificationURL, body), objectJSON: objJSON}
}

// Send posts a delivery as Square would, returning the status and body.
func (p *POS) Send(ctx context.Context, d Delivery) (int, []byte, error) {
	target := p.Target
	if target == "" {
		target = p.NotificationURL
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, target, bytes.NewReader(d.Body))
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("x-square-hmacsha256-signature", d.Signature)
	req.Header.Set("square-environment", "Sandbox")
	req.Header.Set("Square-Initial-Delivery-Timestamp", time.Now().UTC().Format(time.RFC3339))
	if p.Host != "" {
		req.Host = p.Host
	}
	client := p.Client
	if client == nil {
		client = http.DefaultClient
	}
	res, err := client.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	return res.StatusCode, body, err
}
