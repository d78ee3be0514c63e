// Package app is the core of the platform: the App that holds the database,
// Redis, jobs, enforcer and modules; the HTTP server and its middleware; the
// module contract; identity; problem errors; the ledger; and the shared pages.
package app

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"net/url"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/hibiken/asynq"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/redis/go-redis/v9"
	"golang.org/x/crypto/bcrypt"
	"gorm.io/driver/postgres"
	"gorm.io/gorm"
	"gorm.io/gorm/logger"

	"marquee/config"
	"marquee/jobs"
	"marquee/migrations"
	"marquee/policies"
	"marquee/tenants"
)

// App is one running Marquee process: everything the core and the modules
// need, built once from the configuration.
type App struct {
	Config  config.Config
	Log     *slog.Logger
	DB      *gorm.DB
	SQL     *sql.DB
	Redis   redis.UniversalClient
	Tenants *tenants.Registry
	// Servers are the PostgreSQL servers tenants are placed on, one pool
	// each; DB and SQL are the default server's (the control plane's).
	Servers  *tenants.Servers
	Migrator *migrations.Runner
	Enforcer *policies.Enforcer
	Jobs     *jobs.Jobs
	Metrics  *prometheus.Registry
	Ledger   *Ledger
	Realtime *Realtime
	Mail     *Mailer
	objects  *ObjectStore

	// dummyHash is compared against when an account does not exist, so a
	// missing account takes as long to refuse as a wrong password.
	dummyHash  []byte
	redisOpt   asynq.RedisConnOpt
	routes     []Route
	apiDoc     openAPIDoc
	nav        []NavItem
	grants     []policies.Grant
	seeds      []moduleSeed // in seed order once New returns
	contracts  contracts
	venues     VenueDirectory
	events     EventDirectory
	attendance Attendance
	holds      CalendarHolds
	tickets    TicketFacts
	channels   ChannelSales
	offers     TicketOffers
	labour     LabourCosts
	hooks      hooks
	background []backgroundLoop
	// storefrontLanding is where "/" on a tenant host leads (set by a module).
	storefrontLanding string
	http              *httpMetrics
	shedder           *shedder
	streams           *streamLimiter
	// draining is closed when the HTTP server begins to shut down, so that
	// live streams end at once instead of holding the shutdown open.
	draining     chan struct{}
	drainingOnce sync.Once
	sessions     *sessionCache
	stop         context.CancelFunc
	clock        func() time.Time

	usage []usageFigure
	// panels are the modules' tables on a tenant's console page.
	panels []consolePanel
	tally  *requestTally
	// inspector reads and retries the deployment's Asynq tasks (console).
	inspector *asynq.Inspector

	// cancellations are told when an event is cancelled.
	cancellations []EventCancellations
}

// Options tune New; the zero value is right for serving.
type Options struct {
	Logger *slog.Logger
	// DBMaxConns caps the connection pool (default 20).
	DBMaxConns int
	// MigrationsControl and MigrationsTenant replace the embedded trees (tests).
	MigrationsControl, MigrationsTenant fs.FS
	// Clock replaces time.Now where time decides an outcome that tests
	// must control (sign-in throttling windows).
	Clock func() time.Time
}

// New connects to PostgreSQL and Redis, brings the control schema up to
// date, loads policy, and registers the core and the given modules.
func New(ctx context.Context, cfg config.Config, opts Options, modules ...Module) (*App, error) {
	log := opts.Logger
	if log == nil {
		log = NewLogger(os.Stderr, cfg.LogLevel)
	}
	// The deployment's Redis name is settled once: every key, queue and
	// channel of this process must agree on it, and parsing the database URL
	// on every key would cost file reads per request.
	cfg.DeploymentID = cfg.Deployment()
	a := &App{Config: cfg, Log: log, Metrics: prometheus.NewRegistry(), clock: opts.Clock}
	if a.clock == nil {
		a.clock = time.Now
	}
	a.dummyHash, _ = bcrypt.GenerateFromPassword([]byte("marquee-no-such-account"), cfg.PasswordCost)
	a.Metrics.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	ok := false
	defer func() {
		if !ok {
			a.Close()
		}
	}()
	var err error
	if a.SQL, a.DB, err = OpenDatabase(ctx, cfg.DatabaseURL, opts.DBMaxConns); err != nil {
		return nil, err
	}
	if a.Servers, err = a.openServers(ctx, cfg, opts.DBMaxConns); err != nil {
		return nil, err
	}
	if a.Redis, a.redisOpt, err = OpenRedis(ctx, cfg); err != nil {
		return nil, err
	}
	control, tenant := opts.MigrationsControl, opts.MigrationsTenant
	if control == nil {
		control = migrations.ControlFS()
	}
	if tenant == nil {
		tenant = migrations.TenantFS()
	}
	if a.Migrator, err = migrations.NewRunner(cfg.DatabaseURL, control, tenant, cfg.MigrateParallel); err != nil {
		return nil, err
	}
	for name, url := range cfg.DatabaseServers {
		if err := a.Migrator.AddServer(name, url); err != nil {
			return nil, err
		}
	}
	if _, err := a.Migrator.Control(ctx); err != nil {
		return nil, err
	}
	watchCtx, stop := context.WithCancel(context.WithoutCancel(ctx))
	a.stop = stop
	a.Tenants = tenants.NewRegistry(a.DB, a.Redis, cfg.Deployment(), a.Migrator, log)
	if err := a.Tenants.Watch(watchCtx); err != nil {
		return nil, err
	}
	a.tally = newRequestTally()
	go a.flushTallyEvery(watchCtx, 5*time.Second)
	a.sessions = newSessionCache()
	if err := a.sessions.watch(watchCtx, a.Redis, a.RedisKey(sessionRevokedChannel)); err != nil {
		return nil, err
	}
	if a.Enforcer, err = policies.NewEnforcer(watchCtx, a.DB, a.Redis, cfg.Deployment(), log); err != nil {
		return nil, err
	}
	a.Jobs = jobs.New(a.redisOpt, cfg.Deployment(), a.Tenants, log, a.Metrics)
	a.inspector = asynq.NewInspector(a.redisOpt)
	a.Ledger = &Ledger{servers: a.Servers}
	a.Realtime = &Realtime{a: a}
	a.Mail = newMailer(a)
	if a.objects, err = NewObjectStore(cfg); err != nil {
		return nil, err
	}
	a.http = newHTTPMetrics(a.Metrics)
	a.shedder = newShedder(cfg.MaxInFlight, cfg.TenantMaxInFlight, cfg.ShedWait, a.Metrics)
	a.streams = newStreamLimiter(cfg.StreamsPerClient, a.Metrics)
	a.draining = make(chan struct{})

	a.grants = policies.CoreGrants()
	a.contracts = newContracts()
	core := &Registrar{app: a, module: "core"}
	a.registerCore(core)
	a.registerLedgerSeal(watchCtx, core)
	if err := a.registerMail(core); err != nil {
		return nil, err
	}
	for _, m := range modules {
		a.contracts.register(m.Name())
		if err := m.Register(&Registrar{app: a, module: m.Name()}); err != nil {
			return nil, fmt.Errorf("module %s: %w", m.Name(), err)
		}
	}
	// Contracts are checked once every module has registered, so a module
	// may need a contract that a later one provides.
	if a.seeds, err = a.contracts.check(a.seeds); err != nil {
		return nil, fmt.Errorf("modules: %w", err)
	}
	a.Tenants.OnProvision(func(ctx context.Context, t tenants.Tenant) error {
		return a.Enforcer.InstallDefaults(t.Slug, a.grants)
	})
	ok = true
	return a, nil
}

// Now is the App's clock: time.Now unless Options.Clock replaced it.
func (a *App) Now() time.Time { return a.clock() }

// Close releases every connection.
func (a *App) Close() {
	if a.stop != nil {
		a.stop()
	}
	if a.Enforcer != nil {
		a.Enforcer.Close()
	}
	if a.Jobs != nil {
		_ = a.Jobs.Close()
	}
	if a.inspector != nil {
		_ = a.inspector.Close()
	}
	if a.Redis != nil {
		_ = a.Redis.Close()
	}
	if a.Servers != nil {
		a.Servers.Close()
	}
	if a.SQL != nil {
		_ = a.SQL.Close()
	}
}

// openServers opens one pool per configured tenant server; the default
// server's pool is the App's own (DB, SQL), opened before.
func (a *App) openServers(ctx context.Context, cfg config.Config, maxConns int) (*tenants.Servers, error) {
	list := []*tenants.Server{{Name: tenants.DefaultServer, URL: cfg.DatabaseURL, SQL: a.SQL, DB: a.DB}}
	closeAll := func() {
		for _, sv := range list[1:] {
			_ = sv.SQL.Close()
		}
	}
	for name, url := range cfg.DatabaseServers {
		sqlDB, gdb, err := OpenDatabase(ctx, url, maxConns)
		if err != nil {
			closeAll()
			return nil, fmt.Errorf("database server %s: %w", name, err)
		}
		list = append(list, &tenants.Server{Name: name, URL: url, SQL: sqlDB, DB: gdb})
	}
	s, err := tenants.NewServers(list...)
	if err != nil {
		closeAll()
	}
	return s, err
}

// RedisKey names a key or channel of this deployment in Redis: the
// deployment's name, then the parts, joined by colons. Every key the
// platform uses goes through it, so deployments sharing a Redis stay apart.
func (a *App) RedisKey(parts ...string) string {
	return a.Config.Deployment() + ":" + strings.Join(parts, ":")
}

// Tx runs fn in the tenant's scope on the tenant's server (tenants.Tx
// through Servers, which picks the pool). Modules reach tenant data only
// through Tx, TxWith and PgxTx, never through DB or SQL (the architecture
// test checks it), so where a tenant is placed is invisible to them.
func (a *App) Tx(ctx context.Context, t tenants.Tenant, fn func(tx *gorm.DB) error) error {
	return a.Servers.Tx(ctx, t, fn)
}

// TxWith is Tx with options (read-only, retried).
func (a *App) TxWith(ctx context.Context, t tenants.Tenant, o tenants.TxOptions, fn func(tx *gorm.DB) error) error {
	return a.Servers.TxWith(ctx, t, o, fn)
}

// PgxTx runs fn in a pgx transaction in the tenant's scope, on the pool of
// the tenant's server (tenants.PgxTx): for hot paths.
func (a *App) PgxTx(ctx context.Context, t tenants.Tenant, o tenants.TxOptions, fn func(tx *tenants.Pgx) error) error {
	return a.Servers.PgxTx(ctx, t, o, fn)
}

// PipedTx runs fn in a tenant transaction sent as pipelines of statements
// (tenants.PipedTx): for hot paths of a few round trips.
func (a *App) PipedTx(ctx context.Context, t tenants.Tenant, o tenants.TxOptions, fn func(p *tenants.Piped) error) error {
	return a.Servers.PipedTx(ctx, t, o, fn)
}

// PgxStatement runs one statement in the tenant's scope in one round trip
// (tenants.PgxStatement): for hot paths whose transaction is one statement.
func (a *App) PgxStatement(ctx context.Context, t tenants.Tenant, o tenants.TxOptions, q string, args []any, scan func(pgx.Rows) error) error {
	return a.Servers.PgxStatement(ctx, t, o, q, args, scan)
}

// PrintfLogger adapts the structured logger to a library that logs with
// printf-style levels (Stripe's client), so its lines are JSON like ours.
// A library's errors are answers our code handles, so they log as warnings.
type PrintfLogger struct {
	Log    *slog.Logger
	Source string
}

// Debugf logs at debug level.
func (p PrintfLogger) Debugf(format string, v ...any) { p.log(slog.LevelDebug, format, v) }

// Infof logs at debug level: a library's progress lines (one per request)
// would drown ours.
func (p PrintfLogger) Infof(format string, v ...any) { p.log(slog.LevelDebug, format, v) }

// Warnf logs at warn level.
func (p PrintfLogger) Warnf(format string, v ...any) { p.log(slog.LevelWarn, format, v) }

// Errorf logs at warn level (see PrintfLogger).
func (p PrintfLogger) Errorf(format string, v ...any) { p.log(slog.LevelWarn, format, v) }

func (p PrintfLogger) log(level slog.Level, format string, v []any) {
	p.Log.Log(context.Background(), level, strings.TrimSpace(fmt.Sprintf(format, v...)), "source", p.Source)
}

// NewLogger builds the JSON structured logger.
func NewLogger(w *os.File, level string) *slog.Logger {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		l = slog.LevelInfo
	}
	return slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: l}))
}

// UnreachableError says which service could not be reached and how to start it.
type UnreachableError struct {
	Service, Addr string
	Err           error
}

func (e *UnreachableError) Error() string {
	return fmt.Sprintf("cannot reach %s at %s: %v\n  start it with: deployments/local/services.sh (or point %s at a running server)",
		e.Service, e.Addr, e.Err, map[string]string{"PostgreSQL": "MARQUEE_DATABASE_URL", "Redis": "MARQUEE_REDIS_URL", "Redis Cluster": "MARQUEE_REDIS_CLUSTER"}[e.Service])
}

func (e *UnreachableError) Unwrap() error { return e.Err }

// MissingDatabaseError says PostgreSQL answers but the configured database
// does not exist, and how to create it.
type MissingDatabaseError struct{ Addr, Database string }

func (e *MissingDatabaseError) Error() string {
	return fmt.Sprintf("PostgreSQL at %s is up, but it has no database %q\n"+
		"  create it with: marquee migrate (an empty platform) or marquee demo (with demo chains), or point MARQUEE_DATABASE_URL at another database",
		e.Addr, e.Database)
}

// OpenDatabase opens the pool. No statement is prepared server-side: while
// migrations roll across tenant schemas, a prepared plan fails ("cached plan
// must not change result type"). pgx caches only each statement's parameter
// and result types per connection (cache_describe), which is safe because all
// SQL names its columns explicitly and migrations are expand-then-contract
// (a column never changes type in place). This halves round trips compared
// with describing every statement on every execution.
func OpenDatabase(ctx context.Context, databaseURL string, maxConns int) (*sql.DB, *gorm.DB, error) {
	cfg, err := pgx.ParseConfig(databaseURL)
	if err != nil {
		return nil, nil, fmt.Errorf("MARQUEE_DATABASE_URL: %w", err)
	}
	cfg.DefaultQueryExecMode = pgx.QueryExecModeCacheDescribe
	// The few statements that are prepared (hot paths that choose pgx's
	// cache_statement mode) are still planned for their actual values: a
	// generic plan cannot see how few rows a JSON parameter holds, and
	// scans whole tables where a custom plan probes an index.
	cfg.RuntimeParams["plan_cache_mode"] = "force_custom_plan"
	sqlDB := stdlib.OpenDB(*cfg)
	if maxConns <= 0 {
		maxConns = 20
	}
	sqlDB.SetMaxOpenConns(maxConns)
	// Idle connections are kept, not closed after a quiet spell: an on-sale
	// begins after one, and a burst that must first open its connections
	// (a backend started and its catalogue cache filled, per connection) stalls
	// every tenant for hundreds of milliseconds. They are renewed hourly so
	// no backend grows forever with the catalogue of every schema it met.
	sqlDB.SetMaxIdleConns(maxConns)
	sqlDB.SetConnMaxLifetime(time.Hour)
	pingCtx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := sqlDB.PingContext(pingCtx); err != nil {
		sqlDB.Close()
		var pgErr interface{ SQLState() string }
		if errors.As(err, &pgErr) && pgErr.SQLState() == "3D000" { // invalid_catalog_name
			return nil, nil, &MissingDatabaseError{Addr: net.JoinHostPort(cfg.Host, fmt.Sprint(cfg.Port)), Database: cfg.Database}
		}
		return nil, nil, &UnreachableError{Service: "PostgreSQL", Addr: net.JoinHostPort(cfg.Host, fmt.Sprint(cfg.Port)) + "/" + cfg.Database, Err: err}
	}
	gdb, err := gorm.Open(postgres.New(postgres.Config{Conn: sqlDB}), &gorm.Config{
		Logger:                 logger.Discard,
		SkipDefaultTransaction: true,
		PrepareStmt:            false,
	})
	if err != nil {
		sqlDB.Close()
		return nil, nil, err
	}
	return sqlDB, gdb, nil
}

// EnsureDatabase creates the database named in the URL if it does not exist,
// connecting to the server's "postgres" database to do so.
func EnsureDatabase(ctx context.Context, databaseURL string) error {
	cfg, err := pgx.ParseConfig(databaseURL)
	if err != nil {
		return fmt.Errorf("MARQUEE_DATABASE_URL: %w", err)
	}
	addr := net.JoinHostPort(cfg.Host, fmt.Sprint(cfg.Port))
	admin := cfg.Copy()
	admin.Database = "postgres"
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	conn, err := pgx.ConnectConfig(ctx, admin)
	if err != nil {
		return &UnreachableError{Service: "PostgreSQL", Addr: addr, Err: err}
	}
	defer conn.Close(context.Background())
	var exists bool
	if err := conn.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)", cfg.Database).Scan(&exists); err != nil {
		return err
	}
	if exists {
		return nil
	}
	_, err = conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{cfg.Database}.Sanitize())
	var pgErr interface{ SQLState() string }
	if errors.As(err, &pgErr) && pgErr.SQLState() == "42P04" { // created meanwhile
		return nil
	}
	return err
}

// OpenRedis connects to the configured Redis — a Redis Cluster when
// MARQUEE_REDIS_CLUSTER is set, else MARQUEE_REDIS_URL's single Redis — and
// checks it answers. Both are a redis.UniversalClient, so nothing past this
// point knows which: every multi-key script and transaction keeps its keys
// in one hash slot (see RedisKey), which a single Redis never minds.
func OpenRedis(ctx context.Context, cfg config.Config) (redis.UniversalClient, asynq.RedisConnOpt, error) {
	if cfg.RedisCluster != "" {
		return openRedisCluster(ctx, cfg.RedisCluster)
	}
	redisURL := cfg.RedisURL
	opt, err := redis.ParseURL(redisURL)
	if err != nil {
		return nil, nil, fmt.Errorf("MARQUEE_REDIS_URL: %w", err)
	}
	rdb := redis.NewClient(opt)
	pingCtx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	if err := rdb.Ping(pingCtx).Err(); err != nil {
		rdb.Close()
		return nil, nil, &UnreachableError{Service: "Redis", Addr: opt.Addr, Err: err}
	}
	aopt, err := asynq.ParseRedisURI(redactless(redisURL))
	if err != nil {
		rdb.Close()
		return nil, nil, fmt.Errorf("MARQUEE_REDIS_URL: %w", err)
	}
	return rdb, aopt, nil
}

// openRedisCluster connects to a Redis Cluster through its seed nodes and
// checks every master answers (a cluster missing a master cannot serve the
// slots it holds). Asynq gets the same nodes and credentials.
func openRedisCluster(ctx context.Context, spec string) (redis.UniversalClient, asynq.RedisConnOpt, error) {
	opt, err := config.RedisClusterOptions(spec)
	if err != nil {
		return nil, nil, fmt.Errorf("MARQUEE_REDIS_CLUSTER: %w", err)
	}
	rdb := redis.NewClusterClient(opt)
	pingCtx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	err = rdb.ForEachMaster(pingCtx, func(ctx context.Context, node *redis.Client) error {
		return node.Ping(ctx).Err()
	})
	if err != nil {
		rdb.Close()
		return nil, nil, &UnreachableError{Service: "Redis Cluster", Addr: strings.Join(opt.Addrs, ","), Err: err}
	}
	aopt := asynq.RedisClusterClientOpt{Addrs: opt.Addrs, MaxRedirects: opt.MaxRedirects, Username: opt.Username, Password: opt.Password,
		DialTimeout: opt.DialTimeout, ReadTimeout: opt.ReadTimeout, WriteTimeout: opt.WriteTimeout, TLSConfig: opt.TLSConfig}
	return rdb, aopt, nil
}

// AsynqRedis is how Asynq reaches this deployment's Redis (single or
// cluster), for a client or inspector of its own.
func (a *App) AsynqRedis() asynq.RedisConnOpt { return a.redisOpt }

// RedisCluster reports whether this deployment runs on a Redis Cluster.
func (a *App) RedisCluster() bool { return a.Config.RedisCluster != "" }

// redactless strips query parameters asynq's parser does not accept.
func redactless(u string) string {
	p, err := url.Parse(u)
	if err != nil {
		return u
	}
	p.RawQuery = ""
	return strings.TrimSuffix(p.String(), "?")
}
