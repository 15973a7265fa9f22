package controllers

// The password rotation of the managed PostgreSQL (spec.database.managed.passwordRotation;
// controllers/DESIGN.md, "Database password rotation"). PostgreSQL has one password per
// role, so the pods alternate between two login roles (authstack and authstack_b, the
// second acting as the first): a rotation never changes the password of the role in
// use. Raising the generation walks these phases, one reconcile at a time, each only
// once the previous one is done:
//
//	Preparing        a Job (authserver db-role prepare) gives the other role a new
//	                 password, logging in with the current one, and checks it logs in
//	SwitchingPooler  pgbouncer rolls to an auth file with both roles
//	SwitchingPods    the authserver pods roll to the new role (pgbouncer still has both)
//	Retiring         a Job (db-role retire) removes the old role's password, once no
//	                 pod of an older template is left, terminating ones included
//	Complete         pgbouncer rolls once more, to the new role alone
//
// At every moment, whichever pgbouncer pod a pod of either template reaches accepts its
// role, and PostgreSQL accepts every role a pod can use. The phase lives in
// status.databasePasswordRotation (read uncached at the start of each reconcile).

import (
	"context"
	"fmt"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	authv1alpha1 "github.com/leanauth/authstack/api/v1alpha1"
	"github.com/leanauth/authstack/controllers/resources"
)

// dbRotationObservation is what one reconcile decided about the rotation (all nil
// without spec.database.managed.passwordRotation). It holds passwords: never log it.
type dbRotationObservation struct {
	status *authv1alpha1.DatabasePasswordRotationStatus
	cond   *metav1.Condition
	// job, when set, is the step's Job, created unless it exists.
	job *batchv1.Job
}

// dbRotationEnabled says whether the stack's managed database has a rotation spec.
func dbRotationEnabled(stack *authv1alpha1.AuthStack) bool {
	m := stack.Spec.Database.Managed
	return m != nil && m.PasswordRotation != nil
}

// observeDatabaseRotation advances the rotation as far as what is observed allows and
// sets the credentials the data tier renders: obs.dataTier.db is the pods' login,
// obs.dataTier.poolerAlso the other login pgbouncer accepts meanwhile.
func (r *AuthStackReconciler) observeDatabaseRotation(ctx context.Context, stack *authv1alpha1.AuthStack, obs *observation) error {
	dt := &obs.dataTier
	// Paused or blocked, nothing moves; status and condition stay as they were.
	if !dbRotationEnabled(stack) || obs.blocker != nil || paused(stack) || !dt.read {
		return nil
	}
	want := stack.Spec.Database.Managed.PasswordRotation.Generation
	st := stack.Status.DatabasePasswordRotation.DeepCopy()
	if st == nil {
		var err error
		if st, err = r.adoptDatabaseRotation(ctx, stack, want); err != nil {
			return err
		}
	}
	from := st.Phase
	if st.Phase == authv1alpha1.DatabaseRotationComplete && st.Current.Generation < want {
		st.Phase = authv1alpha1.DatabaseRotationPreparing
		st.Next = &authv1alpha1.DatabaseCredentialStatus{Generation: want, Role: resources.OtherDatabaseRole(st.Current.Role),
			SecretName: resources.DatabasePasswordSecretName(stack, want)}
	}
	current, b, err := r.rotationPassword(ctx, stack, st.Current, false)
	if err != nil || b != nil {
		obs.blocker = b
		return err
	}
	var next resources.DatabaseURL
	if st.Next != nil {
		next, b, err = r.rotationPassword(ctx, stack, *st.Next, st.Phase == authv1alpha1.DatabaseRotationPreparing)
		if err != nil || b != nil {
			obs.blocker = b
			return err
		}
	}
	var jobs batchv1.JobList
	if err := r.List(ctx, &jobs, client.InNamespace(stack.Namespace), client.MatchingLabels(resources.SelectorLabels(stack, resources.ComponentDBRotate))); err != nil {
		return fmt.Errorf("listing the database rotation Jobs: %w", err)
	}
	ro := &obs.dbRotation
	ro.status = st
	var failed string
	for waiting := false; !waiting; {
		// The credentials of this phase: the pods', and the other one pgbouncer accepts.
		pods, podsGen, also := current, st.Current.Generation, []resources.DatabaseURL{}
		switch st.Phase {
		case authv1alpha1.DatabaseRotationSwitchingPooler:
			also = append(also, next)
		case authv1alpha1.DatabaseRotationSwitchingPods, authv1alpha1.DatabaseRotationRetiring:
			pods, podsGen, also = next, st.Next.Generation, append(also, current)
		}
		dt.db.User, dt.db.Password, dt.poolerAlso, dt.rotatedLogin = pods.User, pods.Password, also, podsGen > 0
		ro.job = nil

		switch st.Phase {
		case authv1alpha1.DatabaseRotationPreparing, authv1alpha1.DatabaseRotationRetiring:
			step, role, ref := resources.DBRotatePrepare, st.Next.Role, &authv1alpha1.SecretKeyRef{Name: st.Next.SecretName, Key: resources.PostgresPasswordKey}
			if st.Phase == authv1alpha1.DatabaseRotationRetiring {
				step, role, ref = resources.DBRotateRetire, st.Current.Role, nil
			}
			ro.job = resources.DBRotateJob(stack, r.inputs(stack, obs), st.Next.Generation, step, role, ref)
			done, jobFailed := jobOutcome(jobs.Items, ro.job.Name)
			switch {
			case jobFailed:
				failed, waiting = ro.job.Name, true
			case !done:
				waiting = true
			case st.Phase == authv1alpha1.DatabaseRotationPreparing:
				st.Phase = authv1alpha1.DatabaseRotationSwitchingPooler
			default:
				st.Phase, st.Current, st.Next = authv1alpha1.DatabaseRotationComplete, *st.Next, nil
				current = next
			}
		case authv1alpha1.DatabaseRotationSwitchingPooler:
			// Rolled out when every pgbouncer pod runs the template with both roles.
			if resources.PoolerEnabled(stack) && !deploymentRolledOut(dt.pooler, poolerConfigHash(stack, dt)) {
				waiting = true
			} else {
				st.Phase = authv1alpha1.DatabaseRotationSwitchingPods
			}
		case authv1alpha1.DatabaseRotationSwitchingPods:
			if !deploymentRolledOut(obs.authServer.deployment, r.inputs(stack, obs).ConfigHash) {
				waiting = true
			} else {
				st.Phase = authv1alpha1.DatabaseRotationRetiring
			}
		default: // Complete
			waiting = true
		}
	}

	if st.Phase != from {
		r.Recorder.Eventf(stack, nil, corev1.EventTypeNormal, "DatabaseRotation"+st.Phase, "Rotate", "%s", dbRotationMessage(st))
	}
	var c metav1.Condition
	switch {
	case failed != "":
		c = condition(authv1alpha1.ConditionDatabasePasswordRotated, false, authv1alpha1.ReasonRotationFailed, fmt.Sprintf(
			"the Job %q failed (its pod's log says why); the pods keep using the roles they have. Delete the Job to try again", failed))
	case st.Phase == authv1alpha1.DatabaseRotationComplete:
		c = condition(authv1alpha1.ConditionDatabasePasswordRotated, true, authv1alpha1.ReasonRotated, dbRotationMessage(st))
	default:
		c = condition(authv1alpha1.ConditionDatabasePasswordRotated, false, authv1alpha1.ReasonRotationInProgress, dbRotationMessage(st))
	}
	ro.cond = &c
	return nil
}

// adoptDatabaseRotation is the starting state without a status: the first password, or,
// when the Secret of the spec's generation exists (a stack recreated over its kept
// volume and Secrets), that generation's role as completed: the operator does not
// connect to the database to learn which role logs in, and that role is the one the
// last rotation left (one deleted mid-rotation may need its Job run again by hand).
func (r *AuthStackReconciler) adoptDatabaseRotation(ctx context.Context, stack *authv1alpha1.AuthStack, want int32) (*authv1alpha1.DatabasePasswordRotationStatus, error) {
	st := &authv1alpha1.DatabasePasswordRotationStatus{Phase: authv1alpha1.DatabaseRotationComplete, Current: authv1alpha1.DatabaseCredentialStatus{
		Role: resources.ManagedDatabaseUser, SecretName: resources.DatabasePasswordSecretName(stack, 0)}}
	name := resources.DatabasePasswordSecretName(stack, want)
	var s metav1.PartialObjectMetadata
	s.SetGroupVersionKind(corev1.SchemeGroupVersion.WithKind("Secret"))
	err := r.APIReader.Get(ctx, types.NamespacedName{Namespace: stack.Namespace, Name: name}, &s)
	if apierrors.IsNotFound(err) {
		return st, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading Secret %q: %w", name, err)
	}
	if role := s.Annotations[resources.AnnotationDatabaseRole]; role == resources.ManagedDatabaseUser || role == resources.ManagedDatabaseSecondUser {
		st.Current = authv1alpha1.DatabaseCredentialStatus{Generation: want, Role: role, SecretName: name}
	}
	return st, nil
}

// dbRotationMessage says where the rotation is, naming roles and Secrets, never a password.
func dbRotationMessage(st *authv1alpha1.DatabasePasswordRotationStatus) string {
	cur := st.Current
	if st.Next == nil {
		return fmt.Sprintf("the pods and pgbouncer log in as role %s (generation %d, password in Secret %q)", cur.Role, cur.Generation, cur.SecretName)
	}
	next := st.Next
	switch st.Phase {
	case authv1alpha1.DatabaseRotationPreparing:
		return fmt.Sprintf("rotating to generation %d: giving role %s a new password (Secret %q); the pods log in as role %s", next.Generation, next.Role, next.SecretName, cur.Role)
	case authv1alpha1.DatabaseRotationSwitchingPooler:
		return fmt.Sprintf("rotating to generation %d: role %s logs in with its new password; pgbouncer rolls to accept roles %s and %s", next.Generation, next.Role, cur.Role, next.Role)
	case authv1alpha1.DatabaseRotationSwitchingPods:
		return fmt.Sprintf("rotating to generation %d: the authserver pods roll from role %s to role %s", next.Generation, cur.Role, next.Role)
	default:
		return fmt.Sprintf("rotating to generation %d: every pod logs in as role %s; removing the password of role %s", next.Generation, next.Role, cur.Role)
	}
}

// rotationPassword reads a credential's password from its Secret. A missing Secret is
// generated when generate is set (the next credential before its prepare Job ran),
// and a blocker otherwise: the database holds that password, a new one would not log in.
func (r *AuthStackReconciler) rotationPassword(ctx context.Context, stack *authv1alpha1.AuthStack, c authv1alpha1.DatabaseCredentialStatus, generate bool) (resources.DatabaseURL, *blocker, error) {
	login := resources.ManagedDatabaseURL(stack, "")
	login.User = c.Role
	if generate {
		if err := r.ensureGeneratedSecret(ctx, stack, c.SecretName, func() (*corev1.Secret, error) {
			pw, err := resources.NewPostgresPassword()
			return resources.DatabasePasswordSecret(stack, c.Generation, c.Role, pw), err
		}); err != nil {
			return login, nil, err
		}
	}
	var s corev1.Secret
	err := r.APIReader.Get(ctx, types.NamespacedName{Namespace: stack.Namespace, Name: c.SecretName}, &s)
	if apierrors.IsNotFound(err) {
		return login, &blocker{"spec.database.managed.passwordRotation", authv1alpha1.ReasonSecretNotFound, fmt.Sprintf(
			"the Secret %q with the password of role %s (generation %d) is gone; restore it (the database holds that password)", c.SecretName, c.Role, c.Generation)}, nil
	}
	if err != nil {
		return login, nil, fmt.Errorf("reading Secret %q: %w", c.SecretName, err)
	}
	pw := s.Data[resources.PostgresPasswordKey]
	if len(pw) == 0 {
		return login, &blocker{"spec.database.managed.passwordRotation", authv1alpha1.ReasonSecretKeyMissing, fmt.Sprintf(
			"Secret %q has no key %q (the password of role %s)", c.SecretName, resources.PostgresPasswordKey, c.Role)}, nil
	}
	login.Password = string(pw)
	return login, nil, nil
}

// jobOutcome says whether the Job named name succeeded or failed for good.
func jobOutcome(jobs []batchv1.Job, name string) (succeeded, failed bool) {
	for _, j := range jobs {
		if j.Name != name {
			continue
		}
		for _, c := range j.Status.Conditions {
			if c.Status == corev1.ConditionTrue {
				succeeded = succeeded || c.Type == batchv1.JobComplete
				failed = failed || c.Type == batchv1.JobFailed
			}
		}
	}
	return succeeded, failed
}

// deploymentRolledOut says whether every pod of d runs the template whose config hash
// is hash (rolledOut): a pod of an older template may still use the old role.
func deploymentRolledOut(d *appsv1.Deployment, hash string) bool {
	return d != nil && d.Spec.Template.Annotations[resources.AnnotationConfigHash] == hash && rolledOut(d)
}

// rolledOut says whether every pod of d runs its latest template and is available, and
// no surge pod is left (the HPA's count, not the operator's, sets spec.replicas), with
// none terminating: status.replicas no longer counts a pod of an older template that
// still serves until its grace period ends.
func rolledOut(d *appsv1.Deployment) bool {
	return d != nil && d.Status.ObservedGeneration >= d.Generation && ptr.Deref(d.Status.TerminatingReplicas, 0) == 0 &&
		d.Status.UpdatedReplicas == d.Status.Replicas && d.Status.AvailableReplicas == d.Status.Replicas &&
		d.Status.Replicas == ptr.Deref(d.Spec.Replicas, 1)
}

// dbRotationStatus writes status.databasePasswordRotation and DatabasePasswordRotated
// (which never decides Ready). Without an observation (paused, blocked) both stay.
func dbRotationStatus(stack *authv1alpha1.AuthStack, obs *observation, st *authv1alpha1.AuthStackStatus) *metav1.Condition {
	if !dbRotationEnabled(stack) {
		st.DatabasePasswordRotation = nil
		meta.RemoveStatusCondition(&st.Conditions, authv1alpha1.ConditionDatabasePasswordRotated)
		return nil
	}
	if s := obs.dbRotation.status; s != nil {
		st.DatabasePasswordRotation = s
	}
	if c := obs.dbRotation.cond; c != nil {
		setCondition(st, stack.Generation, *c)
	}
	return obs.dbRotation.cond
}

// dbRotationObjects renders the step's Job.
func dbRotationObjects(obs *observation) []unit {
	if obs.dbRotation.job == nil {
		return nil
	}
	return []unit{{field: "spec.database.managed.passwordRotation", create: []client.Object{obs.dbRotation.job}}}
}
