// Command authstack-demo runs the parts of the demo (hack/demo.sh) that are
// real processes rather than simulated pods:
//
//	authstack-demo servers    --state DIR --sample FILE   # PostgreSQL, Redis, mailpit; writes the Secrets the sample references
//	authstack-demo authserver --state DIR --binary PATH   # pgbouncer + authserver with the operator's rendered config
//	authstack-demo walk       --state DIR                 # signup -> email -> verify -> login -> session
//	authstack-demo walk       --authserver URL --mailpit URL   # the same against given addresses (the real node's Services)
//
// servers and authserver stay in the foreground until SIGTERM or SIGINT and
// stop what they started; demo.sh runs them in the background.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"sigs.k8s.io/yaml"

	authv1alpha1 "github.com/leanauth/authstack/api/v1alpha1"
	"github.com/leanauth/authstack/internal/localstack"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: authstack-demo servers|authserver|walk [flags]")
		os.Exit(2)
	}
	var err error
	switch os.Args[1] {
	case "servers":
		err = runServers(os.Args[2:])
	case "authserver":
		err = runAuthServer(os.Args[2:])
	case "walk":
		err = runWalk(os.Args[2:])
	default:
		err = fmt.Errorf("unknown subcommand %q (servers, authserver, walk)", os.Args[1])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "authstack-demo:", err)
		os.Exit(1)
	}
}

// state is what the daemons tell the walk (no secret values).
type state struct {
	MailpitAPI string            `json:"mailpitAPI,omitempty"`
	SMTP       string            `json:"smtp,omitempty"`
	Addresses  map[string]string `json:"addresses,omitempty"`
	AuthServer string            `json:"authServer,omitempty"`
	Metrics    string            `json:"metrics,omitempty"`
}

func writeState(path string, s state) error {
	b, _ := json.MarshalIndent(s, "", "  ")
	if err := os.WriteFile(path+".tmp", b, 0o600); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return os.Rename(path+".tmp", path)
}

func readState(path string) (state, error) {
	var s state
	b, err := os.ReadFile(path)
	if err != nil {
		return s, fmt.Errorf("reading %s (is the step before running?): %w", path, err)
	}
	return s, json.Unmarshal(b, &s)
}

func readStack(path, namespace string) (*authv1alpha1.AuthStack, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading the sample AuthStack: %w", err)
	}
	stack := &authv1alpha1.AuthStack{}
	if err := yaml.Unmarshal(b, stack); err != nil {
		return nil, fmt.Errorf("parsing %s: %w", path, err)
	}
	if stack.Namespace == "" {
		stack.Namespace = namespace
	}
	return stack, nil
}

func waitSignal() {
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, syscall.SIGTERM, syscall.SIGINT)
	<-ch
}

func logf(format string, args ...any) {
	fmt.Printf("  "+format+"\n", args...)
}

func runServers(args []string) error {
	fs := flag.NewFlagSet("servers", flag.ExitOnError)
	dir := fs.String("state", "", "state directory")
	kubeconfig := fs.String("kubeconfig", os.Getenv("KUBECONFIG"), "kubeconfig of the cluster")
	ns := fs.String("namespace", "default", "namespace of the AuthStack")
	sample := fs.String("sample", "config/samples/auth_v1alpha1_authstack.yaml", "the AuthStack whose Secrets to write")
	_ = fs.Parse(args)
	if *dir == "" {
		return errors.New("--state is required")
	}
	stack, err := readStack(*sample, *ns)
	if err != nil {
		return err
	}
	c, err := localstack.NewClient(*kubeconfig, 0, 0)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	srv, err := localstack.StartServers(ctx)
	if err != nil {
		return err
	}
	defer srv.Close()
	logf("PostgreSQL %s, Redis %s, mailpit SMTP %s (web UI and API %s)", srv.Postgres.Addr(), srv.Redis.Addr(), srv.Mailpit.SMTPAddr(), srv.Mailpit.APIURL())
	if err := localstack.ApplySecrets(ctx, c, srv.SecretsFor(stack)); err != nil {
		return err
	}
	logf("Secrets %s/%s, %s, %s written with real credentials and in-cluster addresses (%s, %s)",
		stack.Namespace, stack.Spec.Database.URLSecretRef.Name, stack.Spec.Redis.URLSecretRef.Name, stack.Spec.SMTP.PasswordSecretRef.Name,
		localstack.PostgresService+":5432", localstack.RedisService+":6379")
	smtp := localstack.SMTPAddress(stack)
	if err := writeState(filepath.Join(*dir, "servers.json"), state{
		MailpitAPI: srv.Mailpit.APIURL(), SMTP: smtp, Addresses: srv.Addresses(smtp),
	}); err != nil {
		return err
	}
	waitSignal()
	return nil
}

func runAuthServer(args []string) error {
	fs := flag.NewFlagSet("authserver", flag.ExitOnError)
	dir := fs.String("state", "", "state directory")
	kubeconfig := fs.String("kubeconfig", os.Getenv("KUBECONFIG"), "kubeconfig of the cluster")
	ns := fs.String("namespace", "default", "namespace of the AuthStack")
	name := fs.String("name", "example", "name of the AuthStack")
	binary := fs.String("binary", "", "the authserver binary")
	_ = fs.Parse(args)
	if *dir == "" || *binary == "" {
		return errors.New("--state and --binary are required")
	}
	st, err := readState(filepath.Join(*dir, "servers.json"))
	if err != nil {
		return err
	}
	c, err := localstack.NewClient(*kubeconfig, 0, 0)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	a, err := localstack.StartAuthServer(ctx, c, *ns, *name, *binary, filepath.Join(*dir, "authserver"), st.Addresses, logf)
	if err != nil {
		return err
	}
	defer a.Close()
	fmt.Printf("  the authserver container's environment, as rendered by the operator (Secret values not shown):\n%s", a.Serve.Describe())
	st.AuthServer, st.Metrics = a.URL, a.Metrics
	if err := writeState(filepath.Join(*dir, "authserver.json"), st); err != nil {
		return err
	}
	waitSignal()
	return nil
}

func runWalk(args []string) error {
	fs := flag.NewFlagSet("walk", flag.ExitOnError)
	dir := fs.String("state", "", "state directory")
	email := fs.String("email", "", "address to sign up (default: a fresh one)")
	authServer := fs.String("authserver", "", "the authserver's URL (default: the state directory's)")
	mailpit := fs.String("mailpit", "", "mailpit's API URL (default: the state directory's)")
	_ = fs.Parse(args)
	st := state{AuthServer: *authServer, MailpitAPI: *mailpit}
	if st.AuthServer == "" || st.MailpitAPI == "" {
		var err error
		if st, err = readState(filepath.Join(*dir, "authserver.json")); err != nil {
			return err
		}
	}
	if *email == "" {
		*email = fmt.Sprintf("ada+%d@example.com", time.Now().Unix())
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	n := 0
	_, err := localstack.Walk(ctx, st.AuthServer, st.MailpitAPI, *email, "correct horse battery staple 42", func(s localstack.Step) {
		n++
		fmt.Printf("  %d. %-34s %s\n", n, s.Name, s.Detail)
	})
	return err
}
