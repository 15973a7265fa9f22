package controllers

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	authv1alpha1 "github.com/leanauth/authstack/api/v1alpha1"
	"github.com/leanauth/authstack/controllers/resources"
)

// markDeploymentAvailable reports a finished rollout for a Deployment, as the
// Deployment controller (which envtest does not run) would.
func markDeploymentAvailable(t *testing.T, ns, name string) {
	t.Helper()
	ctx := context.Background()
	eventually(t, "Deployment "+name+" marked available", func() error {
		d := &appsv1.Deployment{}
		if err := k8s.Get(ctx, key(ns, name), d); err != nil {
			return err
		}
		n := ptr.Deref(d.Spec.Replicas, 1)
		d.Status = appsv1.DeploymentStatus{
			ObservedGeneration: d.Generation, Replicas: n, UpdatedReplicas: n, ReadyReplicas: n, AvailableReplicas: n,
			Conditions: []appsv1.DeploymentCondition{{Type: appsv1.DeploymentAvailable, Status: corev1.ConditionTrue,
				Reason: "MinimumReplicasAvailable", Message: "ok", LastUpdateTime: metav1.Now(), LastTransitionTime: metav1.Now()}},
		}
		return k8s.Status().Update(ctx, d)
	})
}

// markStatefulSetReady reports every pod of a StatefulSet ready.
func markStatefulSetReady(t *testing.T, ns, name string) {
	t.Helper()
	ctx := context.Background()
	eventually(t, "StatefulSet "+name+" marked ready", func() error {
		s := &appsv1.StatefulSet{}
		if err := k8s.Get(ctx, key(ns, name), s); err != nil {
			return err
		}
		n := ptr.Deref(s.Spec.Replicas, 1)
		s.Status = appsv1.StatefulSetStatus{ObservedGeneration: s.Generation, Replicas: n, ReadyReplicas: n,
			CurrentReplicas: n, UpdatedReplicas: n, AvailableReplicas: n}
		return k8s.Status().Update(ctx, s)
	})
}

// dataTierStack is the sample stack with the managed Redis (no redis.urlSecretRef).
func dataTierStack(ns string) *authv1alpha1.AuthStack {
	s := sampleStack(ns, "auth")
	s.Spec.Redis = authv1alpha1.RedisSpec{}
	return s
}

func setupStack(t *testing.T, stack func(ns string) *authv1alpha1.AuthStack) (string, *operator) {
	t.Helper()
	ns := newNamespace(t)
	createReferencedSecrets(t, ns)
	op := startOperator(t, ns)
	if err := k8s.Create(context.Background(), stack(ns)); err != nil {
		t.Fatalf("creating AuthStack: %v", err)
	}
	return ns, op
}

func get[T client.Object](t *testing.T, ns, name string, obj T) T {
	t.Helper()
	eventually(t, fmt.Sprintf("%T %s exists", obj, name), func() error {
		return k8s.Get(context.Background(), key(ns, name), obj)
	})
	return obj
}

func gone(t *testing.T, ns, name string, obj client.Object) {
	t.Helper()
	eventually(t, fmt.Sprintf("%T %s deleted", obj, name), func() error {
		err := k8s.Get(context.Background(), key(ns, name), obj)
		if apierrors.IsNotFound(err) {
			return nil
		}
		return fmt.Errorf("still there (err %v)", err)
	})
}

// updateStack changes the stack's spec, retrying on conflicts with the operator's status writes.
func updateStack(t *testing.T, ns string, change func(*authv1alpha1.AuthStack)) {
	t.Helper()
	eventually(t, "updating the AuthStack", func() error {
		s := &authv1alpha1.AuthStack{}
		if err := k8s.Get(context.Background(), key(ns, "auth"), s); err != nil {
			return err
		}
		change(s)
		return k8s.Update(context.Background(), s)
	})
}

func getStack(t *testing.T, ns string) *authv1alpha1.AuthStack {
	t.Helper()
	s := &authv1alpha1.AuthStack{}
	if err := k8s.Get(context.Background(), key(ns, "auth"), s); err != nil {
		t.Fatal(err)
	}
	return s
}

// waitCondition waits until condition typ has the status and reason.
func waitCondition(t *testing.T, ns, typ string, status metav1.ConditionStatus, reason string) metav1.Condition {
	t.Helper()
	var got metav1.Condition
	eventually(t, fmt.Sprintf("%s=%s (%s)", typ, status, reason), func() error {
		s := &authv1alpha1.AuthStack{}
		if err := k8s.Get(context.Background(), key(ns, "auth"), s); err != nil {
			return err
		}
		c := meta.FindStatusCondition(s.Status.Conditions, typ)
		if c == nil || c.Status != status || c.Reason != reason || c.ObservedGeneration != s.Generation {
			return fmt.Errorf("%s is %+v", typ, c)
		}
		got = *c
		return nil
	})
	return got
}

func envRef(c corev1.Container, name string) string {
	e, ok := envValue(c, name)
	if !ok || e.ValueFrom == nil || e.ValueFrom.SecretKeyRef == nil || e.Value != "" {
		return fmt.Sprintf("not a secret reference: %+v", e)
	}
	return e.ValueFrom.SecretKeyRef.Name + "/" + e.ValueFrom.SecretKeyRef.Key
}

func controlledByStack(t *testing.T, obj client.Object) {
	t.Helper()
	ref := metav1.GetControllerOf(obj)
	if ref == nil || ref.Kind != "AuthStack" || ref.Name != "auth" {
		t.Errorf("%T %s is not controlled by the AuthStack: %v", obj, obj.GetName(), obj.GetOwnerReferences())
	}
}

func TestDataTierCreatesPoolerRedisAndPolicies(t *testing.T) {
	t.Parallel()
	ns, _ := setupStack(t, dataTierStack)
	ctx := context.Background()

	// pgbouncer: config Secret, Deployment rolled by its hash, Service, PDB.
	cfg := get(t, ns, "auth-pgbouncer-config", &corev1.Secret{})
	controlledByStack(t, cfg)
	ini := string(cfg.Data[resources.PgBouncerIniKey])
	if !strings.Contains(ini, "auth = host=db.example port=5432 dbname=auth") || !strings.Contains(ini, "server_tls_sslmode = require") ||
		!strings.Contains(ini, "pool_mode = transaction") || !strings.Contains(ini, "max_client_conn = 1000") || !strings.Contains(ini, "default_pool_size = 25") {
		t.Errorf("pgbouncer.ini:\n%s", ini)
	}
	if string(cfg.Data[resources.PgBouncerUserlistKey]) != "\"auth\" \"s3cret\"\n" {
		t.Error("the auth file does not hold the URL's user and password")
	}
	bouncer := get(t, ns, "auth-pgbouncer", &appsv1.Deployment{})
	controlledByStack(t, bouncer)
	if got, want := bouncer.Spec.Template.Annotations[resources.AnnotationConfigHash], resources.SecretDataHash(cfg.Data); got != want {
		t.Errorf("pgbouncer pod hash %q, want the config Secret's %q", got, want)
	}
	if ptr.Deref(bouncer.Spec.Replicas, 0) != 2 || bouncer.Spec.Template.Spec.Containers[0].Image != resources.DefaultPgBouncerImage {
		t.Errorf("pgbouncer replicas %v image %q", bouncer.Spec.Replicas, bouncer.Spec.Template.Spec.Containers[0].Image)
	}
	get(t, ns, "auth-pgbouncer", &corev1.Service{})
	get(t, ns, "auth-pgbouncer", &policyv1.PodDisruptionBudget{})

	// Redis: password Secret (not owned), auth Secret, ConfigMap without the password, StatefulSet.
	pw := get(t, ns, "auth-redis-password", &corev1.Secret{})
	if len(pw.OwnerReferences) != 0 || len(pw.Data["password"]) != 64 {
		t.Errorf("Redis password Secret: owners %v, %d bytes", pw.OwnerReferences, len(pw.Data["password"]))
	}
	cm := get(t, ns, "auth-redis", &corev1.ConfigMap{})
	controlledByStack(t, cm)
	if strings.Contains(cm.Data["redis.conf"], string(pw.Data["password"])) || !strings.Contains(cm.Data["redis.conf"], "appendonly yes") {
		t.Error("redis.conf holds the password, or lacks appendonly")
	}
	auth := get(t, ns, "auth-redis-auth", &corev1.Secret{})
	if !strings.Contains(string(auth.Data["auth.conf"]), string(pw.Data["password"])) {
		t.Error("auth.conf does not hold the generated password")
	}
	sts := get(t, ns, "auth-redis", &appsv1.StatefulSet{})
	controlledByStack(t, sts)
	if p := sts.Spec.PersistentVolumeClaimRetentionPolicy; p == nil || p.WhenDeleted != appsv1.RetainPersistentVolumeClaimRetentionPolicyType {
		t.Errorf("PVC retention %+v, want Retain", p)
	}
	if sts.Spec.VolumeClaimTemplates[0].Spec.Resources.Requests.Storage().String() != "10Gi" {
		t.Errorf("Redis volume %v", sts.Spec.VolumeClaimTemplates[0].Spec.Resources.Requests)
	}
	svc := get(t, ns, "auth-redis", &corev1.Service{})
	if svc.Spec.ClusterIP != corev1.ClusterIPNone {
		t.Errorf("Redis Service clusterIP %q, want headless", svc.Spec.ClusterIP)
	}
	var jobs batchv1.JobList
	if err := k8s.List(ctx, &jobs, client.InNamespace(ns)); err != nil || len(jobs.Items) != 0 {
		t.Errorf("a bootstrap Job in standalone mode (%d Jobs, err %v)", len(jobs.Items), err)
	}

	// The authserver reads the composed URLs by reference.
	conn := get(t, ns, "auth-connection", &corev1.Secret{})
	controlledByStack(t, conn)
	if got := string(conn.Data["database-url"]); got != "postgres://auth:s3cret@auth-pgbouncer."+ns+".svc:6432/auth?sslmode=disable" {
		t.Errorf("pooled database-url %q", got)
	}
	if got := string(conn.Data["redis-url"]); got != "redis://:"+string(pw.Data["password"])+"@auth-redis."+ns+".svc:6379/0" {
		t.Errorf("redis-url %q", got)
	}
	dep := getDeployment(t, ns)
	c := dep.Spec.Template.Spec.Containers[0]
	for name, want := range map[string]string{"DATABASE_URL": "auth-connection/database-url", "DATABASE_DIRECT_URL": "db/url", "REDIS_URL": "auth-connection/redis-url"} {
		if got := envRef(c, name); got != want {
			t.Errorf("authserver %s = %s, want %s", name, got, want)
		}
	}
	if got := envRef(dep.Spec.Template.Spec.InitContainers[0], "DATABASE_DIRECT_URL"); got != "db/url" {
		t.Errorf("migrations DATABASE_DIRECT_URL = %s, want the database itself", got)
	}

	for _, name := range []string{"auth-authserver", "auth-pgbouncer", "auth-redis"} {
		controlledByStack(t, get(t, ns, name, &networkingv1.NetworkPolicy{}))
	}

	// Conditions: the pods are not ready yet; the external database is.
	waitCondition(t, ns, authv1alpha1.ConditionDatabaseReady, metav1.ConditionTrue, authv1alpha1.ReasonExternal)
	waitCondition(t, ns, authv1alpha1.ConditionPoolerReady, metav1.ConditionFalse, authv1alpha1.ReasonProgressing)
	waitCondition(t, ns, authv1alpha1.ConditionRedisReady, metav1.ConditionFalse, authv1alpha1.ReasonWaitingForPods)

	markDeploymentAvailable(t, ns, "auth-authserver")
	markDeploymentAvailable(t, ns, "auth-pgbouncer")
	waitCondition(t, ns, authv1alpha1.ConditionPoolerReady, metav1.ConditionTrue, authv1alpha1.ReasonAvailable)
	ready := waitCondition(t, ns, authv1alpha1.ConditionReady, metav1.ConditionFalse, authv1alpha1.ReasonWaitingForPods)
	if !strings.Contains(ready.Message, "RedisReady") {
		t.Errorf("Ready names %q, want RedisReady", ready.Message)
	}
	markStatefulSetReady(t, ns, "auth-redis")
	waitCondition(t, ns, authv1alpha1.ConditionRedisReady, metav1.ConditionTrue, authv1alpha1.ReasonAvailable)
	waitCondition(t, ns, authv1alpha1.ConditionReady, metav1.ConditionTrue, authv1alpha1.ReasonAllReady)
	st := getStack(t, ns).Status
	if st.Pooler == nil || st.Pooler.Summary != "2/2" || st.Redis == nil || st.Redis.Summary != "1/1" {
		t.Errorf("status pooler %+v redis %+v", st.Pooler, st.Redis)
	}
}

func TestDataTierNoOpReconcileWritesNothing(t *testing.T) {
	t.Parallel()
	ns, op := setupStack(t, func(ns string) *authv1alpha1.AuthStack {
		s := dataTierStack(ns)
		s.Spec.Database = authv1alpha1.DatabaseSpec{Managed: &authv1alpha1.ManagedDatabaseSpec{}}
		return s
	})
	get(t, ns, "auth-postgres", &appsv1.StatefulSet{})
	getDeployment(t, ns)
	settle(t, op, ns)
	before := op.writes.count()
	for range 5 {
		reconcileNow(t, op, ns)
	}
	if d := op.writes.count() - before; d != 0 {
		t.Errorf("5 no-op reconciles of a stack with pgbouncer, Redis, PostgreSQL and NetworkPolicies sent %d writes", d)
	}
}

func TestDataTierDatabaseRotationRollsPoolerAndAuthServer(t *testing.T) {
	t.Parallel()
	ns, _ := setupStack(t, dataTierStack)
	ctx := context.Background()
	poolerBefore := get(t, ns, "auth-pgbouncer", &appsv1.Deployment{}).Spec.Template.Annotations[resources.AnnotationConfigHash]
	authBefore := getDeployment(t, ns).Spec.Template.Annotations[resources.AnnotationConfigHash]

	db := &corev1.Secret{}
	if err := k8s.Get(ctx, key(ns, "db"), db); err != nil {
		t.Fatal(err)
	}
	db.Data["url"] = []byte("postgres://auth:n3w-pw@db2.example:6543/auth?sslmode=verify-full")
	if err := k8s.Update(ctx, db); err != nil {
		t.Fatal(err)
	}
	eventually(t, "pgbouncer config, pods and authserver pods follow the new URL", func() error {
		cfg := &corev1.Secret{}
		if err := k8s.Get(ctx, key(ns, "auth-pgbouncer-config"), cfg); err != nil {
			return err
		}
		ini := string(cfg.Data[resources.PgBouncerIniKey])
		if !strings.Contains(ini, "host=db2.example port=6543") || !strings.Contains(ini, "server_tls_sslmode = verify-full") {
			return fmt.Errorf("ini not updated:\n%s", ini)
		}
		if !strings.Contains(string(cfg.Data[resources.PgBouncerUserlistKey]), "n3w-pw") {
			return fmt.Errorf("auth file not updated")
		}
		d := &appsv1.Deployment{}
		if err := k8s.Get(ctx, key(ns, "auth-pgbouncer"), d); err != nil {
			return err
		}
		if d.Spec.Template.Annotations[resources.AnnotationConfigHash] == poolerBefore {
			return fmt.Errorf("pgbouncer pods not rolled")
		}
		if getDeployment(t, ns).Spec.Template.Annotations[resources.AnnotationConfigHash] == authBefore {
			return fmt.Errorf("authserver pods not rolled")
		}
		conn := &corev1.Secret{}
		if err := k8s.Get(ctx, key(ns, "auth-connection"), conn); err != nil {
			return err
		}
		if !strings.Contains(string(conn.Data["database-url"]), "n3w-pw") {
			return fmt.Errorf("pooled URL not updated")
		}
		return nil
	})
	np := get(t, ns, "auth-pgbouncer", &networkingv1.NetworkPolicy{})
	found := false
	for _, e := range np.Spec.Egress {
		for _, p := range e.Ports {
			if p.Port != nil && p.Port.IntValue() == 6543 && len(e.To) == 0 {
				found = true
			}
		}
	}
	if !found {
		t.Errorf("pgbouncer egress does not follow the database port 6543: %+v", np.Spec.Egress)
	}
}

func TestDataTierInvalidDatabaseURL(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t)
	ctx := context.Background()
	createReferencedSecrets(t, ns)
	db := &corev1.Secret{}
	if err := k8s.Get(ctx, key(ns, "db"), db); err != nil {
		t.Fatal(err)
	}
	db.Data["url"] = []byte("postgres://auth:TOPSECRET@db.example:5432/?sslmode=require") // no database name
	if err := k8s.Update(ctx, db); err != nil {
		t.Fatal(err)
	}
	startOperator(t, ns)
	if err := k8s.Create(ctx, dataTierStack(ns)); err != nil {
		t.Fatal(err)
	}
	c := waitCondition(t, ns, authv1alpha1.ConditionDatabaseReady, metav1.ConditionFalse, authv1alpha1.ReasonInvalidURL)
	if !strings.Contains(c.Message, `"db"`) || !strings.Contains(c.Message, "no database name") {
		t.Errorf("DatabaseReady message %q should name the Secret and the problem", c.Message)
	}
	waitCondition(t, ns, authv1alpha1.ConditionPoolerReady, metav1.ConditionFalse, authv1alpha1.ReasonInvalidURL)
	waitCondition(t, ns, authv1alpha1.ConditionAuthServerAvailable, metav1.ConditionFalse, authv1alpha1.ReasonInvalidURL)
	for _, cond := range getStack(t, ns).Status.Conditions {
		if strings.Contains(cond.Message, "TOPSECRET") {
			t.Errorf("condition %s shows the password", cond.Type)
		}
	}
	if err := k8s.Get(ctx, key(ns, "auth-pgbouncer-config"), &corev1.Secret{}); !apierrors.IsNotFound(err) {
		t.Errorf("a pgbouncer config was rendered from an invalid URL (err %v)", err)
	}
	// Fixing the Secret recovers.
	db.Data["url"] = []byte("postgres://auth:TOPSECRET@db.example:5432/auth?sslmode=require")
	if err := k8s.Update(ctx, db); err != nil {
		t.Fatal(err)
	}
	get(t, ns, "auth-pgbouncer-config", &corev1.Secret{})
	waitCondition(t, ns, authv1alpha1.ConditionDatabaseReady, metav1.ConditionTrue, authv1alpha1.ReasonExternal)
}

func TestDataTierSwitchesOff(t *testing.T) {
	t.Parallel()
	ns, _ := setupStack(t, dataTierStack)
	get(t, ns, "auth-redis", &appsv1.StatefulSet{})
	get(t, ns, "auth-pgbouncer", &appsv1.Deployment{})
	get(t, ns, "auth-redis", &networkingv1.NetworkPolicy{})

	// An external Redis, no pooler.
	updateStack(t, ns, func(s *authv1alpha1.AuthStack) {
		s.Spec.Redis = authv1alpha1.RedisSpec{URLSecretRef: &authv1alpha1.SecretKeyRef{Name: "redis", Key: "url"}}
		s.Spec.Pooler.Enabled = ptr.To(false)
	})
	gone(t, ns, "auth-redis", &appsv1.StatefulSet{})
	gone(t, ns, "auth-redis", &corev1.Service{})
	gone(t, ns, "auth-redis", &corev1.ConfigMap{})
	gone(t, ns, "auth-redis", &policyv1.PodDisruptionBudget{})
	gone(t, ns, "auth-redis", &networkingv1.NetworkPolicy{})
	gone(t, ns, "auth-redis-auth", &corev1.Secret{})
	gone(t, ns, "auth-pgbouncer", &appsv1.Deployment{})
	gone(t, ns, "auth-pgbouncer", &corev1.Service{})
	gone(t, ns, "auth-pgbouncer", &policyv1.PodDisruptionBudget{})
	gone(t, ns, "auth-pgbouncer", &networkingv1.NetworkPolicy{})
	gone(t, ns, "auth-pgbouncer-config", &corev1.Secret{})
	gone(t, ns, "auth-connection", &corev1.Secret{})
	get(t, ns, "auth-redis-password", &corev1.Secret{}) // kept: the volumes may still hold data
	eventually(t, "the authserver reads the external URLs", func() error {
		c := getDeployment(t, ns).Spec.Template.Spec.Containers[0]
		if envRef(c, "DATABASE_URL") != "db/url" || envRef(c, "REDIS_URL") != "redis/url" {
			return fmt.Errorf("DATABASE_URL %s REDIS_URL %s", envRef(c, "DATABASE_URL"), envRef(c, "REDIS_URL"))
		}
		if _, ok := envValue(c, "DATABASE_DIRECT_URL"); ok {
			return fmt.Errorf("DATABASE_DIRECT_URL still set")
		}
		return nil
	})
	waitCondition(t, ns, authv1alpha1.ConditionPoolerReady, metav1.ConditionTrue, authv1alpha1.ReasonDisabled)
	waitCondition(t, ns, authv1alpha1.ConditionRedisReady, metav1.ConditionTrue, authv1alpha1.ReasonExternal)

	// NetworkPolicies off: all gone.
	updateStack(t, ns, func(s *authv1alpha1.AuthStack) { s.Spec.NetworkPolicy.Enabled = ptr.To(false) })
	gone(t, ns, "auth-authserver", &networkingv1.NetworkPolicy{})
}

func TestManagedPostgresAndGeneratedPasswordsOutliveTheStack(t *testing.T) {
	t.Parallel()
	ns, _ := setupStack(t, func(ns string) *authv1alpha1.AuthStack {
		s := dataTierStack(ns)
		s.Spec.Database = authv1alpha1.DatabaseSpec{Managed: &authv1alpha1.ManagedDatabaseSpec{}}
		return s
	})
	ctx := context.Background()
	pgpw := get(t, ns, "auth-postgres-password", &corev1.Secret{})
	if len(pgpw.OwnerReferences) != 0 || len(pgpw.Data["password"]) == 0 {
		t.Errorf("PostgreSQL password Secret: owners %v", pgpw.OwnerReferences)
	}
	sts := get(t, ns, "auth-postgres", &appsv1.StatefulSet{})
	controlledByStack(t, sts)
	if p := sts.Spec.PersistentVolumeClaimRetentionPolicy; p == nil || p.WhenDeleted != appsv1.RetainPersistentVolumeClaimRetentionPolicyType {
		t.Errorf("PostgreSQL PVC retention %+v, want Retain", p)
	}
	if c := sts.Spec.Template.Spec.Containers[0]; envRef(c, "POSTGRES_PASSWORD") != "auth-postgres-password/password" ||
		!strings.HasPrefix(c.Image, "docker.io/library/postgres:17") {
		t.Errorf("postgres container image %q password %s", c.Image, envRef(c, "POSTGRES_PASSWORD"))
	}
	get(t, ns, "auth-postgres", &corev1.Service{})
	np := get(t, ns, "auth-postgres", &networkingv1.NetworkPolicy{})
	// from pgbouncer, the authserver (migrations), the backup Job, the restore drill, the pepper count Job, the restore Job and the password rotation Jobs
	if len(np.Spec.Ingress) != 7 || len(np.Spec.Egress) != 0 {
		t.Errorf("PostgreSQL NetworkPolicy ingress %d rules, egress %d", len(np.Spec.Ingress), len(np.Spec.Egress))
	}
	conn := get(t, ns, "auth-connection", &corev1.Secret{})
	pw := string(pgpw.Data["password"])
	if got := string(conn.Data["database-direct-url"]); got != "postgres://authstack:"+pw+"@auth-postgres."+ns+".svc:5432/authstack?sslmode=disable" {
		t.Errorf("database-direct-url %q", got)
	}
	cfg := get(t, ns, "auth-pgbouncer-config", &corev1.Secret{})
	if !strings.Contains(string(cfg.Data[resources.PgBouncerIniKey]), "host=auth-postgres."+ns+".svc port=5432 dbname=authstack") {
		t.Errorf("pgbouncer does not point at the managed database:\n%s", cfg.Data[resources.PgBouncerIniKey])
	}
	waitCondition(t, ns, authv1alpha1.ConditionDatabaseReady, metav1.ConditionFalse, authv1alpha1.ReasonWaitingForPods)
	markStatefulSetReady(t, ns, "auth-postgres")
	waitCondition(t, ns, authv1alpha1.ConditionDatabaseReady, metav1.ConditionTrue, authv1alpha1.ReasonAvailable)

	redisPW := get(t, ns, "auth-redis-password", &corev1.Secret{})
	if err := k8s.Delete(ctx, getStack(t, ns)); err != nil {
		t.Fatal(err)
	}
	eventually(t, "AuthStack deleted", func() error {
		if err := k8s.Get(ctx, key(ns, "auth"), &authv1alpha1.AuthStack{}); !apierrors.IsNotFound(err) {
			return fmt.Errorf("still there: %v", err)
		}
		return nil
	})
	time.Sleep(500 * time.Millisecond)
	for _, kept := range []*corev1.Secret{pgpw, redisPW} {
		again := &corev1.Secret{}
		if err := k8s.Get(ctx, key(ns, kept.Name), again); err != nil || again.UID != kept.UID {
			t.Errorf("generated Secret %s did not survive the AuthStack (err %v)", kept.Name, err)
		}
	}
}

func TestRedisClusterModeBootstrapJob(t *testing.T) {
	t.Parallel()
	ns, op := setupStack(t, func(ns string) *authv1alpha1.AuthStack {
		s := dataTierStack(ns)
		s.Spec.Redis = authv1alpha1.RedisSpec{Mode: authv1alpha1.RedisCluster, Shards: 3, ReplicasPerShard: 1,
			Storage: authv1alpha1.StorageSpec{DeleteOnStackDeletion: true}}
		return s
	})
	ctx := context.Background()
	sts := get(t, ns, "auth-redis", &appsv1.StatefulSet{})
	getDeployment(t, ns)
	// The Job and the cluster objects converge: a no-op reconcile writes nothing.
	settle(t, op, ns)
	if ptr.Deref(sts.Spec.Replicas, 0) != 6 || sts.Spec.PersistentVolumeClaimRetentionPolicy.WhenDeleted != appsv1.DeletePersistentVolumeClaimRetentionPolicyType {
		t.Errorf("cluster StatefulSet replicas %v retention %+v", sts.Spec.Replicas, sts.Spec.PersistentVolumeClaimRetentionPolicy)
	}
	job := get(t, ns, resources.RedisBootstrapJobName(getStack(t, ns), resources.Inputs{}), &batchv1.Job{})
	controlledByStack(t, job)
	args := job.Spec.Template.Spec.Containers[0].Args
	if len(args) != 7 || args[0] != "1" || args[1] != "auth-redis-0.auth-redis."+ns+".svc:6379" {
		t.Errorf("bootstrap args %v", args)
	}
	cm := get(t, ns, "auth-redis", &corev1.ConfigMap{})
	if !strings.Contains(cm.Data["redis.conf"], "cluster-enabled yes") || cm.Data["bootstrap.sh"] == "" {
		t.Error("cluster redis.conf or bootstrap.sh missing")
	}
	markStatefulSetReady(t, ns, "auth-redis")
	waitCondition(t, ns, authv1alpha1.ConditionRedisReady, metav1.ConditionFalse, authv1alpha1.ReasonClusterNotFormed)
	job.Status.Succeeded = 1
	now := metav1.Now()
	job.Status.StartTime, job.Status.CompletionTime = &now, &now
	job.Status.Conditions = []batchv1.JobCondition{
		{Type: batchv1.JobSuccessCriteriaMet, Status: corev1.ConditionTrue, LastTransitionTime: now},
		{Type: batchv1.JobComplete, Status: corev1.ConditionTrue, LastTransitionTime: now},
	}
	if err := k8s.Status().Update(ctx, job); err != nil {
		t.Fatalf("marking the Job complete: %v", err)
	}
	waitCondition(t, ns, authv1alpha1.ConditionRedisReady, metav1.ConditionTrue, authv1alpha1.ReasonAvailable)
	get(t, ns, "auth-redis-bootstrap", &networkingv1.NetworkPolicy{})

	// Another image gets another Job (a Job's template is immutable); the formed
	// cluster stays formed meanwhile, and the superseded Job is deleted once the new
	// one succeeded. (Another topology is refused by the API: no resharding path.)
	first := job.Name
	updateStack(t, ns, func(s *authv1alpha1.AuthStack) { s.Spec.Redis.Image = "example.com/redis:7.4.2" })
	second := &batchv1.Job{}
	eventually(t, "a new bootstrap Job", func() error {
		want := resources.RedisBootstrapJobName(getStack(t, ns), resources.Inputs{})
		if want == first {
			return fmt.Errorf("same Job name %s", want)
		}
		return k8s.Get(ctx, key(ns, want), second)
	})
	if _, err := getJob(ns, first); err != nil {
		t.Fatalf("the superseded Job went before its successor succeeded: %v", err)
	}
	markStatefulSetReady(t, ns, "auth-redis")
	waitCondition(t, ns, authv1alpha1.ConditionRedisReady, metav1.ConditionTrue, authv1alpha1.ReasonAvailable)
	finishJob(t, ns, second, true, "cluster_state:ok")
	gone(t, ns, first, &batchv1.Job{})
	settle(t, op, ns)
}

func getJob(ns, name string) (*batchv1.Job, error) {
	j := &batchv1.Job{}
	return j, k8s.Get(context.Background(), key(ns, name), j)
}

func TestDataTierMissingSecretsAndDatabaseSwitch(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t)
	startOperator(t, ns)
	ctx := context.Background()
	if err := k8s.Create(ctx, dataTierStack(ns)); err != nil {
		t.Fatal(err)
	}
	// No Secrets yet: the database's own condition says which one is missing.
	c := waitCondition(t, ns, authv1alpha1.ConditionDatabaseReady, metav1.ConditionFalse, authv1alpha1.ReasonSecretNotFound)
	if !strings.Contains(c.Message, `"db"`) || !strings.Contains(c.Message, "spec.database.urlSecretRef") {
		t.Errorf("DatabaseReady message %q", c.Message)
	}
	createReferencedSecrets(t, ns)
	waitCondition(t, ns, authv1alpha1.ConditionDatabaseReady, metav1.ConditionTrue, authv1alpha1.ReasonExternal)

	// External -> managed: the PostgreSQL StatefulSet appears and migrations use it.
	updateStack(t, ns, func(s *authv1alpha1.AuthStack) {
		s.Spec.Database = authv1alpha1.DatabaseSpec{Managed: &authv1alpha1.ManagedDatabaseSpec{}}
	})
	get(t, ns, "auth-postgres", &appsv1.StatefulSet{})
	eventually(t, "migrations use the managed database", func() error {
		if got := envRef(getDeployment(t, ns).Spec.Template.Spec.InitContainers[0], "DATABASE_DIRECT_URL"); got != "auth-connection/database-direct-url" {
			return fmt.Errorf("DATABASE_DIRECT_URL %s", got)
		}
		return nil
	})
	// Managed -> external: the StatefulSet and Service go, the password Secret stays.
	updateStack(t, ns, func(s *authv1alpha1.AuthStack) {
		s.Spec.Database = authv1alpha1.DatabaseSpec{URLSecretRef: &authv1alpha1.SecretKeyRef{Name: "db", Key: "url"}}
	})
	gone(t, ns, "auth-postgres", &appsv1.StatefulSet{})
	gone(t, ns, "auth-postgres", &corev1.Service{})
	gone(t, ns, "auth-postgres", &networkingv1.NetworkPolicy{})
	get(t, ns, "auth-postgres-password", &corev1.Secret{})
	waitCondition(t, ns, authv1alpha1.ConditionDatabaseReady, metav1.ConditionTrue, authv1alpha1.ReasonExternal)
}

func TestRedisConfigChangesRollRedisAndAuthServer(t *testing.T) {
	t.Parallel()
	ns, _ := setupStack(t, dataTierStack)
	ctx := context.Background()
	hash := func(obj client.Object, name string) string {
		if err := k8s.Get(ctx, key(ns, name), obj); err != nil {
			return "error: " + err.Error()
		}
		switch o := obj.(type) {
		case *appsv1.StatefulSet:
			return o.Spec.Template.Annotations[resources.AnnotationConfigHash]
		case *appsv1.Deployment:
			return o.Spec.Template.Annotations[resources.AnnotationConfigHash]
		}
		return ""
	}
	get(t, ns, "auth-redis", &appsv1.StatefulSet{})
	getDeployment(t, ns)
	redisBefore, authBefore := hash(&appsv1.StatefulSet{}, "auth-redis"), hash(&appsv1.Deployment{}, "auth-authserver")

	// A setting: redis.conf changes and Redis rolls; the authserver does not.
	updateStack(t, ns, func(s *authv1alpha1.AuthStack) { s.Spec.Redis.MaxMemory = "512mb" })
	eventually(t, "redis.conf and the Redis pods follow maxMemory", func() error {
		cm := &corev1.ConfigMap{}
		if err := k8s.Get(ctx, key(ns, "auth-redis"), cm); err != nil {
			return err
		}
		if !strings.Contains(cm.Data["redis.conf"], "maxmemory 512mb\n") {
			return fmt.Errorf("redis.conf not updated")
		}
		if h := hash(&appsv1.StatefulSet{}, "auth-redis"); h == redisBefore {
			return fmt.Errorf("Redis pods not rolled")
		}
		return nil
	})
	if h := hash(&appsv1.Deployment{}, "auth-authserver"); h != authBefore {
		t.Error("a Redis setting rolled the authserver")
	}

	// The password, rotated by a person: Redis and the authserver roll, both get it.
	redisBefore = hash(&appsv1.StatefulSet{}, "auth-redis")
	pw := &corev1.Secret{}
	if err := k8s.Get(ctx, key(ns, "auth-redis-password"), pw); err != nil {
		t.Fatal(err)
	}
	pw.Data["password"] = []byte("rotated-by-hand-0123456789")
	if err := k8s.Update(ctx, pw); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the rotated password reaches Redis and the authserver", func() error {
		auth, conn := &corev1.Secret{}, &corev1.Secret{}
		if err := k8s.Get(ctx, key(ns, "auth-redis-auth"), auth); err != nil {
			return err
		}
		if err := k8s.Get(ctx, key(ns, "auth-connection"), conn); err != nil {
			return err
		}
		if !strings.Contains(string(auth.Data["auth.conf"]), "rotated-by-hand-0123456789") ||
			!strings.Contains(string(conn.Data["redis-url"]), "rotated-by-hand-0123456789") {
			return fmt.Errorf("auth.conf or redis-url not updated")
		}
		if hash(&appsv1.StatefulSet{}, "auth-redis") == redisBefore || hash(&appsv1.Deployment{}, "auth-authserver") == authBefore {
			return fmt.Errorf("pods not rolled")
		}
		return nil
	})
	// The operator never rewrote the password Secret.
	again := &corev1.Secret{}
	if err := k8s.Get(ctx, key(ns, "auth-redis-password"), again); err != nil || string(again.Data["password"]) != "rotated-by-hand-0123456789" {
		t.Errorf("the password Secret changed behind the person's back (err %v)", err)
	}
}
