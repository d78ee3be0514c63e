package limits

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"time"

	"github.com/dchest/captcha"
	"github.com/redis/go-redis/v9"

	"marquee/app"
	"marquee/tenants"
)

// The CAPTCHA behind a challenge is self-hosted: no outside service is
// asked. An image of six distorted digits (github.com/dchest/captcha draws
// it) is kept in Redis with the buyer and device it was shown to, for
// CaptchaTTL. The answer comes back with the order and is checked here:
// the challenge is taken out of Redis whatever the answer (GETDEL: one try
// per image, so guessing costs a new image each time), must be the same
// buyer's and device's, and a used one is remembered to name a replay.
const (
	CaptchaTTL    = 5 * time.Minute
	captchaDigits = 6
)

// CaptchaChallenge is what the buyer is shown.
type CaptchaChallenge struct {
	ID        string    `json:"id"`
	Image     string    `json:"image"` // a data: URL of the PNG
	ExpiresAt time.Time `json:"expires_at"`
}

// CaptchaSolution is the buyer's answer, sent back with the order.
type CaptchaSolution struct {
	ID     string `json:"id"`
	Answer string `json:"answer"`
}

type storedCaptcha struct {
	Digits string `json:"digits"` // "0"–"9" characters
	Buyer  string `json:"buyer"`
	Device string `json:"device"`
}

func (s *Service) captchaKey(t tenants.Tenant, id string) string {
	return s.d.App.RedisKey("captcha", t.Slug, id)
}

func (s *Service) captchaUsedKey(t tenants.Tenant, id string) string {
	return s.d.App.RedisKey("captcha-used", t.Slug, id)
}

// NewCaptcha makes a challenge bound to a buyer and their device.
func (s *Service) NewCaptcha(ctx context.Context, t tenants.Tenant, buyer, device string) (CaptchaChallenge, error) {
	raw := make([]byte, 16)
	_, _ = rand.Read(raw)
	id := base64.RawURLEncoding.EncodeToString(raw)
	digits := captcha.RandomDigits(captchaDigits)
	text := make([]byte, len(digits))
	for i, d := range digits {
		text[i] = '0' + d
	}
	stored, _ := json.Marshal(storedCaptcha{Digits: string(text), Buyer: buyer, Device: device})
	if err := s.d.App.Redis.Set(ctx, s.captchaKey(t, id), stored, CaptchaTTL).Err(); err != nil {
		return CaptchaChallenge{}, app.Unavailable("captcha_unavailable", time.Second, "the check could not be prepared; try again")
	}
	var png bytes.Buffer
	if _, err := captcha.NewImage(id, digits, 240, 80).WriteTo(&png); err != nil {
		return CaptchaChallenge{}, err
	}
	return CaptchaChallenge{ID: id, Image: "data:image/png;base64," + base64.StdEncoding.EncodeToString(png.Bytes()),
		ExpiresAt: s.d.App.Now().Add(CaptchaTTL).UTC()}, nil
}

// SolveCaptcha checks an answer for the buyer and device, once. A refusal
// carries a fresh challenge for the next try.
func (s *Service) SolveCaptcha(ctx context.Context, t tenants.Tenant, buyer, device string, sol CaptchaSolution) error {
	refuse := func(e *app.Error) error {
		if ch, err := s.NewCaptcha(ctx, t, buyer, device); err == nil {
			e = e.With("captcha", ch)
		}
		return e
	}
	if len(sol.ID) != 22 || len(sol.Answer) > 32 {
		return refuse(app.Forbidden("captcha_invalid", "the answer does not match the check shown; try the new one"))
	}
	raw, err := s.d.App.Redis.GetDel(ctx, s.captchaKey(t, sol.ID)).Bytes()
	if errors.Is(err, redis.Nil) {
		if n, _ := s.d.App.Redis.Exists(ctx, s.captchaUsedKey(t, sol.ID)).Result(); n > 0 {
			return refuse(app.Forbidden("captcha_replayed", "this check was answered already; answer the new one"))
		}
		return refuse(app.Forbidden("captcha_expired", "this check has expired; answer the new one"))
	}
	if err != nil {
		return app.Unavailable("captcha_unavailable", time.Second, "the answer could not be checked; try again")
	}
	_ = s.d.App.Redis.Set(ctx, s.captchaUsedKey(t, sol.ID), "1", 2*CaptchaTTL).Err()
	var st storedCaptcha
	if err := json.Unmarshal(raw, &st); err != nil {
		return err
	}
	answer := strings.Join(strings.Fields(sol.Answer), "")
	bound := st.Buyer == buyer && st.Device == device
	if !bound || subtle.ConstantTimeCompare([]byte(answer), []byte(st.Digits)) != 1 {
		return refuse(app.Forbidden("captcha_invalid", "the answer does not match the check shown; try the new one"))
	}
	return nil
}
