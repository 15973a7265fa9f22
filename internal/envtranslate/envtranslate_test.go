package envtranslate

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	authv1alpha1 "github.com/leanauth/authstack/api/v1alpha1"
	"github.com/leanauth/authstack/authserver/config"
	"github.com/leanauth/authstack/controllers/resources"
)

const pepperHex = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"

func sampleStack() *authv1alpha1.AuthStack {
	return &authv1alpha1.AuthStack{
		ObjectMeta: metav1.ObjectMeta{Name: "example", Namespace: "shop"},
		Spec: authv1alpha1.AuthStackSpec{
			AuthServer: authv1alpha1.AuthServerSpec{
				FrontendURL: "https://app.example.com",
				MailFrom:    "Example <noreply@example.com>",
				LogLevel:    "info",
			},
			Database: authv1alpha1.DatabaseSpec{URLSecretRef: &authv1alpha1.SecretKeyRef{Name: "example-database", Key: "url"}},
			Redis:    authv1alpha1.RedisSpec{URLSecretRef: &authv1alpha1.SecretKeyRef{Name: "example-redis", Key: "url"}},
			SMTP: authv1alpha1.SMTPSpec{Host: "smtp.example.com", Port: 587, Username: "noreply@example.com",
				PasswordSecretRef: &authv1alpha1.SecretKeyRef{Name: "example-smtp", Key: "password"}},
		},
	}
}

func secret(name string, kv ...string) *corev1.Secret {
	s := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "shop"}, Data: map[string][]byte{}}
	for i := 0; i+1 < len(kv); i += 2 {
		s.Data[kv[i]] = []byte(kv[i+1])
	}
	return s
}

const dbURL = "postgres://authstack:s3cret-db@postgres.databases.svc:5432/auth?sslmode=disable"

// sampleSecrets are the user's Secrets and the ones the operator's real
// builders render (the connection Secret pointing at the pooler).
func sampleSecrets(t *testing.T) map[string]*corev1.Secret {
	t.Helper()
	stack := sampleStack()
	db, err := resources.ParseDatabaseURL(dbURL)
	if err != nil {
		t.Fatal(err)
	}
	conn := resources.ConnectionSecret(stack, resources.ConnectionFor(stack, db, ""))
	if conn == nil {
		t.Fatal("the default stack (pooler on) renders no connection Secret")
	}
	return map[string]*corev1.Secret{
		"example-database":   secret("example-database", "url", dbURL),
		"example-redis":      secret("example-redis", "url", "redis://:s3cret-redis@redis.databases.svc.cluster.local:6379/0"),
		"example-smtp":       secret("example-smtp", "password", "s3cret-smtp"),
		"example-pepper":     secret("example-pepper", "pepper", pepperHex),
		"example-connection": conn,
	}
}

func sampleOptions(dir string) Options {
	return Options{
		Container: "authserver",
		Addresses: map[string]string{
			"postgres.databases:5432":  "127.0.0.1:40001",
			"redis.databases.svc:6379": "127.0.0.1:40002",
			"smtp.example.com:587":     "127.0.0.1:40003",
			"example-pgbouncer:6432":   "127.0.0.1:40004",
		},
		FilesDir: dir,
		Listen:   map[string]string{"HOST": "127.0.0.1", "PORT": "40010", "METRICS_ADDR": "127.0.0.1:40011"},
	}
}

// The Deployment the operator's real builder renders, translated, is a
// configuration the authserver's own loader accepts, with every address on loopback.
func TestTranslateRenderedDeploymentLoadsInTheAuthserver(t *testing.T) {
	stack := sampleStack()
	dep := resources.AuthServerDeployment(stack, resources.Inputs{
		AuthServerImage: "ghcr.io/leanauth/authserver:test",
		Pepper:          resources.PepperRef(stack),
		ConfigHash:      "abc",
	})
	dep.Namespace = "shop"
	dir := t.TempDir()
	p, err := Translate(dep, sampleSecrets(t), nil, sampleOptions(dir))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(p.Args, " ") != "serve" {
		t.Fatalf("args = %q, want serve", p.Args)
	}
	want := map[string]string{
		"DATABASE_URL":        "postgres://authstack:s3cret-db@127.0.0.1:40004/auth?sslmode=disable",
		"DATABASE_DIRECT_URL": "postgres://authstack:s3cret-db@127.0.0.1:40001/auth?sslmode=disable",
		"REDIS_URL":           "redis://:s3cret-redis@127.0.0.1:40002/0",
		"SMTP_HOST":           "127.0.0.1",
		"SMTP_PORT":           "40003",
		"SMTP_USER":           "noreply@example.com",
		"SMTP_PASS":           "s3cret-smtp",
		"HOST":                "127.0.0.1",
		"PORT":                "40010",
		"METRICS_ADDR":        "127.0.0.1:40011",
		"AUTH_PEPPER_FILE":    filepath.Join(dir, "pepper", resources.PepperFileName),
		"FRONTEND_URL":        "https://app.example.com",
	}
	for k, v := range want {
		if got, ok := p.Lookup(k); !ok || got != v {
			t.Errorf("%s = %q (set %v), want %q", k, got, ok, v)
		}
	}
	if len(p.Files) != 1 || p.Files[0].Path != filepath.Join(dir, "pepper", "pepper") || string(p.Files[0].Data) != pepperHex {
		t.Fatalf("files = %+v", p.Files)
	}
	if p.Files[0].Mode != 0o440 {
		t.Errorf("pepper file mode = %o, want the rendered 0440", p.Files[0].Mode)
	}

	// Write the files and load the configuration as the authserver does.
	if err := os.MkdirAll(filepath.Dir(p.Files[0].Path), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p.Files[0].Path, p.Files[0].Data, os.FileMode(p.Files[0].Mode)); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{}
	for _, kv := range p.Environ() {
		k, v, _ := strings.Cut(kv, "=")
		env[k] = v
	}
	cfg, err := config.Load(func(k string) (string, bool) { v, ok := env[k]; return v, ok }, os.ReadFile)
	if err != nil {
		t.Fatalf("the authserver refuses the translated configuration: %v", err)
	}
	if cfg.Host != "127.0.0.1" || cfg.Port != 40010 || cfg.MetricsAddr != "127.0.0.1:40011" {
		t.Errorf("listen = %s:%d metrics %s", cfg.Host, cfg.Port, cfg.MetricsAddr)
	}
	if len(cfg.Peppers) != 1 || cfg.Peppers[0].ID != config.PepperID(mustHex(t, pepperHex)) {
		t.Errorf("pepper not read from the translated file: %+v", cfg.Peppers)
	}

	// The description for people never shows a Secret's value.
	d := p.Describe()
	for _, s := range []string{"s3cret-db", "s3cret-redis", "s3cret-smtp", pepperHex} {
		if strings.Contains(d, s) {
			t.Errorf("Describe shows a secret value %q:\n%s", s, d)
		}
	}
	if !strings.Contains(d, "<secret example-database/url>") {
		t.Errorf("Describe does not say where DATABASE_URL comes from:\n%s", d)
	}
}

// The migration init container gets only the database, translated the same way.
func TestTranslateInitContainer(t *testing.T) {
	stack := sampleStack()
	dep := resources.AuthServerDeployment(stack, resources.Inputs{AuthServerImage: "x", Pepper: resources.PepperRef(stack)})
	o := sampleOptions(t.TempDir())
	o.Container = "migrate"
	o.Namespace = "shop"
	p, err := Translate(dep, sampleSecrets(t), nil, o)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(p.Args, " ") != "migrate" {
		t.Fatalf("args = %q", p.Args)
	}
	if v, _ := p.Lookup("DATABASE_DIRECT_URL"); !strings.Contains(v, "@127.0.0.1:40001/") {
		t.Errorf("DATABASE_DIRECT_URL = %q", v)
	}
	if v, _ := p.Lookup("DATABASE_URL"); !strings.Contains(v, "@127.0.0.1:40004/") {
		t.Errorf("DATABASE_URL = %q", v)
	}
	if _, ok := p.Lookup("REDIS_URL"); ok {
		t.Errorf("migrate got REDIS_URL")
	}
	if _, ok := p.Lookup("PORT"); ok {
		t.Errorf("a listen setting was added to a container that has none")
	}
}

func TestTranslateErrorsNameTheProblemNotTheValue(t *testing.T) {
	stack := sampleStack()
	dep := resources.AuthServerDeployment(stack, resources.Inputs{AuthServerImage: "x", Pepper: resources.PepperRef(stack)})
	dep.Namespace = "shop"

	cases := map[string]struct {
		mutate func(s map[string]*corev1.Secret, o *Options)
		want   string
	}{
		"missing secret": {func(s map[string]*corev1.Secret, o *Options) { delete(s, "example-smtp") }, "Secret shop/example-smtp not found"},
		"missing key": {func(s map[string]*corev1.Secret, o *Options) {
			s["example-redis"] = secret("example-redis", "uri", "x")
		}, `has no key "url"`},
		"unmapped in-cluster address": {func(s map[string]*corev1.Secret, o *Options) {
			delete(o.Addresses, "postgres.databases:5432")
		}, "postgres.databases.svc:5432 has no local equivalent"},
		"unknown container": {func(s map[string]*corev1.Secret, o *Options) { o.Container = "sidecar" }, `no container "sidecar"`},
		"no files dir":      {func(s map[string]*corev1.Secret, o *Options) { o.FilesDir = "" }, "FilesDir is needed"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			s := sampleSecrets(t)
			o := sampleOptions(t.TempDir())
			o.Namespace = "shop"
			tc.mutate(s, &o)
			_, err := Translate(dep, s, nil, o)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want %q", err, tc.want)
			}
			for _, v := range []string{"s3cret-db", "s3cret-redis", "s3cret-smtp", pepperHex} {
				if strings.Contains(err.Error(), v) {
					t.Fatalf("error shows a secret value: %v", err)
				}
			}
		})
	}
}

func TestCanonicalHost(t *testing.T) {
	for in, want := range map[string]string{
		"postgres":                       "postgres.shop.svc",
		"postgres.db":                    "postgres.db.svc",
		"postgres.db.svc":                "postgres.db.svc",
		"Postgres.DB.svc.cluster.local.": "postgres.db.svc",
		"smtp.example.com":               "smtp.example.com",
		"10.0.0.1":                       "10.0.0.1",
		"example-pgbouncer.shop.svc.cluster.local": "example-pgbouncer.shop.svc",
	} {
		if got := canonicalHost(in, "shop"); got != want {
			t.Errorf("canonicalHost(%q) = %q, want %q", in, got, want)
		}
	}
}

// Volume items, modes, optional sources, envFrom and path traversal.
func TestTranslateVolumesAndEnvFrom(t *testing.T) {
	stack := sampleStack()
	dep := resources.AuthServerDeployment(stack, resources.Inputs{AuthServerImage: "x", Pepper: resources.PepperRef(stack)})
	dep.Namespace = "shop"
	c := &dep.Spec.Template.Spec.Containers[0]
	c.EnvFrom = []corev1.EnvFromSource{
		{Prefix: "CM_", ConfigMapRef: &corev1.ConfigMapEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: "settings"}}},
		{SecretRef: &corev1.SecretEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: "absent"}, Optional: ptr.To(true)}},
	}
	c.VolumeMounts = append(c.VolumeMounts, corev1.VolumeMount{Name: "conf", MountPath: "/etc/conf/"})
	c.Env = append(c.Env, corev1.EnvVar{Name: "CONF_FILE", Value: "/etc/conf/app.ini"})
	dep.Spec.Template.Spec.Volumes = append(dep.Spec.Template.Spec.Volumes, corev1.Volume{Name: "conf",
		VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{LocalObjectReference: corev1.LocalObjectReference{Name: "settings"}}}})
	cms := map[string]*corev1.ConfigMap{"settings": {ObjectMeta: metav1.ObjectMeta{Name: "settings"}, Data: map[string]string{"app.ini": "x=1"}}}
	dir := t.TempDir()
	p, err := Translate(dep, sampleSecrets(t), cms, sampleOptions(dir))
	if err != nil {
		t.Fatal(err)
	}
	if v, _ := p.Lookup("CM_app.ini"); v != "x=1" {
		t.Errorf("envFrom configmap: %q", v)
	}
	if v, _ := p.Lookup("CONF_FILE"); v != filepath.Join(dir, "conf", "app.ini") {
		t.Errorf("CONF_FILE = %q", v)
	}
	found := false
	for _, f := range p.Files {
		if f.Path == filepath.Join(dir, "conf", "app.ini") && string(f.Data) == "x=1" && f.Mode == 0o644 {
			found = true
		}
	}
	if !found {
		t.Errorf("configmap volume file missing: %+v", p.Files)
	}

	dep.Spec.Template.Spec.Volumes[0].Secret.Items[0].Path = "../escape"
	if _, err := Translate(dep, sampleSecrets(t), cms, sampleOptions(dir)); err == nil || !strings.Contains(err.Error(), "escapes") {
		t.Fatalf("path traversal accepted: %v", err)
	}
}

func mustHex(t *testing.T, s string) []byte {
	t.Helper()
	b, err := config.ParsePepper(s)
	if err != nil {
		t.Fatal(errors.New("bad test pepper"))
	}
	return b
}

// The pgbouncer.ini the operator renders points at the local PostgreSQL after translation.
func TestPgBouncerIni(t *testing.T) {
	stack := sampleStack()
	db, err := resources.ParseDatabaseURL(dbURL)
	if err != nil {
		t.Fatal(err)
	}
	ini, _ := resources.PgBouncerConfig(stack, db)
	out, err := PgBouncerIni(ini, "shop", map[string]string{"postgres.databases.svc:5432": "127.0.0.1:40001"})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, "auth = host=127.0.0.1 port=40001 dbname=auth") {
		t.Fatalf("not translated:\n%s", out)
	}
	if !strings.Contains(out, "pool_mode = transaction") {
		t.Fatalf("other settings lost:\n%s", out)
	}
	if _, err := PgBouncerIni(ini, "shop", nil); err == nil || !strings.Contains(err.Error(), "postgres.databases.svc:5432 has no local equivalent") {
		t.Fatalf("unmapped host: %v", err)
	}
}
