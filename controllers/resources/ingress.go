package resources

import (
	"strings"

	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	authv1alpha1 "github.com/leanauth/authstack/api/v1alpha1"
)

// Ingress annotations.
const (
	AnnotationClusterIssuer    = "cert-manager.io/cluster-issuer"
	AnnotationSSLRedirect      = "nginx.ingress.kubernetes.io/ssl-redirect"
	AnnotationForceSSLRedirect = "nginx.ingress.kubernetes.io/force-ssl-redirect"
)

// IngressClassNginx is ingress-nginx's class: only it gets the nginx annotations.
const IngressClassNginx = "nginx"

// AuthServerIngress renders the Ingress, or nil when it is disabled. TLS is always on:
// an auth endpoint is never served in clear text (ingress-nginx is also told to
// redirect plain HTTP; other controllers redirect per their own settings).
func AuthServerIngress(stack *authv1alpha1.AuthStack) *networkingv1.Ingress {
	spec := stack.Spec.Ingress
	if !spec.Enabled {
		return nil
	}
	meta := objectMeta(stack, AuthServerName(stack), ComponentAuthServer)
	ours := map[string]string{}
	if spec.ClassName == IngressClassNginx {
		ours[AnnotationSSLRedirect] = "true"
		ours[AnnotationForceSSLRedirect] = "true"
	}
	if spec.TLS != nil && spec.TLS.ClusterIssuer != "" {
		ours[AnnotationClusterIssuer] = spec.TLS.ClusterIssuer
	}
	if a := merged(spec.Annotations, ours); len(a) > 0 {
		meta.Annotations = a
	}
	var className *string
	if spec.ClassName != "" {
		className = ptr.To(spec.ClassName)
	}
	return &networkingv1.Ingress{
		TypeMeta:   metav1.TypeMeta{APIVersion: "networking.k8s.io/v1", Kind: "Ingress"},
		ObjectMeta: meta,
		Spec: networkingv1.IngressSpec{
			IngressClassName: className,
			TLS:              []networkingv1.IngressTLS{{Hosts: []string{spec.Host}, SecretName: TLSSecretName(stack)}},
			Rules: []networkingv1.IngressRule{{
				Host: spec.Host,
				IngressRuleValue: networkingv1.IngressRuleValue{HTTP: &networkingv1.HTTPIngressRuleValue{
					Paths: []networkingv1.HTTPIngressPath{{
						Path:     ingressPath(stack),
						PathType: ptr.To(networkingv1.PathTypePrefix),
						Backend: networkingv1.IngressBackend{Service: &networkingv1.IngressServiceBackend{
							Name: AuthServerName(stack),
							Port: networkingv1.ServiceBackendPort{Name: PortNameHTTP},
						}},
					}},
				}},
			}},
		},
	}
}

func ingressPath(stack *authv1alpha1.AuthStack) string {
	if p := stack.Spec.Ingress.Path; p != "" {
		return p
	}
	return "/auth"
}

// PublicURL is where clients reach the authserver: the Ingress when enabled, else the
// first hostname of the HTTPRoute (https: TLS is the Gateway's), else the Service.
func PublicURL(stack *authv1alpha1.AuthStack) string {
	if stack.Spec.Ingress.Enabled {
		return "https://" + stack.Spec.Ingress.Host + ingressPath(stack)
	}
	if gw := stack.Spec.Gateway; gw.Enabled && len(gw.Hostnames) > 0 && !strings.HasPrefix(gw.Hostnames[0], "*") {
		return "https://" + gw.Hostnames[0] + gatewayPath(stack)
	}
	return InClusterURL(stack)
}
