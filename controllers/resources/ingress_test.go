package resources

import (
	"reflect"
	"strings"
	"testing"

	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/utils/ptr"

	authv1alpha1 "github.com/leanauth/authstack/api/v1alpha1"
)

func TestIngressDisabled(t *testing.T) {
	s := sampleStack()
	s.Spec.Ingress.Enabled = false
	if i := AuthServerIngress(s); i != nil {
		t.Errorf("Ingress rendered while disabled: %+v", i)
	}
	if got, want := PublicURL(s), "http://demo-authserver.team-a.svc:3000"; got != want {
		t.Errorf("PublicURL without Ingress = %q, want the in-cluster %q", got, want)
	}
}

func TestIngress(t *testing.T) {
	for _, tc := range []struct {
		name        string
		spec        authv1alpha1.IngressSpec
		class       *string
		path        string
		tlsSecret   string
		issuer      string
		wantURL     string
		wantNoIssue bool
	}{
		{
			name:      "issuer named",
			spec:      authv1alpha1.IngressSpec{Enabled: true, Host: "auth.example.com", Path: "/auth", ClassName: "nginx", TLS: &authv1alpha1.IngressTLS{ClusterIssuer: "letsencrypt"}},
			class:     ptr.To("nginx"),
			path:      "/auth",
			tlsSecret: "demo-tls",
			issuer:    "letsencrypt",
			wantURL:   "https://auth.example.com/auth",
		},
		{
			name:        "own certificate secret, no issuer",
			spec:        authv1alpha1.IngressSpec{Enabled: true, Host: "login.example.org", Path: "/auth", ClassName: "traefik", TLS: &authv1alpha1.IngressTLS{SecretName: "wildcard-cert"}},
			class:       ptr.To("traefik"),
			path:        "/auth",
			tlsSecret:   "wildcard-cert",
			wantURL:     "https://login.example.org/auth",
			wantNoIssue: true,
		},
		{
			name:        "no tls block, no class, no path: defaults",
			spec:        authv1alpha1.IngressSpec{Enabled: true, Host: "auth.example.com"},
			class:       nil,
			path:        "/auth",
			tlsSecret:   "demo-tls",
			wantURL:     "https://auth.example.com/auth",
			wantNoIssue: true,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := sampleStack()
			s.Spec.Ingress = tc.spec
			ing := AuthServerIngress(s)
			if ing == nil {
				t.Fatal("no Ingress while enabled")
			}
			if ing.APIVersion != "networking.k8s.io/v1" || ing.Kind != "Ingress" || ing.Name != "demo-authserver" || ing.Namespace != testNamespace {
				t.Errorf("Ingress = %s %s %s/%s", ing.APIVersion, ing.Kind, ing.Namespace, ing.Name)
			}
			if !reflect.DeepEqual(ing.Spec.IngressClassName, tc.class) {
				t.Errorf("className = %v, want %v", ptr.Deref(ing.Spec.IngressClassName, "<nil>"), ptr.Deref(tc.class, "<nil>"))
			}
			if len(ing.Spec.Rules) != 1 || ing.Spec.Rules[0].Host != tc.spec.Host || ing.Spec.Rules[0].HTTP == nil || len(ing.Spec.Rules[0].HTTP.Paths) != 1 {
				t.Fatalf("rules = %+v, want one rule for %s", ing.Spec.Rules, tc.spec.Host)
			}
			p := ing.Spec.Rules[0].HTTP.Paths[0]
			if p.Path != tc.path || ptr.Deref(p.PathType, "") != networkingv1.PathTypePrefix {
				t.Errorf("path = %q %v, want %q Prefix", p.Path, ptr.Deref(p.PathType, ""), tc.path)
			}
			if p.Backend.Service == nil || p.Backend.Service.Name != AuthServerService(s).Name || p.Backend.Service.Port.Name != PortNameHTTP {
				t.Errorf("backend = %+v, want the authserver Service's http port", p.Backend)
			}
			if want := []networkingv1.IngressTLS{{Hosts: []string{tc.spec.Host}, SecretName: tc.tlsSecret}}; !reflect.DeepEqual(ing.Spec.TLS, want) {
				t.Errorf("tls = %+v, want %+v", ing.Spec.TLS, want)
			}
			a := ing.Annotations
			nginx := tc.spec.ClassName == IngressClassNginx
			if got := a[AnnotationSSLRedirect] == "true" && a[AnnotationForceSSLRedirect] == "true"; got != nginx {
				t.Errorf("class %q: ssl-redirect annotations = %v, want them only for nginx", tc.spec.ClassName, a)
			}
			for k := range a {
				if !nginx && strings.HasPrefix(k, "nginx.ingress.kubernetes.io/") {
					t.Errorf("class %q carries the nginx annotation %s", tc.spec.ClassName, k)
				}
			}
			issuer, has := a[AnnotationClusterIssuer]
			if tc.wantNoIssue && has {
				t.Errorf("%s = %q set although no issuer is named", AnnotationClusterIssuer, issuer)
			}
			if !tc.wantNoIssue && issuer != tc.issuer {
				t.Errorf("%s = %q, want %q", AnnotationClusterIssuer, issuer, tc.issuer)
			}
			if got := PublicURL(s); got != tc.wantURL {
				t.Errorf("PublicURL = %q, want %q", got, tc.wantURL)
			}
		})
	}
}

// The Ingress path must route to the authserver's routes, which live under /auth.
func TestIngressDefaultPathServesAuthRoutes(t *testing.T) {
	s := sampleStack()
	s.Spec.Ingress.Path = ""
	if got := AuthServerIngress(s).Spec.Rules[0].HTTP.Paths[0].Path; got != "/auth" {
		t.Errorf("default path = %q, want /auth", got)
	}
}

// spec.ingress.annotations reach the Ingress; the operator's own win on conflict.
func TestIngressAnnotations(t *testing.T) {
	s := sampleStack()
	s.Spec.Ingress.Annotations = map[string]string{
		"traefik.ingress.kubernetes.io/router.tls": "true",
		AnnotationForceSSLRedirect:                 "false",
	}
	a := AuthServerIngress(s).Annotations
	if a["traefik.ingress.kubernetes.io/router.tls"] != "true" || a[AnnotationForceSSLRedirect] != "true" {
		t.Errorf("annotations = %v", a)
	}
	s.Spec.Ingress.ClassName = "traefik"
	s.Spec.Ingress.TLS = nil
	if a := AuthServerIngress(s).Annotations; len(a) != 2 || a[AnnotationForceSSLRedirect] != "false" {
		t.Errorf("traefik class: annotations = %v, want exactly the user's", a)
	}
}
