package kubectlplugin

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	authv1alpha1 "github.com/leanauth/authstack/api/v1alpha1"
	"github.com/leanauth/authstack/controllers/resources"
)

// TestRestore: restore -f creates the AuthStack with spec.bootstrap.fromBackup and
// follows status.restore as the operator runs the restore Job: a failed run exits
// 1 with the operator's message; after the Job is deleted the operator runs it
// again, and `restore NAME` follows that run to Succeeded.
func TestRestore(t *testing.T) {
	ns := newNamespace(t)
	stack := sampleStack("", "restored")
	stack.Spec.Backup.Encryption.PrivateKeySecretRef = &authv1alpha1.SecretKeyRef{Name: "backup-key", Key: "private.asc"}
	stack.Spec.Bootstrap = &authv1alpha1.BootstrapSpec{FromBackup: &authv1alpha1.FromBackupSpec{}}
	raw, err := yaml.Marshal(stack)
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "restored.yaml")
	if err := os.WriteFile(file, raw, 0o644); err != nil {
		t.Fatal(err)
	}

	var (
		out  string
		code int
		wg   sync.WaitGroup
	)
	follow := func(args ...string) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			out, code = run(t, ns, args...)
		}()
	}
	restoreJob := func() *batchv1.Job {
		t.Helper()
		var job *batchv1.Job
		eventually(t, "a running restore Job", func() error {
			var list batchv1.JobList
			if err := k8s.List(context.Background(), &list, client.InNamespace(ns),
				client.MatchingLabels{resources.LabelInstance: "restored", resources.LabelComponent: resources.ComponentRestore}); err != nil {
				return err
			}
			for i := range list.Items {
				if list.Items[i].Status.StartTime == nil && list.Items[i].DeletionTimestamp == nil {
					job = &list.Items[i]
					return nil
				}
			}
			return os.ErrNotExist
		})
		return job
	}

	follow("restore", "-f", file, "--object", "latest", "--timeout", "90s")
	job := restoreJob()
	finishJob(t, job, false, `{"kind":"postgres","ok":false,"object":"prod/postgres/20261129T120000Z.dump.gz.gpg","error":"the dump's pepper canary does not match this stack's pepper","reason":"PepperMismatch"}`)
	wg.Wait()
	if code != 1 {
		t.Errorf("a failed restore: exit %d, want 1\n%s", code, out)
	}
	wantLines(t, out,
		"AuthStack "+ns+"/restored created, restoring backup latest",
		"restore Failed (backup prod/postgres/20261129T120000Z.dump.gz.gpg): the dump's pepper canary does not match this stack's pepper; to retry, delete the Job "+job.Name,
		"status.restore:", "phase: Failed", "job: "+job.Name,
		"condition Restored=False (PepperMismatch)", "error: the restore failed")
	if s := getNamed(t, ns, "restored"); s.Spec.Bootstrap == nil || s.Spec.Bootstrap.FromBackup == nil || s.Spec.Bootstrap.FromBackup.Object != "latest" {
		t.Errorf("spec.bootstrap %+v", s.Spec.Bootstrap)
	}

	// Creating it again is refused: a restore is declared once.
	if out, code := run(t, ns, "restore", "-f", file); code != 1 || !containsLine(out, "already exists: a restore is declared at creation") {
		t.Errorf("restore -f of an existing stack: exit %d\n%s", code, out)
	}

	// Delete the Job, and its pod as the garbage collector would (envtest runs none).
	if err := k8s.Delete(context.Background(), job, client.PropagationPolicy("Background")); err != nil {
		t.Fatal(err)
	}
	if err := k8s.Delete(context.Background(), &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: job.Name + "-pod"}}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the operator to start the restore again", func() error {
		if r := getNamed(t, ns, "restored").Status.Restore; r == nil || r.Phase == authv1alpha1.RestoreFailed {
			return fmt.Errorf("status.restore %+v", r)
		}
		return nil
	})
	follow("restore", "restored", "--timeout", "90s")
	job = restoreJob()
	finishJob(t, job, true, `{"kind":"postgres","ok":true,"object":"prod/postgres/20261129T120000Z.dump.gz.gpg"}`)
	wg.Wait()
	if code != 0 {
		t.Errorf("a succeeded restore: exit %d\n%s", code, out)
	}
	wantLines(t, out,
		"restore Succeeded (backup prod/postgres/20261129T120000Z.dump.gz.gpg): restored; every restored session was revoked",
		"phase: Succeeded", "completionTime:", "condition Restored=True (RestoreSucceeded)")

	out, _ = run(t, ns, "status", "restored")
	wantLines(t, out, "Restore:", "phase: Succeeded", "object: prod/postgres/20261129T120000Z.dump.gz.gpg", "Restored True RestoreSucceeded")
}
