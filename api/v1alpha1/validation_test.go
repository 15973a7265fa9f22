package v1alpha1_test

// These tests run the AuthStack CRD's validation (OpenAPI schema, defaults and
// CEL rules) in a real kube-apiserver started by envtest: every rule must
// reject its bad input with an error that names the field, and a minimal
// AuthStack must be accepted and defaulted. They need KUBEBUILDER_ASSETS
// (see hack/control-plane.sh; `make test` sets it).

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	"sigs.k8s.io/yaml"

	authv1alpha1 "github.com/leanauth/authstack/api/v1alpha1"
)

const testNamespace = "validation"

var (
	crdDir    = filepath.Join("..", "..", "config", "crd", "bases")
	k8sClient client.Client
	restCfg   *rest.Config
)

func TestMain(m *testing.M) {
	os.Exit(runMain(m))
}

func runMain(m *testing.M) int {
	if os.Getenv("KUBEBUILDER_ASSETS") == "" {
		fmt.Fprintln(os.Stderr, "KUBEBUILDER_ASSETS is not set: run `make test`, or "+
			"KUBEBUILDER_ASSETS=$(hack/control-plane.sh kube-apiserver etcd) go test ./api/...")
		return 1
	}
	env := &envtest.Environment{
		CRDDirectoryPaths:     []string{crdDir},
		ErrorIfCRDPathMissing: true,
	}
	cfg, err := env.Start()
	if err != nil {
		fmt.Fprintln(os.Stderr, "starting envtest:", err)
		_ = env.Stop() // a failed CRD install leaves etcd and kube-apiserver running otherwise
		return 1
	}
	defer func() {
		if err := env.Stop(); err != nil {
			fmt.Fprintln(os.Stderr, "stopping envtest:", err)
		}
	}()

	scheme := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(scheme); err != nil {
		fmt.Fprintln(os.Stderr, "building the scheme:", err)
		return 1
	}
	if err := authv1alpha1.AddToScheme(scheme); err != nil {
		fmt.Fprintln(os.Stderr, "building the scheme:", err)
		return 1
	}
	restCfg = cfg
	k8sClient, err = client.New(cfg, client.Options{Scheme: scheme})
	if err != nil {
		fmt.Fprintln(os.Stderr, "creating the client:", err)
		return 1
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: testNamespace}}
	if err := k8sClient.Create(ctx, ns); err != nil {
		fmt.Fprintln(os.Stderr, "creating the test namespace:", err)
		return 1
	}
	return m.Run()
}

// minimalSpec is the smallest valid spec: only the required fields.
func minimalSpec() map[string]any {
	return map[string]any{
		"authServer": map[string]any{"frontendURL": "https://app.example.com"},
		"database":   map[string]any{"urlSecretRef": map[string]any{"name": "db", "key": "url"}},
		"redis":      map[string]any{"urlSecretRef": map[string]any{"name": "redis", "key": "url"}},
		"smtp":       map[string]any{"host": "smtp.example.com"},
	}
}

// authStack wraps spec into an unstructured AuthStack, so tests can send
// exactly the fields they mean to (a typed struct would add zero values).
func authStack(name string, spec map[string]any) *unstructured.Unstructured {
	u := &unstructured.Unstructured{Object: map[string]any{"spec": spec}}
	u.SetGroupVersionKind(authv1alpha1.GroupVersion.WithKind("AuthStack"))
	u.SetNamespace(testNamespace)
	u.SetName(name)
	return u
}

// setPath sets a dotted path (relative to spec) in m, creating maps on the way.
func setPath(m map[string]any, path string, value any) {
	parts := strings.Split(path, ".")
	for _, p := range parts[:len(parts)-1] {
		next, ok := m[p].(map[string]any)
		if !ok {
			next = map[string]any{}
			m[p] = next
		}
		m = next
	}
	m[parts[len(parts)-1]] = value
}

// deletePath removes a dotted path (relative to spec) from m.
func deletePath(m map[string]any, path string) {
	parts := strings.Split(path, ".")
	for _, p := range parts[:len(parts)-1] {
		next, ok := m[p].(map[string]any)
		if !ok {
			return
		}
		m = next
	}
	delete(m, parts[len(parts)-1])
}

// Kinds of rule a rejection case exercises; the coverage test matches them
// against the constraints it finds in the generated CRD.
const (
	kindCEL       = "cel"
	kindPattern   = "pattern"
	kindMinimum   = "minimum"
	kindMaximum   = "maximum"
	kindEnum      = "enum"
	kindMinLength = "minLength"
	kindMaxLength = "maxLength"
	kindRequired  = "required"
)

// Substrings the API server puts in the message of each kind of OpenAPI error.
var kindMessage = map[string]string{
	kindPattern:   "should match",
	kindMinimum:   "should be greater than or equal to",
	kindMaximum:   "should be less than or equal to",
	kindEnum:      "Unsupported value",
	kindMinLength: "should be at least",
	kindMaxLength: "Too long",
	kindRequired:  "Required value",
}

// rejectCase is one bad input: the spec changes that make it bad, the field
// the error must name, and the rule (and for CEL, its message) that rejects it.
type rejectCase struct {
	name  string
	set   map[string]any // dotted path under spec -> value
	del   []string       // dotted paths under spec to remove
	field string         // the field path the API server must report, e.g. spec.authServer.replicas
	kind  string
	msg   string // CEL rules: the rule's message; other kinds: optional extra substring
	// also lists other fields the same bad input unavoidably breaks (for example a
	// maxReplicas of 0 is below both its minimum and minReplicas): their causes are allowed.
	also []string
}

const (
	msgFrontendURL = "authServer.frontendURL must be an https URL (http only for localhost)"
	msgMailFrom    = "authServer.mailFrom must be an email address, optionally with a display name"
	msgSessionTTL  = "authServer.sessionTTL must be between 5m and 8760h"
	msgMinMax      = "autoscaling.minReplicas must be less than or equal to autoscaling.maxReplicas"
	msgIngressHost = "ingress.host is required when ingress.enabled is true"
	msgIngressPath = "ingress.path must be /auth: the authserver serves every route under /auth, so another prefix would answer 404"
	msgDatabaseURL = "exactly one of database.urlSecretRef, database.managed and database.cloudNativePG must be set"
	msgRedisURL    = "redis.mode cluster needs the managed Redis: remove redis.urlSecretRef"
	msgPepperImmut = "spec.pepper is immutable: changing it locks every user out"
	msgSMTPAuth    = "smtp.username and smtp.passwordSecretRef must be set together"
	msgProxies     = "authServer.trustedProxies must hold CIDRs or IP addresses"
	msgPepperAdd   = "spec.pepper cannot be added or removed after creation: the pepper hashes every password"
)

var rejectCases = []rejectCase{
	// authServer.frontendURL
	{name: "frontendURL plain http", set: map[string]any{"authServer.frontendURL": "http://app.example.com"},
		field: "spec.authServer.frontendURL", kind: kindCEL, msg: msgFrontendURL},
	{name: "frontendURL http on a host that only starts with localhost", set: map[string]any{"authServer.frontendURL": "http://localhost.example.com"},
		field: "spec.authServer.frontendURL", kind: kindCEL, msg: msgFrontendURL},
	{name: "frontendURL other scheme", set: map[string]any{"authServer.frontendURL": "ftp://app.example.com"},
		field: "spec.authServer.frontendURL", kind: kindCEL, msg: msgFrontendURL},
	{name: "frontendURL not a URL", set: map[string]any{"authServer.frontendURL": "app.example.com"},
		field: "spec.authServer.frontendURL", kind: kindCEL, msg: msgFrontendURL},
	{name: "frontendURL https without a host", set: map[string]any{"authServer.frontendURL": "https://"},
		field: "spec.authServer.frontendURL", kind: kindCEL, msg: msgFrontendURL},
	{name: "frontendURL https with a path but no host", set: map[string]any{"authServer.frontendURL": "https:///app"},
		field: "spec.authServer.frontendURL", kind: kindCEL, msg: msgFrontendURL},
	{name: "frontendURL empty", set: map[string]any{"authServer.frontendURL": ""},
		field: "spec.authServer.frontendURL", kind: kindCEL, msg: msgFrontendURL},
	{name: "frontendURL missing", del: []string{"authServer.frontendURL"},
		field: "spec.authServer.frontendURL", kind: kindRequired},
	{name: "frontendURL too long", set: map[string]any{"authServer.frontendURL": "https://app.example.com/" + strings.Repeat("a", 2048)},
		field: "spec.authServer.frontendURL", kind: kindMaxLength},

	// authServer.trustedProxies
	{name: "trustedProxies with a host name", set: map[string]any{"authServer.trustedProxies": []any{"10.0.0.0/8", "ingress.example.com"}},
		field: "spec.authServer.trustedProxies", kind: kindCEL, msg: msgProxies},
	{name: "trustedProxies with a bad prefix", set: map[string]any{"authServer.trustedProxies": []any{"10.0.0.0/33"}},
		field: "spec.authServer.trustedProxies", kind: kindCEL, msg: msgProxies},
	{name: "trustedProxyHops zero", set: map[string]any{"authServer.trustedProxyHops": int64(0)},
		field: "spec.authServer.trustedProxyHops", kind: kindMinimum},
	{name: "trustedProxyHops too many", set: map[string]any{"authServer.trustedProxyHops": int64(17)},
		field: "spec.authServer.trustedProxyHops", kind: kindMaximum},

	// authServer.mailFrom
	{name: "mailFrom without @", set: map[string]any{"authServer.mailFrom": "noreply.example.com"},
		field: "spec.authServer", kind: kindCEL, msg: msgMailFrom},
	{name: "mailFrom only an @", set: map[string]any{"authServer.mailFrom": "@"},
		field: "spec.authServer", kind: kindCEL, msg: msgMailFrom},
	{name: "mailFrom without a domain", set: map[string]any{"authServer.mailFrom": "noreply@"},
		field: "spec.authServer", kind: kindCEL, msg: msgMailFrom},
	{name: "mailFrom with an unclosed angle bracket", set: map[string]any{"authServer.mailFrom": "Example <noreply@example.com"},
		field: "spec.authServer", kind: kindCEL, msg: msgMailFrom},
	{name: "mailFrom display name without angle brackets", set: map[string]any{"authServer.mailFrom": "Example noreply@example.com"},
		field: "spec.authServer", kind: kindCEL, msg: msgMailFrom},
	{name: "mailFrom empty", set: map[string]any{"authServer.mailFrom": ""},
		field: "spec.authServer", kind: kindCEL, msg: msgMailFrom},
	{name: "mailFrom too long", set: map[string]any{"authServer.mailFrom": strings.Repeat("a", 310) + "@example.com"},
		field: "spec.authServer.mailFrom", kind: kindMaxLength},

	// authServer.sessionTTL
	{name: "sessionTTL below 5m", set: map[string]any{"authServer.sessionTTL": "4m59s"},
		field: "spec.authServer.sessionTTL", kind: kindCEL, msg: msgSessionTTL},
	{name: "sessionTTL above a year", set: map[string]any{"authServer.sessionTTL": "8761h"},
		field: "spec.authServer.sessionTTL", kind: kindCEL, msg: msgSessionTTL},
	{name: "sessionTTL in days", set: map[string]any{"authServer.sessionTTL": "1d"},
		field: "spec.authServer.sessionTTL", kind: kindPattern},
	{name: "sessionTTL not a duration", set: map[string]any{"authServer.sessionTTL": "one day"},
		field: "spec.authServer.sessionTTL", kind: kindPattern},
	{name: "sessionTTL empty", set: map[string]any{"authServer.sessionTTL": ""},
		field: "spec.authServer.sessionTTL", kind: kindPattern},
	{name: "sessionTTL negative", set: map[string]any{"authServer.sessionTTL": "-24h"},
		field: "spec.authServer.sessionTTL", kind: kindPattern},

	// authServer.replicas, logLevel, image
	{name: "replicas zero", set: map[string]any{"authServer.replicas": int64(0)},
		field: "spec.authServer.replicas", kind: kindMinimum},
	{name: "replicas above 1000", set: map[string]any{"authServer.replicas": int64(1001)},
		field: "spec.authServer.replicas", kind: kindMaximum},
	{name: "logLevel unknown", set: map[string]any{"authServer.logLevel": "verbose"},
		field: "spec.authServer.logLevel", kind: kindEnum, msg: `"debug", "info", "warn", "error"`},
	{name: "image too long", set: map[string]any{"authServer.image": "ghcr.io/" + strings.Repeat("a", 512)},
		field: "spec.authServer.image", kind: kindMaxLength},

	// authServer.passwordHashing
	{name: "memoryKiB below 8192", set: map[string]any{"authServer.passwordHashing.memoryKiB": int64(8191)},
		field: "spec.authServer.passwordHashing.memoryKiB", kind: kindMinimum},
	{name: "memoryKiB above 1GiB", set: map[string]any{"authServer.passwordHashing.memoryKiB": int64(1048577)},
		field: "spec.authServer.passwordHashing.memoryKiB", kind: kindMaximum},
	{name: "iterations zero", set: map[string]any{"authServer.passwordHashing.iterations": int64(0)},
		field: "spec.authServer.passwordHashing.iterations", kind: kindMinimum},
	{name: "iterations above 20", set: map[string]any{"authServer.passwordHashing.iterations": int64(21)},
		field: "spec.authServer.passwordHashing.iterations", kind: kindMaximum},
	{name: "parallelism zero", set: map[string]any{"authServer.passwordHashing.parallelism": int64(0)},
		field: "spec.authServer.passwordHashing.parallelism", kind: kindMinimum},
	{name: "parallelism above 16", set: map[string]any{"authServer.passwordHashing.parallelism": int64(17)},
		field: "spec.authServer.passwordHashing.parallelism", kind: kindMaximum},

	// authServer.autoscaling
	{name: "minReplicas above maxReplicas", set: map[string]any{"authServer.autoscaling.minReplicas": int64(10), "authServer.autoscaling.maxReplicas": int64(5)},
		field: "spec.authServer.autoscaling", kind: kindCEL, msg: msgMinMax},
	{name: "minReplicas above the default maxReplicas", set: map[string]any{"authServer.autoscaling.minReplicas": int64(21)},
		field: "spec.authServer.autoscaling", kind: kindCEL, msg: msgMinMax},
	{name: "minReplicas zero", set: map[string]any{"authServer.autoscaling.minReplicas": int64(0)},
		field: "spec.authServer.autoscaling.minReplicas", kind: kindMinimum},
	{name: "maxReplicas zero", set: map[string]any{"authServer.autoscaling.minReplicas": int64(1), "authServer.autoscaling.maxReplicas": int64(0)},
		field: "spec.authServer.autoscaling.maxReplicas", kind: kindMinimum, also: []string{"spec.authServer.autoscaling"}},
	{name: "maxReplicas above 1000", set: map[string]any{"authServer.autoscaling.maxReplicas": int64(1001)},
		field: "spec.authServer.autoscaling.maxReplicas", kind: kindMaximum},
	{name: "targetCPUUtilization zero", set: map[string]any{"authServer.autoscaling.targetCPUUtilization": int64(0)},
		field: "spec.authServer.autoscaling.targetCPUUtilization", kind: kindMinimum},
	{name: "targetCPUUtilization above 100", set: map[string]any{"authServer.autoscaling.targetCPUUtilization": int64(101)},
		field: "spec.authServer.autoscaling.targetCPUUtilization", kind: kindMaximum},
	{name: "targetMemoryUtilization zero", set: map[string]any{"authServer.autoscaling.targetMemoryUtilization": int64(0)},
		field: "spec.authServer.autoscaling.targetMemoryUtilization", kind: kindMinimum},
	{name: "targetMemoryUtilization above 100", set: map[string]any{"authServer.autoscaling.targetMemoryUtilization": int64(101)},
		field: "spec.authServer.autoscaling.targetMemoryUtilization", kind: kindMaximum},

	// database and redis
	{name: "database without urlSecretRef or managed", set: map[string]any{"database": map[string]any{}},
		field: "spec.database", kind: kindCEL, msg: msgDatabaseURL},
	{name: "database with both urlSecretRef and managed", set: map[string]any{"database.managed": map[string]any{}},
		field: "spec.database", kind: kindCEL, msg: msgDatabaseURL},
	{name: "database missing", del: []string{"database"},
		field: "spec.database", kind: kindRequired},
	{name: "redis cluster mode with an external urlSecretRef", set: map[string]any{"redis.mode": "cluster"},
		field: "spec.redis", kind: kindCEL, msg: msgRedisURL},

	// Secret references (one SecretKeyRef type, checked where it is used)
	{name: "database secret name with capitals", set: map[string]any{"database.urlSecretRef.name": "My_DB"},
		field: "spec.database.urlSecretRef.name", kind: kindPattern},
	{name: "database secret name empty", set: map[string]any{"database.urlSecretRef.name": ""},
		field: "spec.database.urlSecretRef.name", kind: kindMinLength},
	{name: "database secret name too long", set: map[string]any{"database.urlSecretRef.name": strings.Repeat("a", 254)},
		field: "spec.database.urlSecretRef.name", kind: kindMaxLength},
	{name: "database secret key with a slash", set: map[string]any{"database.urlSecretRef.key": "db/url"},
		field: "spec.database.urlSecretRef.key", kind: kindPattern},
	{name: "database secret key empty", set: map[string]any{"database.urlSecretRef.key": ""},
		field: "spec.database.urlSecretRef.key", kind: kindMinLength},
	{name: "database secret key too long", set: map[string]any{"database.urlSecretRef.key": strings.Repeat("k", 254)},
		field: "spec.database.urlSecretRef.key", kind: kindMaxLength},
	{name: "database secret key missing", del: []string{"database.urlSecretRef.key"},
		field: "spec.database.urlSecretRef.key", kind: kindRequired},
	{name: "redis secret name ending in a dash", set: map[string]any{"redis.urlSecretRef.name": "redis-"},
		field: "spec.redis.urlSecretRef.name", kind: kindPattern},
	{name: "redis secret key with a space", set: map[string]any{"redis.urlSecretRef.key": "redis url"},
		field: "spec.redis.urlSecretRef.key", kind: kindPattern},
	{name: "pepper secret name with an underscore", set: map[string]any{"pepper.secretRef": map[string]any{"name": "my_pepper", "key": "pepper"}},
		field: "spec.pepper.secretRef.name", kind: kindPattern},
	{name: "pepper secret key with a colon", set: map[string]any{"pepper.secretRef": map[string]any{"name": "pepper", "key": "pep:per"}},
		field: "spec.pepper.secretRef.key", kind: kindPattern},
	{name: "pepper without secretRef", set: map[string]any{"pepper": map[string]any{}},
		field: "spec.pepper.secretRef", kind: kindRequired},
	{name: "smtp password secret name with a slash", set: map[string]any{"smtp.username": "mailer", "smtp.passwordSecretRef": map[string]any{"name": "smtp/password", "key": "password"}},
		field: "spec.smtp.passwordSecretRef.name", kind: kindPattern},
	{name: "smtp password secret key with a slash", set: map[string]any{"smtp.username": "mailer", "smtp.passwordSecretRef": map[string]any{"name": "smtp", "key": "pass/word"}},
		field: "spec.smtp.passwordSecretRef.key", kind: kindPattern},
	{name: "smtp username without a password", set: map[string]any{"smtp.username": "mailer"},
		field: "spec.smtp", kind: kindCEL, msg: msgSMTPAuth},
	{name: "smtp password without a username", set: map[string]any{"smtp.passwordSecretRef": map[string]any{"name": "smtp", "key": "password"}},
		field: "spec.smtp", kind: kindCEL, msg: msgSMTPAuth},

	// smtp
	{name: "smtp host with a space", set: map[string]any{"smtp.host": "smtp example.com"},
		field: "spec.smtp.host", kind: kindPattern},
	{name: "smtp host with a scheme", set: map[string]any{"smtp.host": "smtp://smtp.example.com"},
		field: "spec.smtp.host", kind: kindPattern},
	{name: "smtp host too long", set: map[string]any{"smtp.host": strings.Repeat("s", 254)},
		field: "spec.smtp.host", kind: kindMaxLength},
	{name: "smtp host empty", set: map[string]any{"smtp.host": ""},
		field: "spec.smtp.host", kind: kindMinLength},
	{name: "smtp host missing", set: map[string]any{"smtp": map[string]any{"port": int64(25)}},
		field: "spec.smtp.host", kind: kindRequired},
	{name: "smtp port zero", set: map[string]any{"smtp.port": int64(0)},
		field: "spec.smtp.port", kind: kindMinimum},
	{name: "smtp port above 65535", set: map[string]any{"smtp.port": int64(65536)},
		field: "spec.smtp.port", kind: kindMaximum},
	{name: "smtp username too long", set: map[string]any{"smtp.username": strings.Repeat("u", 257)},
		field: "spec.smtp.username", kind: kindMaxLength},
	{name: "smtp missing", del: []string{"smtp"},
		field: "spec.smtp", kind: kindRequired},

	// ingress
	{name: "ingress enabled without host", set: map[string]any{"ingress.enabled": true},
		field: "spec.ingress", kind: kindCEL, msg: msgIngressHost},
	{name: "ingress host with capitals", set: map[string]any{"ingress.host": "Auth.Example.com"},
		field: "spec.ingress.host", kind: kindPattern},
	{name: "ingress host with a port", set: map[string]any{"ingress.enabled": true, "ingress.host": "auth.example.com:443"},
		field: "spec.ingress.host", kind: kindPattern},
	{name: "ingress host with a wildcard in the middle", set: map[string]any{"ingress.host": "auth.*.example.com"},
		field: "spec.ingress.host", kind: kindPattern},
	{name: "ingress host too long", set: map[string]any{"ingress.host": strings.Repeat("a", 254)},
		field: "spec.ingress.host", kind: kindMaxLength},
	{name: "ingress path without a leading slash", set: map[string]any{"ingress.path": "auth"},
		field: "spec.ingress.path", kind: kindCEL, msg: msgIngressPath},
	{name: "ingress path another prefix", set: map[string]any{"ingress.path": "/login"},
		field: "spec.ingress.path", kind: kindCEL, msg: msgIngressPath},
	{name: "ingress path below /auth", set: map[string]any{"ingress.path": "/auth/v1"},
		field: "spec.ingress.path", kind: kindCEL, msg: msgIngressPath},
	{name: "ingress path /", set: map[string]any{"ingress.path": "/"},
		field: "spec.ingress.path", kind: kindCEL, msg: msgIngressPath},
	{name: "ingress path too long", set: map[string]any{"ingress.path": "/" + strings.Repeat("a", 256)},
		field: "spec.ingress.path", kind: kindMaxLength},
	{name: "ingress className too long", set: map[string]any{"ingress.className": strings.Repeat("c", 254)},
		field: "spec.ingress.className", kind: kindMaxLength},
	{name: "ingress tls secretName with capitals", set: map[string]any{"ingress.tls.secretName": "Auth-TLS"},
		field: "spec.ingress.tls.secretName", kind: kindPattern},
	{name: "ingress tls secretName too long", set: map[string]any{"ingress.tls.secretName": strings.Repeat("t", 254)},
		field: "spec.ingress.tls.secretName", kind: kindMaxLength},
	{name: "ingress tls clusterIssuer too long", set: map[string]any{"ingress.tls.clusterIssuer": strings.Repeat("i", 254)},
		field: "spec.ingress.tls.clusterIssuer", kind: kindMaxLength},

	// the top level
	{name: "authServer missing", del: []string{"authServer"},
		field: "spec.authServer", kind: kindRequired},
}

// TestRejects dry-run creates each bad AuthStack: the API server must refuse
// it as Invalid, naming the field, for the expected reason and no other.
func TestRejects(t *testing.T) {
	for _, tc := range rejectCases {
		t.Run(tc.name, func(t *testing.T) {
			spec := minimalSpec()
			for _, p := range tc.del {
				deletePath(spec, p)
			}
			for p, v := range tc.set {
				setPath(spec, p, v)
			}
			err := k8sClient.Create(context.Background(), authStack("bad", spec), client.DryRunAll)
			assertInvalid(t, err, tc.field, tc.kind, tc.msg, tc.also...)
		})
	}
}

// skippedRulesNote is the cause the API server adds when schema errors (types,
// lengths, enums, required fields) kept it from evaluating the CEL rules.
const skippedRulesNote = "some validation rules were not checked because the object was invalid"

// assertInvalid checks err is an Invalid error whose causes all concern field
// (so the base object is not rejected for some other reason), at least one of
// them carrying the message of kind (and msg), and whose text names the field.
func assertInvalid(t *testing.T, err error, field, kind, msg string, also ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("accepted; want rejected naming %s", field)
	}
	if !apierrors.IsInvalid(err) {
		t.Fatalf("error is %v (reason %q); want Invalid", err, apierrors.ReasonForError(err))
	}
	var status apierrors.APIStatus
	if !errors.As(err, &status) || status.Status().Details == nil {
		t.Fatalf("error %v carries no details", err)
	}
	want := []string{msg}
	if kind != kindCEL {
		want = append(want, kindMessage[kind])
	}
	matched := false
	for _, cause := range status.Status().Details.Causes {
		if strings.Contains(cause.Message, skippedRulesNote) {
			continue
		}
		if slices.Contains(also, cause.Field) {
			continue
		}
		if cause.Field != field && !strings.HasPrefix(cause.Field, field+".") && !strings.HasPrefix(cause.Field, field+"[") {
			t.Errorf("unexpected cause on another field: %s: %s", cause.Field, cause.Message)
			continue
		}
		if cause.Field == field && containsAll(cause.Message, want) {
			matched = true
		}
	}
	if !matched {
		t.Errorf("no cause on %s containing %q; error: %v", field, want, err)
	}
	if !strings.Contains(err.Error(), field+":") {
		t.Errorf("error text does not name %s: %v", field, err)
	}
}

func containsAll(s string, subs []string) bool {
	for _, sub := range subs {
		if !strings.Contains(s, sub) {
			return false
		}
	}
	return true
}

// TestAccepts dry-run creates AuthStacks at the edges of each rule: all must pass.
func TestAccepts(t *testing.T) {
	cases := []struct {
		name string
		set  map[string]any
	}{
		{"minimal", nil},
		{"frontendURL https with port and path", map[string]any{"authServer.frontendURL": "https://app.example.com:8443/app"}},
		{"frontendURL http on localhost", map[string]any{"authServer.frontendURL": "http://localhost:3000"}},
		{"frontendURL http on 127.0.0.1", map[string]any{"authServer.frontendURL": "http://127.0.0.1:8080/"}},
		{"frontendURL http on ::1", map[string]any{"authServer.frontendURL": "http://[::1]:3000"}},
		{"mailFrom bare address", map[string]any{"authServer.mailFrom": "noreply@example.com"}},
		{"mailFrom with display name", map[string]any{"authServer.mailFrom": "Example Inc <noreply@example.com>"}},
		{"mailFrom with a quoted display name", map[string]any{"authServer.mailFrom": `"Example, Inc." <no-reply+auth@mail.example.com>`}},
		{"sessionTTL fractional", map[string]any{"authServer.sessionTTL": "1.5h"}},
		{"sessionTTL 5m", map[string]any{"authServer.sessionTTL": "5m"}},
		{"sessionTTL 8760h", map[string]any{"authServer.sessionTTL": "8760h"}},
		{"sessionTTL compound", map[string]any{"authServer.sessionTTL": "1h30m"}},
		{"replicas 1 and 1000", map[string]any{"authServer.replicas": int64(1), "authServer.autoscaling.maxReplicas": int64(1000)}},
		{"every logLevel", map[string]any{"authServer.logLevel": "debug"}},
		{"minReplicas equal to maxReplicas", map[string]any{"authServer.autoscaling.minReplicas": int64(5), "authServer.autoscaling.maxReplicas": int64(5)}},
		{"autoscaling disabled", map[string]any{"authServer.autoscaling.enabled": false, "authServer.replicas": int64(2)}},
		{"argon2 at the bounds", map[string]any{
			"authServer.passwordHashing.memoryKiB": int64(8192), "authServer.passwordHashing.iterations": int64(20),
			"authServer.passwordHashing.parallelism": int64(16)}},
		{"ingress enabled with host and tls", map[string]any{
			"ingress.enabled": true, "ingress.host": "auth.example.com", "ingress.path": "/auth",
			"ingress.tls.secretName": "auth-example-com-tls", "ingress.tls.clusterIssuer": "letsencrypt-prod"}},
		{"ingress wildcard host", map[string]any{"ingress.enabled": true, "ingress.host": "*.auth.example.com"}},
		{"ingress disabled with host", map[string]any{"ingress.enabled": false, "ingress.host": "auth.example.com"}},
		{"pepper", map[string]any{"pepper.secretRef": map[string]any{"name": "my.pepper-1", "key": "PEPPER_hex-1.txt"}}},
		{"smtp full", map[string]any{"smtp.host": "SMTP.Example.com", "smtp.port": int64(465), "smtp.username": "apikey",
			"smtp.passwordSecretRef": map[string]any{"name": "smtp", "key": "password"}}},
		{"podTemplate", map[string]any{"authServer.podTemplate": map[string]any{
			"nodeSelector": map[string]any{"kubernetes.io/os": "linux"},
			"tolerations":  []any{map[string]any{"key": "dedicated", "operator": "Equal", "value": "auth", "effect": "NoSchedule"}},
			"annotations":  map[string]any{"example.com/team": "identity"},
		}}},
	}
	for _, level := range []string{"info", "warn", "error"} {
		cases = append(cases, struct {
			name string
			set  map[string]any
		}{"logLevel " + level, map[string]any{"authServer.logLevel": level}})
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			spec := minimalSpec()
			for p, v := range tc.set {
				setPath(spec, p, v)
			}
			if err := k8sClient.Create(context.Background(), authStack("good", spec), client.DryRunAll); err != nil {
				t.Fatalf("rejected: %v", err)
			}
		})
	}
}

// TestDefaults dry-run creates the minimal AuthStack and reads back every default.
func TestDefaults(t *testing.T) {
	u := authStack("defaults", minimalSpec())
	if err := k8sClient.Create(context.Background(), u, client.DryRunAll); err != nil {
		t.Fatalf("minimal AuthStack rejected: %v", err)
	}
	var got authv1alpha1.AuthStack
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, &got); err != nil {
		t.Fatalf("converting the answer: %v", err)
	}
	as := got.Spec.AuthServer
	check := func(name string, got, want any) {
		t.Helper()
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("%s = %v, want %v", name, got, want)
		}
	}
	if as.Replicas == nil {
		t.Errorf("authServer.replicas not defaulted")
	} else {
		check("authServer.replicas", *as.Replicas, authv1alpha1.DefaultAuthServerReplicas)
	}
	if as.Resources == nil {
		t.Errorf("authServer.resources not defaulted")
	} else if !equality.Semantic.DeepEqual(*as.Resources, authv1alpha1.DefaultAuthServerResources()) {
		t.Errorf("authServer.resources = %+v, want authv1alpha1.DefaultAuthServerResources()", *as.Resources)
	} else {
		for _, q := range []struct {
			name string
			list corev1.ResourceList
			res  corev1.ResourceName
			want string
		}{
			{"requests.cpu", as.Resources.Requests, corev1.ResourceCPU, "250m"},
			{"requests.memory", as.Resources.Requests, corev1.ResourceMemory, "256Mi"},
			{"limits.cpu", as.Resources.Limits, corev1.ResourceCPU, "500m"},
			{"limits.memory", as.Resources.Limits, corev1.ResourceMemory, "512Mi"},
		} {
			v, ok := q.list[q.res]
			if !ok {
				t.Errorf("authServer.resources.%s not defaulted", q.name)
				continue
			}
			if v.Cmp(resource.MustParse(q.want)) != 0 {
				t.Errorf("authServer.resources.%s = %s, want %s", q.name, v.String(), q.want)
			}
		}
	}
	check("authServer.logLevel", as.LogLevel, "info")
	if as.SessionTTL == nil {
		t.Errorf("authServer.sessionTTL not defaulted")
	} else {
		check("authServer.sessionTTL", as.SessionTTL.Duration, 24*time.Hour)
	}
	check("authServer.passwordHashing.memoryKiB", as.PasswordHashing.MemoryKiB, 19456)
	check("authServer.passwordHashing.iterations", as.PasswordHashing.Iterations, 2)
	check("authServer.passwordHashing.parallelism", as.PasswordHashing.Parallelism, 1)
	if as.Autoscaling.Enabled == nil {
		t.Errorf("authServer.autoscaling.enabled not defaulted")
	} else {
		check("authServer.autoscaling.enabled", *as.Autoscaling.Enabled, authv1alpha1.DefaultAutoscalingEnabled)
	}
	check("authServer.autoscaling.minReplicas", as.Autoscaling.MinReplicas, 3)
	check("authServer.autoscaling.maxReplicas", as.Autoscaling.MaxReplicas, 20)
	check("authServer.autoscaling.targetCPUUtilization", as.Autoscaling.TargetCPUUtilization, 70)
	check("authServer.autoscaling.targetMemoryUtilization", as.Autoscaling.TargetMemoryUtilization, 80)
	check("authServer.image", as.Image, "") // filled by the operator from --authserver-image, not the CRD
	check("ingress.enabled", got.Spec.Ingress.Enabled, false)
	check("ingress.path", got.Spec.Ingress.Path, "/auth")
	check("ingress.className", got.Spec.Ingress.ClassName, "") // the cluster's default IngressClass: no nginx assumption
	check("smtp.port", got.Spec.SMTP.Port, 587)
	if e := got.Spec.Monitoring.Enabled; e == nil || *e != authv1alpha1.DefaultMonitoringEnabled {
		t.Errorf("monitoring.enabled = %v, want %v", e, authv1alpha1.DefaultMonitoringEnabled)
	}
	if got.Spec.Pepper != nil {
		t.Errorf("pepper defaulted to %+v, want absent (the operator generates one)", got.Spec.Pepper)
	}
}

// TestDefaultsKeepUserValues checks defaults never overwrite what the user set,
// including explicit zero-like values such as autoscaling.enabled=false.
func TestDefaultsKeepUserValues(t *testing.T) {
	spec := minimalSpec()
	setPath(spec, "authServer.autoscaling.enabled", false)
	setPath(spec, "authServer.replicas", int64(5))
	setPath(spec, "authServer.sessionTTL", "1h")
	setPath(spec, "smtp.port", int64(2525))
	setPath(spec, "ingress.className", "traefik")
	u := authStack("user-values", spec)
	if err := k8sClient.Create(context.Background(), u, client.DryRunAll); err != nil {
		t.Fatalf("rejected: %v", err)
	}
	var got authv1alpha1.AuthStack
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, &got); err != nil {
		t.Fatalf("converting the answer: %v", err)
	}
	if e := got.Spec.AuthServer.Autoscaling.Enabled; e == nil || *e {
		t.Errorf("autoscaling.enabled = %v, want false", e)
	}
	if r := got.Spec.AuthServer.Replicas; r == nil || *r != 5 {
		t.Errorf("replicas = %v, want 5", r)
	}
	if ttl := got.Spec.AuthServer.SessionTTL; ttl == nil || ttl.Duration != time.Hour {
		t.Errorf("sessionTTL = %v, want 1h", ttl)
	}
	if got.Spec.SMTP.Port != 2525 {
		t.Errorf("smtp.port = %d, want 2525", got.Spec.SMTP.Port)
	}
	if got.Spec.Ingress.ClassName != "traefik" || got.Spec.Ingress.Path != "/auth" {
		t.Errorf("ingress = %+v, want className traefik and the default path /auth", got.Spec.Ingress)
	}
}

// transitionCase creates a real AuthStack, then updates it.
type transitionCase struct {
	name         string
	createPepper map[string]any // nil: no spec.pepper at creation
	updatePepper map[string]any // nil: no spec.pepper in the update
	field        string         // empty: the update must be accepted
	msg          string
}

func pepperRef(name, key string) map[string]any {
	return map[string]any{"secretRef": map[string]any{"name": name, "key": key}}
}

var transitionCases = []transitionCase{
	{name: "pepper secret name changed", createPepper: pepperRef("pepper-a", "pepper"), updatePepper: pepperRef("pepper-b", "pepper"),
		field: "spec.pepper", msg: msgPepperImmut},
	{name: "pepper key changed", createPepper: pepperRef("pepper-a", "pepper"), updatePepper: pepperRef("pepper-a", "pepper2"),
		field: "spec.pepper", msg: msgPepperImmut},
	{name: "pepper added", createPepper: nil, updatePepper: pepperRef("pepper-a", "pepper"),
		field: "spec", msg: msgPepperAdd},
	{name: "pepper removed", createPepper: pepperRef("pepper-a", "pepper"), updatePepper: nil,
		field: "spec", msg: msgPepperAdd},
	{name: "other field changed, pepper kept", createPepper: pepperRef("pepper-a", "pepper"), updatePepper: pepperRef("pepper-a", "pepper")},
	{name: "other field changed, no pepper", createPepper: nil, updatePepper: nil},
}

// TestTransitions exercises the rules that compare an update with the stored object.
func TestTransitions(t *testing.T) {
	for i, tc := range transitionCases {
		t.Run(tc.name, func(t *testing.T) {
			spec := minimalSpec()
			if tc.createPepper != nil {
				spec["pepper"] = tc.createPepper
			}
			checkTransition(t, fmt.Sprintf("transition-%d", i), spec, func(spec map[string]any) {
				// Every update also changes another field: that alone must be allowed.
				setPath(spec, "authServer.replicas", int64(4))
				delete(spec, "pepper")
				if tc.updatePepper != nil {
					spec["pepper"] = tc.updatePepper
				}
			}, tc.field, tc.msg)
		})
	}
}

// checkTransition creates an AuthStack with spec, then updates its stored spec with
// update: the update must be rejected at field with the CEL message msg, or accepted
// when field is "".
func checkTransition(t *testing.T, name string, spec map[string]any, update func(spec map[string]any), field, msg string) {
	t.Helper()
	ctx := context.Background()
	u := authStack(name, spec)
	if err := k8sClient.Create(ctx, u); err != nil {
		t.Fatalf("creating: %v", err)
	}
	t.Cleanup(func() {
		if err := k8sClient.Delete(context.Background(), u); err != nil && !apierrors.IsNotFound(err) {
			t.Errorf("deleting: %v", err)
		}
	})
	spec, _, _ = unstructured.NestedMap(u.Object, "spec")
	update(spec)
	if err := unstructured.SetNestedMap(u.Object, spec, "spec"); err != nil {
		t.Fatalf("building the update: %v", err)
	}
	err := k8sClient.Update(ctx, u)
	if field == "" {
		if err != nil {
			t.Fatalf("update rejected: %v", err)
		}
		return
	}
	assertInvalid(t, err, field, kindCEL, msg)
}

// constraint is one validation the generated CRD holds at a field.
type constraint struct{ field, kind, msg string }

// TestEveryRuleIsCovered reads the generated CRD and fails for any CEL rule,
// pattern, enum, minimum or maximum of the AuthStack's own fields that no case
// above exercises: a rule added to authstack_types.go needs a test here.
// Kubernetes' own types (resources, podTemplate) and status are not ours to test.
func TestEveryRuleIsCovered(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join(crdDir, "auth.leanauth.dev_authstacks.yaml"))
	if err != nil {
		t.Fatalf("reading the CRD: %v", err)
	}
	var crd apiextensionsv1.CustomResourceDefinition
	if err := yaml.UnmarshalStrict(raw, &crd); err != nil {
		t.Fatalf("decoding the CRD: %v", err)
	}
	var schema *apiextensionsv1.JSONSchemaProps
	for _, v := range crd.Spec.Versions {
		if v.Name == authv1alpha1.GroupVersion.Version && v.Schema != nil {
			schema = v.Schema.OpenAPIV3Schema
		}
	}
	if schema == nil {
		t.Fatalf("the CRD has no schema for %s", authv1alpha1.GroupVersion.Version)
	}
	spec, ok := schema.Properties["spec"]
	if !ok {
		t.Fatalf("the CRD schema has no spec")
	}
	skip := map[string]bool{"spec.authServer.resources": true, "spec.authServer.podTemplate": true,
		"spec.pooler.resources": true, "spec.redis.resources": true, "spec.database.managed.resources": true}
	var found []constraint
	var walk func(path string, s apiextensionsv1.JSONSchemaProps)
	walk = func(path string, s apiextensionsv1.JSONSchemaProps) {
		if skip[path] {
			return
		}
		for _, r := range s.XValidations {
			found = append(found, constraint{path, kindCEL, r.Message})
		}
		if s.Pattern != "" {
			found = append(found, constraint{path, kindPattern, ""})
		}
		if len(s.Enum) > 0 {
			found = append(found, constraint{path, kindEnum, ""})
		}
		if s.Minimum != nil {
			found = append(found, constraint{path, kindMinimum, ""})
		}
		if s.Maximum != nil {
			found = append(found, constraint{path, kindMaximum, ""})
		}
		if s.MinLength != nil {
			found = append(found, constraint{path, kindMinLength, ""})
		}
		if s.MaxLength != nil {
			found = append(found, constraint{path, kindMaxLength, ""})
		}
		keys := make([]string, 0, len(s.Properties))
		for k := range s.Properties {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			walk(path+"."+k, s.Properties[k])
		}
		if s.Items != nil && s.Items.Schema != nil { // the rules of a list's elements, at its first
			walk(path+"[0]", *s.Items.Schema)
		}
	}
	walk("spec", spec)
	if len(found) < 20 {
		t.Fatalf("found only %d constraints in the CRD; is the walk broken?", len(found))
	}

	covered := map[constraint]bool{}
	for _, c := range rejectCases {
		msg := ""
		if c.kind == kindCEL {
			msg = c.msg
		}
		covered[constraint{c.field, c.kind, msg}] = true
	}
	for _, c := range transitionCases {
		if c.field != "" {
			covered[constraint{c.field, kindCEL, c.msg}] = true
		}
	}
	for _, c := range dataTierTransitions {
		if c.field != "" {
			covered[constraint{c.field, kindCEL, c.msg}] = true
		}
	}
	for _, c := range bootstrapTransitions {
		if c.field != "" {
			covered[constraint{c.field, kindCEL, c.msg}] = true
		}
	}
	for _, c := range pepperTransitions {
		if c.field != "" {
			covered[constraint{c.field, kindCEL, c.msg}] = true
		}
	}
	for _, c := range dbRotationTransitions {
		if c.field != "" {
			covered[constraint{c.field, kindCEL, c.msg}] = true
		}
	}
	for _, c := range volumeKeptCases {
		if c.field != "" {
			covered[constraint{c.field, kindCEL, c.msg}] = true
		}
	}
	// Pattern/length rules of the shared SecretKeyRef type are tested once, on
	// spec.database.urlSecretRef; the same schema is generated at each use.
	// So are those of the S3 destination type, on spec.backup.destination.s3.
	sharedRef := func(path string) (string, bool) {
		for _, p := range []string{"spec.redis.urlSecretRef.", "spec.pepper.secretRef.", "spec.smtp.passwordSecretRef.", "spec.pepperRotation.peppers[0].secretRef.",
			"spec.backup.encryption.privateKeySecretRef.", "spec.backup.encryption.passphraseSecretRef."} {
			if strings.HasPrefix(path, p) {
				return "spec.database.urlSecretRef." + strings.TrimPrefix(path, p), true
			}
		}
		if p := "spec.bootstrap.fromBackup.source.s3."; strings.HasPrefix(path, p) {
			return "spec.backup.destination.s3." + strings.TrimPrefix(path, p), true
		}
		return "", false
	}
	for _, c := range found {
		if covered[c] {
			continue
		}
		if alt, ok := sharedRef(c.field); ok && covered[constraint{alt, c.kind, c.msg}] {
			continue
		}
		t.Errorf("no test rejects %s at %s %q: add a case to rejectCases", c.kind, c.field, c.msg)
	}
	// And the other way round: a case naming a CEL message the CRD does not have is stale.
	have := map[constraint]bool{}
	for _, c := range found {
		have[c] = true
	}
	for c := range covered {
		if c.kind == kindCEL && !have[c] {
			t.Errorf("a case expects CEL message %q at %s, which the CRD does not define", c.msg, c.field)
		}
	}
}

// TestNameLength: the stack's name prefixes every child's name, so it is bounded
// (authv1alpha1.MaxNameLength; controllers/resources/names_test.go shows every child
// fits at that length and one more breaks one) and shaped like a DNS-1035 label.
func TestNameLength(t *testing.T) {
	ok := "s" + strings.Repeat("a", authv1alpha1.MaxNameLength-1)
	for _, name := range []string{ok, "a", "a-1", "ab-c9"} {
		if err := k8sClient.Create(context.Background(), authStack(name, minimalSpec()), client.DryRunAll); err != nil {
			t.Errorf("the name %q was rejected: %v", name, err)
		}
	}
	for name, msg := range map[string]string{
		ok + "b":  fmt.Sprintf("metadata.name must be at most %d characters", authv1alpha1.MaxNameLength),
		"a.b":     "metadata.name must start with a letter",
		"1abc":    "metadata.name must start with a letter",
		"auth.v2": "metadata.name must start with a letter",
	} {
		err := k8sClient.Create(context.Background(), authStack(name, minimalSpec()), client.DryRunAll)
		if err == nil || !apierrors.IsInvalid(err) || !strings.Contains(err.Error(), msg) {
			t.Errorf("the name %q: got %v, want Invalid with %q", name, err, msg)
		}
	}
}

// TestPrinterColumns asks the API server for the table `kubectl get ast -o wide`
// shows, for an AuthStack with a status: Ready, Replicas, URL, Age, and the
// Ready reason at priority 1 (wide only).
func TestPrinterColumns(t *testing.T) {
	ctx := context.Background()
	u := authStack("columns", minimalSpec())
	if err := k8sClient.Create(ctx, u); err != nil {
		t.Fatalf("creating: %v", err)
	}
	t.Cleanup(func() { _ = k8sClient.Delete(context.Background(), u) })
	var stack authv1alpha1.AuthStack
	if err := k8sClient.Get(ctx, client.ObjectKeyFromObject(u), &stack); err != nil {
		t.Fatalf("reading back: %v", err)
	}
	stack.Status = authv1alpha1.AuthStackStatus{
		ObservedGeneration: stack.Generation,
		URL:                "https://auth.example.com/auth",
		AuthServer:         authv1alpha1.ReplicaStatus{Replicas: 3, ReadyReplicas: 1, Summary: "1/3"},
		Conditions: []metav1.Condition{{
			Type: authv1alpha1.ConditionReady, Status: metav1.ConditionFalse, Reason: "ComponentNotReady",
			Message: "AuthServerAvailable: 1 of 3 replicas ready", LastTransitionTime: metav1.Now(), ObservedGeneration: stack.Generation,
		}},
	}
	if err := k8sClient.Status().Update(ctx, &stack); err != nil {
		t.Fatalf("writing status: %v", err)
	}

	httpClient, err := rest.HTTPClientFor(restCfg)
	if err != nil {
		t.Fatal(err)
	}
	url := strings.TrimSuffix(restCfg.Host, "/") + "/apis/" + authv1alpha1.GroupVersion.String() + "/namespaces/" + testNamespace + "/authstacks/columns"
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Accept", "application/json;as=Table;v=v1;g=meta.k8s.io")
	resp, err := httpClient.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s as Table: %s", url, resp.Status)
	}
	var table metav1.Table
	if err := json.NewDecoder(resp.Body).Decode(&table); err != nil {
		t.Fatalf("decoding the table: %v", err)
	}
	type col struct {
		name     string
		priority int32
		want     string // the cell; empty: only checked to be present
	}
	wantCols := []col{
		{"Name", 0, "columns"},
		{"Ready", 0, "False"},
		{"Replicas", 0, "1/3"},
		{"URL", 0, "https://auth.example.com/auth"},
		{"Age", 0, ""},
		{"Reason", 1, "ComponentNotReady"},
	}
	if len(table.ColumnDefinitions) != len(wantCols) || len(table.Rows) != 1 || len(table.Rows[0].Cells) != len(wantCols) {
		t.Fatalf("table has columns %+v and rows %+v; want %d columns and one row", table.ColumnDefinitions, table.Rows, len(wantCols))
	}
	for i, w := range wantCols {
		got := table.ColumnDefinitions[i]
		if got.Name != w.name || got.Priority != w.priority {
			t.Errorf("column %d = %s (priority %d), want %s (priority %d)", i, got.Name, got.Priority, w.name, w.priority)
		}
		if cell := fmt.Sprint(table.Rows[0].Cells[i]); w.want != "" && cell != w.want {
			t.Errorf("column %s shows %q, want %q", w.name, cell, w.want)
		}
	}
}

// TestCRDNames checks how users and tools address the resource.
func TestCRDNames(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join(crdDir, "auth.leanauth.dev_authstacks.yaml"))
	if err != nil {
		t.Fatalf("reading the CRD: %v", err)
	}
	var crd apiextensionsv1.CustomResourceDefinition
	if err := yaml.UnmarshalStrict(raw, &crd); err != nil {
		t.Fatalf("decoding the CRD: %v", err)
	}
	if crd.Spec.Scope != apiextensionsv1.NamespaceScoped {
		t.Errorf("scope = %s, want Namespaced", crd.Spec.Scope)
	}
	if !slices.Contains(crd.Spec.Names.ShortNames, "ast") {
		t.Errorf("short names %v lack ast", crd.Spec.Names.ShortNames)
	}
	if crd.Spec.Names.Kind != "AuthStack" || crd.Spec.Names.Plural != "authstacks" {
		t.Errorf("names = %+v", crd.Spec.Names)
	}
	for _, v := range crd.Spec.Versions {
		if v.Name == authv1alpha1.GroupVersion.Version && (v.Subresources == nil || v.Subresources.Status == nil) {
			t.Errorf("version %s has no status subresource: the operator's status writes would race spec edits", v.Name)
		}
	}
}
