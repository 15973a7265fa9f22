package resources

import (
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	authv1alpha1 "github.com/leanauth/authstack/api/v1alpha1"
)

// The data tier's PodSpecs join the Pod Security "restricted" table of security_test.go.
func init() {
	podRenderers = append(podRenderers,
		podRenderer{"pgbouncer Deployment", func(s *authv1alpha1.AuthStack, in Inputs) (metav1.ObjectMeta, corev1.PodSpec) {
			d := PgBouncerDeployment(s, in)
			return d.Spec.Template.ObjectMeta, d.Spec.Template.Spec
		}},
		podRenderer{"redis StatefulSet (standalone)", func(s *authv1alpha1.AuthStack, in Inputs) (metav1.ObjectMeta, corev1.PodSpec) {
			s.Spec.Redis.URLSecretRef = nil
			st := RedisStatefulSet(s, in)
			return st.Spec.Template.ObjectMeta, st.Spec.Template.Spec
		}},
		podRenderer{"redis StatefulSet (cluster)", func(s *authv1alpha1.AuthStack, in Inputs) (metav1.ObjectMeta, corev1.PodSpec) {
			s.Spec.Redis = authv1alpha1.RedisSpec{Mode: authv1alpha1.RedisCluster, Shards: 3, ReplicasPerShard: 1}
			st := RedisStatefulSet(s, in)
			return st.Spec.Template.ObjectMeta, st.Spec.Template.Spec
		}},
		podRenderer{"managed PostgreSQL StatefulSet", func(s *authv1alpha1.AuthStack, in Inputs) (metav1.ObjectMeta, corev1.PodSpec) {
			s.Spec.Database = authv1alpha1.DatabaseSpec{Managed: &authv1alpha1.ManagedDatabaseSpec{Version: "16"}}
			st := PostgresStatefulSet(s)
			return st.Spec.Template.ObjectMeta, st.Spec.Template.Spec
		}},
		podRenderer{"redis cluster bootstrap Job", func(s *authv1alpha1.AuthStack, in Inputs) (metav1.ObjectMeta, corev1.PodSpec) {
			s.Spec.Redis = authv1alpha1.RedisSpec{Mode: authv1alpha1.RedisCluster, Shards: 3, ReplicasPerShard: 1}
			j := RedisBootstrapJob(s, in)
			return j.Spec.Template.ObjectMeta, j.Spec.Template.Spec
		}},
	)
}
