package kubectlplugin

import (
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/util/duration"
)

// now is the clock the ages are printed against.
var now = time.Now

func (p *plugin) statusCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "status NAME",
		Short: "Conditions, components, backups, drills, restore and pepper rotation of an AuthStack, in one screen",
		Args:  exactlyOne,
		RunE: func(cmd *cobra.Command, args []string) error {
			u, err := p.get(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			printStatus(p.out, u)
			return nil
		},
	}
}

// Sections of status the plugin lays out itself; any other field is printed as it is.
var knownStatus = map[string]bool{
	"observedGeneration": true, "conditions": true, "url": true, "authServer": true,
	"pooler": true, "redis": true, "backups": true, "pepperSecretName": true, "pepper": true,
}

func printStatus(w io.Writer, u *unstructured.Unstructured) {
	st, _, _ := unstructured.NestedMap(u.Object, "status")
	gen := u.GetGeneration()
	observed, _, _ := unstructured.NestedInt64(st, "observedGeneration")
	fmt.Fprintf(w, "AuthStack %s/%s (generation %d, observed %d", u.GetNamespace(), u.GetName(), gen, observed)
	if observed < gen {
		fmt.Fprint(w, ": the operator has not handled the latest spec yet")
	}
	fmt.Fprintln(w, ")")
	paused, _, _ := unstructured.NestedBool(u.Object, "spec", "paused")
	fmt.Fprintf(w, "Paused:     %s\n", yesNo(paused))
	if url, _ := st["url"].(string); url != "" {
		fmt.Fprintf(w, "URL:        %s\n", url)
	}
	if s, _ := st["pepperSecretName"].(string); s != "" {
		fmt.Fprintf(w, "Pepper:     Secret %s\n", s)
	}

	fmt.Fprintln(w, "\nConditions:")
	conds, _, _ := unstructured.NestedSlice(st, "conditions")
	if len(conds) == 0 {
		fmt.Fprintln(w, "  none yet")
	} else {
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "  TYPE\tSTATUS\tREASON\tAGE\tMESSAGE")
		for _, c := range conds {
			m, _ := c.(map[string]any)
			cg, _ := m["observedGeneration"].(int64)
			stale := ""
			if cg != 0 && cg < gen {
				stale = fmt.Sprintf(" (generation %d)", cg)
			}
			fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%s%s\n", str(m["type"]), str(m["status"]), str(m["reason"]),
				age(str(m["lastTransitionTime"])), oneLine(str(m["message"])), stale)
		}
		_ = tw.Flush()
	}

	fmt.Fprintln(w, "\nComponents:")
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	for _, c := range []struct{ label, field string }{{"authserver", "authServer"}, {"pooler", "pooler"}, {"redis", "redis"}} {
		m, ok := st[c.field].(map[string]any)
		if !ok {
			continue
		}
		ready, _ := m["readyReplicas"].(int64)
		want, _ := m["replicas"].(int64)
		fmt.Fprintf(tw, "  %s\t%d/%d ready\n", c.label, ready, want)
	}
	_ = tw.Flush()

	printBackups(w, u, st)

	if _, ok := st["pepper"]; ok {
		fmt.Fprintln(w, "\nPepper rotation:")
		printPepper(w, u)
	}

	var rest []string
	for k := range st {
		if !knownStatus[k] {
			rest = append(rest, k)
		}
	}
	sort.Strings(rest)
	for _, k := range rest {
		fmt.Fprintf(w, "\n%s:\n", title(k))
		printFields(w, "  ", st[k])
	}
}

func printBackups(w io.Writer, u *unstructured.Unstructured, st map[string]any) {
	fmt.Fprintln(w, "\nBackups:")
	if _, on, _ := unstructured.NestedMap(u.Object, "spec", "backup"); !on {
		fmt.Fprintln(w, "  not configured (spec.backup)")
		return
	}
	b, _ := st["backups"].(map[string]any)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "  KIND\tLAST SUCCESS\tOBJECT\tSIZE\tLAST FAILURE")
	for _, kind := range []string{"postgres", "redis"} {
		k, _ := b[kind].(map[string]any)
		ok, _ := k["lastSuccess"].(map[string]any)
		bad, _ := k["lastFailure"].(map[string]any)
		failure := "-"
		if bad != nil {
			failure = age(str(bad["time"])) + " ago: " + oneLine(str(bad["message"]))
		}
		success, object, size := "-", "-", "-"
		if ok != nil {
			success, object = age(str(ok["time"]))+" ago", str(ok["object"])
			if n, _ := ok["sizeBytes"].(int64); n > 0 {
				size = bytesSize(n)
			}
		}
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%s\n", kind, success, object, size, failure)
	}
	_ = tw.Flush()
	asked := u.GetAnnotations()[annotationBackupNow]
	handled := str(b["handledRequest"])
	switch {
	case asked != "" && asked != handled:
		fmt.Fprintf(w, "  backup-now request %q: waiting for the operator\n", asked)
	case handled != "":
		fmt.Fprintf(w, "  last backup-now request: %q\n", handled)
	}
	// Whatever else the operator reports under status.backups (the restore drills).
	var rest []string
	for k := range b {
		if k != "postgres" && k != "redis" && k != "handledRequest" {
			rest = append(rest, k)
		}
	}
	sort.Strings(rest)
	for _, k := range rest {
		fmt.Fprintf(w, "  %s:\n", k)
		printFields(w, "    ", b[k])
	}
}

// printFields prints a status value as indented "field: value" lines.
func printFields(w io.Writer, indent string, v any) {
	switch t := v.(type) {
	case map[string]any:
		keys := make([]string, 0, len(t))
		for k := range t {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			switch e := t[k].(type) {
			case map[string]any, []any:
				fmt.Fprintf(w, "%s%s:\n", indent, k)
				printFields(w, indent+"  ", e)
			default:
				fmt.Fprintf(w, "%s%s: %s\n", indent, k, scalar(e))
			}
		}
	case []any:
		for _, e := range t {
			switch e.(type) {
			case map[string]any, []any:
				fmt.Fprintf(w, "%s-\n", indent)
				printFields(w, indent+"  ", e)
			default:
				fmt.Fprintf(w, "%s- %s\n", indent, scalar(e))
			}
		}
	default:
		fmt.Fprintf(w, "%s%s\n", indent, scalar(t))
	}
}

// scalar prints a value; a timestamp gets its age.
func scalar(v any) string {
	s := str(v)
	if _, err := time.Parse(time.RFC3339, s); err == nil {
		return s + " (" + age(s) + " ago)"
	}
	return oneLine(s)
}

func str(v any) string {
	if v == nil {
		return ""
	}
	if s, ok := v.(string); ok {
		return s
	}
	return fmt.Sprint(v)
}

func age(ts string) string {
	t, err := time.Parse(time.RFC3339, ts)
	if err != nil {
		return "-"
	}
	return duration.HumanDuration(now().Sub(t))
}

func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }

func yesNo(b bool) string {
	if b {
		return "yes (spec.paused: the operator changes no child)"
	}
	return "no"
}

// title turns a status field name into a heading: "restore" -> "Restore".
func title(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

func bytesSize(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}
