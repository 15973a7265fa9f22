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
	)
}
