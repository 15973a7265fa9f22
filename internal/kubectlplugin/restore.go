package kubectlplugin

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/spf13/cobra"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"
)

func (p *plugin) restoreCommand() *cobra.Command {
	var (
		file    string
		object  string
		noWait  bool
		timeout time.Duration
	)
	cmd := &cobra.Command{
		Use:   "restore [NAME] -f STACK.yaml | restore NAME",
		Short: "Create an AuthStack that restores a backup (spec.bootstrap.fromBackup) and follow status.restore",
		Long: "With -f, creates the AuthStack of the file, which declares the restore in\n" +
			"spec.bootstrap.fromBackup (--object sets or overrides spec.bootstrap.fromBackup.object:\n" +
			"\"latest\" or a backup's key), then follows status.restore until it Succeeded or Failed.\n" +
			"Without -f, follows the restore of the existing AuthStack NAME.\n" +
			"A declared restore happens once, at creation: spec.bootstrap cannot change afterwards.",
		Args: func(_ *cobra.Command, args []string) error {
			if len(args) > 1 || (file == "" && len(args) != 1) {
				return fmt.Errorf("want -f STACK.yaml, or the name of an AuthStack with spec.bootstrap.fromBackup")
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			name := ""
			if len(args) == 1 {
				name = args[0]
			}
			if file != "" {
				var err error
				if name, err = p.createRestore(ctx, file, name, object); err != nil {
					return err
				}
			} else if object != "" {
				return fmt.Errorf("--object only applies with -f: the restore of an existing AuthStack cannot change")
			}
			if noWait {
				return nil
			}
			return p.followRestore(ctx, name, timeout)
		},
	}
	cmd.Flags().StringVarP(&file, "filename", "f", "", "the AuthStack to create, with spec.bootstrap.fromBackup")
	cmd.Flags().StringVar(&object, "object", "", `the backup to restore: "latest" or its key (sets spec.bootstrap.fromBackup.object)`)
	cmd.Flags().BoolVar(&noWait, "no-wait", false, "return once the AuthStack is created")
	cmd.Flags().DurationVar(&timeout, "timeout", time.Hour, "how long to follow the restore")
	return cmd
}

func (p *plugin) createRestore(ctx context.Context, file, name, object string) (string, error) {
	raw, err := os.ReadFile(file)
	if err != nil {
		return "", fmt.Errorf("reading %s: %w", file, err)
	}
	u := &unstructured.Unstructured{}
	if err := yaml.Unmarshal(raw, &u.Object); err != nil {
		return "", fmt.Errorf("decoding %s: %w", file, err)
	}
	if u.GroupVersionKind() != stackGVK {
		return "", fmt.Errorf("%s holds a %s, not an AuthStack (%s)", file, u.GroupVersionKind(), stackGVK.GroupVersion())
	}
	if name != "" {
		u.SetName(name)
	}
	if u.GetName() == "" {
		return "", fmt.Errorf("%s names no AuthStack (metadata.name), and no NAME was given", file)
	}
	if ns := u.GetNamespace(); ns != "" && ns != p.namespace && p.overrides.Context.Namespace != "" {
		return "", fmt.Errorf("%s is for namespace %s, but -n says %s", file, ns, p.namespace)
	} else if ns != "" {
		p.namespace = ns
	}
	u.SetNamespace(p.namespace)
	if object != "" {
		if err := unstructured.SetNestedField(u.Object, object, "spec", "bootstrap", "fromBackup", "object"); err != nil {
			return "", err
		}
	}
	if _, ok, _ := unstructured.NestedMap(u.Object, "spec", "bootstrap", "fromBackup"); !ok {
		return "", fmt.Errorf("%s declares no restore: set spec.bootstrap.fromBackup (or pass --object latest)", file)
	}
	if err := p.c.Create(ctx, u, client.FieldOwner(FieldManager), client.FieldValidation("Strict")); err != nil {
		if apierrors.IsAlreadyExists(err) {
			return "", fmt.Errorf("AuthStack %s/%s already exists: a restore is declared at creation (follow it with `kubectl authstack restore %s`)", p.namespace, u.GetName(), u.GetName())
		}
		return "", fmt.Errorf("creating AuthStack %s/%s: %w", p.namespace, u.GetName(), err)
	}
	obj, _, _ := unstructured.NestedString(u.Object, "spec", "bootstrap", "fromBackup", "object")
	fmt.Fprintf(p.out, "AuthStack %s/%s created, restoring backup %s\n", p.namespace, u.GetName(), dash(obj))
	return u.GetName(), nil
}

// followRestore prints each new phase of status.restore until it is final.
func (p *plugin) followRestore(ctx context.Context, name string, timeout time.Duration) error {
	u, err := p.get(ctx, name)
	if err != nil {
		return err
	}
	if _, ok, _ := unstructured.NestedMap(u.Object, "spec", "bootstrap", "fromBackup"); !ok {
		return fmt.Errorf("AuthStack %s/%s declares no restore (spec.bootstrap.fromBackup)", p.namespace, name)
	}
	last := ""
	u, err = p.waitFor(ctx, name, timeout, "the restore to finish (status.restore.phase)", func(u *unstructured.Unstructured) (bool, error) {
		r, _, _ := unstructured.NestedMap(u.Object, "status", "restore")
		phase := str(r["phase"])
		line := fmt.Sprintf("%s %s %s", phase, str(r["object"]), str(r["message"]))
		if phase != "" && line != last {
			last = line
			fmt.Fprintf(p.out, "restore %s", phase)
			if o := str(r["object"]); o != "" {
				fmt.Fprintf(p.out, " (backup %s)", o)
			}
			if m := oneLine(str(r["message"])); m != "" {
				fmt.Fprintf(p.out, ": %s", m)
			}
			fmt.Fprintln(p.out)
		}
		return phase == "Succeeded" || phase == "Failed", nil
	})
	if err != nil {
		return err
	}
	r, _, _ := unstructured.NestedMap(u.Object, "status", "restore")
	fmt.Fprintln(p.out, "status.restore:")
	printFields(p.out, "  ", r)
	if c := findCondition(u, "Restored"); c != nil {
		fmt.Fprintf(p.out, "condition Restored=%s (%s): %s\n", c.Status, c.Reason, oneLine(c.Message))
	}
	if str(r["phase"]) == "Failed" {
		return errors.New("the restore failed")
	}
	return nil
}
