package kubectlplugin

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
)

// conditionPaused is True while spec.paused holds the operator back.
const conditionPaused = "Paused"

// pauseCommand is `pause` (pause true) or `resume`: it sets spec.paused and waits
// until the operator reports it in the Paused condition.
func (p *plugin) pauseCommand(pause bool) *cobra.Command {
	var (
		noWait  bool
		timeout time.Duration
	)
	use, short := "resume NAME", "Let the operator change the AuthStack's children again (spec.paused: false)"
	if pause {
		use, short = "pause NAME", "Stop the operator changing the AuthStack's children (spec.paused: true)"
	}
	cmd := &cobra.Command{
		Use:   use,
		Short: short,
		Args:  exactlyOne,
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx, name := cmd.Context(), args[0]
			u, err := p.mergePatch(ctx, name, fmt.Appendf(nil, `{"spec":{"paused":%t}}`, pause))
			if err != nil {
				return err
			}
			verb := map[bool]string{true: "paused", false: "resumed"}[pause]
			fmt.Fprintf(p.out, "AuthStack %s/%s %s (spec.paused: %t)\n", p.namespace, name, verb, pause)
			if noWait {
				return nil
			}
			gen := u.GetGeneration()
			u, err = p.waitFor(ctx, name, timeout, "the operator to report the Paused condition", func(u *unstructured.Unstructured) (bool, error) {
				c := findCondition(u, conditionPaused)
				if pause {
					return c != nil && c.Status == metav1.ConditionTrue && c.ObservedGeneration >= gen, nil
				}
				return (c == nil || c.Status != metav1.ConditionTrue) && observedGeneration(u) >= gen, nil
			})
			if err != nil {
				return err
			}
			if c := findCondition(u, conditionPaused); c != nil {
				fmt.Fprintf(p.out, "condition Paused=%s (%s): %s\n", c.Status, c.Reason, c.Message)
			} else {
				fmt.Fprintln(p.out, "the operator reconciles the AuthStack again")
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&noWait, "no-wait", false, "return once spec.paused is set")
	cmd.Flags().DurationVar(&timeout, "timeout", time.Minute, "how long to wait for the operator")
	return cmd
}

// findCondition returns the condition typ of status.conditions, or nil.
func findCondition(u *unstructured.Unstructured, typ string) *metav1.Condition {
	raw, _, _ := unstructured.NestedSlice(u.Object, "status", "conditions")
	var conds []metav1.Condition
	for _, r := range raw {
		m, ok := r.(map[string]any)
		if !ok {
			continue
		}
		var c metav1.Condition
		if runtime.DefaultUnstructuredConverter.FromUnstructured(m, &c) == nil {
			conds = append(conds, c)
		}
	}
	return meta.FindStatusCondition(conds, typ)
}

func observedGeneration(u *unstructured.Unstructured) int64 {
	g, _, _ := unstructured.NestedInt64(u.Object, "status", "observedGeneration")
	return g
}
