package kubectlplugin

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

func (p *plugin) rotatePepperCommand() *cobra.Command {
	var (
		secret, key string
		noWait      bool
		timeout     time.Duration
	)
	cmd := &cobra.Command{
		Use:   "rotate-pepper NAME",
		Short: "Start a pepper rotation (raise spec.pepperRotation.version by one) and print its progress",
		Long: "Raises spec.pepperRotation.version by one. With a generated pepper the operator creates\n" +
			"the new version's Secret; with spec.pepper (your own Secret) pass the new version's\n" +
			"--secret and --key. Waits until status.pepper lists the new version and prints the\n" +
			"versions: the pods first accept the new pepper, then hash with it (two rolls); follow\n" +
			"with `kubectl authstack status`. Retiring old versions is spec.pepperRotation.retireBelow\n" +
			"(docs/operations.md).",
		Args: exactlyOne,
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx, name := cmd.Context(), args[0]
			u, err := p.get(ctx, name)
			if err != nil {
				return err
			}
			next, patch, err := pepperPatch(u, secret, key)
			if err != nil {
				return err
			}
			if _, err := p.mergePatch(ctx, name, patch); err != nil {
				return err
			}
			fmt.Fprintf(p.out, "pepper rotation to version %d requested for AuthStack %s/%s\n", next, p.namespace, name)
			if noWait {
				return nil
			}
			return p.waitPepper(ctx, name, next, timeout)
		},
	}
	cmd.Flags().StringVar(&secret, "secret", "", "with spec.pepper: the Secret holding the new version's pepper")
	cmd.Flags().StringVar(&key, "key", "", "with spec.pepper: the key of --secret")
	cmd.Flags().BoolVar(&noWait, "no-wait", false, "return once spec.pepperRotation.version is raised")
	cmd.Flags().DurationVar(&timeout, "timeout", 5*time.Minute, "how long to wait for the new version to be current")
	return cmd
}

// pepperPatch is the merge patch that raises spec.pepperRotation.version by one,
// and the new version.
func pepperPatch(u *unstructured.Unstructured, secret, key string) (int64, []byte, error) {
	cur, ok := intField(u, "status", "pepper", "currentVersion")
	if !ok {
		cur = 1 // the first pepper is version 1
	}
	want, _ := intField(u, "spec", "pepperRotation", "version")
	if want > cur {
		return 0, nil, fmt.Errorf("the rotation to version %d is still rolling out (status.pepper.currentVersion %d): wait for it", want, cur)
	}
	next := max(want, cur) + 1
	rot := map[string]any{"version": next}
	_, own, _ := unstructured.NestedMap(u.Object, "spec", "pepper")
	switch {
	case own && (secret == "" || key == ""):
		return 0, nil, fmt.Errorf("the AuthStack brings its own pepper (spec.pepper): pass --secret and --key of version %d", next)
	case own:
		// A merge patch replaces a list: send every version, the new one last.
		peppers, _, _ := unstructured.NestedSlice(u.Object, "spec", "pepperRotation", "peppers")
		rot["peppers"] = append(peppers, map[string]any{"version": next, "secretRef": map[string]any{"name": secret, "key": key}})
	case secret != "" || key != "":
		return 0, nil, fmt.Errorf("--secret and --key are for an AuthStack with spec.pepper; the operator generates this one's peppers")
	}
	patch, err := json.Marshal(map[string]any{"spec": map[string]any{"pepperRotation": rot}})
	return next, patch, err
}

func (p *plugin) waitPepper(ctx context.Context, name string, next int64, timeout time.Duration) error {
	u, err := p.waitFor(ctx, name, timeout, fmt.Sprintf("the operator to list pepper version %d in status.pepper.versions", next),
		func(u *unstructured.Unstructured) (bool, error) {
			versions, _, _ := unstructured.NestedSlice(u.Object, "status", "pepper", "versions")
			for _, v := range versions {
				if m, ok := v.(map[string]any); ok && fmt.Sprint(m["version"]) == fmt.Sprint(next) {
					return true, nil
				}
			}
			return false, nil
		})
	if err != nil {
		return err
	}
	printPepper(p.out, u)
	fmt.Fprintln(p.out, "the pods accept the new pepper, then hash with it (two rolls): follow with kubectl authstack status")
	return nil
}

// printPepper prints status.pepper: each version's id, state and the hashes and
// TOTP secrets still using it (from the last count), and the PepperRotated condition.
func printPepper(w io.Writer, u *unstructured.Unstructured) {
	versions, _, _ := unstructured.NestedSlice(u.Object, "status", "pepper", "versions")
	cur, _ := intField(u, "status", "pepper", "currentVersion")
	counted, _, _ := unstructured.NestedString(u.Object, "status", "pepper", "countedAt")
	fmt.Fprintf(w, "  current version %d, counted %s\n", cur, map[bool]string{true: "never", false: age(counted) + " ago"}[counted == ""])
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "  VERSION\tID\tSTATE\tPASSWORD HASHES\tTOTP SECRETS")
	for _, v := range versions {
		m, _ := v.(map[string]any)
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%s\n", str(m["version"]), dash(str(m["id"])), dash(str(m["state"])),
			dash(str(m["passwordHashes"])), dash(str(m["totpSecrets"])))
	}
	_ = tw.Flush()
	if c := findCondition(u, "PepperRotated"); c != nil {
		fmt.Fprintf(w, "  condition PepperRotated=%s (%s): %s\n", c.Status, c.Reason, oneLine(c.Message))
	}
}

// intField reads an integer field, decoded as int64 (the API client) or float64 (plain JSON).
func intField(u *unstructured.Unstructured, fields ...string) (int64, bool) {
	v, ok, _ := unstructured.NestedFieldNoCopy(u.Object, fields...)
	switch n := v.(type) {
	case int64:
		return n, ok
	case float64:
		return int64(n), ok
	}
	return 0, false
}
