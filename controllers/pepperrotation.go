package controllers

// Pepper rotation (spec.pepperRotation; controllers/DESIGN.md, "Pepper rotation"). The
// reconciler
//   - generates each new version of a generated pepper once, into its own immutable
//     Secret (never updated or deleted);
//   - rolls it out in two steps, like a Kubernetes encryption-at-rest key: first every
//     pod accepts the new pepper while still hashing with the old one, then, once that
//     roll is complete, every pod hashes with the new one. A one-step roll would let a
//     new pod rehash a user whom an old pod (without the new pepper) then refuses;
//   - counts what each pepper still protects with a Job (`authserver peppers`) every
//     PepperCountInterval while older peppers are mounted, and retires a version below
//     retireBelow once no stored hash uses it (or at once with force).
// What the pods run is read back from the Deployment's pod template annotations, so a
// lost status loses no step.

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	authv1alpha1 "github.com/leanauth/authstack/api/v1alpha1"
	"github.com/leanauth/authstack/authserver/pepperusage"
	"github.com/leanauth/authstack/controllers/resources"
)

// pepperObservation is what one reconcile decided about the peppers (nil fields
// without spec.pepperRotation).
type pepperObservation struct {
	// current is the version the pods hash with; mounts what they get.
	current resources.PepperVersion
	mounts  resources.PepperMounts
	// countJob, when set, is created (once per interval) to count the hashes.
	countJob *batchv1.Job
	status   *authv1alpha1.PepperStatus
	cond     *metav1.Condition
}

// observePepperRotation decides which peppers the pods get and reports the rotation.
func (r *AuthStackReconciler) observePepperRotation(ctx context.Context, stack *authv1alpha1.AuthStack, obs *observation, now time.Time) error {
	rot := stack.Spec.PepperRotation
	// Paused, no pepper is generated and nothing rolls or is counted: status.pepper and
	// PepperRotated stay as they were (pause.go).
	if rot == nil || obs.blocker != nil || paused(stack) {
		return nil
	}
	prev := map[int32]authv1alpha1.PepperVersionStatus{}
	if p := stack.Status.Pepper; p != nil {
		for _, v := range p.Versions {
			prev[v.Version] = v
		}
	}
	versions := resources.PepperVersions(stack)
	desired := versions[len(versions)-1]
	if stack.Spec.Pepper == nil && desired.Version > 1 {
		if b, err := r.ensureGeneratedPepperVersion(ctx, stack, desired.Version, prev[desired.Version].ID != ""); err != nil || b != nil {
			obs.blocker = b
			return err
		}
	}

	// The Deployment says what the pods run: the version they hash with, and whether
	// the template that also accepts the desired one has rolled out everywhere.
	dep := obs.authServer.deployment
	deployed, accepts := desired.Version, false
	var templatePeppers []string // the versions the pod template gives, current first
	if dep != nil {
		a := dep.Spec.Template.Annotations
		deployed = 1
		if v, err := strconv.Atoi(a[resources.AnnotationPepperVersion]); err == nil && v > 0 {
			deployed = int32(v)
		}
		templatePeppers = strings.Split(a[resources.AnnotationPeppers], ",")
		accepts = slices.Contains(templatePeppers, strconv.Itoa(int(desired.Version)))
	}
	// Every pod runs the latest template, terminating ones included (dbrotation.go): a pod
	// of an older template may lack the new pepper, or hash with the old one after a
	// count said it was unused.
	rolled := rolledOut(dep)
	current := deployed
	if deployed >= desired.Version || (accepts && rolled) {
		current = desired.Version
	}
	promoted := current == desired.Version && deployed == desired.Version && rolled

	// The latest count taken since the current version hashes everywhere.
	var count *resources.PepperCount
	if deployed == desired.Version {
		var jobs batchv1.JobList
		sel := client.MatchingLabels(resources.Labels(stack, resources.ComponentPepperCount))
		if err := r.List(ctx, &jobs, client.InNamespace(stack.Namespace), sel); err != nil {
			return fmt.Errorf("listing the pepper count Jobs: %w", err)
		}
		var pods corev1.PodList
		if len(jobs.Items) > 0 {
			if err := r.APIReader.List(ctx, &pods, client.InNamespace(stack.Namespace), sel); err != nil {
				return fmt.Errorf("listing the pepper count pods: %w", err)
			}
		}
		if c, ok := resources.LatestPepperCount(jobs.Items, pods.Items, string(stack.UID), desired.Version); ok {
			count = &c
		}
	}

	st := &authv1alpha1.PepperStatus{CurrentVersion: current}
	po := &obs.pepper
	var inUse, blocked, pending []string
	var inUseHashes, inUseTOTP, blockedHashes, blockedTOTP int64
	for i := len(versions) - 1; i >= 0; i-- {
		v := versions[i]
		vs := authv1alpha1.PepperVersionStatus{Version: v.Version, SecretRef: v.Ref, ID: prev[v.Version].ID, State: authv1alpha1.PepperStateAccepted}
		wantRetired := v.Version < rot.RetireBelow && v.Version < current
		// Retired stays retired. The template the operator wrote says so too: a status read
		// from a cache older than the retirement must not give the pepper back (the
		// retirement's own roll makes promoted false, so it would never be retired again).
		retiredInTemplate := dep != nil && v.Version < deployed && !slices.Contains(templatePeppers, strconv.Itoa(int(v.Version)))
		if wantRetired && (prev[v.Version].State == authv1alpha1.PepperStateRetired || retiredInTemplate) {
			vs.State = authv1alpha1.PepperStateRetired // stays retired: its Secret may be gone
		} else {
			id, b, err := r.pepperID(ctx, stack, v)
			if err != nil || b != nil {
				obs.blocker = b
				return err
			}
			vs.ID = id
		}
		if count != nil {
			vs.PasswordHashes = ptr.To(count.Usage.PasswordHashes[vs.ID])
			vs.TOTPSecrets = ptr.To(count.Usage.TOTPSecrets[vs.ID])
		}
		unused := count != nil && *vs.PasswordHashes == 0 && *vs.TOTPSecrets == 0
		name := "version " + strconv.Itoa(int(v.Version))
		switch {
		case v.Version == current:
			vs.State = authv1alpha1.PepperStateCurrent
			po.current = v
		case vs.State == authv1alpha1.PepperStateRetired:
		case v.Version > current: // staged: accepted everywhere before it hashes
		case wantRetired && promoted && (rot.Force || unused):
			vs.State = authv1alpha1.PepperStateRetired
			r.Recorder.Eventf(stack, nil, corev1.EventTypeNormal, "PepperRetired", "Retire",
				"pepper %s (id %s) is no longer given to the pods; its Secret %q is kept", name, vs.ID, v.Ref.Name)
		case count == nil:
			pending = append(pending, name)
		case unused:
			inUse = append(inUse, name+" (unused)")
		case wantRetired:
			blocked = append(blocked, name)
			blockedHashes += *vs.PasswordHashes
			blockedTOTP += *vs.TOTPSecrets
		default:
			inUse = append(inUse, name)
			inUseHashes += *vs.PasswordHashes
			inUseTOTP += *vs.TOTPSecrets
		}
		switch {
		case vs.State == authv1alpha1.PepperStateAccepted:
			po.mounts.Old = append(po.mounts.Old, v)
		case vs.State == authv1alpha1.PepperStateRetired && vs.ID != "":
			po.mounts.RetiredIDs = append(po.mounts.RetiredIDs, vs.ID)
		}
		st.Versions = append(st.Versions, vs)
	}
	po.mounts.Version = current
	if count != nil {
		st.CountedAt = &count.At
	} else if p := stack.Status.Pepper; p != nil && p.CurrentVersion == current {
		// No count yet in this reconcile's view (the Job's TTL): keep the last one.
		st.CountedAt = p.CountedAt
		for i := range st.Versions {
			if old, ok := prev[st.Versions[i].Version]; ok {
				st.Versions[i].PasswordHashes, st.Versions[i].TOTPSecrets = old.PasswordHashes, old.TOTPSecrets
			}
		}
	}
	po.status = st
	if p := stack.Status.Pepper; p != nil && p.CurrentVersion < current {
		r.Recorder.Eventf(stack, nil, corev1.EventTypeNormal, "PepperPromoted", "Rotate",
			"pepper version %d now hashes on every pod; older ones still verify", current)
	}

	var c metav1.Condition
	switch {
	case current < desired.Version:
		c = condition(authv1alpha1.ConditionPepperRotated, false, authv1alpha1.ReasonRotationInProgress, fmt.Sprintf(
			"giving pepper version %d to every pod before it hashes with it (pods still hash with version %d)", desired.Version, current))
	case len(po.mounts.Old) == 0:
		c = condition(authv1alpha1.ConditionPepperRotated, true, authv1alpha1.ReasonRotated, fmt.Sprintf(
			"pepper version %d hashes; no older pepper is given to the pods", current))
	case len(blocked) > 0:
		c = condition(authv1alpha1.ConditionPepperRotated, false, authv1alpha1.ReasonRetirementBlocked, fmt.Sprintf(
			"retireBelow asks to retire %s, but %d password hashes and %d TOTP secrets still use them: wait for those users to log in, or set force: true (they must then reset their password and enrol TOTP again)",
			strings.Join(blocked, ", "), blockedHashes, blockedTOTP))
	case len(pending) > 0 || !promoted:
		c = condition(authv1alpha1.ConditionPepperRotated, false, authv1alpha1.ReasonCountPending, fmt.Sprintf(
			"waiting for the first count of the stored hashes since version %d hashes everywhere (%s)", current, strings.Join(pending, ", ")))
	case inUseHashes+inUseTOTP > 0:
		c = condition(authv1alpha1.ConditionPepperRotated, false, authv1alpha1.ReasonRotationInProgress, fmt.Sprintf(
			"%d password hashes and %d TOTP secrets still use %s; each login rehashes with version %d", inUseHashes, inUseTOTP, strings.Join(inUse, ", "), current))
	default:
		c = condition(authv1alpha1.ConditionPepperRotated, false, authv1alpha1.ReasonReadyToRetire, fmt.Sprintf(
			"no stored hash uses %s: set retireBelow: %d to stop giving them to the pods", strings.Join(inUse, ", "), current))
	}
	if dep != nil && ptr.Deref(dep.Status.TerminatingReplicas, 0) > 0 && c.Status != metav1.ConditionTrue {
		c.Message += fmt.Sprintf("; %d pods of an older template are still terminating", *dep.Status.TerminatingReplicas)
	}
	po.cond = &c

	// Count while older peppers are mounted and the current one hashes everywhere.
	if promoted && len(po.mounts.Old) > 0 {
		po.countJob = resources.PepperCountJob(stack, resources.DefaultBackupSources(stack, r.inputs(stack, obs)), current, now)
	}
	return nil
}

// pepperRotationRecheck: while a rotation waits for counts, look again at the next interval.
func pepperRotationRecheck(obs *observation) time.Duration {
	if obs.pepper.countJob != nil {
		return resources.PepperCountInterval
	}
	return 0
}

// pepperID reads a version's pepper and returns its id; a missing or invalid one is a
// blocker naming spec.pepperRotation.
func (r *AuthStackReconciler) pepperID(ctx context.Context, stack *authv1alpha1.AuthStack, v resources.PepperVersion) (string, *blocker, error) {
	field := "spec.pepperRotation"
	if v.Version == 1 {
		field = "spec.pepper"
	}
	var s corev1.Secret
	err := r.APIReader.Get(ctx, types.NamespacedName{Namespace: stack.Namespace, Name: v.Ref.Name}, &s)
	if apierrors.IsNotFound(err) {
		return "", &blocker{field, authv1alpha1.ReasonSecretNotFound, fmt.Sprintf(
			"Secret %q of pepper version %d does not exist: restore it (hashes made with it need it until it is retired)", v.Ref.Name, v.Version)}, nil
	}
	if err != nil {
		return "", nil, fmt.Errorf("reading the Secret %q of pepper version %d: %w", v.Ref.Name, v.Version, err)
	}
	val, ok := s.Data[v.Ref.Key]
	if !ok || !resources.ValidPepper(val) {
		return "", &blocker{field, authv1alpha1.ReasonInvalidPepper, fmt.Sprintf(
			"the pepper version %d in Secret %q key %q must be %d bytes written as %d hex characters", v.Version, v.Ref.Name, v.Ref.Key, resources.PepperBytes, 2*resources.PepperBytes)}, nil
	}
	key, _ := resources.DecodePepper(val)
	return pepperusage.ID(key), nil, nil
}

// ensureGeneratedPepperVersion creates a generated version's Secret once. A version the
// status already knew (known) whose Secret is gone is never generated again.
func (r *AuthStackReconciler) ensureGeneratedPepperVersion(ctx context.Context, stack *authv1alpha1.AuthStack, version int32, known bool) (*blocker, error) {
	name := resources.GeneratedPepperSecretName(stack, version)
	err := r.APIReader.Get(ctx, types.NamespacedName{Namespace: stack.Namespace, Name: name}, &corev1.Secret{})
	if err == nil {
		return nil, nil
	}
	if !apierrors.IsNotFound(err) {
		return nil, fmt.Errorf("reading the pepper Secret %q: %w", name, err)
	}
	if known {
		return &blocker{"spec.pepperRotation", authv1alpha1.ReasonPepperMissing, fmt.Sprintf(
			"the pepper Secret %q of version %d was deleted; restore it from a backup. The operator does not generate it again: hashes made with it would no longer verify", name, version)}, nil
	}
	pepper, err := resources.NewPepper()
	if err != nil {
		return nil, err
	}
	if err := r.Create(ctx, resources.GeneratedPepperSecret(stack, version, pepper)); err != nil {
		if apierrors.IsAlreadyExists(err) {
			return nil, nil
		}
		return nil, fmt.Errorf("creating the pepper Secret %q: %w", name, err)
	}
	r.Recorder.Eventf(stack, nil, corev1.EventTypeNormal, "PepperGenerated", "Generate",
		"generated pepper version %d into Secret %q; it is kept when the AuthStack is deleted", version, name)
	return nil, nil
}

// pepperStatus writes status.pepper and PepperRotated (which never decides Ready).
func pepperStatus(stack *authv1alpha1.AuthStack, obs *observation, st *authv1alpha1.AuthStackStatus) {
	if stack.Spec.PepperRotation == nil {
		st.Pepper = nil
		meta.RemoveStatusCondition(&st.Conditions, authv1alpha1.ConditionPepperRotated)
		return
	}
	if obs.pepper.status != nil {
		st.Pepper = obs.pepper.status
		st.PepperSecretName = obs.pepper.current.Ref.Name
	}
	if c := obs.pepper.cond; c != nil {
		setCondition(st, stack.Generation, *c)
	}
}

// pepperObjects renders the count Job, when one is due.
func pepperObjects(obs *observation) []unit {
	if obs.pepper.countJob == nil {
		return nil
	}
	return []unit{{field: "spec.pepperRotation", create: []client.Object{obs.pepper.countJob}}}
}
