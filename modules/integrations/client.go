package integrations

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// Backoff bounds the retries of one call: at most Attempts tries, waits
// doubling from Base (with jitter, or the provider's Retry-After when it
// sends one), and never more than Budget waited in all. A call that is
// still refused when the budget is spent fails; the connector then backs
// off until the next poll.
type Backoff struct {
	Attempts int
	Base     time.Duration
	Budget   time.Duration
}

// DefaultBackoff is what connectors use: 4 tries within 5 s.
var DefaultBackoff = Backoff{Attempts: 4, Base: 250 * time.Millisecond, Budget: 5 * time.Second}

// apiError is a provider's refusal, read from its own error body
// (Ticketmaster's Apigee fault, Eventbrite's error/error_description).
type apiError struct {
	Status     int
	Code       string
	Text       string
	RetryAfter time.Duration
}

func (e *apiError) Error() string {
	return fmt.Sprintf("%d %s: %s", e.Status, e.Code, e.Text)
}

func (e *apiError) transient() bool {
	return e.Status == http.StatusTooManyRequests || e.Status >= 500
}

// quota is what Ticketmaster's Ratelimit-Quota-* headers said last.
type quota struct {
	Allowed, Available int
	Known              bool
}

// client calls one provider for one connector. Its credential is used for
// the request only and never appears in an error (URLs are redacted).
type client struct {
	provider string
	base     *url.URL
	secret   string
	http     *http.Client
	limiter  *rate.Limiter
	backoff  Backoff
	calls    int
	quota    quota
	// reserveDiscovery takes one of the day's Discovery calls before each
	// is made (nil: not a Ticketmaster connector).
	reserveDiscovery func(ctx context.Context) error
}

// limiters keep each connector's request rate across calls (Discovery:
// about 5 requests a second), per process.
var limiters sync.Map

func limiterFor(id string, perSecond float64) *rate.Limiter {
	l, _ := limiters.LoadOrStore(id, rate.NewLimiter(rate.Limit(perSecond), int(perSecond)))
	return l.(*rate.Limiter)
}

func (c *client) url(ref string) (*url.URL, error) {
	u, err := c.base.Parse(ref)
	if err != nil {
		return nil, err
	}
	if u.Host != c.base.Host || u.Scheme != c.base.Scheme {
		return nil, fmt.Errorf("refusing to send credentials to %s", u.Host)
	}
	return u, nil
}

// do calls method ref (relative to the base, or absolute on its host) and
// decodes a 2xx JSON answer into out.
func (c *client) do(ctx context.Context, method, ref string, body, out any) error {
	u, err := c.url(ref)
	if err != nil {
		return err
	}
	if c.provider == ProviderTicketmaster {
		q := u.Query()
		q.Set("apikey", c.secret) // Discovery takes the key as a query parameter
		u.RawQuery = q.Encode()
	}
	var raw []byte
	if body != nil {
		if raw, err = json.Marshal(body); err != nil {
			return err
		}
	}
	start := time.Now()
	b := c.backoff
	for attempt := 1; ; attempt++ {
		if c.limiter != nil {
			if err := c.limiter.Wait(ctx); err != nil {
				return err
			}
		}
		if c.reserveDiscovery != nil && strings.Contains(u.Path, "/discovery/") {
			if err := c.reserveDiscovery(ctx); err != nil {
				return err
			}
		}
		err = c.once(ctx, method, u, raw, out)
		var ae *apiError
		if err == nil || !errors.As(err, &ae) || !ae.transient() || attempt >= b.Attempts {
			return err
		}
		wait := ae.RetryAfter
		if wait <= 0 || wait > b.Budget {
			wait = b.Base << (attempt - 1)
			wait += time.Duration(rand.Int64N(int64(wait)/4 + 1))
		}
		if time.Since(start)+wait > b.Budget {
			return err
		}
		select {
		case <-time.After(wait):
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

func (c *client) once(ctx context.Context, method string, u *url.URL, raw []byte, out any) error {
	var rd io.Reader
	if raw != nil {
		rd = bytes.NewReader(raw)
	}
	req, err := http.NewRequestWithContext(ctx, method, u.String(), rd)
	if err != nil {
		return errors.New("integrations: cannot build the request")
	}
	req.Header.Set("Accept", "application/json")
	if raw != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.provider == ProviderEventbrite {
		req.Header.Set("Authorization", "Bearer "+c.secret)
	}
	c.calls++
	res, err := c.http.Do(req)
	if err != nil {
		// url.Error quotes the URL, key and all: keep only the cause.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return fmt.Errorf("%s %s: %w", method, u.Path, err)
	}
	defer res.Body.Close()
	c.readQuota(res.Header)
	data, err := io.ReadAll(io.LimitReader(res.Body, 4<<20))
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, u.Path, err)
	}
	if res.StatusCode >= 300 {
		return c.refusal(res, data)
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(data, out); err != nil {
		return fmt.Errorf("%s %s: unreadable answer: %w", method, u.Path, err)
	}
	return nil
}

func (c *client) readQuota(h http.Header) {
	allowed, err1 := strconv.Atoi(h.Get("Ratelimit-Quota-Allowed"))
	avail, err2 := strconv.Atoi(h.Get("Ratelimit-Quota-Available"))
	if err1 == nil && err2 == nil {
		c.quota = quota{Allowed: allowed, Available: avail, Known: true}
	}
}

func (c *client) refusal(res *http.Response, data []byte) error {
	e := &apiError{Status: res.StatusCode}
	if s, err := strconv.Atoi(res.Header.Get("Retry-After")); err == nil {
		e.RetryAfter = time.Duration(s) * time.Second
	}
	var tm struct {
		Fault struct {
			Faultstring string `json:"faultstring"`
			Detail      struct {
				Errorcode string `json:"errorcode"`
			} `json:"detail"`
		} `json:"fault"`
	}
	var eb struct {
		Error       string `json:"error"`
		Description string `json:"error_description"`
	}
	switch {
	case json.Unmarshal(data, &tm) == nil && tm.Fault.Detail.Errorcode != "":
		e.Code, e.Text = tm.Fault.Detail.Errorcode, tm.Fault.Faultstring
	case json.Unmarshal(data, &eb) == nil && eb.Error != "":
		e.Code, e.Text = eb.Error, eb.Description
	default:
		e.Code, e.Text = "http_"+strconv.Itoa(res.StatusCode), strings.TrimSpace(string(data[:min(len(data), 200)]))
	}
	// A provider never echoes our key, but the text is stored and shown:
	// make sure.
	e.Text = strings.ReplaceAll(e.Text, c.secret, "[redacted]")
	return e
}
