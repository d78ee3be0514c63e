package app

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"math/bits"
	"net/netip"
	"slices"
	"time"

	"github.com/google/uuid"
	"github.com/redis/go-redis/v9"
	"gorm.io/gorm"

	"marquee/tenants"
)

// Sign-in throttling follows OWASP's guidance against both guessing and
// lock-out: failures are counted per (account, client address), per account
// from every address, and per address over every account, each with a delay
// that doubles with every failure past a free allowance. A lock applies to
// the pair that failed, so an attacker who knows an owner's e-mail slows
// down only their own address; the owner, from an address without recent
// failures on the account, still signs in at once.
const (
	// signInWindow is how long failures are remembered after the last one.
	signInWindow = time.Hour
	// signInBaseDelay is the first delay once an allowance is used up; each
	// further failure doubles it, up to signInMaxDelay.
	signInBaseDelay = 2 * time.Second
	signInMaxDelay  = 15 * time.Minute
	// Free failures per (account, address), per account from every address
	// (then only addresses that themselves failed on it are slowed down),
	// and per address over every account (password spraying).
	signInFreePerPair    = 5
	signInFreePerAccount = 20
	signInFreePerAddress = 30
	// signInRedisTimeout bounds how long a sign-in waits for the throttle.
	signInRedisTimeout = time.Second
)

// signInAttemptScript decides an attempt and, if it may go ahead, counts it
// as a failure at once (the success path takes it back). Counting before the
// password check, in one atomic step, means parallel guesses cannot all
// pass the check before any of them is recorded. Times are the caller's
// clock, so a lock is decided by the application's time, not Redis's TTLs
// (which only collect garbage).
//
// KEYS: pair, account, address. ARGV: now, window, base, max (ms), the three
// allowances, the keys' TTL (ms). Returns {0, wait ms} when refused, or
// {1, pair, account, address failures} counting this attempt.
var signInAttemptScript = redis.NewScript(`
local now, window, base, maxd = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local free = {tonumber(ARGV[5]), tonumber(ARGV[6]), tonumber(ARGV[7])}
local ttl = tonumber(ARGV[8])
local n, last = {}, {}
for i = 1, 3 do
  local v = redis.call('HMGET', KEYS[i], 'n', 'last')
  n[i], last[i] = tonumber(v[1]) or 0, tonumber(v[2]) or 0
  if now - last[i] > window then n[i] = 0 end
end
local function locked_until(i)
  if n[i] < free[i] then return 0 end
  local d = base * 2 ^ math.min(n[i] - free[i], 40)
  if d > maxd then d = maxd end
  return last[i] + d
end
local untl = math.max(locked_until(1), locked_until(3))
if n[1] > 0 then untl = math.max(untl, locked_until(2)) end
if untl > now then return {0, untl - now} end
for i = 1, 3 do
  redis.call('HSET', KEYS[i], 'n', n[i] + 1, 'last', now)
  redis.call('PEXPIRE', KEYS[i], ttl)
end
return {1, n[1] + 1, n[2] + 1, n[3] + 1}
`)

// signInSuccessScript takes back the failure an attempt counted: the pair
// starts afresh, the account and address counts lose one.
var signInSuccessScript = redis.NewScript(`
redis.call('DEL', KEYS[1])
for i = 2, 3 do
  local n = tonumber(redis.call('HGET', KEYS[i], 'n'))
  if n and n > 0 then redis.call('HSET', KEYS[i], 'n', n - 1) end
end
return 1
`)

// signInTag is the hash tag of every sign-in throttle key
// ("<deployment>:{login}:pair:…"): one attempt's script reads and counts
// three keys at once, and an address's key spans every account, so no finer
// tag keeps all three together on a Redis Cluster. Sign-ins come at human
// rates; one slot carries them easily.
//
// The keys were "<deployment>:login:…" before: the rename forgets, once at
// the deploy, failures of the last hour, as a Redis restart does (the
// throttle holds nothing else).
const signInTag = "{login}"

// signInAttempt is one sign-in going through the throttle.
type signInAttempt struct {
	keys []string
	// Account is a short hash naming the account in logs without its e-mail.
	Account  string
	ClientIP string
	counted  bool
	// Failures counting this attempt, should it fail.
	Pair, AccountTotal, Address int64
}

// beginSignIn refuses an attempt the throttle holds back (a 429 with
// Retry-After) or counts it. Without Redis, sign-ins go ahead unthrottled:
// Redis is an accelerator, and the password check itself still holds.
func (a *App) beginSignIn(ctx context.Context, scope, email, clientIP string) (*signInAttempt, error) {
	at := a.signInKeys(scope, email, clientIP)
	ctx, cancel := context.WithTimeout(ctx, signInRedisTimeout)
	defer cancel()
	res, err := signInAttemptScript.Run(ctx, a.Redis, at.keys,
		a.Now().UnixMilli(), signInWindow.Milliseconds(), signInBaseDelay.Milliseconds(), signInMaxDelay.Milliseconds(),
		signInFreePerPair, signInFreePerAccount, signInFreePerAddress, (signInWindow + signInMaxDelay).Milliseconds()).Int64Slice()
	if err != nil || len(res) < 2 {
		a.Log.Warn("sign-in throttle unavailable; going ahead unthrottled", "err", err)
		return at, nil
	}
	if res[0] == 0 {
		wait := time.Duration(res[1]) * time.Millisecond
		secs := int((wait + time.Second - 1) / time.Second)
		return nil, TooMany(fmt.Sprintf("too many failed sign-ins from this address; try again in %s", retryText(secs)), secs)
	}
	at.counted, at.Pair, at.AccountTotal, at.Address = true, res[1], res[2], res[3]
	return at, nil
}

// signInKeys names an attempt's account and its three throttle keys
// (pair, account, address), all under signInTag.
func (a *App) signInKeys(scope, email, clientIP string) *signInAttempt {
	sum := sha256.Sum256([]byte(scope + "\x00" + email))
	acct := hex.EncodeToString(sum[:12])
	source := addressBlock(clientIP)
	return &signInAttempt{Account: acct, ClientIP: clientIP, keys: []string{
		a.RedisKey(signInTag, "pair", acct, source),
		a.RedisKey(signInTag, "account", acct),
		a.RedisKey(signInTag, "ip", source),
	}}
}

func retryText(secs int) string {
	if secs < 120 {
		return fmt.Sprintf("%d seconds", secs)
	}
	return fmt.Sprintf("%d minutes", (secs+59)/60)
}

// signInUndone takes back the count of an attempt that could not be
// checked (the database failed): an outage must not throttle the people
// who tried to sign in during it.
func (a *App) signInUndone(ctx context.Context, at *signInAttempt) { a.signInSucceeded(ctx, at) }

// signInSucceeded takes back the failure the attempt counted.
func (a *App) signInSucceeded(ctx context.Context, at *signInAttempt) {
	if !at.counted {
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), signInRedisTimeout)
	defer cancel()
	if err := signInSuccessScript.Run(ctx, a.Redis, at.keys).Err(); err != nil {
		a.Log.Warn("sign-in throttle not reset", "err", err)
	}
}

// alarming reports whether n failures is a point to alert at: the
// allowance used up, then each doubling of it (so an attack that goes on
// raises a handful of notices, not one per guess).
func alarming(n, free int64) bool {
	if n < free || n%free != 0 {
		return false
	}
	return bits.OnesCount64(uint64(n/free)) == 1
}

// signInFailed alerts on repeated failures: a warning in the log (the
// account by hash, never its e-mail or the password) and, for a staff
// account that exists, a security notice it is shown on its next sign-in.
func (a *App) signInFailed(ctx context.Context, t *tenants.Tenant, userID uuid.UUID, at *signInAttempt) {
	if !at.counted {
		return
	}
	var detail string
	switch {
	case alarming(at.Pair, signInFreePerPair):
		detail = fmt.Sprintf("%d failed sign-ins to your account from the address %s; sign-ins from it are slowed down. If this was not you, tell your chain's owner.", at.Pair, at.ClientIP)
	case alarming(at.AccountTotal, signInFreePerAccount):
		detail = fmt.Sprintf("%d failed sign-ins to your account within the last hour, from several addresses. If this was not you, tell your chain's owner.", at.AccountTotal)
	default:
		return
	}
	slug := "platform"
	if t != nil {
		slug = t.Slug
	}
	a.Log.Warn("repeated failed sign-ins", "tenant", slug, "account", at.Account, "user", userID, "client_ip", at.ClientIP,
		"failures_from_address", at.Pair, "failures_to_account", at.AccountTotal, "failures_from_address_all_accounts", at.Address)
	if t == nil || userID == uuid.Nil {
		return
	}
	ctx = context.WithoutCancel(ctx)
	err := a.Tx(ctx, *t, func(tx *gorm.DB) error {
		return tx.Exec(`INSERT INTO security_notices (id, user_id, kind, detail, created_at) VALUES (?, ?, 'signin.failures', ?, ?)`,
			uuid.Must(uuid.NewV7()), userID, detail, a.Now()).Error
	})
	if err != nil {
		a.Log.Error("security notice not recorded", "tenant", slug, "user", userID, "err", err)
	}
}

// SecurityNotice is a notice shown to a staff member about their account.
type SecurityNotice struct {
	ID        uuid.UUID `gorm:"column:id" json:"id"`
	Kind      string    `gorm:"column:kind" json:"kind"`
	Detail    string    `gorm:"column:detail" json:"detail"`
	CreatedAt time.Time `gorm:"column:created_at" json:"created_at"`
}

// takeSecurityNotices returns a user's unseen notices, oldest first, and
// marks them seen.
func (a *App) takeSecurityNotices(ctx context.Context, t tenants.Tenant, userID uuid.UUID) ([]SecurityNotice, error) {
	out := []SecurityNotice{}
	err := a.Tx(ctx, t, func(tx *gorm.DB) error {
		return tx.Raw(`UPDATE security_notices SET seen_at = now() WHERE user_id = ? AND seen_at IS NULL
			RETURNING id, kind, detail, created_at`, userID).Scan(&out).Error
	})
	slices.SortFunc(out, func(x, y SecurityNotice) int { return x.CreatedAt.Compare(y.CreatedAt) })
	return out, err
}

// addressBlock is what per-address limits count: an IPv4 address, or the
// /64 an IPv6 address belongs to. One subscriber (or attacker) commonly
// holds a whole /64, so counting single IPv6 addresses would give them
// unlimited fresh addresses.
func addressBlock(ip string) string {
	addr, err := netip.ParseAddr(ip)
	if err != nil || addr.Is4() || addr.Is4In6() {
		return ip
	}
	p, err := addr.Prefix(64)
	if err != nil {
		return ip
	}
	return p.String()
}
