// Package apptest starts a real App for tests: its own PostgreSQL database
// (created, migrated, dropped at the end), so test packages run in parallel
// without seeing each other's data.
//
// Every test package shares one Redis database (RedisURL). They stay apart
// the way deployments sharing a Redis do: every key, channel and Asynq
// queue starts with the deployment's name, which is the database's name
// (marquee_test_<package>_<pid>), so a package sees only its own keys and
// Main and Database delete only those (ClearRedis), never the whole
// database. A test that inspects Redis must look only at its deployment's
// keys; one that starts a second deployment on purpose names it uniquely
// (UniqueDeployment) and clears it.
package apptest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"marquee/internal/mailcatch"
	"net/http"
	"net/http/httptest"
	neturl "net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/redis/go-redis/v9"

	"marquee/app"
	"marquee/config"
	"marquee/policies"
	"marquee/tenants"
)

// Password is the password of every user the helpers create.
const Password = "test-password-1"

// DatabaseURL returns the server URL tests use (MARQUEE_TEST_DATABASE_URL).
func DatabaseURL() string {
	if v := os.Getenv("MARQUEE_TEST_DATABASE_URL"); v != "" {
		return v
	}
	return "postgres://postgres:postgres@127.0.0.1:5432/postgres?sslmode=disable"
}

// SecondServer is the name tests give the second PostgreSQL server.
const SecondServer = "second"

// SecondServerURL returns the second PostgreSQL server tests place tenants
// on (MARQUEE_TEST_DATABASE_URL_2; deployments/local/services.sh
// --with-second-postgres starts it on 5433).
func SecondServerURL() string {
	if v := os.Getenv("MARQUEE_TEST_DATABASE_URL_2"); v != "" {
		return v
	}
	return "postgres://postgres:postgres@127.0.0.1:5433/postgres?sslmode=disable"
}

// DatabaseOn creates a fresh database named like Database's on the server
// of serverURL and returns its URL and a function that drops it. It touches
// no Redis: the deployment is the control database's.
func DatabaseOn(serverURL, name string) (string, func(), error) {
	cfg, err := pgx.ParseConfig(serverURL)
	if err != nil {
		return "", nil, err
	}
	db := "marquee_test_" + dbNameUnsafe.ReplaceAllString(strings.ToLower(name), "_") + fmt.Sprintf("_%d", os.Getpid())
	ctx := context.Background()
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return "", nil, fmt.Errorf("test PostgreSQL unreachable (%s:%d; deployments/local/services.sh --with-second-postgres starts the second one): %w", cfg.Host, cfg.Port, err)
	}
	defer conn.Close(ctx)
	q := pgx.Identifier{db}.Sanitize()
	if _, err := conn.Exec(ctx, "DROP DATABASE IF EXISTS "+q+" WITH (FORCE)"); err != nil {
		return "", nil, err
	}
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+q); err != nil {
		return "", nil, err
	}
	parsed, err := neturl.Parse(serverURL)
	if err != nil {
		return "", nil, err
	}
	parsed.Path = "/" + db
	drop := func() {
		c, err := pgx.ConnectConfig(ctx, cfg)
		if err != nil {
			return
		}
		defer c.Close(ctx)
		_, _ = c.Exec(ctx, "DROP DATABASE IF EXISTS "+q+" WITH (FORCE)")
	}
	return parsed.String(), drop, nil
}

// SecondDatabase creates a database for a test package on the second
// server (DatabaseOn), dropped when the test ends, and returns its URL.
func SecondDatabase(t testing.TB, name string) string {
	t.Helper()
	url, drop, err := DatabaseOn(SecondServerURL(), name)
	if err != nil {
		t.Fatalf("second server: %v", err)
	}
	t.Cleanup(drop)
	return url
}

// RedisDB is the Redis database every test package uses when
// MARQUEE_TEST_REDIS_URL names none: not 0 (deployments' default), 14
// (`marquee bench` empties it) or 15 (deployments/local/crash-onsale.sh
// empties it).
const RedisDB = 1

// RedisURL returns the URL of the test Redis database: MARQUEE_TEST_REDIS_URL
// (default redis://127.0.0.1:6379), on database RedisDB unless the URL names
// one.
func RedisURL() string {
	base := os.Getenv("MARQUEE_TEST_REDIS_URL")
	if base == "" {
		base = "redis://127.0.0.1:6379"
	}
	u, err := neturl.Parse(base)
	if err != nil || strings.Trim(u.Path, "/") != "" {
		return base // a database of its own choosing (or a URL Redis will refuse)
	}
	u.Path = fmt.Sprintf("/%d", RedisDB)
	return u.String()
}

// ClearRedis deletes a deployment's keys from the test Redis: its own keys
// and channels ("<deployment>:*"), its Asynq queues ("asynq:{<deployment>:*"
// and their names in asynq:queues). Keys of other deployments, which other
// test packages may be using right now, are left alone.
func ClearRedis(ctx context.Context, deployment string) error {
	opt, err := redis.ParseURL(RedisURL())
	if err != nil {
		return err
	}
	rdb := redis.NewClient(opt)
	defer rdb.Close()
	for _, pattern := range []string{deployment + ":*", "asynq:{" + deployment + ":*"} {
		iter := rdb.Scan(ctx, 0, pattern, 1000).Iterator()
		var batch []string
		for iter.Next(ctx) {
			if batch = append(batch, iter.Val()); len(batch) == 500 {
				if err := rdb.Unlink(ctx, batch...).Err(); err != nil {
					return err
				}
				batch = batch[:0]
			}
		}
		if err := iter.Err(); err != nil {
			return err
		}
		if len(batch) > 0 {
			if err := rdb.Unlink(ctx, batch...).Err(); err != nil {
				return err
			}
		}
	}
	queues, err := rdb.SMembers(ctx, "asynq:queues").Result()
	if err != nil {
		return err
	}
	var ours []any
	for _, q := range queues {
		if strings.HasPrefix(q, deployment+":") {
			ours = append(ours, q)
		}
	}
	if len(ours) > 0 {
		return rdb.SRem(ctx, "asynq:queues", ours...).Err()
	}
	return nil
}

// UniqueDeployment returns a deployment id (config.DeploymentID) not used
// by any other test process, cleared from Redis when the test ends.
func UniqueDeployment(t testing.TB, prefix string) string {
	t.Helper()
	d := fmt.Sprintf("%s-%d-%d", prefix, os.Getpid(), seq.Add(1))
	t.Cleanup(func() { _ = ClearRedis(context.Background(), d) })
	return d
}

var dbNameUnsafe = regexp.MustCompile(`[^a-z0-9_]`)

// Database creates a fresh database for a test package and returns its URL
// and a function that drops it. The deployment named after the database
// starts and ends with no keys in the test Redis (ClearRedis).
func Database(name string) (string, func(), error) {
	cfg, err := pgx.ParseConfig(DatabaseURL())
	if err != nil {
		return "", nil, err
	}
	db := "marquee_test_" + dbNameUnsafe.ReplaceAllString(strings.ToLower(name), "_") + fmt.Sprintf("_%d", os.Getpid())
	ctx := context.Background()
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return "", nil, fmt.Errorf("test PostgreSQL unreachable (%s): %w", cfg.Host, err)
	}
	defer conn.Close(ctx)
	q := pgx.Identifier{db}.Sanitize()
	if _, err := conn.Exec(ctx, "DROP DATABASE IF EXISTS "+q+" WITH (FORCE)"); err != nil {
		return "", nil, err
	}
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+q); err != nil {
		return "", nil, err
	}
	parsed, err := neturl.Parse(DatabaseURL())
	if err != nil {
		return "", nil, err
	}
	parsed.Path = "/" + db
	url := parsed.String()
	deployment := config.Config{DatabaseURL: url}.Deployment()
	if err := ClearRedis(ctx, deployment); err != nil {
		return "", nil, fmt.Errorf("test Redis unreachable (%s): %w", RedisURL(), err)
	}
	drop := func() {
		_ = ClearRedis(ctx, deployment)
		c, err := pgx.ConnectConfig(ctx, cfg)
		if err != nil {
			return
		}
		defer c.Close(ctx)
		_, _ = c.Exec(ctx, "DROP DATABASE IF EXISTS "+q+" WITH (FORCE)")
	}
	return url, drop, nil
}

// Env is a running App with an HTTP server in front of it.
type Env struct {
	App *app.App
	// Mail is the SMTP catcher the App sends through (unless the test
	// configured another server): tests read what was mailed from it.
	Mail   *mailcatch.Server
	Server *httptest.Server
	Client *http.Client
	cfg    config.Config
	doc    documented
}

// Options tune Start.
type Options struct {
	DBMaxConns int
	Modules    []app.Module
	Configure  func(*config.Config)
	// Clock, if set, is the App's clock (app.Options.Clock).
	Clock func() time.Time
	// Logger, if set, receives the App's logs (tests that assert on them).
	Logger *slog.Logger
	// MigrationsControl and MigrationsTenant, if set, replace the embedded
	// migration trees (app.Options): a database at an older version, or with
	// a pending contract step applied.
	MigrationsControl, MigrationsTenant fs.FS
}

// Config returns the test configuration for a database URL.
func Config(databaseURL string) config.Config {
	cfg := config.Defaults()
	cfg.DatabaseURL = databaseURL
	cfg.RedisURL = RedisURL()
	cfg.SecretKey = "test-secret-key-that-is-long-enough-0123456789"
	cfg.Development = true // the test-mode payment step; production checks have their own tests
	cfg.BaseDomain = "localhost"
	cfg.MigrateParallel = 4
	cfg.PasswordCost = 4 // bcrypt's minimum: tests create many users; production uses 11+
	// Race tests fire hundreds of requests at once to prove invariants, not
	// load shedding (which has its own test with tight bounds).
	cfg.MaxInFlight, cfg.TenantMaxInFlight, cfg.ShedWait = 4096, 4096, 5*time.Second
	// Objects are kept per test database, so packages run at once never
	// share a directory and several Starts on one database share theirs.
	cfg.ObjectsDir = ObjectsDir(databaseURL)
	return cfg
}

// ObjectsDir is the object storage directory of a test database.
func ObjectsDir(databaseURL string) string {
	name := "default"
	if u, err := neturl.Parse(databaseURL); err == nil && strings.Trim(u.Path, "/") != "" {
		name = strings.Trim(u.Path, "/")
	}
	return filepath.Join(os.TempDir(), "marquee-test-objects", name)
}

// Start builds an App on databaseURL and the test Redis and serves it on a
// loopback port. Several Starts on one database act as several server
// instances.
func Start(t testing.TB, databaseURL string, opts Options) *Env {
	t.Helper()
	cfg := Config(databaseURL)
	catcher, err := mailcatch.Start("127.0.0.1:0")
	if err != nil {
		t.Fatalf("start the SMTP catcher: %v", err)
	}
	t.Cleanup(func() { _ = catcher.Close() })
	cfg.SMTPURL = catcher.URL()
	if opts.Configure != nil {
		opts.Configure(&cfg)
	}
	ctx := context.Background()
	log := slog.New(slog.NewJSONHandler(io.Discard, nil))
	if os.Getenv("MARQUEE_TEST_LOG") != "" {
		log = slog.New(slog.NewJSONHandler(os.Stderr, nil))
	}
	if opts.Logger != nil {
		log = opts.Logger
	}
	if opts.DBMaxConns == 0 {
		// Packages run in parallel against one server (max_connections 100):
		// keep each test app's pool small unless a test asks for more.
		opts.DBMaxConns = 10
	}
	a, err := app.New(ctx, cfg, app.Options{Logger: log, DBMaxConns: opts.DBMaxConns, Clock: opts.Clock,
		MigrationsControl: opts.MigrationsControl, MigrationsTenant: opts.MigrationsTenant}, opts.Modules...)
	if err != nil {
		t.Fatalf("start app: %v", err)
	}
	srv := httptest.NewUnstartedServer(nil)
	srv.Config = a.HTTPServer() // the timeouts and stream draining of a real server
	srv.Start()
	e := &Env{App: a, Server: srv, Mail: catcher, cfg: cfg, Client: &http.Client{
		Timeout:       30 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}}
	t.Cleanup(func() {
		srv.Close()
		a.Close()
	})
	return e
}

var seq atomic.Int64

// UniqueSlug returns a slug not used before in this process.
func UniqueSlug(prefix string) string {
	return fmt.Sprintf("%s-%d", prefix, seq.Add(1))
}

// Tenant creates a tenant with an owner "owner@<slug>.test", on the server
// with the fewest tenants.
func (e *Env) Tenant(t testing.TB, slug string) tenants.Tenant {
	t.Helper()
	return e.TenantOn(t, slug, "")
}

// TenantOn is Tenant on a named database server (Options.SecondServer).
func (e *Env) TenantOn(t testing.TB, slug, server string) tenants.Tenant {
	t.Helper()
	tn, err := e.App.CreateTenantOn(context.Background(), slug, strings.ToUpper(slug[:1])+slug[1:]+" Chain", server, "owner@"+slug+".test", "Owner of "+slug, Password)
	if err != nil {
		t.Fatalf("create tenant %s: %v", slug, err)
	}
	return tn
}

// User creates a staff user with the given role (venue may be empty).
func (e *Env) User(t testing.TB, tn tenants.Tenant, email, role, venue string) app.User {
	t.Helper()
	u, err := e.App.CreateUser(context.Background(), tn, email, email, Password)
	if err != nil {
		t.Fatalf("create user %s: %v", email, err)
	}
	if role != "" {
		if err := e.App.Enforcer.Assign(tn.Slug, policies.Assignment{UserID: u.ID.String(), Role: role, Venue: venue}); err != nil {
			t.Fatalf("assign %s to %s: %v", role, email, err)
		}
	}
	return u
}

// Login signs a user in through the API and returns the bearer token.
func (e *Env) Login(t testing.TB, slug, email string) string {
	t.Helper()
	res := e.Do(t, http.MethodPost, slug, "/api/v1/auth/login", "", map[string]string{"email": email, "password": Password})
	if res.Status != http.StatusOK {
		t.Fatalf("login %s@%s: %d %s", email, slug, res.Status, res.Body)
	}
	var out struct{ Token string }
	res.JSON(t, &out)
	return out.Token
}

// Response is a read HTTP response.
type Response struct {
	Status int
	Header http.Header
	Body   []byte
}

// JSON decodes the body.
func (r Response) JSON(t testing.TB, v any) {
	t.Helper()
	if err := json.Unmarshal(r.Body, v); err != nil {
		t.Fatalf("decode %s: %v", r.Body, err)
	}
}

// Code returns the problem code of an error response.
func (r Response) Code() string {
	var p struct{ Code string }
	_ = json.Unmarshal(r.Body, &p)
	return p.Code
}

// Do sends a request to a tenant host (slug "" means the base host). body
// may be nil, a []byte / string sent as is, or a value encoded as JSON.
func (e *Env) Do(t testing.TB, method, slug, path, token string, body any, headers ...string) Response {
	t.Helper()
	res, err := e.Try(method, slug, path, token, body, headers...)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	e.checkDocumented(t, method, slug, path, res)
	return res
}

// Try is Do without a testing.TB, for use from many goroutines.
func (e *Env) Try(method, slug, path, token string, body any, headers ...string) (Response, error) {
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case []byte:
		rd = bytes.NewReader(b)
	case string:
		rd = strings.NewReader(b)
	default:
		raw, err := json.Marshal(b)
		if err != nil {
			return Response{}, err
		}
		rd = bytes.NewReader(raw)
	}
	req, err := http.NewRequest(method, e.Server.URL+path, rd)
	if err != nil {
		return Response{}, err
	}
	if slug != "" {
		req.Host = slug + ".localhost"
	} else {
		req.Host = "localhost"
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := e.Client.Do(req)
	if err != nil {
		return Response{}, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	return Response{Status: resp.StatusCode, Header: resp.Header, Body: raw}, err
}

// Main runs a test package against its own database, and its own keys in
// the shared test Redis (none at the start, deleted at the end): call it
// from TestMain. It stores the database URL that Start should use in *url.
func Main(m *testing.M, name string, url *string) {
	u, drop, err := Database(name)
	if err != nil {
		fmt.Fprintln(os.Stderr, "apptest:", err)
		os.Exit(1)
	}
	*url = u
	code := m.Run()
	drop()
	_ = os.RemoveAll(ObjectsDir(u))
	os.Exit(code)
}

// Eventually polls cond until it holds, failing the test with what when it
// does not within the bound; it returns how long it took. It is for state
// reached through something the test cannot wait on directly (another
// instance, a worker, a browser); where a signal exists, wait on it instead.
func Eventually(t testing.TB, within time.Duration, what string, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	if !Poll(within, cond) {
		t.Fatalf("%s: not within %v", what, within)
	}
	return time.Since(start)
}

// Poll is Eventually for a test that must tidy up (stop goroutines, show a
// page) before failing: it reports whether cond held within the bound.
func Poll(within time.Duration, cond func() bool) bool {
	start := time.Now()
	for !cond() {
		if time.Since(start) > within {
			return false
		}
		time.Sleep(10 * time.Millisecond)
	}
	return true
}

// MustStatus fails the test unless res has the status want.
func MustStatus(t testing.TB, res Response, want int) {
	t.Helper()
	if res.Status != want {
		t.Fatalf("want %d, got %d: %s", want, res.Status, res.Body)
	}
}

// Decode decodes a JSON body into a T, failing the test on bad JSON.
func Decode[T any](t testing.TB, raw []byte) T {
	t.Helper()
	var v T
	if err := json.Unmarshal(raw, &v); err != nil {
		t.Fatalf("decode %s: %v", raw, err)
	}
	return v
}
