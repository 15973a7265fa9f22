package kubectlplugin

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/spf13/pflag"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// TestPrintStatusSections: status lays out the fields other parts of the operator
// report — the drills under status.backups, status.restore, status.pepper — and
// prints any status field it does not know, so a newer operator's status shows.
func TestPrintStatusSections(t *testing.T) {
	now = func() time.Time { return time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC) }
	t.Cleanup(func() { now = time.Now })
	u := &unstructured.Unstructured{}
	if err := u.UnmarshalJSON([]byte(`{"apiVersion":"auth.leanauth.dev/v1alpha1","kind":"AuthStack",
	"metadata":{"name":"auth","namespace":"prod","generation":4},
	"spec":{"paused":true,"backup":{}},
	"status":{"observedGeneration":3,
	  "conditions":[{"type":"RestoreVerified","status":"False","reason":"RowCountMismatch","observedGeneration":3,
	    "lastTransitionTime":"2026-11-29T11:00:00Z","message":"users: 10 in the dump,\n 9 restored"}],
	  "backups":{"handledRequest":"r1",
	    "lastDrill":{"time":"2026-11-29T11:00:00Z","succeeded":false,"reason":"RowCountMismatch","object":"prod/postgres/a.dump.gz.gpg","restoreSeconds":12}},
	  "restore":{"phase":"Succeeded","object":"prod/postgres/b.dump.gz.gpg","completionTime":"2026-11-28T12:00:00Z"},
	  "pepper":{"currentVersion":2,"countedAt":"2026-11-29T11:50:00Z","versions":[
	    {"version":2,"id":"AbCd","state":"Current","passwordHashes":5,"totpSecrets":0},
	    {"version":1,"id":"EfGh","state":"Accepted","passwordHashes":3,"totpSecrets":1}]},
	  "somethingNew":{"answer":42}}}`)); err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	printStatus(&b, u)
	out := b.String()
	wantLines(t, out,
		"AuthStack prod/auth (generation 4, observed 3: the operator has not handled the latest spec yet)",
		"Paused: yes (spec.paused",
		"RestoreVerified False RowCountMismatch 60m users: 10 in the dump, 9 restored (generation 3)",
		`last backup-now request: "r1"`,
		"lastDrill:", "object: prod/postgres/a.dump.gz.gpg", "reason: RowCountMismatch", "restoreSeconds: 12", "succeeded: false",
		"time: 2026-11-29T11:00:00Z (60m ago)",
		"Pepper rotation:", "current version 2, counted 10m ago", "2 AbCd Current 5 0", "1 EfGh Accepted 3 1",
		"Restore:", "phase: Succeeded", "completionTime: 2026-11-28T12:00:00Z (24h ago)",
		"SomethingNew:", "answer: 42")
}

// TestHelpNeedsNoCluster: help and --help work without a kubeconfig.
func TestHelpNeedsNoCluster(t *testing.T) {
	t.Setenv("KUBECONFIG", "/nonexistent")
	for _, args := range [][]string{{"help", "status"}, {"backup", "--help"}, {"--help"}} {
		var out, errOut bytes.Buffer
		if code := Run(context.Background(), args, &out, &errOut); code != 0 || !strings.Contains(out.String(), "Usage:") {
			t.Errorf("%v: exit %d\n%s%s", args, code, out.String(), errOut.String())
		}
	}
}

// TestCommandsDocumented: docs/kubectl-plugin.md names every command and each of its flags.
func TestCommandsDocumented(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join("..", "..", "docs", "kubectl-plugin.md"))
	if err != nil {
		t.Fatal(err)
	}
	doc := string(raw)
	root := NewCommand(io.Discard, io.Discard)
	for _, c := range root.Commands() {
		if c.Name() == "help" {
			continue
		}
		if !strings.Contains(doc, "## `"+c.Name()) && !strings.Contains(doc, "/ `"+c.Name()) {
			t.Errorf("docs/kubectl-plugin.md has no section for %s", c.Name())
		}
		c.LocalFlags().VisitAll(func(f *pflag.Flag) {
			if f.Name != "help" && !strings.Contains(doc, "--"+f.Name) {
				t.Errorf("docs/kubectl-plugin.md does not name %s --%s", c.Name(), f.Name)
			}
		})
	}
}
