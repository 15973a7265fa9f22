package resources

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	authv1alpha1 "github.com/leanauth/authstack/api/v1alpha1"
	"github.com/leanauth/authstack/authserver/store"
	"github.com/leanauth/authstack/internal/testservers"
)

func TestParseDatabaseURL(t *testing.T) {
	good := []struct {
		raw  string
		want DatabaseURL
	}{
		{"postgres://auth:pw@pg.team-a.svc:5433/authdb?sslmode=require",
			DatabaseURL{Host: "pg.team-a.svc", Port: 5433, DBName: "authdb", User: "auth", Password: "pw", SSLMode: "require"}},
		{"postgresql://auth:p%40ss%3Aw%2Fo%22rd@10.0.0.5/auth",
			DatabaseURL{Host: "10.0.0.5", Port: 5432, DBName: "auth", User: "auth", Password: `p@ss:w/o"rd`, SSLMode: "prefer"}},
		{"postgres://auth:pw@[fd00::5]:6000/auth?sslmode=verify-full&application_name=x",
			DatabaseURL{Host: "fd00::5", Port: 6000, DBName: "auth", User: "auth", Password: "pw", SSLMode: "verify-full"}},
		{"  postgres://u_1:pw@db/d-1.x?sslmode=disable\n",
			DatabaseURL{Host: "db", Port: 5432, DBName: "d-1.x", User: "u_1", Password: "pw", SSLMode: "disable"}},
	}
	for _, g := range good {
		got, err := ParseDatabaseURL(g.raw)
		if err != nil {
			t.Errorf("ParseDatabaseURL(%q): %v", g.raw, err)
			continue
		}
		if got != g.want {
			t.Errorf("ParseDatabaseURL(%q) = %+v, want %+v", g.raw, got.Password+" "+got.String(), g.want.String())
		}
	}
	bad := []struct{ raw, why string }{
		{"mysql://auth:SECRETPW@db/auth", "scheme"},
		{"postgres://auth:SECRETPW@/auth", "no host"},
		{"postgres://SECRETPW@db/auth", "no password"},
		{"postgres://:SECRETPW@db/auth", "no user"},
		{"postgres://auth:SECRETPW@db", "no database name"},
		{"postgres://auth:SECRETPW@db:0/auth", "port"},
		{"postgres://auth:SECRETPW@db:99999/auth", "port"},
		{"postgres://auth:SECRETPW@db/auth?sslmode=always", "sslmode"},
		{"postgres://auth:SECRETPW@db1,db2/auth", "several hosts"},
		{"postgres://auth:SECRETPW@db/auth%20x", "database name"},
		{"postgres://au%20th:SECRETPW@db/auth", "user name"},
		{"postgres://auth:SECRET%0APW@db/auth", "control character"},
		{"postgres://auth:SECRETPW@db/auth?sslmode=%zz", "query string"},
		{"::SECRETPW", "not a URL"},
	}
	for _, b := range bad {
		_, err := ParseDatabaseURL(b.raw)
		if err == nil {
			t.Errorf("ParseDatabaseURL(%q) accepted", b.raw)
			continue
		}
		if !errors.Is(err, ErrInvalidDatabaseURL) || !strings.Contains(err.Error(), b.why) {
			t.Errorf("ParseDatabaseURL(%q) = %v, want an ErrInvalidDatabaseURL about %q", b.raw, err, b.why)
		}
		if strings.Contains(err.Error(), "SECRET") {
			t.Errorf("the error for %q shows the password: %v", b.raw, err)
		}
	}
	d, _ := ParseDatabaseURL("postgres://auth:SECRETPW@db/auth")
	for _, s := range []string{d.String(), fmt.Sprintf("%v %+v %#v %s", d, d, d, d)} {
		if strings.Contains(s, "SECRETPW") {
			t.Errorf("printing a DatabaseURL shows the password: %s", s)
		}
	}
}

func pgbouncerIni(t *testing.T, ini string) map[string]string {
	t.Helper()
	out := map[string]string{}
	section := ""
	for _, line := range strings.Split(ini, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, ";") {
			continue
		}
		if strings.HasPrefix(line, "[") {
			section = strings.Trim(line, "[]")
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			t.Fatalf("ini line without '=': %q", line)
		}
		key := section + "." + strings.TrimSpace(k)
		if _, dup := out[key]; dup {
			t.Errorf("ini key %s set twice", key)
		}
		out[key] = strings.TrimSpace(v)
	}
	return out
}

func TestPgBouncerConfig(t *testing.T) {
	s := sampleStack()
	s.Spec.Pooler = authv1alpha1.PoolerSpec{Enabled: ptr.To(true), Replicas: 2, PoolMode: "transaction", MaxClientConnections: 1000, DefaultPoolSize: 25}
	db, err := ParseDatabaseURL(string(testSecretValues[authv1alpha1.SecretKeyRef{Name: "demo-db", Key: "url"}]))
	if err != nil {
		t.Fatal(err)
	}
	ini, userlist := PgBouncerConfig(s, db)
	kv := pgbouncerIni(t, ini)
	want := map[string]string{
		"databases.auth":                      "host=pg.team-a.svc port=5432 dbname=auth",
		"pgbouncer.listen_port":               "6432",
		"pgbouncer.pool_mode":                 "transaction",
		"pgbouncer.max_client_conn":           "1000",
		"pgbouncer.default_pool_size":         "25",
		"pgbouncer.auth_type":                 "scram-sha-256",
		"pgbouncer.auth_file":                 "/etc/pgbouncer/userlist.txt",
		"pgbouncer.server_tls_sslmode":        "require",
		"pgbouncer.unix_socket_dir":           "",
		"pgbouncer.logfile":                   "",
		"pgbouncer.pidfile":                   "",
		"pgbouncer.ignore_startup_parameters": "extra_float_digits",
	}
	for k, v := range want {
		if got, ok := kv[k]; !ok || got != v {
			t.Errorf("%s = %q (set %v), want %q", k, got, ok, v)
		}
	}
	if _, ok := kv["pgbouncer.server_tls_ca_file"]; ok {
		t.Error("server_tls_ca_file set for sslmode=require")
	}
	if strings.Contains(ini, "db-SECRET-pw") {
		t.Error("pgbouncer.ini holds the password; it belongs in the auth file only")
	}
	if userlist != "\"auth\" \"db-SECRET-pw\"\n" {
		t.Errorf("userlist = %q", userlist)
	}

	// The TLS mode follows the URL; settings follow the spec.
	db.SSLMode = "verify-full"
	s.Spec.Pooler.PoolMode, s.Spec.Pooler.MaxClientConnections, s.Spec.Pooler.DefaultPoolSize = "session", 50, 7
	kv = pgbouncerIni(t, func() string { i, _ := PgBouncerConfig(s, db); return i }())
	for k, v := range map[string]string{"pgbouncer.server_tls_sslmode": "verify-full", "pgbouncer.server_tls_ca_file": systemCABundle,
		"pgbouncer.pool_mode": "session", "pgbouncer.max_client_conn": "50", "pgbouncer.default_pool_size": "7"} {
		if kv[k] != v {
			t.Errorf("%s = %q, want %q", k, kv[k], v)
		}
	}
	// Quotes in the password are doubled in the auth file.
	db.Password = `a"b`
	if _, ul := PgBouncerConfig(s, db); ul != "\"auth\" \"a\"\"b\"\n" {
		t.Errorf("userlist with a quote = %q", ul)
	}
	// Deterministic.
	a, b := PgBouncerConfigSecret(s, db), PgBouncerConfigSecret(s, db)
	if string(mustJSON(t, a)) != string(mustJSON(t, b)) || SecretDataHash(a.Data) != SecretDataHash(b.Data) {
		t.Error("PgBouncerConfigSecret is not deterministic")
	}
}

func TestPgBouncerObjects(t *testing.T) {
	s := sampleStack()
	in := sampleInputs(s)
	in.PgBouncerImage, in.PoolerConfigHash = "example.com/pgbouncer:1", "hash-1"
	d := PgBouncerDeployment(s, in)
	pod := d.Spec.Template.Spec
	c := container(t, pod, ComponentPgBouncer)
	if c.Image != "example.com/pgbouncer:1" || ptr.Deref(d.Spec.Replicas, 0) != 2 {
		t.Errorf("image %q replicas %v: want the operator default and the spec's default 2", c.Image, d.Spec.Replicas)
	}
	if d.Spec.Template.Annotations[AnnotationConfigHash] != "hash-1" {
		t.Error("the pod template does not carry the config hash")
	}
	if strings.Join(c.Command, " ") != "pgbouncer /etc/pgbouncer/pgbouncer.ini" {
		t.Errorf("command %v", c.Command)
	}
	if v := pod.Volumes[0]; v.Secret == nil || v.Secret.SecretName != "demo-pgbouncer-config" {
		t.Errorf("config volume %+v", v)
	}
	if len(c.Env) != 0 {
		t.Errorf("pgbouncer needs no env, has %v", c.Env)
	}
	if c.ReadinessProbe == nil || c.ReadinessProbe.TCPSocket == nil || c.ReadinessProbe.TCPSocket.Port.StrVal != PortNamePostgres {
		t.Errorf("readiness probe %+v", c.ReadinessProbe)
	}
	s.Spec.Pooler.Image, s.Spec.Pooler.Replicas = "mine/pgbouncer:2", 4
	s.Spec.Pooler.Resources = &corev1.ResourceRequirements{Limits: corev1.ResourceList{corev1.ResourceMemory: qty("1Gi")}}
	d = PgBouncerDeployment(s, in)
	c = d.Spec.Template.Spec.Containers[0]
	if c.Image != "mine/pgbouncer:2" || *d.Spec.Replicas != 4 || !c.Resources.Limits.Memory().Equal(qty("1Gi")) {
		t.Errorf("spec overrides ignored: image %q replicas %d resources %v", c.Image, *d.Spec.Replicas, c.Resources)
	}
	svc := PgBouncerService(s)
	if svc.Spec.Ports[0].Port != 6432 || svc.Spec.Selector[LabelComponent] != ComponentPgBouncer {
		t.Errorf("service %+v", svc.Spec)
	}
	pdb := PgBouncerPDB(s)
	if pdb.Spec.MaxUnavailable.IntValue() != 1 {
		t.Errorf("pdb %+v", pdb.Spec)
	}
	db := DatabaseURL{Host: "x", Port: 1, DBName: "auth", User: "auth", Password: "pw", SSLMode: "require"}
	for _, obj := range []metav1.Object{d, svc, pdb, PgBouncerConfigSecret(s, db)} {
		refs := obj.GetOwnerReferences()
		if len(refs) != 1 || refs[0].UID != testUID || !ptr.Deref(refs[0].Controller, false) {
			t.Errorf("%s: owner references %v", obj.GetName(), refs)
		}
	}
	if got := PooledDatabaseURL(s, DatabaseURL{Host: "x", Port: 1, DBName: "auth", User: "auth", Password: "p w", SSLMode: "require"}); got != "postgres://auth:p%20w@demo-pgbouncer.team-a.svc:6432/auth?sslmode=disable" {
		t.Errorf("pooled URL %q", got)
	}
}

// TestPgBouncerRenderedConfigRunsForReal starts the real pgbouncer with the rendered
// pgbouncer.ini and auth file in front of a real PostgreSQL, and runs the authserver's
// store through it in transaction mode: many concurrent clients share a pool of
// default_pool_size server connections.
func TestPgBouncerRenderedConfigRunsForReal(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	pg := testservers.Postgres(t)
	directURL := pg.NewDatabase(t)
	db, err := ParseDatabaseURL(directURL)
	if err != nil {
		t.Fatal(err)
	}
	s := sampleStack()
	s.Spec.Pooler = authv1alpha1.PoolerSpec{Enabled: ptr.To(true), PoolMode: "transaction", MaxClientConnections: 100, DefaultPoolSize: 3}
	sec := PgBouncerConfigSecret(s, db)
	bouncer := testservers.PgBouncerWithConfig(t, string(sec.Data[PgBouncerIniKey]), string(sec.Data[PgBouncerUserlistKey]))
	// The URL the operator renders for the authserver, with the host swapped for the test's.
	// pool_max_conns: one pgbouncer client connection per goroutine below, so the
	// clients outnumber the server connections and only transaction pooling serves them.
	pooled := db.URLWith("127.0.0.1", bouncer.Server().Port(), "disable") + "&pool_max_conns=24"

	// Migrations go straight to the database (DATABASE_DIRECT_URL), as in the pods.
	if _, err := store.Migrate(ctx, directURL); err != nil {
		t.Fatalf("migrating: %v", err)
	}
	st, err := store.Open(ctx, pooled)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if err := st.Ping(ctx); err != nil {
		t.Fatalf("ping through pgbouncer: %v\n%s", err, bouncer.Server().LogPath())
	}
	if v, err := st.SchemaVersion(ctx); err != nil || v != store.LatestVersion() {
		t.Fatalf("schema version through pgbouncer = %d, %v; want %d", v, err, store.LatestVersion())
	}

	const clients = 24
	var wg sync.WaitGroup
	errs := make(chan error, clients)
	for i := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			email := fmt.Sprintf("user%d@example.com", i)
			err := st.InTx(ctx, func(tx store.DBTX) error {
				u, inserted, err := store.InsertUser(ctx, tx, email, "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA")
				if err != nil || !inserted {
					return fmt.Errorf("insert %s: inserted=%v %w", email, inserted, err)
				}
				// Hold the transaction (and its server connection) a moment, so the
				// clients really contend for the small pool.
				if _, err := tx.Exec(ctx, "SELECT pg_sleep(0.05)"); err != nil {
					return err
				}
				sess := &store.Session{TokenHash: []byte(fmt.Sprintf("token-hash-%02d-........................", i)), UserID: u.ID,
					ExpiresAt: time.Now().Add(time.Hour), IP: "192.0.2.1", UserAgent: "test"}
				return store.InsertSession(ctx, tx, sess)
			})
			if err == nil {
				_, err = store.UserByEmail(ctx, st.Pool, email)
			}
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Errorf("store through pgbouncer: %v", err)
		}
	}

	// Transaction pooling: at most default_pool_size (+ reserve) server connections.
	admin, err := pgxpool.New(ctx, pg.AdminURL("postgres"))
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	var backends int
	if err := admin.QueryRow(ctx, "SELECT count(*) FROM pg_stat_activity WHERE datname = $1", db.DBName).Scan(&backends); err != nil {
		t.Fatal(err)
	}
	if backends < 1 || backends > 3+5 {
		t.Errorf("%d server connections for %d clients; want 1..%d (pool size + reserve)", backends, clients, 3+5)
	}
	var users int
	if err := st.Pool.QueryRow(ctx, "SELECT count(*) FROM users").Scan(&users); err != nil || users != clients {
		t.Errorf("users = %d (%v), want %d", users, err, clients)
	}

	// The auth file is enforced: a wrong password is refused by pgbouncer.
	wrong := db
	wrong.Password = "not-the-password"
	conn, err := pgx.Connect(ctx, wrong.URLWith("127.0.0.1", bouncer.Server().Port(), "disable"))
	if err == nil {
		conn.Close(ctx)
		t.Error("pgbouncer accepted a wrong password")
	}
	// Only the stack's database is served.
	other := db
	other.DBName = "postgres"
	if conn, err := pgx.Connect(ctx, other.URLWith("127.0.0.1", bouncer.Server().Port(), "disable")); err == nil {
		conn.Close(ctx)
		t.Error("pgbouncer served a database other than the stack's")
	}
}
