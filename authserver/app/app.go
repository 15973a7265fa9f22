// Package app wires the authserver together and implements its
// subcommands (the table in commands): serve (default), migrate,
// healthcheck, version, and backup and restore (authserver/backup).
package app

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"net/url"
	"os"
	"os/signal"
	"runtime/debug"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/redis/go-redis/v9"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"

	"github.com/leanauth/authstack/authserver/audit"
	"github.com/leanauth/authstack/authserver/backup"
	"github.com/leanauth/authstack/authserver/config"
	"github.com/leanauth/authstack/authserver/dbrole"
	"github.com/leanauth/authstack/authserver/edge"
	"github.com/leanauth/authstack/authserver/extauthz"
	"github.com/leanauth/authstack/authserver/housekeeping"
	"github.com/leanauth/authstack/authserver/httpapi"
	"github.com/leanauth/authstack/authserver/mail"
	"github.com/leanauth/authstack/authserver/metrics"
	"github.com/leanauth/authstack/authserver/observe"
	"github.com/leanauth/authstack/authserver/password"
	"github.com/leanauth/authstack/authserver/ratelimit"
	"github.com/leanauth/authstack/authserver/service"
	"github.com/leanauth/authstack/authserver/session"
	"github.com/leanauth/authstack/authserver/store"
	"github.com/leanauth/authstack/authserver/ui"
)

// Version is set at build time with
// -ldflags "-X github.com/leanauth/authstack/authserver/app.Version=v1.2.3".
var Version = ""

// VersionString is Version, or the module version / VCS revision of the build.
func VersionString() string {
	if Version != "" {
		return Version
	}
	if bi, ok := debug.ReadBuildInfo(); ok {
		if bi.Main.Version != "" && bi.Main.Version != "(devel)" {
			return bi.Main.Version
		}
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" && len(s.Value) >= 12 {
				return "dev-" + s.Value[:12]
			}
		}
	}
	return "dev"
}

// A command is one subcommand of the authserver binary.
type command struct {
	name, args, help string
	// run gets the arguments after the name.
	run func(args []string, stdout, stderr io.Writer) int
}

// commands is the dispatch table; usage is written from it. It is set in
// init because help prints usage, which reads commands (a cycle for a
// package-level initializer).
var commands []command

// aliases are other spellings of a command.
var aliases = map[string]string{"--version": "version", "-version": "version", "-h": "help", "--help": "help"}

func init() {
	commands = []command{
		{"serve", "", "run the HTTP API (default)", noArgs(serveCommand)},
		{"migrate", "", "apply the embedded SQL migrations (DATABASE_DIRECT_URL, else DATABASE_URL); exit 3 when the stored password hashes use none of the configured peppers", noArgs(migrateCommand)},
		{"peppers", "", "count the stored password hashes and TOTP secrets per pepper id (JSON; DATABASE_DIRECT_URL, else DATABASE_URL)", noArgs(peppersCommand)},
		{"db-role", "prepare ROLE OWNER|retire ROLE", "the database steps of a managed password rotation (DB_ROLE_PASSWORD; DATABASE_DIRECT_URL, else DATABASE_URL)", func(args []string, stdout, stderr io.Writer) int {
			ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
			defer stop()
			return dbrole.Main(ctx, args, os.LookupEnv, stdout, stderr)
		}},
		{"factors-reset", "EMAIL", "remove every second factor of an account and end its sessions (JSON; DATABASE_DIRECT_URL, else DATABASE_URL)", factorsResetCommand},
		{"healthcheck", "", "exit 0 when http://127.0.0.1:$PORT/health answers 200", noArgs(healthcheckCommand)},
		{"resources", "", "print the CPU and memory numbers serve would run with (JSON)", noArgs(resourcesCommand)},
		{"version", "", "print the version", noArgs(func(stdout, _ io.Writer) int {
			fmt.Fprintln(stdout, VersionString())
			return 0
		})},
		{"backup", "postgres|redis|verify", "dump, encrypt and upload to S3; verify: a restore drill (without a kind: its usage)", backupCommand("backup")},
		{"restore", "postgres|redis [flags]", "download, decrypt and restore (without a kind: its usage)", backupCommand("restore")},
		{"help", "", "print this text", noArgs(func(stdout, _ io.Writer) int {
			fmt.Fprint(stdout, usage())
			return 0
		})},
	}
}

// usage lists every command of the dispatch table.
func usage() string {
	var b strings.Builder
	b.WriteString("usage: authserver <command> [arguments]\n\n")
	for _, c := range commands {
		fmt.Fprintf(&b, "  %-35s %s\n", strings.TrimSpace(c.name+" "+c.args), c.help)
	}
	b.WriteString("\nConfiguration is read from the environment; see docs/authserver.md.\n")
	return b.String()
}

func noArgs(f func(stdout, stderr io.Writer) int) func([]string, io.Writer, io.Writer) int {
	return func(args []string, stdout, stderr io.Writer) int {
		if len(args) > 0 {
			fmt.Fprint(stderr, usage())
			return 2
		}
		return f(stdout, stderr)
	}
}

func backupCommand(verb string) func([]string, io.Writer, io.Writer) int {
	return func(args []string, stdout, stderr io.Writer) int {
		return backup.Main(append([]string{verb}, args...), VersionString(), stdout, stderr)
	}
}

// Main runs the command named by args (without the program name; serve when
// empty) and returns the process exit code.
func Main(args []string, stdout, stderr io.Writer) int {
	name := "serve"
	if len(args) > 0 {
		name, args = args[0], args[1:]
	}
	if a, ok := aliases[name]; ok {
		name = a
	}
	for _, c := range commands {
		if c.name == name {
			return c.run(args, stdout, stderr)
		}
	}
	fmt.Fprintf(stderr, "authserver: unknown command %q\n%s", name, usage())
	return 2
}

func serveCommand(_, stderr io.Writer) int {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	if err := Serve(ctx, os.LookupEnv, stderr, nil); err != nil {
		fmt.Fprintln(stderr, "authserver:", err)
		return 1
	}
	return 0
}

func migrateCommand(_, stderr io.Writer) int {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	if err := MigrateCommand(ctx, os.LookupEnv, stderr); err != nil {
		fmt.Fprintln(stderr, "authserver migrate:", err)
		return migrateExitCode(err)
	}
	return 0
}

func healthcheckCommand(_, stderr io.Writer) int {
	if err := Healthcheck(os.LookupEnv); err != nil {
		fmt.Fprintln(stderr, "authserver healthcheck:", err)
		return 1
	}
	return 0
}

func resourcesCommand(stdout, stderr io.Writer) int {
	cfg, err := config.Load(os.LookupEnv, os.ReadFile)
	if err != nil {
		fmt.Fprintln(stderr, "authserver resources:", err)
		return 1
	}
	b, _ := json.Marshal(SetResources(cfg, "/sys/fs/cgroup"))
	fmt.Fprintln(stdout, string(b))
	return 0
}

// MigrateCommand applies the migrations; it needs only DATABASE_URL or
// DATABASE_DIRECT_URL (and their _FILE variants). When a pepper is configured
// (AUTH_PEPPER, AUTH_OLD_PEPPERS) it then checks that the stored password hashes
// use one of them (or one of AUTH_RETIRED_PEPPER_IDS), and fails with
// *store.PepperMismatchError otherwise (pepper.go).
//
// A failure after the configuration loaded (the database unreachable for a
// minute, a migration refused, a pepper mismatch) is logged at error level
// and, with SENTRY_DSN, reported to Sentry.
func MigrateCommand(ctx context.Context, get config.Getenv, logOut io.Writer) (err error) {
	direct, err := config.LoadDatabase(get, os.ReadFile)
	if err != nil {
		return err
	}
	peppers, secret, err := config.LoadPeppers(get, os.ReadFile)
	if err != nil {
		return err
	}
	hub, err := observe.SentryFromEnv(get, os.ReadFile, VersionString())
	if err != nil {
		return err
	}
	defer observe.Flush(hub)
	log := slog.New(observe.Reporting(slog.NewJSONHandler(logOut, &slog.HandlerOptions{Level: slog.LevelInfo}), hub))
	defer func() {
		if err != nil {
			log.Error("migrate failed", "error", err.Error())
		}
	}()
	applied, err := store.MigrateLogged(ctx, direct, log)
	if err != nil {
		return err
	}
	log.Info("migrations done", "applied", applied, "schema_version", store.LatestVersion())
	// Ids of peppers retired on purpose (spec.pepperRotation.force): hashes using them
	// are an accepted loss, not another stack's data.
	retired, _ := get("AUTH_RETIRED_PEPPER_IDS")
	if err := checkPeppers(ctx, direct, peppers, strings.FieldsFunc(retired, func(r rune) bool { return r == ',' }), secret); err != nil {
		return err
	}
	return ensureDrillCanary(ctx, direct, peppers)
}

// Healthcheck asks the local /health endpoint (on HOST when serve listens
// on one address only, else 127.0.0.1).
func Healthcheck(get config.Getenv) error {
	port := 3000
	if v, ok := get("PORT"); ok && v != "" {
		p, err := strconv.Atoi(v)
		if err != nil || p < 1 || p > 65535 {
			return fmt.Errorf("PORT: must be a port number, got %q", v)
		}
		port = p
	}
	host := "127.0.0.1"
	if h, ok := get("HOST"); ok {
		h = strings.Trim(strings.TrimSpace(h), "[]")
		if h != "" && h != "0.0.0.0" && h != "::" {
			host = h // serve listens only there
		}
	}
	c := &http.Client{Timeout: 3 * time.Second}
	resp, err := c.Get("http://" + net.JoinHostPort(host, strconv.Itoa(port)) + "/health")
	if err != nil {
		return fmt.Errorf("GET /health: %w", err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4096))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET /health: status %d", resp.StatusCode)
	}
	return nil
}

// NewAPIServer is the API listener's server: its timeouts and header limit.
// (cmd/authbench's floor serves with the same, so that the check's ratio to
// the floor measures the handlers, not the server's settings.)
func NewAPIServer(h http.Handler) *http.Server {
	return &http.Server{
		Handler: h, ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 30 * time.Second,
		WriteTimeout: 30 * time.Second, IdleTimeout: 120 * time.Second, MaxHeaderBytes: 64 << 10,
	}
}

// NewRedis builds a client from a redis:// or rediss:// URL. A password
// given as ?password= (as in the deployment guide) is accepted too.
//
// A URL with addr= parameters is go-redis's cluster form
// (redis://:pw@node-0:6379?addr=node-1:6379&addr=node-2:6379, as the
// operator renders for mode: cluster): it gives a Redis Cluster client
// seeded with every listed node. Otherwise the client is single-node.
// Errors name REDIS_URL and never contain the URL (it holds the password).
func NewRedis(rawURL string) (redis.UniversalClient, error) {
	cluster := false
	if u, err := url.Parse(rawURL); err == nil {
		q := u.Query()
		if pw := q.Get("password"); pw != "" {
			user := ""
			if u.User != nil {
				user = u.User.Username()
			}
			u.User = url.UserPassword(user, pw)
			q.Del("password")
			u.RawQuery = q.Encode()
			rawURL = u.String()
		}
		if q.Has("addr") {
			cluster = true
			if p := strings.Trim(u.Path, "/"); p != "" && p != "0" {
				return nil, errors.New("REDIS_URL: a cluster URL (with addr=) cannot select a database: Redis Cluster has only database 0")
			}
		}
	}
	if cluster {
		return newRedisCluster(rawURL)
	}
	opt, err := redis.ParseURL(rawURL)
	if err != nil {
		return nil, errors.New("REDIS_URL: not a valid redis:// or rediss:// URL")
	}
	opt.DialTimeout = 2 * time.Second
	opt.ReadTimeout = time.Second
	opt.WriteTimeout = time.Second
	opt.MaxRetries = 1
	// Fail fast when Redis is down: sessions fall back to PostgreSQL.
	opt.DialerRetries = 1
	opt.DialerRetryTimeout = 50 * time.Millisecond
	opt.PoolTimeout = 2 * time.Second
	opt.ReadBufferSize, opt.WriteBufferSize = redisBufferSize, redisBufferSize
	opt.PipelineReadBufferSize, opt.PipelineWriteBufferSize = redisBufferSize, redisBufferSize
	return redis.NewClient(opt), nil
}

// redisBufferSize is the read and write buffer of each Redis connection:
// the commands and replies here are a few hundred bytes, and go-redis's
// defaults (32 KiB, 128 KiB for its pipeline pool) held up to 3.8 MiB in a
// login storm (docs/benchmarks.md). Longer replies still read through it.
const redisBufferSize = 4 << 10

// newRedisCluster builds a Redis Cluster client from go-redis's cluster URL
// form, with the same fail-fast timeouts as the single-node client.
func newRedisCluster(rawURL string) (*redis.ClusterClient, error) {
	opt, err := redis.ParseClusterURL(rawURL)
	if err != nil {
		return nil, errors.New("REDIS_URL: not a valid Redis Cluster URL (redis[s]://[:password@]host:port?addr=host:port&...)")
	}
	for _, a := range opt.Addrs {
		if h, p, err := net.SplitHostPort(a); err != nil || h == "" || p == "" {
			return nil, errors.New("REDIS_URL: every cluster node needs a host and port")
		}
	}
	if opt.TLSConfig != nil {
		// ParseClusterURL pins the first node's name for every node; leave it
		// empty so each node's certificate is checked against its own host.
		opt.TLSConfig = &tls.Config{MinVersion: tls.VersionTLS12}
	}
	opt.DialTimeout = 2 * time.Second
	opt.ReadTimeout = time.Second
	opt.WriteTimeout = time.Second
	opt.MaxRetries = 1
	opt.DialerRetries = 1
	opt.DialerRetryTimeout = 50 * time.Millisecond
	opt.PoolTimeout = 2 * time.Second
	// (The Pipeline* sizes would give a cluster client a pipeline pool it has not now.)
	opt.ReadBufferSize, opt.WriteBufferSize = redisBufferSize, redisBufferSize
	return redis.NewClusterClient(opt), nil
}

// Hooks let tests observe a running server.
type Hooks struct {
	// Started is called with the API and metrics addresses once listening.
	Started func(apiAddr, metricsAddr string)
}

// Serve runs the server until ctx ends, then shuts down gracefully: /ready
// fails, in-flight requests drain, then the background workers stop.
func Serve(ctx context.Context, get config.Getenv, logOut io.Writer, hooks *Hooks) error {
	cfg, err := config.Load(get, os.ReadFile)
	if err != nil {
		return err
	}
	obs := cfg.Observability
	hub, err := observe.Sentry(obs, VersionString())
	if err != nil {
		return err
	}
	if hub != nil {
		defer hub.Flush(5 * time.Second)
	}
	log := slog.New(observe.Reporting(slog.NewJSONHandler(logOut, &slog.HandlerOptions{Level: cfg.LogLevel}), hub))
	slog.SetDefault(log)
	redis.SetLogger(redisLogger{log})
	res := SetResources(cfg, "/sys/fs/cgroup")
	tp, err := observe.Tracing(ctx, obs, VersionString())
	if err != nil {
		return err
	}
	var tracing trace.TracerProvider // stays a nil interface when off
	if tp != nil {
		tracing = tp
		defer func() {
			sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			if err := tp.Shutdown(sctx); err != nil {
				log.Warn("flushing traces", "error", err.Error())
			}
		}()
	}

	if v, _ := get("AUTH_AUTO_MIGRATE"); v == "true" || v == "1" {
		if _, err := store.MigrateLogged(ctx, cfg.DatabaseDirectURL, log); err != nil {
			return fmt.Errorf("migrating at start: %w", err)
		}
	}

	st, err := openStore(ctx, cfg.DatabaseURL, tp)
	if err != nil {
		return err
	}
	defer st.Close()
	rdb, err := NewRedis(cfg.RedisURL)
	if err != nil {
		return err
	}
	defer rdb.Close()
	if tp != nil {
		if err := observe.TraceRedis(rdb, tp); err != nil {
			return fmt.Errorf("tracing Redis: %w", err)
		}
	}

	hasher, err := password.New(cfg.Argon2, cfg.Peppers, cfg.HashConcurrency, cfg.HashQueue, cfg.HashWait)
	if err != nil {
		return err
	}
	hasher.OnHashing(res.Hashing(log))
	// Making the dummy hash allocated argon2 memory once; give it back
	// so the idle process stays small.
	debug.FreeOSMemory()
	sessions := session.NewManager(st.Pool, rdb, session.Options{TTL: cfg.SessionTTL, Idle: cfg.SessionIdleTimeout, TouchEvery: cfg.SessionTouchEvery, Logger: log})
	m := metrics.New(func() float64 { return float64(sessions.Active()) }, func() float64 { return float64(hasher.InFlight()) })
	m.WatchPools(func() metrics.Pools { return poolStats(st.Pool, rdb) }) // pools.go
	m.WatchHashing(hasher.Work)
	sender, err := mail.NewSMTPSender(cfg.SMTP)
	if err != nil {
		return err
	}
	worker := mail.NewWorker(st.Pool, sender, mail.WorkerOptions{
		Poll: cfg.MailPollInterval, RetryBase: cfg.MailRetryBase, RetryMax: cfg.MailRetryMax, MaxAge: cfg.MailMaxAge,
		Logger: log, Events: m, Tracing: tracing,
	})
	svc := service.New(service.Deps{
		Store: st, Hasher: hasher, Sessions: sessions, Limiter: ratelimit.New(rdb, cfg.RateLimits),
		Audit: audit.NewRecorder(m), Mailer: worker, Emails: m, Passkeys: m, Factors: m, Config: cfg, Logger: log,
	})
	defer svc.Wait() // rehashes started by requests finish before the pool closes
	want := store.LatestVersion()
	rh := &redisHealth{rdb: rdb, metrics: m, log: log}
	api := httpapi.New(httpapi.Options{
		Service: svc, Metrics: m, Config: cfg, Version: VersionString(), Logger: log, Tracing: tracing,
		Ready: func(ctx context.Context) []httpapi.Check {
			return readiness(ctx, st, rh, want)
		},
	})

	if cfg.UI.Enabled {
		ui.Mount(api, svc, cfg, log)
	}

	apiLn, err := net.Listen("tcp", net.JoinHostPort(strings.Trim(cfg.Host, "[]"), strconv.Itoa(cfg.Port)))
	if err != nil {
		return fmt.Errorf("listening on PORT %d: %w", cfg.Port, err)
	}
	apiSrv := NewAPIServer(api.Handler())
	apiSrv.ErrorLog = slog.NewLogLogger(log.Handler(), slog.LevelWarn)
	var grpcLn net.Listener
	if cfg.Edge.GRPCPort != 0 {
		grpcLn, err = net.Listen("tcp", net.JoinHostPort(strings.Trim(cfg.Host, "[]"), strconv.Itoa(cfg.Edge.GRPCPort)))
		if err != nil {
			apiLn.Close()
			return fmt.Errorf("listening on AUTH_GRPC_PORT %d: %w", cfg.Edge.GRPCPort, err)
		}
	}
	var metricsSrv *http.Server
	metricsAddr := ""
	if cfg.MetricsAddr != "" {
		mln, err := net.Listen("tcp", cfg.MetricsAddr)
		if err != nil {
			apiLn.Close()
			if grpcLn != nil {
				grpcLn.Close()
			}
			return fmt.Errorf("listening on METRICS_ADDR %s: %w", cfg.MetricsAddr, err)
		}
		metricsAddr = mln.Addr().String()
		mux := http.NewServeMux()
		mux.Handle("GET /metrics", m.Handler())
		if cfg.Pprof {
			// Only on the metrics listener, never on the API's.
			mux.HandleFunc("GET /debug/pprof/", pprof.Index)
			mux.HandleFunc("GET /debug/pprof/profile", pprof.Profile)
		}
		metricsSrv = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
		go func() {
			if err := metricsSrv.Serve(mln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				log.Error("metrics server", "error", err.Error())
			}
		}()
	}

	bg, stopBG := context.WithCancel(context.WithoutCancel(ctx))
	go releaseIdleHashMemory(bg, hasher)
	go rh.run(bg)
	go rememberHashParams(bg, st, hasher, log)
	done := make(chan struct{}, 3)
	go func() { worker.Run(bg); done <- struct{}{} }()
	go func() { sessions.Run(bg); done <- struct{}{} }()
	sweeper := housekeeping.New(st.Pool, housekeeping.Options{Interval: cfg.SweepInterval, Batch: cfg.SweepBatch, AuditRetention: cfg.AuditRetention, Logger: log})
	go func() { sweeper.Run(bg); done <- struct{}{} }()

	serveErr := make(chan error, 2)
	grpcCtx, stopGRPC := context.WithCancel(context.Background())
	defer stopGRPC()
	go func() { serveErr <- apiSrv.Serve(apiLn) }()
	grpcDone := make(chan struct{})
	grpcAddr := ""
	if grpcLn != nil {
		grpcAddr = grpcLn.Addr().String()
		// Envoy ext_authz (authserver/extauthz); stops with the HTTP API.
		go func() {
			defer close(grpcDone)
			if err := extauthz.Serve(grpcCtx, extauthz.NewGRPC(edge.NewChecker(svc.Authenticate, cfg)), grpcLn); err != nil {
				serveErr <- fmt.Errorf("serving gRPC: %w", err)
			}
		}()
	} else {
		close(grpcDone)
	}
	// Start-up is over: what it touched of the binary leaves the RSS
	// (exepages_linux.go).
	dropped, err := dropExecutablePages()
	if err != nil {
		log.Warn("dropping the executable's start-up pages", "error", err.Error())
	}
	log.Info("authserver started", "version", VersionString(), "addr", apiLn.Addr().String(), "metrics_addr", metricsAddr, "grpc_addr", grpcAddr,
		"argon2_memory_kib", cfg.Argon2.MemoryKiB, "argon2_iterations", cfg.Argon2.Iterations, "argon2_parallelism", cfg.Argon2.Parallelism,
		"hash_concurrency", cfg.HashConcurrency, "gomaxprocs", res.GOMAXPROCS, "cgroup_memory_bytes", res.CgroupMemory,
		"memory_limit_bytes", res.MemoryLimit, "memory_limit_from", res.MemoryFrom, "memory_limit_hashing_bytes", res.MemoryLimitHashing,
		"executable_pages_dropped_bytes", dropped,
		"peppers", len(cfg.Peppers), "schema_version_expected", want)
	if hooks != nil && hooks.Started != nil {
		hooks.Started(apiLn.Addr().String(), metricsAddr)
	}

	var runErr error
	select {
	case <-ctx.Done():
		log.Info("shutting down: draining requests")
	case err := <-serveErr:
		runErr = fmt.Errorf("serving HTTP: %w", err)
	}
	api.SetDraining()
	sctx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
	defer cancel()
	stopGRPC()
	if err := apiSrv.Shutdown(sctx); err != nil {
		log.Warn("HTTP shutdown", "error", err.Error())
	}
	select {
	case <-grpcDone:
	case <-sctx.Done():
	}
	// Requests are done: stop the outbox worker (it finishes the message
	// in hand), the session flusher (writes pending last_seen_at) and the sweeper.
	stopBG()
	for i := 0; i < 3; i++ {
		select {
		case <-done:
		case <-sctx.Done():
			i = 3
		}
	}
	if metricsSrv != nil {
		_ = metricsSrv.Shutdown(sctx)
	}
	log.Info("authserver stopped")
	return runErr
}

// openStore is store.Open, with every query a span when tp is set.
func openStore(ctx context.Context, url string, tp *sdktrace.TracerProvider) (*store.Store, error) {
	if tp == nil {
		return store.Open(ctx, url)
	}
	pc, err := store.PoolConfig(url)
	if err != nil {
		return nil, err
	}
	observe.TracePostgres(pc, tp)
	pool, err := pgxpool.NewWithConfig(ctx, pc)
	if err != nil {
		return nil, fmt.Errorf("creating database pool: %w", err)
	}
	return &store.Store{Pool: pool}, nil
}

// readiness: PostgreSQL and the schema version decide; Redis only
// degrades (sessions fall back to PostgreSQL, limits fail open), so a Redis
// outage never takes every pod out of the Service.
func readiness(ctx context.Context, st *store.Store, rh *redisHealth, want int) []httpapi.Check {
	checks := []httpapi.Check{{Name: "postgres"}, {Name: "redis", Degrades: true}, {Name: "schema"}}
	if err := st.Ping(ctx); err != nil {
		checks[0].Err = errors.New("unreachable")
		checks[2].Err = errors.New("unknown (postgres unreachable)")
	} else if v, err := st.SchemaVersion(ctx); err != nil {
		checks[2].Err = errors.New("cannot read schema version")
	} else if v < want {
		checks[2].Err = fmt.Errorf("schema version %d, need %d: run authserver migrate", v, want)
	}
	if err := rh.check(ctx); err != nil {
		checks[1].Err = errors.New("unreachable (degraded: sessions from PostgreSQL, rate limits not enforced)")
	}
	return checks
}

// redisHealth pings Redis every few seconds (and on each readiness probe),
// keeps redis_up current and logs each change between up and degraded.
type redisHealth struct {
	rdb     redis.UniversalClient
	metrics *metrics.Metrics
	log     *slog.Logger
	state   atomic.Int32 // 0 unknown, 1 up, 2 down
}

func (h *redisHealth) check(ctx context.Context) error {
	pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	err := h.rdb.Ping(pctx).Err()
	cancel()
	state := int32(1)
	if err != nil {
		state = 2
	}
	h.metrics.SetRedisUp(err == nil)
	if old := h.state.Swap(state); old != state {
		if err != nil {
			h.log.Warn("redis unavailable: running degraded (sessions validated from PostgreSQL, rate limits and lockout not enforced)", "error", err.Error())
		} else if old == 2 {
			h.log.Info("redis available again: degraded mode over")
		}
	}
	return err
}

func (h *redisHealth) run(ctx context.Context) {
	t := time.NewTicker(5 * time.Second)
	defer t.Stop()
	for {
		if h.check(ctx) == nil {
			mctx, cancel := context.WithTimeout(ctx, 2*time.Second)
			if used, max, err := redisMemory(mctx, h.rdb); err == nil { // pools.go
				h.metrics.SetRedisMemory(used, max)
			}
			cancel()
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// redisLogger sends go-redis's internal messages to slog at debug level
// (its connection errors are reported by our callers already).
type redisLogger struct{ log *slog.Logger }

func (l redisLogger) Printf(ctx context.Context, format string, v ...any) {
	l.log.Debug("redis client", "message", fmt.Sprintf(format, v...))
}

// rememberHashParams tells the hasher which argon2 parameter sets the stored
// hashes use, so that right after a parameter change every login does the
// same work from the first request (password.Hasher.RememberParams).
func rememberHashParams(ctx context.Context, st *store.Store, h *password.Hasher, log *slog.Logger) {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	samples, err := store.HashParamSamples(ctx, st.Pool)
	if err != nil {
		log.Warn("reading the argon2 parameters of stored hashes", "error", err.Error())
		return
	}
	h.RememberParams(samples...)
	log.Info("argon2 parameter sets of stored hashes read", "sets", len(samples))
}

// releaseIdleHashMemory gives the hashing slots' argon2 memory back after
// five minutes without a hash, so an idle pod shrinks to its base size.
func releaseIdleHashMemory(ctx context.Context, h *password.Hasher) {
	t := time.NewTicker(time.Minute)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			h.ReleaseIdleMemory(5 * time.Minute)
		}
	}
}
