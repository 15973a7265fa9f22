package kubectlplugin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/util/wait"
	"sigs.k8s.io/controller-runtime/pkg/client"

	authv1alpha1 "github.com/leanauth/authstack/api/v1alpha1"
	"github.com/leanauth/authstack/controllers/resources"
)

const annotationBackupNow = resources.AnnotationBackupNow

func (p *plugin) backupCommand() *cobra.Command {
	var (
		request string
		noWait  bool
		timeout time.Duration
	)
	cmd := &cobra.Command{
		Use:   "backup NAME",
		Short: "Run a backup now (the " + annotationBackupNow + " annotation), wait for its Jobs and print the result",
		Long: "Sets the " + annotationBackupNow + " annotation to a new value; the operator runs one Job per kind\n" +
			"of backup (PostgreSQL, and Redis when it has one) and records the request in\n" +
			"status.backups.handledRequest. The command waits until each Job finished, prints the\n" +
			"object written or the failure (as status.backups reports them), and exits 1 if a Job failed.",
		Args: exactlyOne,
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx, name := cmd.Context(), args[0]
			u, err := p.get(ctx, name)
			if err != nil {
				return err
			}
			if _, on, _ := unstructured.NestedMap(u.Object, "spec", "backup"); !on {
				return fmt.Errorf("AuthStack %s/%s has no spec.backup: nothing to back up to", p.namespace, name)
			}
			if request == "" {
				request = "kubectl-" + strings.ToLower(now().UTC().Format("20060102t150405z"))
			}
			if u.GetAnnotations()[annotationBackupNow] == request {
				return fmt.Errorf("the %s annotation already holds %q: pass a new --request", annotationBackupNow, request)
			}
			patch, _ := json.Marshal(map[string]any{"metadata": map[string]any{"annotations": map[string]string{annotationBackupNow: request}}})
			if _, err := p.mergePatch(ctx, name, patch); err != nil {
				return err
			}
			fmt.Fprintf(p.out, "backup %q requested for AuthStack %s/%s\n", request, p.namespace, name)
			if noWait {
				return nil
			}
			return p.waitBackup(ctx, name, request, timeout)
		},
	}
	cmd.Flags().StringVar(&request, "request", "", "the annotation's value, which names the Jobs (default: kubectl-<UTC time>)")
	cmd.Flags().BoolVar(&noWait, "no-wait", false, "return once the annotation is set")
	cmd.Flags().DurationVar(&timeout, "timeout", 30*time.Minute, "how long to wait for the Jobs")
	return cmd
}

// waitBackup waits until the operator took the request, then until each of its
// Jobs finished, and prints each Job's outcome as the operator reads it for
// status.backups (resources.BackupRunFromJob: the Job's conditions and its pod's
// result line), so two backups finishing in the same second cannot be mistaken.
func (p *plugin) waitBackup(ctx context.Context, name, request string, timeout time.Duration) error {
	if _, err := p.waitFor(ctx, name, timeout, "the operator to take the request (status.backups.handledRequest)",
		func(u *unstructured.Unstructured) (bool, error) {
			h, _, _ := unstructured.NestedString(u.Object, "status", "backups", "handledRequest")
			return h == request, nil
		}); err != nil {
		return err
	}
	jobs, err := p.requestJobs(ctx, name, request)
	if err != nil {
		return err
	}
	if len(jobs) == 0 {
		return fmt.Errorf("the operator took request %q but no Job of it is left (deleted?)", request)
	}
	names := make([]string, len(jobs))
	for i, j := range jobs {
		names[i] = j.Name
	}
	fmt.Fprintf(p.out, "running: %s\n", strings.Join(names, ", "))
	type outcome struct {
		run    authv1alpha1.BackupRun
		stored bool
	}
	var results []outcome
	err = wait.PollUntilContextTimeout(ctx, pollInterval, timeout, true, func(ctx context.Context) (bool, error) {
		if jobs, err = p.requestJobs(ctx, name, request); err != nil {
			return false, err
		}
		results = results[:0]
		for i := range jobs {
			var pods corev1.PodList
			if err := p.c.List(ctx, &pods, client.InNamespace(p.namespace), client.MatchingLabels{batchv1.JobNameLabel: jobs[i].Name}); err != nil {
				return false, fmt.Errorf("listing the pods of Job %s: %w", jobs[i].Name, err)
			}
			run, stored, finished := resources.BackupRunFromJob(&jobs[i], pods.Items)
			if !finished {
				return false, nil
			}
			results = append(results, outcome{run, stored})
		}
		return true, nil
	})
	if wait.Interrupted(err) {
		return fmt.Errorf("timed out after %s waiting for the backup Jobs %s to finish", timeout, strings.Join(names, ", "))
	}
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(p.out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "KIND\tJOB\tRESULT\tOBJECT\tSIZE\tMESSAGE")
	failed := false
	for i, r := range results {
		res, size := "succeeded", "-"
		if !r.stored {
			res, failed = "failed", true
		}
		if r.run.SizeBytes > 0 {
			size = bytesSize(r.run.SizeBytes)
		}
		kind := strings.TrimPrefix(jobs[i].Labels[resources.LabelComponent], "backup-")
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", kind, r.run.Job, res, dash(r.run.Object), size, dash(oneLine(r.run.Message)))
	}
	_ = tw.Flush()
	if failed {
		return errors.New("a backup Job failed")
	}
	return nil
}

// requestJobs lists the stack's backup Jobs the request created (they carry its value).
func (p *plugin) requestJobs(ctx context.Context, name, request string) ([]batchv1.Job, error) {
	var list batchv1.JobList
	if err := p.c.List(ctx, &list, client.InNamespace(p.namespace), client.MatchingLabels{resources.LabelInstance: name}); err != nil {
		return nil, fmt.Errorf("listing the backup Jobs of %s/%s: %w", p.namespace, name, err)
	}
	var jobs []batchv1.Job
	for _, j := range list.Items {
		if j.Annotations[annotationBackupNow] == request {
			jobs = append(jobs, j)
		}
	}
	sort.Slice(jobs, func(a, b int) bool { return jobs[a].Name < jobs[b].Name })
	return jobs, nil
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
