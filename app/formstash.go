package app

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"regexp"
	"time"

	"github.com/gin-gonic/gin"
)

// formStashTTL is how long a refused form waits for the page it was sent
// back to.
const formStashTTL = 15 * time.Minute

var formKeyPattern = regexp.MustCompile(`^[A-Za-z0-9_-]{22}$`)

// formOwner ties a stashed form to the session that sent it, so a key seen
// by someone else opens nothing.
func formOwner(g *gin.Context) string {
	if p := PrincipalOf(g); p.Kind != "" {
		return p.SessionID.String()
	}
	return "anonymous"
}

// StashForm keeps a refused form submission (what was typed and what was
// wrong) for the page the browser is redirected to, and returns the key
// that page reads it with: every portal form answers a POST with a
// redirect (post/redirect/get), so reloading never sends it again. An
// empty key means it could not be kept; the page then shows a fresh form.
func (c *Core) StashForm(g *gin.Context, v any) string {
	body, err := json.Marshal(v)
	if err != nil {
		return ""
	}
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	key := base64.RawURLEncoding.EncodeToString(b)
	if err := c.a.Redis.Set(g.Request.Context(), c.a.RedisKey("form", formOwner(g), key), body, formStashTTL).Err(); err != nil {
		c.a.Log.Warn("form not stashed", "err", err)
		return ""
	}
	return key
}

// TakeForm reads back what StashForm kept under key (a reload shows it again).
func (c *Core) TakeForm(g *gin.Context, key string, dst any) bool {
	if !formKeyPattern.MatchString(key) {
		return false
	}
	body, err := c.a.Redis.Get(g.Request.Context(), c.a.RedisKey("form", formOwner(g), key)).Bytes()
	if err != nil {
		return false
	}
	return json.Unmarshal(body, dst) == nil
}
