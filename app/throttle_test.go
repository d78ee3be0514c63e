package app_test

import (
	"context"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"gorm.io/gorm"

	"marquee/app"
	"marquee/app/apptest"
	"marquee/config"
	"marquee/tenants"
)

// fakeClock is the App's clock in throttle tests: time moves only when the
// test says so.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

func startThrottled(t *testing.T) (*apptest.Env, *fakeClock) {
	t.Helper()
	clock := &fakeClock{now: time.Now()}
	env, _ := startProbe(t, func(o *apptest.Options) {
		o.Clock = clock.Now
		// Client addresses come from X-Forwarded-For of the test client.
		o.Configure = func(c *config.Config) { c.TrustedProxies = []string{"127.0.0.1/32"} }
	})
	return env, clock
}

func apiSignIn(t *testing.T, env *apptest.Env, slug, email, password, addr string) apptest.Response {
	t.Helper()
	return env.Do(t, http.MethodPost, slug, "/api/v1/auth/login", "", map[string]string{"email": email, "password": password},
		"X-Forwarded-For", addr)
}

func retryAfter(t *testing.T, res apptest.Response) int {
	t.Helper()
	wantStatus(t, res, http.StatusTooManyRequests, "rate_limited")
	n, err := strconv.Atoi(res.Header.Get("Retry-After"))
	if err != nil || n < 1 {
		t.Fatalf("Retry-After %q", res.Header.Get("Retry-After"))
	}
	return n
}

func unseenNotices(t *testing.T, env *apptest.Env, tn tenants.Tenant, email string) (n int64) {
	t.Helper()
	err := env.App.Tx(context.Background(), tn, func(tx *gorm.DB) error {
		return tx.Raw(`SELECT count(*) FROM security_notices s JOIN users u ON u.id = s.user_id
			WHERE lower(u.email) = ? AND s.seen_at IS NULL`, email).Row().Scan(&n)
	})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// An attacker who knows an owner's e-mail slows down only their own
// address, with delays that grow; the owner signs in at once from theirs
// and is told about the attack.
func TestSignInThrottleDoesNotLockTheOwnerOut(t *testing.T) {
	env, clock := startThrottled(t)
	tn := env.Tenant(t, apptest.UniqueSlug("throttle"))
	owner := ownerOf(tn)
	const attacker, ownerAddr = "203.0.113.66", "198.51.100.20"

	var waits []int
	failures, lastWasFailure := 0, false
	for failures < 50 {
		res := apiSignIn(t, env, tn.Slug, owner, "not-the-password", attacker)
		switch res.Status {
		case http.StatusUnauthorized:
			wantStatus(t, res, http.StatusUnauthorized, "invalid_credentials")
			if lastWasFailure && failures >= 5 {
				t.Fatalf("failure %d went through without a delay", failures+1)
			}
			failures++
			lastWasFailure = true
		case http.StatusTooManyRequests:
			if failures < 5 {
				t.Fatalf("throttled after only %d failures", failures)
			}
			if !lastWasFailure {
				t.Fatal("still throttled after waiting the Retry-After it gave")
			}
			wait := retryAfter(t, res)
			waits = append(waits, wait)
			clock.Advance(time.Duration(wait) * time.Second)
			lastWasFailure = false
		default:
			t.Fatalf("attempt: %d %s", res.Status, res.Body)
		}
	}
	// Delays double from 2 s up to 15 minutes, and stay there.
	if len(waits) != 45 || waits[0] != 2 {
		t.Fatalf("waits %v", waits)
	}
	for i := 1; i < len(waits); i++ {
		want := min(waits[i-1]*2, 900)
		if waits[i] != want {
			t.Fatalf("wait %d is %d s after %d s; want %d: %v", i, waits[i], waits[i-1], want, waits)
		}
	}
	// The attacker now holds the right password: still held back, as long.
	if wait := retryAfter(t, apiSignIn(t, env, tn.Slug, owner, apptest.Password, attacker)); wait != 900 {
		t.Fatalf("attacker's address with the right password: Retry-After %d", wait)
	}
	// Notices were recorded at 5, 10, 20 and 40 failures, not per guess.
	if n := unseenNotices(t, env, tn, owner); n != 4 {
		t.Fatalf("%d unseen security notices, want 4", n)
	}

	// The owner, from their own address, gets in at once and reads about it
	// on the portal.
	b := newBrowser(env, tn.Slug)
	page := b.get(t, "/portal/login")
	res, _ := b.do(t, http.MethodPost, "/portal/login", url.Values{"csrf_token": {formToken(t, page)},
		"email": {owner}, "password": {apptest.Password}}, "X-Forwarded-For", ownerAddr)
	if res.StatusCode != http.StatusSeeOther {
		t.Fatalf("owner from their own address: %d", res.StatusCode)
	}
	_, home := b.do(t, http.MethodGet, "/portal", nil, "X-Forwarded-For", ownerAddr)
	if !strings.Contains(home, `id="security-notices"`) || !strings.Contains(home, "40 failed sign-ins to your account from the address "+attacker) {
		t.Fatalf("portal home does not show the notices: %s", home)
	}
	if strings.Contains(home, "not-the-password") {
		t.Fatal("a notice shows the password tried")
	}
	if n := unseenNotices(t, env, tn, owner); n != 0 {
		t.Fatalf("%d notices still unseen after the portal showed them", n)
	}
	var signedIn struct {
		Token           string
		SecurityNotices []app.SecurityNotice `json:"security_notices"`
	}
	res2 := apiSignIn(t, env, tn.Slug, owner, apptest.Password, ownerAddr)
	wantStatus(t, res2, http.StatusOK, "")
	res2.JSON(t, &signedIn)
	if signedIn.Token == "" || signedIn.SecurityNotices == nil || len(signedIn.SecurityNotices) != 0 {
		t.Fatalf("API sign-in: %s", res2.Body)
	}

	// The account is under attack: a fresh address still gets its first
	// try, but once it has failed it waits, while the owner's address
	// (whose record a success cleared) does not.
	const other = "192.0.2.7"
	wantStatus(t, apiSignIn(t, env, tn.Slug, owner, "another-guess-1", other), http.StatusUnauthorized, "invalid_credentials")
	if wait := retryAfter(t, apiSignIn(t, env, tn.Slug, owner, apptest.Password, other)); wait < 2 {
		t.Fatalf("Retry-After %d", wait)
	}
	wantStatus(t, apiSignIn(t, env, tn.Slug, owner, apptest.Password, ownerAddr), http.StatusOK, "")
	// The attacker's lock is still running on the injected clock.
	retryAfter(t, apiSignIn(t, env, tn.Slug, owner, apptest.Password, attacker))
}

// One address guessing across many accounts (password spraying) is held
// back as a whole; other addresses are not.
func TestSignInThrottlePerAddress(t *testing.T) {
	env, clock := startThrottled(t)
	tn := env.Tenant(t, apptest.UniqueSlug("spray"))
	const sprayer = "203.0.113.99"
	for i := range 30 {
		res := apiSignIn(t, env, tn.Slug, "staff"+strconv.Itoa(i)+"@"+tn.Slug+".test", "password-guess-1", sprayer)
		wantStatus(t, res, http.StatusUnauthorized, "invalid_credentials")
	}
	first := retryAfter(t, apiSignIn(t, env, tn.Slug, ownerOf(tn), apptest.Password, sprayer))
	wantStatus(t, apiSignIn(t, env, tn.Slug, ownerOf(tn), apptest.Password, "198.51.100.31"), http.StatusOK, "")
	clock.Advance(time.Duration(first) * time.Second)
	wantStatus(t, apiSignIn(t, env, tn.Slug, "staff-x@"+tn.Slug+".test", "password-guess-1", sprayer), http.StatusUnauthorized, "invalid_credentials")
	if next := retryAfter(t, apiSignIn(t, env, tn.Slug, ownerOf(tn), apptest.Password, sprayer)); next <= first {
		t.Fatalf("Retry-After did not grow: %d then %d", first, next)
	}
	// Failures are forgotten an hour after the last one.
	clock.Advance(2 * time.Hour)
	wantStatus(t, apiSignIn(t, env, tn.Slug, ownerOf(tn), apptest.Password, sprayer), http.StatusOK, "")
}

// Parallel guesses from one address cannot slip past the allowance: each
// attempt is counted before its password is checked.
func TestSignInThrottleCountsParallelGuesses(t *testing.T) {
	env, _ := startThrottled(t)
	tn := env.Tenant(t, apptest.UniqueSlug("parallel"))
	var wg sync.WaitGroup
	statuses := make(chan int, 40)
	for range 40 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res, err := env.Try(http.MethodPost, tn.Slug, "/api/v1/auth/login", "", map[string]string{"email": ownerOf(tn), "password": "wrong-password-1"},
				"X-Forwarded-For", "203.0.113.5")
			if err != nil {
				t.Error(err)
				return
			}
			statuses <- res.Status
		}()
	}
	wg.Wait()
	close(statuses)
	counted := map[int]int{}
	for s := range statuses {
		counted[s]++
	}
	if counted[http.StatusUnauthorized] != 5 || counted[http.StatusTooManyRequests] != 35 {
		t.Fatalf("40 parallel guesses: %v; want 5 checked and 35 refused", counted)
	}
}
