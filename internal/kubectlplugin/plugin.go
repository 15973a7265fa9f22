// Package kubectlplugin is `kubectl authstack` (cmd/kubectl-authstack): day-2
// commands on one AuthStack — status, backup, pause/resume, restore,
// rotate-pepper. It reads and patches AuthStacks as unstructured objects with
// JSON merge patches, so it sets only the fields it names and shows the status
// fields of any operator version (a field this operator does not have is
// simply not printed).
package kubectlplugin

import (
	"context"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/spf13/cobra"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// GVK of the AuthStack kind.
var stackGVK = schema.GroupVersionKind{Group: "auth.leanauth.dev", Version: "v1alpha1", Kind: "AuthStack"}

// FieldManager names the plugin's writes in managedFields.
const FieldManager = "kubectl-authstack"

// pollInterval is how often the waiting commands read the stack again.
var pollInterval = time.Second

// plugin holds what every command needs: the client, the namespace and the output.
type plugin struct {
	out, errOut io.Writer
	loading     *clientcmd.ClientConfigLoadingRules
	overrides   *clientcmd.ConfigOverrides
	c           client.Client
	namespace   string
}

// Run runs the plugin with args (without the program name) and returns the exit code.
func Run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	root := NewCommand(stdout, stderr)
	root.SetArgs(args)
	if err := root.ExecuteContext(ctx); err != nil {
		fmt.Fprintln(stderr, "error:", err)
		return 1
	}
	return 0
}

// NewCommand builds the `kubectl authstack` command tree.
func NewCommand(stdout, stderr io.Writer) *cobra.Command {
	p := &plugin{out: stdout, errOut: stderr, loading: clientcmd.NewDefaultClientConfigLoadingRules(), overrides: &clientcmd.ConfigOverrides{}}
	root := &cobra.Command{
		Use:           "kubectl-authstack",
		Short:         "Day-2 operations on an AuthStack: status, backup, pause/resume, restore, rotate-pepper",
		SilenceUsage:  true,
		SilenceErrors: true,
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error {
			if cmd.Name() == "help" {
				return nil // help needs no cluster
			}
			return p.connect()
		},
	}
	root.CompletionOptions.DisableDefaultCmd = true
	root.SetOut(stdout)
	root.SetErr(stderr)
	// The standard kubeconfig flags: --kubeconfig, --context, -n/--namespace, --cluster, --user, ...
	root.PersistentFlags().StringVar(&p.loading.ExplicitPath, "kubeconfig", "", "path to the kubeconfig file")
	clientcmd.BindOverrideFlags(p.overrides, root.PersistentFlags(), clientcmd.RecommendedConfigOverrideFlags(""))
	root.AddCommand(p.statusCommand(), p.backupCommand(), p.pauseCommand(true), p.pauseCommand(false),
		p.restoreCommand(), p.rotatePepperCommand())
	return root
}

func (p *plugin) connect() error {
	cc := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(p.loading, p.overrides)
	cfg, err := cc.ClientConfig()
	if err != nil {
		return fmt.Errorf("loading the kubeconfig: %w", err)
	}
	cfg.UserAgent = "kubectl-authstack"
	if p.namespace, _, err = cc.Namespace(); err != nil {
		return fmt.Errorf("reading the namespace from the kubeconfig: %w", err)
	}
	scheme := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(scheme); err != nil {
		return err
	}
	p.c, err = client.New(cfg, client.Options{Scheme: scheme})
	if err != nil {
		return fmt.Errorf("connecting to the API server: %w", err)
	}
	return nil
}

// get reads the AuthStack name in the plugin's namespace.
func (p *plugin) get(ctx context.Context, name string) (*unstructured.Unstructured, error) {
	u := &unstructured.Unstructured{}
	u.SetGroupVersionKind(stackGVK)
	if err := p.c.Get(ctx, types.NamespacedName{Namespace: p.namespace, Name: name}, u); err != nil {
		if apierrors.IsNotFound(err) {
			return nil, fmt.Errorf("AuthStack %s/%s not found", p.namespace, name)
		}
		return nil, fmt.Errorf("reading AuthStack %s/%s: %w", p.namespace, name, err)
	}
	return u, nil
}

// mergePatch sends a JSON merge patch to the AuthStack; fields the installed CRD
// does not know are refused (strict field validation), not silently dropped.
func (p *plugin) mergePatch(ctx context.Context, name string, patch []byte) (*unstructured.Unstructured, error) {
	u := &unstructured.Unstructured{}
	u.SetGroupVersionKind(stackGVK)
	u.SetNamespace(p.namespace)
	u.SetName(name)
	if err := p.c.Patch(ctx, u, client.RawPatch(types.MergePatchType, patch),
		client.FieldOwner(FieldManager), client.FieldValidation("Strict")); err != nil {
		if apierrors.IsNotFound(err) {
			return nil, fmt.Errorf("AuthStack %s/%s not found", p.namespace, name)
		}
		return nil, fmt.Errorf("patching AuthStack %s/%s: %w", p.namespace, name, err)
	}
	return u, nil
}

// waitFor reads the stack every pollInterval until done says so (or returns an
// error), or the timeout passes.
func (p *plugin) waitFor(ctx context.Context, name string, timeout time.Duration, what string,
	done func(*unstructured.Unstructured) (bool, error)) (*unstructured.Unstructured, error) {
	var last *unstructured.Unstructured
	err := wait.PollUntilContextTimeout(ctx, pollInterval, timeout, true, func(ctx context.Context) (bool, error) {
		u, err := p.get(ctx, name)
		if err != nil {
			return false, err
		}
		last = u
		return done(u)
	})
	if wait.Interrupted(err) {
		return last, fmt.Errorf("timed out after %s waiting for %s (is the operator running?)", timeout, what)
	}
	return last, err
}

func exactlyOne(_ *cobra.Command, args []string) error {
	if len(args) != 1 {
		return fmt.Errorf("want one AuthStack name, got %d arguments", len(args))
	}
	return nil
}

// Main is cmd/kubectl-authstack's main.
func Main() {
	os.Exit(Run(context.Background(), os.Args[1:], os.Stdout, os.Stderr))
}
