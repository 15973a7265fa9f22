package controllers

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	authv1alpha1 "github.com/leanauth/authstack/api/v1alpha1"
	"github.com/leanauth/authstack/controllers/resources"
)

// waitRotationPhase waits for status.databasePasswordRotation.phase.
func waitRotationPhase(t *testing.T, ns, phase string) *authv1alpha1.DatabasePasswordRotationStatus {
	t.Helper()
	var st *authv1alpha1.DatabasePasswordRotationStatus
	eventually(t, "rotation phase "+phase, func() error {
		st = getStack(t, ns).Status.DatabasePasswordRotation
		if st == nil || st.Phase != phase {
			return fmt.Errorf("status %+v", st)
		}
		return nil
	})
	return st
}

// userlist is pgbouncer's auth file, as "user password" lines.
func userlist(t *testing.T, ns string) []string {
	t.Helper()
	cfg := get(t, ns, "auth-pgbouncer-config", &corev1.Secret{})
	return strings.Split(strings.TrimSpace(strings.ReplaceAll(string(cfg.Data[resources.PgBouncerUserlistKey]), `"`, "")), "\n")
}

// configHashOf is a Deployment's pod template hash.
func configHashOf(t *testing.T, ns, name string) string {
	t.Helper()
	return get(t, ns, name, &appsv1.Deployment{}).Spec.Template.Annotations[resources.AnnotationConfigHash]
}

// rolledOutTo waits until the Deployment's template carries a hash other than old,
// then reports its rollout finished (the Deployment controller's part).
func rolledOutTo(t *testing.T, ns, name, old string) {
	t.Helper()
	templateChanged(t, ns, name, old)
	markDeploymentAvailable(t, ns, name)
}

// templateChanged waits until the Deployment's config hash is no longer old.
func templateChanged(t *testing.T, ns, name, old string) {
	t.Helper()
	eventually(t, name+" template changed", func() error {
		if h := configHashOf(t, ns, name); h == old {
			return fmt.Errorf("still %s", h)
		}
		return nil
	})
}

// TestDatabasePasswordRotation walks a rotation of the managed database's password
// through every phase on a real API server, playing the Deployment and Job
// controllers. At each step the pods' URLs and pgbouncer's auth file hold exactly
// the logins that step allows: pgbouncer accepts the new role before any pod uses it
// and keeps the old one until every pod (terminating ones included) has moved; the
// old role is retired only then. No password reaches the status, a condition or an
// event; one event per phase; a finished rotation writes nothing; the next rotation
// goes back to the first role, and a failed step says so and stops.
func TestDatabasePasswordRotation(t *testing.T) {
	t.Parallel()
	ns, op := setupStack(t, func(ns string) *authv1alpha1.AuthStack {
		s := dataTierStack(ns)
		s.Spec.Database = authv1alpha1.DatabaseSpec{Managed: &authv1alpha1.ManagedDatabaseSpec{}}
		s.Spec.Pooler.Enabled = ptr.To(true)
		return s
	})
	ctx := context.Background()
	pw0 := string(get(t, ns, "auth-postgres-password", &corev1.Secret{}).Data["password"])
	markDeploymentAvailable(t, ns, "auth-authserver")
	markDeploymentAvailable(t, ns, "auth-pgbouncer")
	if got := userlist(t, ns); !slices.Equal(got, []string{"authstack " + pw0}) {
		t.Fatalf("auth file before: %d lines", len(got))
	}
	np := get(t, ns, "auth-postgres", &networkingv1.NetworkPolicy{})
	admitted := false
	for _, r := range np.Spec.Ingress {
		admitted = admitted || r.From[0].PodSelector.MatchLabels[resources.LabelComponent] == resources.ComponentDBRotate
	}
	if !admitted {
		t.Errorf("the database's NetworkPolicy does not admit the rotation Jobs")
	}
	settle(t, op, ns)
	authHash, poolHash := configHashOf(t, ns, "auth-authserver"), configHashOf(t, ns, "auth-pgbouncer")
	connURL := func() string {
		return string(get(t, ns, "auth-connection", &corev1.Secret{}).Data[resources.ConnectionDatabaseDirectURLKey])
	}

	// 1. Preparing: a Job gives authstack_b a generated password; nothing else changes.
	updateStack(t, ns, func(s *authv1alpha1.AuthStack) {
		s.Spec.Database.Managed.PasswordRotation = &authv1alpha1.DatabasePasswordRotationSpec{Generation: 1}
	})
	st := waitRotationPhase(t, ns, authv1alpha1.DatabaseRotationPreparing)
	want := authv1alpha1.DatabaseCredentialStatus{Generation: 1, Role: "authstack_b", SecretName: "auth-postgres-password-1"}
	if st.Next == nil || *st.Next != want || st.Current.Role != "authstack" || st.Current.SecretName != "auth-postgres-password" {
		t.Fatalf("status %+v next %+v", st, st.Next)
	}
	s1 := get(t, ns, "auth-postgres-password-1", &corev1.Secret{})
	pw1 := string(s1.Data["password"])
	if len(pw1) < 32 || len(s1.OwnerReferences) != 0 {
		t.Fatalf("generation 1 Secret: %d characters, owners %v", len(pw1), s1.OwnerReferences)
	}
	prep := get(t, ns, "auth-dbrot-1-prepare", &batchv1.Job{})
	c := prep.Spec.Template.Spec.Containers[0]
	if !slices.Equal(c.Args, []string{"db-role", "prepare", "authstack_b", "authstack"}) ||
		envRef(c, "DATABASE_URL") != "auth-connection/database-direct-url" || envRef(c, "DB_ROLE_PASSWORD") != "auth-postgres-password-1/password" {
		t.Fatalf("prepare Job: args %q env %+v", c.Args, c.Env)
	}
	waitCondition(t, ns, authv1alpha1.ConditionDatabasePasswordRotated, metav1.ConditionFalse, authv1alpha1.ReasonRotationInProgress)
	waitCondition(t, ns, authv1alpha1.ConditionProgressing, metav1.ConditionTrue, authv1alpha1.ReasonProgressing)
	if !strings.HasPrefix(connURL(), "postgres://authstack:"+pw0+"@") || configHashOf(t, ns, "auth-authserver") != authHash ||
		configHashOf(t, ns, "auth-pgbouncer") != poolHash {
		t.Fatalf("something rolled before the new password was set")
	}

	// 2. SwitchingPooler: pgbouncer accepts both roles; the pods still use the first.
	finishJob(t, ns, prep, true, "")
	waitRotationPhase(t, ns, authv1alpha1.DatabaseRotationSwitchingPooler)
	if got := userlist(t, ns); !slices.Equal(got, []string{"authstack " + pw0, "authstack_b " + pw1}) {
		t.Fatalf("auth file while pgbouncer rolls: %d lines", len(got))
	}
	if !strings.HasPrefix(connURL(), "postgres://authstack:"+pw0+"@") || configHashOf(t, ns, "auth-authserver") != authHash {
		t.Fatalf("the pods moved before pgbouncer accepts the new role")
	}

	// 3. SwitchingPods: once every pgbouncer pod accepts both, the pods roll to authstack_b.
	rolledOutTo(t, ns, "auth-pgbouncer", poolHash)
	waitRotationPhase(t, ns, authv1alpha1.DatabaseRotationSwitchingPods)
	eventually(t, "the pods' URLs name authstack_b", func() error {
		if u := connURL(); !strings.HasPrefix(u, "postgres://authstack_b:"+pw1+"@") {
			return fmt.Errorf("user %s", strings.SplitN(strings.TrimPrefix(u, "postgres://"), ":", 2)[0])
		}
		return nil
	})
	if got := userlist(t, ns); len(got) != 2 {
		t.Fatalf("pgbouncer dropped a role while the pods roll: %d lines", len(got))
	}
	// A pod of the old template still terminating holds the retirement back.
	// (In one status write: rolled out first, the operator could rightly retire at once.)
	templateChanged(t, ns, "auth-authserver", authHash)
	markDeploymentTerminating(t, ns, 1)
	reconcileNow(t, op, ns)
	if st := getStack(t, ns).Status.DatabasePasswordRotation; st.Phase != authv1alpha1.DatabaseRotationSwitchingPods {
		t.Fatalf("phase %s while an old pod terminates", st.Phase)
	}

	// 4. Retiring: a Job removes authstack's password, logging in as authstack_b.
	markDeploymentAvailable(t, ns, "auth-authserver")
	waitRotationPhase(t, ns, authv1alpha1.DatabaseRotationRetiring)
	ret := get(t, ns, "auth-dbrot-1-retire", &batchv1.Job{})
	if c := ret.Spec.Template.Spec.Containers[0]; !slices.Equal(c.Args, []string{"db-role", "retire", "authstack"}) || len(c.Env) != 1 {
		t.Fatalf("retire Job: args %q env %+v", c.Args, c.Env)
	}

	// 5. Complete: pgbouncer knows authstack_b alone.
	poolHash = configHashOf(t, ns, "auth-pgbouncer")
	finishJob(t, ns, ret, true, "")
	st = waitRotationPhase(t, ns, authv1alpha1.DatabaseRotationComplete)
	if st.Next != nil || st.Current != want {
		t.Fatalf("status after %+v", st)
	}
	if got := userlist(t, ns); !slices.Equal(got, []string{"authstack_b " + pw1}) {
		t.Fatalf("auth file after: %d lines", len(got))
	}
	cond := waitCondition(t, ns, authv1alpha1.ConditionDatabasePasswordRotated, metav1.ConditionTrue, authv1alpha1.ReasonRotated)
	if !strings.Contains(cond.Message, "role authstack_b (generation 1") {
		t.Errorf("message %q", cond.Message)
	}
	rolledOutTo(t, ns, "auth-pgbouncer", poolHash)
	settle(t, op, ns)
	before := op.writes.count()
	for range 10 {
		reconcileNow(t, op, ns)
	}
	if n := op.writes.count() - before; n != 0 {
		t.Errorf("10 reconciles after a rotation sent %d writes: %s", n, op.writes.recent())
	}

	// A lost status (the stack recreated over its kept Secrets) finds the role the pods
	// use from the generation's Secret: nothing moves.
	eventually(t, "status.databasePasswordRotation cleared", func() error {
		s := getStack(t, ns)
		s.Status.DatabasePasswordRotation = nil
		return k8s.Status().Update(ctx, s)
	})
	reconcileNow(t, op, ns)
	if st := getStack(t, ns).Status.DatabasePasswordRotation; st == nil || st.Phase != authv1alpha1.DatabaseRotationComplete || st.Current != want {
		t.Fatalf("status after it was lost: %+v", st)
	}
	if got := userlist(t, ns); !slices.Equal(got, []string{"authstack_b " + pw1}) || !strings.HasPrefix(connURL(), "postgres://authstack_b:"+pw1+"@") {
		t.Errorf("a lost status changed the logins")
	}

	// No password anywhere in the status or the events; one event per phase.
	var raw []byte
	eventually(t, "one event per phase", func() error { // events are recorded asynchronously
		raw, _ = json.Marshal(getStack(t, ns).Status)
		var events eventsv1.EventList
		if err := k8s.List(ctx, &events, client.InNamespace(ns)); err != nil {
			return err
		}
		var phases []string
		for _, e := range events.Items {
			raw = append(raw, e.Note...)
			if strings.HasPrefix(e.Reason, "DatabaseRotation") {
				phases = append(phases, strings.TrimPrefix(e.Reason, "DatabaseRotation"))
			}
		}
		slices.Sort(phases)
		if want := []string{"Complete", "Preparing", "Retiring", "SwitchingPods", "SwitchingPooler"}; !slices.Equal(phases, want) {
			return fmt.Errorf("events %v, want one per phase %v", phases, want)
		}
		return nil
	})
	for _, pw := range []string{pw0, pw1} {
		if strings.Contains(string(raw), pw) {
			t.Errorf("a password is in the status or an event")
		}
	}

	// 6. The next rotation alternates back to authstack, with a new password; a failed
	// step stops it, says so, and keeps the pods where they are.
	updateStack(t, ns, func(s *authv1alpha1.AuthStack) { s.Spec.Database.Managed.PasswordRotation.Generation = 2 })
	st = waitRotationPhase(t, ns, authv1alpha1.DatabaseRotationPreparing)
	if st.Next == nil || st.Next.Role != "authstack" || st.Next.SecretName != "auth-postgres-password-2" {
		t.Fatalf("second rotation %+v", st.Next)
	}
	prep = get(t, ns, "auth-dbrot-2-prepare", &batchv1.Job{})
	if c := prep.Spec.Template.Spec.Containers[0]; !slices.Equal(c.Args, []string{"db-role", "prepare", "authstack", "authstack"}) {
		t.Fatalf("second prepare args %q", c.Args)
	}
	finishJob(t, ns, prep, false, "")
	cond = waitCondition(t, ns, authv1alpha1.ConditionDatabasePasswordRotated, metav1.ConditionFalse, authv1alpha1.ReasonRotationFailed)
	if !strings.Contains(cond.Message, prep.Name) {
		t.Errorf("failure message %q", cond.Message)
	}
	waitCondition(t, ns, authv1alpha1.ConditionDegraded, metav1.ConditionTrue, authv1alpha1.ReasonRotationFailed)
	if got := userlist(t, ns); !slices.Equal(got, []string{"authstack_b " + pw1}) || !strings.HasPrefix(connURL(), "postgres://authstack_b:"+pw1+"@") {
		t.Errorf("a failed step changed the logins")
	}
}
