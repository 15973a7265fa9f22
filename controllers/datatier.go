package controllers

// The data tier (pgbouncer, Redis, a managed PostgreSQL, NetworkPolicies): what the
// reconciler observes, renders and reports for it. See docs/data-tier.md.

import (
	"context"
	"fmt"
	"net/url"
	"slices"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	authv1alpha1 "github.com/leanauth/authstack/api/v1alpha1"
	"github.com/leanauth/authstack/controllers/resources"
)

// +kubebuilder:rbac:groups="",resources=secrets,verbs=get;list;watch;create;patch;delete
// +kubebuilder:rbac:groups="",resources=configmaps,verbs=get;list;watch;create;patch;delete
// +kubebuilder:rbac:groups="",resources=persistentvolumeclaims,verbs=get;patch
// +kubebuilder:rbac:groups="",resources=services,verbs=get;list;watch;create;patch;delete
// +kubebuilder:rbac:groups=apps,resources=deployments,verbs=get;list;watch;create;patch;delete
// +kubebuilder:rbac:groups=apps,resources=statefulsets,verbs=get;list;watch;create;patch;delete
// +kubebuilder:rbac:groups=batch,resources=jobs,verbs=get;list;watch;create;patch;delete
// +kubebuilder:rbac:groups=policy,resources=poddisruptionbudgets,verbs=get;list;watch;create;patch;delete
// +kubebuilder:rbac:groups=networking.k8s.io,resources=networkpolicies,verbs=get;list;watch;create;patch;delete

// dataTierObservation is what one reconcile learned about the data tier. It holds
// passwords: never log it.
type dataTierObservation struct {
	// read says the Secret values were read (no earlier blocker).
	read bool
	// db is the database: parsed from the external URL Secret, or the managed one.
	db resources.DatabaseURL
	// dbProblem says why the database URL is unusable ("" when it is fine).
	dbProblem string
	// redisPassword is the managed Redis password.
	redisPassword string
	// redisProblem says why the external Redis URL is unusable.
	redisProblem string
	// redisPort is the external Redis's port.
	redisPort int
	// sentryPort is the Sentry DSN's port (spec.observability.errorReporting).
	sentryPort int
	// poolerAlso are further logins pgbouncer accepts during a password rotation (dbrotation.go).
	poolerAlso []resources.DatabaseURL
	// rotatedLogin says the pods log in with a rotated credential, not the first one.
	rotatedLogin bool
	// cnpg is the CloudNativePG Cluster and its Secret (cnpg.go).
	cnpg cnpgObservation

	pooler   *appsv1.Deployment
	redis    *appsv1.StatefulSet
	postgres *appsv1.StatefulSet
	// bootstrapJobs are the Redis Cluster bootstrap Jobs of the stack, current and superseded.
	bootstrapJobs []batchv1.Job
	// redisClaims and postgresClaims are the volume claims of a StatefulSet whose
	// spec asks for another size than its (immutable) claim template: read to grow them.
	redisClaims, postgresClaims []corev1.PersistentVolumeClaim
}

// ensureDataTierSecrets creates the generated password Secrets of a managed Redis and
// PostgreSQL once. It never updates them. A deleted Redis password is generated again
// (Redis data does not depend on it; the pods roll to the new one). A deleted
// PostgreSQL password is not, once a volume exists: the role keeps the old one.
func (r *AuthStackReconciler) ensureDataTierSecrets(ctx context.Context, stack *authv1alpha1.AuthStack) (*blocker, error) {
	if resources.ManagedRedis(stack) {
		if err := r.ensureGeneratedSecret(ctx, stack, resources.RedisPasswordSecretName(stack), func() (*corev1.Secret, error) {
			pw, err := resources.NewRedisPassword()
			return resources.RedisPasswordSecret(stack, pw), err
		}); err != nil {
			return nil, err
		}
	}
	if resources.ManagedDatabase(stack) {
		name := resources.PostgresPasswordSecretName(stack)
		exists, err := r.secretExists(ctx, stack.Namespace, name)
		if err != nil {
			return nil, err
		}
		if !exists {
			pvc := "data-" + resources.PostgresName(stack) + "-0"
			err := r.APIReader.Get(ctx, types.NamespacedName{Namespace: stack.Namespace, Name: pvc},
				&metav1.PartialObjectMetadata{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "PersistentVolumeClaim"}})
			switch {
			case err == nil:
				return &blocker{"spec.database.managed", authv1alpha1.ReasonSecretNotFound, fmt.Sprintf(
					"the password Secret %q of the managed PostgreSQL is gone but its volume %q is not; restore the Secret (the database keeps the password it was created with)", name, pvc)}, nil
			case !apierrors.IsNotFound(err):
				return nil, fmt.Errorf("reading PersistentVolumeClaim %q: %w", pvc, err)
			}
			if err := r.ensureGeneratedSecret(ctx, stack, name, func() (*corev1.Secret, error) {
				pw, err := resources.NewPostgresPassword()
				return resources.PostgresPasswordSecret(stack, pw), err
			}); err != nil {
				return nil, err
			}
		}
	}
	return nil, nil
}

func (r *AuthStackReconciler) secretExists(ctx context.Context, ns, name string) (bool, error) {
	err := r.APIReader.Get(ctx, types.NamespacedName{Namespace: ns, Name: name},
		&metav1.PartialObjectMetadata{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Secret"}})
	if apierrors.IsNotFound(err) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("reading Secret %q: %w", name, err)
	}
	return true, nil
}

// ensureGeneratedSecret creates the Secret build renders unless it exists.
func (r *AuthStackReconciler) ensureGeneratedSecret(ctx context.Context, stack *authv1alpha1.AuthStack, name string, build func() (*corev1.Secret, error)) error {
	exists, err := r.secretExists(ctx, stack.Namespace, name)
	if err != nil || exists {
		return err
	}
	secret, err := build()
	if err != nil {
		return fmt.Errorf("generating Secret %q: %w", name, err)
	}
	if err := r.Create(ctx, secret); err != nil {
		if apierrors.IsAlreadyExists(err) {
			return nil
		}
		return fmt.Errorf("creating Secret %q: %w", name, err)
	}
	r.Recorder.Eventf(stack, nil, corev1.EventTypeNormal, "SecretGenerated", "Generate",
		"generated Secret %q; it is kept when the AuthStack is deleted", name)
	return nil
}

// observeDataTier parses the database and Redis settings from the Secret values read
// (a database URL the pooler cannot use blocks rendering, like a missing Secret) and
// reads the data tier's workloads.
func (r *AuthStackReconciler) observeDataTier(ctx context.Context, stack *authv1alpha1.AuthStack, obs *observation, values map[authv1alpha1.SecretKeyRef][]byte) error {
	dt := &obs.dataTier
	if resources.CloudNativePG(stack) != nil {
		if err := r.observeCloudNativePG(ctx, stack, dt); err != nil {
			return err
		}
	}
	if values != nil {
		dt.read = true
		if resources.ManagedDatabase(stack) {
			dt.db = resources.ManagedDatabaseURL(stack, string(values[resources.PostgresPasswordRef(stack)]))
		} else if ref := stack.Spec.Database.URLSecretRef; ref != nil {
			db, err := resources.ParseDatabaseURL(string(values[*ref]))
			if err != nil {
				// The parser's errors never quote the URL.
				dt.dbProblem = fmt.Sprintf("Secret %q key %q named by spec.database.urlSecretRef: %v", ref.Name, ref.Key, err)
			}
			dt.db = db
		}
		if resources.ManagedRedis(stack) {
			dt.redisPassword = string(values[resources.RedisPasswordRef(stack)])
		} else if ref := stack.Spec.Redis.URLSecretRef; ref != nil {
			dt.redisPort = resources.ExternalRedisPort(string(values[*ref]))
			u, err := url.Parse(string(values[*ref]))
			if err != nil || (u.Scheme != "redis" && u.Scheme != "rediss") || u.Hostname() == "" {
				dt.redisProblem = fmt.Sprintf("Secret %q key %q named by spec.redis.urlSecretRef is not a redis:// or rediss:// URL with a host", ref.Name, ref.Key)
			}
		}
		if r := stack.Spec.Observability.ErrorReporting; r != nil {
			dt.sentryPort = resources.URLPort(string(values[r.DSNSecretRef]))
		}
		if dt.dbProblem != "" && resources.PoolerEnabled(stack) && obs.blocker == nil {
			obs.blocker = &blocker{"spec.database.urlSecretRef", authv1alpha1.ReasonInvalidURL, dt.dbProblem}
		}
	}
	if resources.PoolerEnabled(stack) {
		if err := getIfExists(ctx, r, stack, resources.PgBouncerName(stack), &appsv1.Deployment{}, &dt.pooler); err != nil {
			return err
		}
	}
	if resources.ManagedRedis(stack) {
		if err := getIfExists(ctx, r, stack, resources.RedisName(stack), &appsv1.StatefulSet{}, &dt.redis); err != nil {
			return err
		}
	}
	if resources.ManagedRedis(stack) {
		var jobs batchv1.JobList
		if err := r.List(ctx, &jobs, client.InNamespace(stack.Namespace), client.MatchingLabels(resources.SelectorLabels(stack, resources.ComponentRedisBootstrap))); err != nil {
			return fmt.Errorf("listing the Redis bootstrap Jobs: %w", err)
		}
		dt.bootstrapJobs = jobs.Items
		claims, err := r.claimsToGrow(ctx, dt.redis, stack.Spec.Redis.Storage)
		if err != nil {
			return err
		}
		dt.redisClaims = claims
	}
	if resources.ManagedDatabase(stack) {
		if err := getIfExists(ctx, r, stack, resources.PostgresName(stack), &appsv1.StatefulSet{}, &dt.postgres); err != nil {
			return err
		}
		claims, err := r.claimsToGrow(ctx, dt.postgres, stack.Spec.Database.Managed.Storage)
		if err != nil {
			return err
		}
		dt.postgresClaims = claims
	}
	return nil
}

// claimsToGrow reads the volume claims of sts when the spec asks for another size than
// its claim template holds (read uncached, by name). The template is immutable, so once
// a stack has grown its storage this costs one GET per claim on every reconcile (no
// write: the claims already have the size); a stack that never grew reads none.
func (r *AuthStackReconciler) claimsToGrow(ctx context.Context, sts *appsv1.StatefulSet, storage authv1alpha1.StorageSpec) ([]corev1.PersistentVolumeClaim, error) {
	if sts == nil {
		return nil, nil
	}
	want, have := resources.StorageSize(storage), claimTemplateSize(sts)
	if have.Cmp(want) == 0 {
		return nil, nil
	}
	var claims []corev1.PersistentVolumeClaim
	for i := int32(0); i < ptr.Deref(sts.Spec.Replicas, 1); i++ {
		name := resources.StorageClaimName(sts.Name, i)
		pvc := corev1.PersistentVolumeClaim{}
		err := r.APIReader.Get(ctx, types.NamespacedName{Namespace: sts.Namespace, Name: name}, &pvc)
		if apierrors.IsNotFound(err) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("reading PersistentVolumeClaim %q: %w", name, err)
		}
		claims = append(claims, pvc)
	}
	return claims, nil
}

// claimTemplateSize is the size in the StatefulSet's (immutable) data claim template
// (zero without one).
func claimTemplateSize(sts *appsv1.StatefulSet) resource.Quantity {
	if sts == nil {
		return resource.Quantity{}
	}
	for _, t := range sts.Spec.VolumeClaimTemplates {
		if t.Name == resources.DataVolumeName {
			return t.Spec.Resources.Requests[corev1.ResourceStorage]
		}
	}
	return resource.Quantity{}
}

// grownStorage adapts a rendered StatefulSet to the live one: volumeClaimTemplates are
// immutable, so the template keeps the live size, and each claim smaller than the spec
// asks is grown by patching it (the storage class must allow volume expansion; a
// shrink is refused by the CRD). It returns the claims to apply after the StatefulSet.
func grownStorage(sts, live *appsv1.StatefulSet, claims []corev1.PersistentVolumeClaim) []client.Object {
	have := claimTemplateSize(live)
	if live == nil || have.IsZero() {
		return nil
	}
	want := sts.Spec.VolumeClaimTemplates[0].Spec.Resources.Requests[corev1.ResourceStorage]
	sts.Spec.VolumeClaimTemplates[0].Spec.Resources.Requests[corev1.ResourceStorage] = have
	var grow []client.Object
	for _, c := range claims {
		if have := c.Spec.Resources.Requests[corev1.ResourceStorage]; have.Cmp(want) < 0 {
			grow = append(grow, &corev1.PersistentVolumeClaim{
				TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "PersistentVolumeClaim"},
				ObjectMeta: metav1.ObjectMeta{Name: c.Name, Namespace: c.Namespace},
				Spec: corev1.PersistentVolumeClaimSpec{Resources: corev1.VolumeResourceRequirements{
					Requests: corev1.ResourceList{corev1.ResourceStorage: want},
				}},
			})
		}
	}
	return grow
}

// componentConditions maps a child's component label to the condition that reports it.
var componentConditions = map[string]string{
	resources.ComponentAuthServer:     authv1alpha1.ConditionAuthServerAvailable,
	resources.ComponentPgBouncer:      authv1alpha1.ConditionPoolerReady,
	resources.ComponentRedis:          authv1alpha1.ConditionRedisReady,
	resources.ComponentRedisBootstrap: authv1alpha1.ConditionRedisReady,
	resources.ComponentPostgres:       authv1alpha1.ConditionDatabaseReady,
}

// dataTierObjects renders the data tier's units: pgbouncer, Redis, the managed
// PostgreSQL, and each NetworkPolicy on its own (a refused policy is reported on the
// condition of the component it protects and stops nothing else). It is pure.
func dataTierObjects(stack *authv1alpha1.AuthStack, obs *observation, in resources.Inputs) []unit {
	dt := obs.dataTier
	pooler := unit{condition: authv1alpha1.ConditionPoolerReady, field: "spec.pooler"}
	switch {
	case resources.PoolerEnabled(stack) && cnpgHeld(stack, obs) != "":
		// No database to point at yet: pgbouncer stays as it is (cnpg.go).
	case resources.PoolerEnabled(stack):
		cfg := resources.PgBouncerConfigSecret(stack, dt.db, dt.poolerAlso...)
		pin := in // a copy: the hash is this workload's alone
		pin.PoolerConfigHash = poolerConfigHash(stack, &dt)
		pooler.desired = []client.Object{cfg, resources.PgBouncerService(stack), resources.PgBouncerDeployment(stack, pin), resources.PgBouncerPDB(stack)}
	default:
		name := resources.PgBouncerName(stack)
		pooler.absent = []client.Object{named(stack, &appsv1.Deployment{}, name), named(stack, &corev1.Service{}, name),
			named(stack, &policyv1.PodDisruptionBudget{}, name), metaOnly(stack, "Secret", resources.PgBouncerConfigSecretName(stack))}
	}

	redis := unit{condition: authv1alpha1.ConditionRedisReady, field: "spec.redis"}
	redisName := resources.RedisName(stack)
	if resources.ManagedRedis(stack) {
		rin := in
		rin.RedisConfigHash = resources.RedisConfigHash(stack, dt.redisPassword)
		sts := resources.RedisStatefulSet(stack, rin)
		grow := grownStorage(sts, dt.redis, dt.redisClaims)
		redis.desired = append([]client.Object{resources.RedisConfigMap(stack), resources.RedisAuthSecret(stack, dt.redisPassword),
			resources.RedisService(stack), sts, resources.RedisPDB(stack)}, grow...)
		job := resources.RedisBootstrapJob(stack, rin)
		if job != nil {
			redis.create = []client.Object{job}
		}
		redis.absent = supersededJobs(stack, dt.bootstrapJobs, job)
	} else {
		// The volumes and the password Secret stay (the data outlives the switch).
		redis.absent = []client.Object{named(stack, &appsv1.StatefulSet{}, redisName), named(stack, &corev1.Service{}, redisName),
			named(stack, &policyv1.PodDisruptionBudget{}, redisName), metaOnly(stack, "ConfigMap", redisName),
			metaOnly(stack, "Secret", resources.RedisAuthSecretName(stack))}
	}

	database := unit{condition: authv1alpha1.ConditionDatabaseReady, field: "spec.database.managed"}
	pgName := resources.PostgresName(stack)
	if sts := resources.PostgresStatefulSet(stack); sts != nil {
		grow := grownStorage(sts, dt.postgres, dt.postgresClaims)
		database.desired = append([]client.Object{resources.PostgresService(stack), sts}, grow...)
	} else {
		database.absent = []client.Object{named(stack, &appsv1.StatefulSet{}, pgName), named(stack, &corev1.Service{}, pgName)}
	}

	units := []unit{pooler, redis, database}
	ports := resources.NetworkPolicyPorts{Database: dt.db.Port, Redis: dt.redisPort, ErrorReporting: dt.sentryPort}
	for _, np := range resources.NetworkPolicies(stack, ports) {
		units = append(units, unit{condition: componentConditions[np.Labels[resources.LabelComponent]],
			field: "spec.networkPolicy", desired: []client.Object{np}})
	}
	noPolicies := unit{field: "spec.networkPolicy"}
	for _, name := range resources.AbsentNetworkPolicies(stack, ports) {
		noPolicies.absent = append(noPolicies.absent, named(stack, &networkingv1.NetworkPolicy{}, name))
	}
	return append(units, noPolicies)
}

// poolerConfigHash is the hash of the pgbouncer config Secret dataTierObjects renders.
func poolerConfigHash(stack *authv1alpha1.AuthStack, dt *dataTierObservation) string {
	return resources.SecretDataHash(resources.PgBouncerConfigSecret(stack, dt.db, dt.poolerAlso...).Data)
}

// supersededJobs are the observed one-shot Jobs other than current, to delete once
// current has succeeded (until then they are the record that the cluster was formed);
// all of them when there is no current Job.
func supersededJobs(stack *authv1alpha1.AuthStack, observed []batchv1.Job, current *batchv1.Job) []client.Object {
	if current != nil && !jobSucceeded(observed, func(j *batchv1.Job) bool { return j.Name == current.Name }) {
		return nil
	}
	var out []client.Object
	for i := range observed {
		if current == nil || observed[i].Name != current.Name {
			out = append(out, named(stack, &batchv1.Job{}, observed[i].Name))
		}
	}
	return out
}

// jobSucceeded says whether one of the Jobs that match has succeeded.
func jobSucceeded(jobs []batchv1.Job, match func(*batchv1.Job) bool) bool {
	for i := range jobs {
		if match(&jobs[i]) && jobs[i].Status.Succeeded > 0 {
			return true
		}
	}
	return false
}

// dataTierConditions reports PoolerReady, RedisReady and DatabaseReady: a blocker
// about the component's own spec field, a refused apply, else its workloads' readiness.
func dataTierConditions(stack *authv1alpha1.AuthStack, obs *observation, failures []failure) []metav1.Condition {
	dt := &obs.dataTier
	conds := []metav1.Condition{poolerCondition(stack, dt), redisCondition(stack, dt), databaseCondition(stack, dt)}
	for i := range conds {
		if f := failureOf(failures, conds[i].Type); f != nil {
			conds[i] = condition(conds[i].Type, false, authv1alpha1.ReasonApplyFailed, f.message())
		}
	}
	// A missing Secret or key named by spec.database or spec.redis stops the observation
	// before the data tier is read: report it on the component's own condition too.
	if b := obs.blocker; b != nil && !dt.read {
		switch {
		case strings.HasPrefix(b.field, "spec.database"):
			conds[2] = condition(authv1alpha1.ConditionDatabaseReady, false, b.reason, b.message)
			if resources.PoolerEnabled(stack) {
				conds[0] = condition(authv1alpha1.ConditionPoolerReady, false, b.reason, b.message)
			}
		case strings.HasPrefix(b.field, "spec.redis"):
			conds[1] = condition(authv1alpha1.ConditionRedisReady, false, b.reason, b.message)
		}
	}
	return conds
}

// dataTierStatus is the pooler's and Redis's replica counts.
func dataTierStatus(obs *observation, st *authv1alpha1.AuthStackStatus) {
	dt := &obs.dataTier
	st.Pooler, st.Redis = nil, nil
	if dt.pooler != nil {
		st.Pooler = replicaStatus(dt.pooler.Status.Replicas, dt.pooler.Status.ReadyReplicas)
	}
	if dt.redis != nil {
		st.Redis = replicaStatus(dt.redis.Status.Replicas, dt.redis.Status.ReadyReplicas)
	}
}

func replicaStatus(replicas, ready int32) *authv1alpha1.ReplicaStatus {
	return &authv1alpha1.ReplicaStatus{Replicas: replicas, ReadyReplicas: ready, Summary: fmt.Sprintf("%d/%d", ready, replicas)}
}

func poolerCondition(stack *authv1alpha1.AuthStack, dt *dataTierObservation) metav1.Condition {
	const typ = authv1alpha1.ConditionPoolerReady
	switch {
	case !resources.PoolerEnabled(stack):
		return condition(typ, true, authv1alpha1.ReasonDisabled, "the pooler is disabled: the authserver connects to the database directly")
	case resources.CloudNativePG(stack) != nil && dt.cnpg.problem != "":
		return condition(typ, false, dt.cnpg.reason, dt.cnpg.problem)
	case dt.dbProblem != "":
		return condition(typ, false, authv1alpha1.ReasonInvalidURL, dt.dbProblem)
	case dt.pooler == nil:
		return condition(typ, false, authv1alpha1.ReasonProgressing, "the pgbouncer Deployment does not exist yet")
	}
	d := dt.pooler
	if d.Status.ObservedGeneration == 0 {
		return condition(typ, false, authv1alpha1.ReasonProgressing, "waiting for the pgbouncer Deployment to report")
	}
	want := ptr.Deref(d.Spec.Replicas, 1)
	msg := fmt.Sprintf("%d of %d pgbouncer replicas available", d.Status.AvailableReplicas, want)
	if !serving(d.Status.AvailableReplicas, want) {
		return condition(typ, false, authv1alpha1.ReasonUnavailable, msg)
	}
	return condition(typ, true, authv1alpha1.ReasonAvailable, msg)
}

// statefulSetReady says whether s serves (serving: all but one of its pods ready, at
// least one), whatever is rolling out.
func statefulSetReady(s *appsv1.StatefulSet) (bool, string) {
	want := ptr.Deref(s.Spec.Replicas, 1)
	return serving(s.Status.ReadyReplicas, want), fmt.Sprintf("%d of %d pods ready", s.Status.ReadyReplicas, want)
}

func redisCondition(stack *authv1alpha1.AuthStack, dt *dataTierObservation) metav1.Condition {
	const typ = authv1alpha1.ConditionRedisReady
	if !resources.ManagedRedis(stack) {
		if dt.redisProblem != "" {
			return condition(typ, false, authv1alpha1.ReasonInvalidURL, dt.redisProblem)
		}
		return condition(typ, true, authv1alpha1.ReasonExternal, "an external Redis: its URL Secret exists and parses")
	}
	if dt.redis == nil {
		return condition(typ, false, authv1alpha1.ReasonProgressing, "the Redis StatefulSet does not exist yet")
	}
	ok, msg := statefulSetReady(dt.redis)
	if !ok {
		return condition(typ, false, authv1alpha1.ReasonWaitingForPods, "Redis: "+msg)
	}
	if resources.RedisClusterMode(stack) {
		// Formed when a bootstrap Job of this topology succeeded (another image does
		// not unform it).
		args := resources.RedisBootstrapArgs(stack)
		formed := jobSucceeded(dt.bootstrapJobs, func(j *batchv1.Job) bool {
			c := j.Spec.Template.Spec.Containers
			return len(c) == 1 && slices.Equal(c[0].Args, args)
		})
		if !formed {
			return condition(typ, false, authv1alpha1.ReasonClusterNotFormed, "waiting for the bootstrap Job to form the Redis Cluster")
		}
		return condition(typ, true, authv1alpha1.ReasonAvailable, "Redis Cluster formed; "+msg)
	}
	return condition(typ, true, authv1alpha1.ReasonAvailable, "Redis: "+msg)
}

func databaseCondition(stack *authv1alpha1.AuthStack, dt *dataTierObservation) metav1.Condition {
	const typ = authv1alpha1.ConditionDatabaseReady
	if resources.CloudNativePG(stack) != nil {
		return cnpgCondition(stack, dt) // cnpg.go
	}
	if !resources.ManagedDatabase(stack) {
		if dt.dbProblem != "" {
			return condition(typ, false, authv1alpha1.ReasonInvalidURL, dt.dbProblem)
		}
		if dt.db.Host == "" {
			return condition(typ, false, authv1alpha1.ReasonProgressing, "the database URL Secret has not been read")
		}
		return condition(typ, true, authv1alpha1.ReasonExternal, "an external database: its URL Secret exists and parses")
	}
	if dt.postgres == nil {
		return condition(typ, false, authv1alpha1.ReasonProgressing, "the PostgreSQL StatefulSet does not exist yet")
	}
	if ok, msg := statefulSetReady(dt.postgres); !ok {
		return condition(typ, false, authv1alpha1.ReasonWaitingForPods, "PostgreSQL: "+msg)
	}
	return condition(typ, true, authv1alpha1.ReasonAvailable, "the managed PostgreSQL (single instance, not highly available) is ready")
}
