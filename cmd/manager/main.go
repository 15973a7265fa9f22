// Command manager runs the AuthStack operator: it wires flags, the scheme and
// the controller-runtime manager together, and nothing else.
package main

import (
	"context"
	"crypto/tls"
	"flag"
	"fmt"
	"os"
	"runtime/debug"
	"strings"
	"time"

	"go.opentelemetry.io/otel/trace"

	"k8s.io/apimachinery/pkg/runtime"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	ctrl "sigs.k8s.io/controller-runtime"
	ctrlconfig "sigs.k8s.io/controller-runtime/pkg/client/config"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	"sigs.k8s.io/controller-runtime/pkg/metrics/filters"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	authv1alpha1 "github.com/leanauth/authstack/api/v1alpha1"
	"github.com/leanauth/authstack/controllers"
	"github.com/leanauth/authstack/controllers/resources"
)

// version is the release of the operator, set at build time with
// -ldflags "-X main.version=v0.1.0". It picks the default authserver image tag.
var version = ""

// authServerImageRepo is the repository of the default authserver image.
const authServerImageRepo = "ghcr.io/leanauth/authserver"

func main() {
	fs := flag.NewFlagSet(os.Args[0], flag.ExitOnError)
	if err := run(ctrl.SetupSignalHandler(), fs, os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "manager:", err)
		os.Exit(1)
	}
}

// run parses args into fs and runs the manager until ctx ends.
func run(ctx context.Context, fs *flag.FlagSet, args []string) error {
	var (
		metricsAddr             string
		metricsSecure           bool
		enableHTTP2             bool
		probeAddr               string
		leaderElect             bool
		leaderElectionID        string
		leaderElectionNamespace string
		watchNamespace          string
		authServerImage         string
		pgBouncerImage          string
		redisImage              string
		printVersion            bool
	)
	fs.BoolVar(&printVersion, "version", false, "Print the operator's version and exit.")
	fs.StringVar(&metricsAddr, "metrics-bind-address", ":8080",
		"Address the metrics endpoint binds to, for example :8080 (http) or :8443 (with --metrics-secure). 0 disables it.")
	fs.BoolVar(&metricsSecure, "metrics-secure", false,
		"Serve metrics over HTTPS, allowing only callers authenticated and authorized by the API server (TokenReview and SubjectAccessReview).")
	fs.BoolVar(&enableHTTP2, "enable-http2", false,
		"Enable HTTP/2 on the metrics server (off by default: HTTP/2 Rapid Reset and Stream Cancellation, CVE-2023-44487 and CVE-2023-39325).")
	fs.StringVar(&probeAddr, "health-probe-bind-address", ":8081", "Address the /healthz and /readyz probes bind to.")
	fs.BoolVar(&leaderElect, "leader-elect", false,
		"Elect a leader, so only one replica of the operator reconciles at a time. The Deployment in config/manager turns it on.")
	fs.StringVar(&leaderElectionID, "leader-election-id", "authstack.auth.leanauth.dev", "Name of the Lease used for leader election.")
	fs.StringVar(&leaderElectionNamespace, "leader-election-namespace", "",
		"Namespace of the leader election Lease. Empty means the operator's own namespace (required when running outside the cluster with --leader-elect).")
	fs.StringVar(&watchNamespace, "watch-namespace", "",
		"Comma-separated namespaces whose AuthStacks are reconciled. Empty means all namespaces.")
	fs.StringVar(&authServerImage, "authserver-image", defaultAuthServerImage(),
		"Authserver image used when an AuthStack does not set spec.authServer.image.")
	fs.StringVar(&pgBouncerImage, "pgbouncer-image", resources.DefaultPgBouncerImage,
		"pgbouncer image used when an AuthStack does not set spec.pooler.image.")
	fs.StringVar(&redisImage, "redis-image", resources.DefaultRedisImage,
		"Redis image of the managed Redis when an AuthStack does not set spec.redis.image.")
	zapOpts := zap.Options{}
	zapOpts.BindFlags(fs)
	ctrlconfig.RegisterFlags(fs) // --kubeconfig
	if err := fs.Parse(args); err != nil {
		return fmt.Errorf("parsing flags: %w", err)
	}
	if printVersion {
		fmt.Fprintln(os.Stdout, effectiveVersion())
		return nil
	}

	ctrl.SetLogger(zap.New(zap.UseFlagOptions(&zapOpts)))
	log := ctrl.Log.WithName("setup")

	for name, v := range map[string]string{"--authserver-image": authServerImage, "--pgbouncer-image": pgBouncerImage, "--redis-image": redisImage} {
		if strings.TrimSpace(v) == "" {
			return fmt.Errorf("checking flags: %s must not be empty", name)
		}
	}
	namespaces, err := parseNamespaces(watchNamespace)
	if err != nil {
		return fmt.Errorf("checking flags: --watch-namespace: %w", err)
	}

	scheme := runtime.NewScheme()
	utilruntime.Must(clientgoscheme.AddToScheme(scheme))
	utilruntime.Must(authv1alpha1.AddToScheme(scheme))

	// HTTP/2 stays off unless asked for; see the flag's help.
	var tlsOpts []func(*tls.Config)
	if !enableHTTP2 {
		tlsOpts = append(tlsOpts, func(c *tls.Config) { c.NextProtos = []string{"http/1.1"} })
	}

	metricsOpts := metricsserver.Options{
		BindAddress:   metricsAddr,
		SecureServing: metricsSecure,
		TLSOpts:       tlsOpts,
	}
	if metricsSecure {
		// Needs the metrics-auth ClusterRole (tokenreviews, subjectaccessreviews) from config/rbac.
		metricsOpts.FilterProvider = filters.WithAuthenticationAndAuthorization
	}

	restCfg, err := ctrl.GetConfig()
	if err != nil {
		return fmt.Errorf("loading the kubeconfig: %w", err)
	}
	mgr, err := ctrl.NewManager(restCfg, ctrl.Options{
		Scheme:                        scheme,
		Metrics:                       metricsOpts,
		HealthProbeBindAddress:        probeAddr,
		LeaderElection:                leaderElect,
		LeaderElectionID:              leaderElectionID,
		LeaderElectionNamespace:       leaderElectionNamespace,
		LeaderElectionReleaseOnCancel: true,
		Cache:                         controllers.CacheOptions(namespaces),
	})
	if err != nil {
		return fmt.Errorf("creating the manager: %w", err)
	}

	// OTEL_EXPORTER_OTLP_ENDPOINT on the manager: each reconcile is a span (docs/monitoring.md).
	tp, err := controllers.TracingFromEnv(ctx, os.Getenv, effectiveVersion())
	if err != nil {
		return fmt.Errorf("setting up tracing: %w", err)
	}
	var tracing trace.TracerProvider // a nil interface when off
	if tp != nil {
		tracing = tp
		defer func() {
			sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			if err := tp.Shutdown(sctx); err != nil {
				log.Error(err, "flushing traces")
			}
		}()
	}

	if err := (&controllers.AuthStackReconciler{
		Client:          mgr.GetClient(),
		APIReader:       mgr.GetAPIReader(),
		Scheme:          mgr.GetScheme(),
		Recorder:        mgr.GetEventRecorder("authstack-operator"),
		AuthServerImage: authServerImage,
		PgBouncerImage:  pgBouncerImage,
		RedisImage:      redisImage,
		Tracing:         tracing,
	}).SetupWithManager(mgr); err != nil {
		return fmt.Errorf("setting up the AuthStack controller: %w", err)
	}
	if err := (&controllers.AuthPolicyReconciler{
		Client:    mgr.GetClient(),
		APIReader: mgr.GetAPIReader(),
	}).SetupWithManager(mgr); err != nil {
		return fmt.Errorf("setting up the AuthPolicy controller: %w", err)
	}

	if err := mgr.AddHealthzCheck("healthz", healthz.Ping); err != nil {
		return fmt.Errorf("adding the health check: %w", err)
	}
	if err := mgr.AddReadyzCheck("readyz", healthz.Ping); err != nil {
		return fmt.Errorf("adding the ready check: %w", err)
	}

	log.Info("starting the manager",
		"version", effectiveVersion(),
		"authserverImage", authServerImage,
		"pgbouncerImage", pgBouncerImage,
		"redisImage", redisImage,
		"watchNamespaces", namespaces,
		"leaderElection", leaderElect,
		"tracing", tp != nil)
	if err := mgr.Start(ctx); err != nil {
		return fmt.Errorf("running the manager: %w", err)
	}
	return nil
}

// parseNamespaces splits a comma-separated --watch-namespace value. Blank
// entries are dropped and duplicates removed; an empty result means all
// namespaces. An entry that is not a valid namespace name is an error.
func parseNamespaces(s string) ([]string, error) {
	var out []string
	seen := map[string]bool{}
	for _, part := range strings.Split(s, ",") {
		ns := strings.TrimSpace(part)
		if ns == "" || seen[ns] {
			continue
		}
		if !isDNSLabel(ns) {
			return nil, fmt.Errorf("%q is not a valid namespace name", ns)
		}
		seen[ns] = true
		out = append(out, ns)
	}
	return out, nil
}

// isDNSLabel reports whether s is an RFC 1123 label, which namespace names are.
func isDNSLabel(s string) bool {
	if len(s) == 0 || len(s) > 63 {
		return false
	}
	for i, r := range s {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9':
		case r == '-' && i != 0 && i != len(s)-1:
		default:
			return false
		}
	}
	return true
}

// effectiveVersion is the -X main.version value, else the module version
// recorded in the binary (for go install ...@vX.Y.Z), else "latest".
func effectiveVersion() string {
	if version != "" {
		return version
	}
	if bi, ok := debug.ReadBuildInfo(); ok && isReleaseVersion(bi.Main.Version) {
		return bi.Main.Version
	}
	return "latest"
}

// isReleaseVersion reports whether v is a plain release tag such as v1.2.3:
// not "(devel)", not a pseudo-version, not a "+dirty" build.
func isReleaseVersion(v string) bool {
	return strings.HasPrefix(v, "v") && !strings.ContainsAny(v, "-+")
}

// defaultAuthServerImage is the authserver image of the same release as the operator.
func defaultAuthServerImage() string {
	return authServerImageRepo + ":" + effectiveVersion()
}
