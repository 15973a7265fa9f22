package resources

import (
	"os"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"

	authv1alpha1 "github.com/leanauth/authstack/api/v1alpha1"
	"github.com/leanauth/authstack/authserver/backup"
	"github.com/leanauth/authstack/authserver/backup/result"
)

// TestDocsDrillResult ties docs/backup-and-restore.md ("Restore drills: read a
// drill's result") to the code: the example status is what the operator
// writes for that drill (field names, lastDrill's and the condition's
// messages), the reason table lists exactly the reasons RestoreVerified can
// have, and the names, label and times the text gives are the code's.
func TestDocsDrillResult(t *testing.T) {
	raw, err := os.ReadFile("../../docs/backup-and-restore.md")
	if err != nil {
		t.Fatal(err)
	}
	doc := string(raw)
	start := strings.Index(doc, "### Restore drills: read a drill's result")
	end := strings.Index(doc, "## 3. Declare a restore")
	if start < 0 || end < start {
		t.Fatal("section \"Restore drills: read a drill's result\" not found")
	}
	sec := doc[start:end]

	// The example status.
	i := strings.Index(sec, "for example\n\n```yaml\n")
	if i < 0 {
		t.Fatal("no example status")
	}
	block := sec[i+len("for example\n\n```yaml\n"):]
	block = block[:strings.Index(block, "```")]
	var ex struct {
		Status struct {
			Backups    authv1alpha1.BackupsStatus `json:"backups"`
			Conditions []metav1.Condition         `json:"conditions"`
		} `json:"status"`
	}
	if err := yaml.UnmarshalStrict([]byte(block), &ex); err != nil {
		t.Fatalf("the example status has fields the API does not: %v", err)
	}
	d := ex.Status.Backups.LastDrill
	if d == nil || len(ex.Status.Conditions) != 1 {
		t.Fatal("the example has no lastDrill or condition")
	}
	line := backup.DrillResultOf(backup.VerifyResult{Object: d.Object, BackupTime: d.BackupTime.Time,
		Restore: time.Duration(d.RestoreSeconds) * time.Second, Tables: 9, Rows: 321}, nil).Line()
	job := drillJob(d.Job, true, d.Time.Time, "")
	got := DrillStatusFromJobs(nil, []batchv1.Job{job}, []corev1.Pod{drillPod(d.Job, string(line), d.Time.Time)})
	if run := got.LastDrill; run == nil || run.Message != d.Message || run.Reason != d.Reason || run.Succeeded != d.Succeeded ||
		run.Object != d.Object || run.RestoreSeconds != d.RestoreSeconds || !run.BackupTime.Equal(d.BackupTime) {
		t.Errorf("lastDrill in the doc:\n  %+v\nthe operator writes:\n  %+v", *d, run)
	}
	stack := withDrill(withBackup(sampleStack()))
	c, _ := RestoreVerifiedCondition(stack, got, d.Time.Time, d.Time.Add(time.Hour))
	want := ex.Status.Conditions[0]
	if c.Type != want.Type || c.Status != want.Status || c.Reason != want.Reason || c.Message != want.Message {
		t.Errorf("condition in the doc:\n  %s %s %s: %s\nthe operator writes:\n  %s %s %s: %s",
			want.Type, want.Status, want.Reason, want.Message, c.Type, c.Status, c.Reason, c.Message)
	}

	// The reason table: every reason the drill or the operator can set, no other.
	src, err := os.ReadFile("../../authserver/backup/result/result.go")
	if err != nil {
		t.Fatal(err)
	}
	reasons := map[string]bool{authv1alpha1.ReasonAwaitingFirstDrill: true, authv1alpha1.ReasonDrillsSuspended: true,
		authv1alpha1.ReasonDrillOverdue: true, authv1alpha1.ReasonSecretNotFound: true}
	for _, m := range regexp.MustCompile(`(?m)^\s*Reason\w+\s*=\s*"(\w+)"`).FindAllStringSubmatch(string(src), -1) {
		reasons[m[1]] = true
	}
	inDoc := map[string]bool{}
	for _, m := range regexp.MustCompile("(?m)^\\| (?:True|False|Unknown) \\| `(\\w+)` \\|").FindAllStringSubmatch(sec, -1) {
		inDoc[m[1]] = true
	}
	var missing, extra []string
	for r := range reasons {
		if !inDoc[r] {
			missing = append(missing, r)
		}
	}
	for r := range inDoc {
		if !reasons[r] {
			extra = append(extra, r)
		}
	}
	sort.Strings(missing)
	sort.Strings(extra)
	if len(missing)+len(extra) > 0 {
		t.Errorf("reason table: missing %v, not a reason %v", missing, extra)
	}

	for _, want := range []string{
		"`<name>-backup-verify`", "component=" + ComponentBackupVerify, "older than 4 hours", "deadline (3 h)",
		"`backoffLimit: 0`", `schedule: "` + authv1alpha1.DefaultDrillSchedule + `"     # default`,
	} {
		if !strings.Contains(sec, want) {
			t.Errorf("the section does not say %q", want)
		}
	}
	// The API's copies of the drill's own reasons (api/v1alpha1 imports no authserver code).
	if authv1alpha1.ReasonDrillSucceeded != result.ReasonDrillSucceeded || authv1alpha1.ReasonDrillFailed != result.ReasonDrillFailed ||
		authv1alpha1.ReasonBackupNotAuthentic != result.ReasonBackupNotAuthentic || authv1alpha1.ReasonBackupTooLarge != result.ReasonBackupTooLarge {
		t.Error("api/v1alpha1's drill reasons differ from authserver/backup/result's")
	}
	if backup.ScratchStaleAfter != 4*time.Hour || DrillActiveDeadlineSec != 3*3600 || DrillCronJobName(stack) != stack.Name+"-backup-verify" {
		t.Error("the times or names the section gives changed: update it")
	}
}
