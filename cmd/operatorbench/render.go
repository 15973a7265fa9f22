package main

import (
	"fmt"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	authv1alpha1 "github.com/leanauth/authstack/api/v1alpha1"
	"github.com/leanauth/authstack/controllers/resources"
)

// The AuthStack every namespace gets: an external PostgreSQL and Redis (URLs in
// Secrets), the pgbouncer pooler, SMTP, an Ingress and the NetworkPolicies; one
// authserver and one pgbouncer replica, no HPA. So each stack is 2 Deployments and 2
// pods, and the time to Ready is the operator's work plus the cluster's, not a
// scheduler queue of thousands of pods.
const (
	authServerImage = "ghcr.io/leanauth/authserver:bench"
	dbSecret        = "db"
	redisSecret     = "redis"
	smtpSecret      = "smtp"
)

// userSecretData is what the user creates before the stacks: the values are
// placeholders (kwok runs no container, nothing connects).
var userSecretData = map[string]map[string]string{
	dbSecret:    {"url": "postgres://authstack:pw-bench@postgres.databases.svc:5432/auth?sslmode=require"},
	redisSecret: {"url": "redis://:pw-bench@redis.caches.svc:6379/0"},
	smtpSecret:  {"password": "smtp-bench"},
}

func benchSpec() authv1alpha1.AuthStackSpec {
	return authv1alpha1.AuthStackSpec{
		AuthServer: authv1alpha1.AuthServerSpec{
			FrontendURL: "https://app.example.com",
			Replicas:    ptr.To[int32](1),
			Autoscaling: authv1alpha1.AutoscalingSpec{Enabled: ptr.To(false)},
		},
		Database: authv1alpha1.DatabaseSpec{URLSecretRef: &authv1alpha1.SecretKeyRef{Name: dbSecret, Key: "url"}},
		Redis:    authv1alpha1.RedisSpec{URLSecretRef: &authv1alpha1.SecretKeyRef{Name: redisSecret, Key: "url"}},
		Pooler:   authv1alpha1.PoolerSpec{Replicas: 1},
		SMTP: authv1alpha1.SMTPSpec{Host: "smtp.example.com", Port: 587, Username: "mailer",
			PasswordSecretRef: &authv1alpha1.SecretKeyRef{Name: smtpSecret, Key: "password"}},
		Ingress: authv1alpha1.IngressSpec{Enabled: true, Host: "auth.example.com",
			TLS: &authv1alpha1.IngressTLS{ClusterIssuer: "letsencrypt"}},
	}
}

// benchStack is stack number i in namespace ns, with spec as the API server defaulted it.
func benchStack(ns string, i int, spec authv1alpha1.AuthStackSpec) *authv1alpha1.AuthStack {
	return &authv1alpha1.AuthStack{
		TypeMeta:   metav1.TypeMeta{APIVersion: authv1alpha1.GroupVersion.String(), Kind: "AuthStack"},
		ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("s%03d", i), Namespace: ns},
		Spec:       *spec.DeepCopy(),
	}
}

// userSecrets renders the Secrets the stacks of one namespace reference.
func userSecrets(ns string) []*corev1.Secret {
	var out []*corev1.Secret
	for _, name := range []string{dbSecret, redisSecret, smtpSecret} {
		out = append(out, &corev1.Secret{
			TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Secret"},
			ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
			StringData: userSecretData[name],
		})
	}
	return out
}

// renderStack renders, with the operator's own builders (controllers/resources), the
// objects the operator applies for stack, in the order it applies them: what a plain
// client has to write to get the same result. It supports the data tier of benchSpec
// (external database and Redis) only. The objects carry no owner reference: without an
// AuthStack the garbage collector would delete them.
func renderStack(stack *authv1alpha1.AuthStack, pepper []byte) ([]client.Object, error) {
	if resources.ManagedDatabase(stack) || resources.ManagedRedis(stack) || stack.Spec.Backup != nil || resources.MonitoringEnabled(stack) {
		return nil, fmt.Errorf("renderStack supports external PostgreSQL and Redis without backups or monitoring only")
	}
	values := map[authv1alpha1.SecretKeyRef][]byte{resources.PepperRef(stack): pepper}
	for _, use := range resources.ReferencedSecrets(stack) {
		if d, ok := userSecretData[use.Ref.Name]; ok {
			values[use.Ref] = []byte(d[use.Ref.Key])
		}
	}
	db, err := resources.ParseDatabaseURL(string(values[*stack.Spec.Database.URLSecretRef]))
	if err != nil {
		return nil, err
	}
	uses := resources.ReferencedSecrets(stack)
	in := resources.Inputs{
		AuthServerImage: authServerImage,
		Pepper:          resources.PepperRef(stack),
		ConfigHash:      resources.ConfigHash(uses, values),
	}

	objs := []client.Object{resources.PepperSecret(stack, pepper)}
	if resources.PoolerEnabled(stack) {
		cfg := resources.PgBouncerConfigSecret(stack, db)
		in.PoolerConfigHash = resources.SecretDataHash(cfg.Data)
		objs = append(objs, cfg, resources.PgBouncerService(stack), resources.PgBouncerDeployment(stack, in), resources.PgBouncerPDB(stack))
	}
	redisURL := string(values[*stack.Spec.Redis.URLSecretRef])
	for _, np := range resources.NetworkPolicies(stack, resources.NetworkPolicyPorts{Database: db.Port, Redis: resources.ExternalRedisPort(redisURL)}) {
		objs = append(objs, np)
	}
	if sec := resources.ConnectionSecret(stack, resources.ConnectionFor(stack, db, "")); sec != nil {
		objs = append(objs, sec)
	}
	objs = append(objs, resources.AuthServerService(stack), resources.AuthServerPDB(stack), resources.AuthServerDeployment(stack, in))
	if hpa := resources.AuthServerHPA(stack); hpa != nil {
		objs = append(objs, hpa)
	}
	if ing := resources.AuthServerIngress(stack); ing != nil {
		objs = append(objs, ing)
	}
	for _, o := range objs {
		o.SetOwnerReferences(nil)
	}
	return objs, nil
}

// podsPerStack counts the pods the rendered Deployments run.
func podsPerStack(objs []client.Object) int {
	n := 0
	for _, o := range objs {
		if d, ok := o.(*appsv1.Deployment); ok {
			n += int(ptr.Deref(d.Spec.Replicas, 1))
		}
	}
	return n
}
