package controllers

// The data tier (pgbouncer, Redis, a managed PostgreSQL, NetworkPolicies): what the
// reconciler observes, renders and reports for it. See docs/data-tier.md.

import (
	"context"
	"fmt"
	"net/url"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	authv1alpha1 "github.com/leanauth/authstack/api/v1alpha1"
	"github.com/leanauth/authstack/controllers/resources"
)

// +kubebuilder:rbac:groups="",resources=secrets,verbs=get;list;watch;create;patch;delete
// +kubebuilder:rbac:groups="",resources=configmaps,verbs=get;list;watch;create;patch;delete
// +kubebuilder:rbac:groups="",resources=persistentvolumeclaims,verbs=get
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

	pooler    *appsv1.Deployment
	redis     *appsv1.StatefulSet
	bootstrap *batchv1.Job
	postgres  *appsv1.StatefulSet
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
				return &blocker{authv1alpha1.ReasonSecretNotFound, fmt.Sprintf(
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

// observeDataTier parses the database and Redis settings from the Secret values read.
// A database URL the pooler cannot use blocks rendering, like a missing Secret.
func (r *AuthStackReconciler) observeDataTier(stack *authv1alpha1.AuthStack, obs *observation, values map[authv1alpha1.SecretKeyRef][]byte) {
	dt := &dataTierObservation{read: true}
	obs.dataTier = dt
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
	if dt.dbProblem != "" && resources.PoolerEnabled(stack) && obs.blocker == nil {
		obs.blocker = &blocker{authv1alpha1.ReasonInvalidURL, dt.dbProblem}
	}
}

// metaOnly is an object of kind to delete by name, read through the metadata cache (so
// deleting a Secret or ConfigMap never caches their contents).
func metaOnly(stack *authv1alpha1.AuthStack, kind, name string) client.Object {
	return &metav1.PartialObjectMetadata{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: kind},
		ObjectMeta: metav1.ObjectMeta{Namespace: stack.Namespace, Name: name},
	}
}

// named sets the name and namespace of an empty typed object, to delete it.
func named(stack *authv1alpha1.AuthStack, obj client.Object, name string) client.Object {
	obj.SetName(name)
	obj.SetNamespace(stack.Namespace)
	return obj
}

// dataTierObjects renders the data tier's children: the ones to apply, and the ones the
// spec turned off (deleted if this stack controls them). It also fills the pods' hashes in.
func dataTierObjects(stack *authv1alpha1.AuthStack, obs *observation, in *resources.Inputs) (desired, absent []client.Object) {
	dt := obs.dataTier
	if sec := resources.ConnectionSecret(stack, resources.ConnectionFor(stack, dt.db, dt.redisPassword)); sec != nil {
		desired = append(desired, sec)
	} else {
		absent = append(absent, metaOnly(stack, "Secret", resources.ConnectionSecretName(stack)))
	}

	if resources.PoolerEnabled(stack) {
		cfg := resources.PgBouncerConfigSecret(stack, dt.db)
		in.PoolerConfigHash = resources.SecretDataHash(cfg.Data)
		desired = append(desired, cfg, resources.PgBouncerService(stack), resources.PgBouncerDeployment(stack, *in), resources.PgBouncerPDB(stack))
	} else {
		name := resources.PgBouncerName(stack)
		absent = append(absent, named(stack, &appsv1.Deployment{}, name), named(stack, &corev1.Service{}, name),
			named(stack, &policyv1.PodDisruptionBudget{}, name), metaOnly(stack, "Secret", resources.PgBouncerConfigSecretName(stack)))
	}

	redisName := resources.RedisName(stack)
	if resources.ManagedRedis(stack) {
		in.RedisConfigHash = resources.RedisConfigHash(stack, dt.redisPassword)
		desired = append(desired, resources.RedisConfigMap(stack), resources.RedisAuthSecret(stack, dt.redisPassword),
			resources.RedisService(stack), resources.RedisStatefulSet(stack, *in), resources.RedisPDB(stack))
		if job := resources.RedisBootstrapJob(stack, *in); job != nil {
			desired = append(desired, job)
		}
	} else {
		// The volumes and the password Secret stay (the data outlives the switch).
		absent = append(absent, named(stack, &appsv1.StatefulSet{}, redisName), named(stack, &corev1.Service{}, redisName),
			named(stack, &policyv1.PodDisruptionBudget{}, redisName), metaOnly(stack, "ConfigMap", redisName),
			metaOnly(stack, "Secret", resources.RedisAuthSecretName(stack)))
	}

	pgName := resources.PostgresName(stack)
	if sts := resources.PostgresStatefulSet(stack, *in); sts != nil {
		desired = append(desired, resources.PostgresService(stack), sts)
	} else {
		absent = append(absent, named(stack, &appsv1.StatefulSet{}, pgName), named(stack, &corev1.Service{}, pgName))
	}

	ports := resources.NetworkPolicyPorts{Database: dt.db.Port, Redis: dt.redisPort}
	for _, np := range resources.NetworkPolicies(stack, ports) {
		desired = append(desired, np)
	}
	for _, name := range resources.AbsentNetworkPolicies(stack, ports) {
		absent = append(absent, named(stack, &networkingv1.NetworkPolicy{}, name))
	}
	return desired, absent
}

// observeDataTierChildren reads the data tier's workloads, for the conditions.
func (r *AuthStackReconciler) observeDataTierChildren(ctx context.Context, stack *authv1alpha1.AuthStack, obs *observation) error {
	if obs.dataTier == nil {
		obs.dataTier = &dataTierObservation{}
	}
	dt := obs.dataTier
	get := func(name string, obj client.Object) (bool, error) {
		err := r.Get(ctx, types.NamespacedName{Namespace: stack.Namespace, Name: name}, obj)
		if apierrors.IsNotFound(err) {
			return false, nil
		}
		if err != nil {
			return false, fmt.Errorf("reading %T %q: %w", obj, name, err)
		}
		return true, nil
	}
	if resources.PoolerEnabled(stack) {
		d := &appsv1.Deployment{}
		if ok, err := get(resources.PgBouncerName(stack), d); err != nil {
			return err
		} else if ok {
			dt.pooler = d
		}
	}
	if resources.ManagedRedis(stack) {
		s := &appsv1.StatefulSet{}
		if ok, err := get(resources.RedisName(stack), s); err != nil {
			return err
		} else if ok {
			dt.redis = s
		}
	}
	if resources.RedisClusterMode(stack) {
		j := &batchv1.Job{}
		if ok, err := get(resources.RedisBootstrapJobName(stack), j); err != nil {
			return err
		} else if ok {
			dt.bootstrap = j
		}
	}
	if resources.ManagedDatabase(stack) {
		s := &appsv1.StatefulSet{}
		if ok, err := get(resources.PostgresName(stack), s); err != nil {
			return err
		} else if ok {
			dt.postgres = s
		}
	}
	return nil
}

// dataTierStatus sets PoolerReady, RedisReady and DatabaseReady and the replica counts.
func dataTierStatus(stack *authv1alpha1.AuthStack, obs *observation, st *authv1alpha1.AuthStackStatus) {
	dt := obs.dataTier
	if dt == nil {
		dt = &dataTierObservation{}
	}
	st.Pooler, st.Redis = nil, nil
	if dt.pooler != nil {
		st.Pooler = replicaStatus(dt.pooler.Status.Replicas, dt.pooler.Status.ReadyReplicas)
	}
	if dt.redis != nil {
		st.Redis = replicaStatus(dt.redis.Status.Replicas, dt.redis.Status.ReadyReplicas)
	}
	pooler, redis, database := poolerCondition(stack, dt), redisCondition(stack, dt), databaseCondition(stack, dt)
	// A missing Secret or key named by spec.database or spec.redis stops the observation
	// before the data tier is read: report it on the component's own condition.
	if b := obs.blocker; b != nil && !dt.read {
		if strings.Contains(b.message, "spec.database") {
			database = condition(authv1alpha1.ConditionDatabaseReady, false, b.reason, b.message)
			if resources.PoolerEnabled(stack) {
				pooler = condition(authv1alpha1.ConditionPoolerReady, false, b.reason, b.message)
			}
		}
		if strings.Contains(b.message, "spec.redis") {
			redis = condition(authv1alpha1.ConditionRedisReady, false, b.reason, b.message)
		}
	}
	setCondition(st, stack.Generation, pooler)
	setCondition(st, stack.Generation, redis)
	setCondition(st, stack.Generation, database)
}

func replicaStatus(replicas, ready int32) *authv1alpha1.ReplicaStatus {
	return &authv1alpha1.ReplicaStatus{Replicas: replicas, ReadyReplicas: ready, Summary: fmt.Sprintf("%d/%d", ready, replicas)}
}

func poolerCondition(stack *authv1alpha1.AuthStack, dt *dataTierObservation) metav1.Condition {
	const typ = authv1alpha1.ConditionPoolerReady
	switch {
	case !resources.PoolerEnabled(stack):
		return condition(typ, true, authv1alpha1.ReasonDisabled, "the pooler is disabled: the authserver connects to the database directly")
	case dt.dbProblem != "":
		return condition(typ, false, authv1alpha1.ReasonInvalidURL, dt.dbProblem)
	case dt.pooler == nil:
		return condition(typ, false, authv1alpha1.ReasonProgressing, "the pgbouncer Deployment does not exist yet")
	}
	d := dt.pooler
	for _, c := range d.Status.Conditions {
		if c.Type == appsv1.DeploymentAvailable {
			if c.Status == corev1.ConditionTrue {
				return condition(typ, true, authv1alpha1.ReasonAvailable, fmt.Sprintf("%d of %d pgbouncer replicas ready", d.Status.ReadyReplicas, d.Status.Replicas))
			}
			return condition(typ, false, authv1alpha1.ReasonUnavailable, c.Message)
		}
	}
	return condition(typ, false, authv1alpha1.ReasonProgressing, "waiting for the pgbouncer Deployment to report")
}

// statefulSetReady says whether every pod of s runs its current revision and is ready.
func statefulSetReady(s *appsv1.StatefulSet) (bool, string) {
	want := int32(1)
	if s.Spec.Replicas != nil {
		want = *s.Spec.Replicas
	}
	if s.Status.ObservedGeneration < s.Generation {
		return false, "waiting for the StatefulSet controller to see the latest spec"
	}
	if s.Status.ReadyReplicas < want {
		return false, fmt.Sprintf("%d of %d pods ready", s.Status.ReadyReplicas, want)
	}
	return true, fmt.Sprintf("%d of %d pods ready", s.Status.ReadyReplicas, want)
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
		if dt.bootstrap == nil || dt.bootstrap.Status.Succeeded < 1 {
			return condition(typ, false, authv1alpha1.ReasonClusterNotFormed, "waiting for the bootstrap Job to form the Redis Cluster")
		}
		return condition(typ, true, authv1alpha1.ReasonAvailable, "Redis Cluster formed; "+msg)
	}
	return condition(typ, true, authv1alpha1.ReasonAvailable, "Redis: "+msg)
}

func databaseCondition(stack *authv1alpha1.AuthStack, dt *dataTierObservation) metav1.Condition {
	const typ = authv1alpha1.ConditionDatabaseReady
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

// uncachedConfig reads Secrets and ConfigMaps straight from the API server and
// everything else through the cache: the manager never caches their contents.
type uncachedConfig struct {
	client.Client
	reader client.Reader
}

func (c uncachedConfig) Get(ctx context.Context, key client.ObjectKey, obj client.Object, opts ...client.GetOption) error {
	switch obj.(type) {
	case *corev1.Secret, *corev1.ConfigMap:
		return c.reader.Get(ctx, key, obj, opts...)
	}
	return c.Client.Get(ctx, key, obj, opts...)
}
