package resources

// Promises of the documentation, tied to the code that keeps them: each test reads
// the claim from the document and checks it against the builder or constant.

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"

	authv1alpha1 "github.com/leanauth/authstack/api/v1alpha1"
)

func readDoc(t *testing.T, rel string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", rel))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestDocsSecretsAsFiles: docs/security.md says which referenced Secrets the pods get
// as files (the pepper and the backup public key) and that the rest come from env
// references; the rendered pods do exactly that.
func TestDocsSecretsAsFiles(t *testing.T) {
	doc := strings.Join(strings.Fields(readDoc(t, "docs/security.md")), " ")
	const claim = "three of them as mounted files: the pepper, the backup public key and the backups' signing key (`AUTH_PEPPER_FILE`, `BACKUP_PUBLIC_KEY_FILE`, `BACKUP_SIGNING_KEY_FILE`); the others as environment variables the kubelet fills from the Secret (`valueFrom.secretKeyRef`)"
	if !strings.Contains(doc, claim) {
		t.Fatalf("docs/security.md no longer says %q: update this test with the doc", claim)
	}
	s := withBackup(sampleStack())
	in := sampleInputs(s)
	specs := []corev1.PodSpec{AuthServerDeployment(s, in).Spec.Template.Spec}
	cronJobs, _ := BackupCronJobs(s, DefaultBackupSources(s, in))
	for _, cj := range cronJobs {
		specs = append(specs, cj.Spec.JobTemplate.Spec.Template.Spec)
	}
	files, envs := map[authv1alpha1.SecretKeyRef]bool{}, map[authv1alpha1.SecretKeyRef]bool{}
	for _, spec := range specs {
		for _, v := range spec.Volumes {
			if v.Secret != nil {
				for _, item := range v.Secret.Items {
					files[authv1alpha1.SecretKeyRef{Name: v.Secret.SecretName, Key: item.Key}] = true
				}
			}
		}
		for _, c := range append(slices.Clone(spec.InitContainers), spec.Containers...) {
			if len(c.EnvFrom) > 0 {
				t.Errorf("container %s uses envFrom, which the doc does not mention", c.Name)
			}
			for _, e := range c.Env {
				if e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil {
					envs[authv1alpha1.SecretKeyRef{Name: e.ValueFrom.SecretKeyRef.Name, Key: e.ValueFrom.SecretKeyRef.Key}] = true
				}
			}
		}
	}
	wantFiles := map[authv1alpha1.SecretKeyRef]bool{PepperRef(s): true, s.Spec.Backup.Encryption.PublicKeySecretRef: true,
		{Name: BackupSigningSecretName(s), Key: BackupSigningKeyKey}: true}
	if fmt.Sprint(files) != fmt.Sprint(wantFiles) {
		t.Errorf("Secrets mounted as files: %v, the doc says only %v", files, wantFiles)
	}
	for _, ref := range []authv1alpha1.SecretKeyRef{*s.Spec.Database.URLSecretRef, *s.Spec.Redis.URLSecretRef, *s.Spec.SMTP.PasswordSecretRef} {
		if !envs[ref] {
			t.Errorf("Secret %s key %s does not reach the pods as a secretKeyRef env var", ref.Name, ref.Key)
		}
	}
}

// TestDocsPostgresImage: the managed PostgreSQL image the docs name is the one rendered.
func TestDocsPostgresImage(t *testing.T) {
	s := sampleStack()
	s.Spec.Database = authv1alpha1.DatabaseSpec{Managed: &authv1alpha1.ManagedDatabaseSpec{Version: "16"}}
	pattern := strings.Replace(PostgresImage(s), "16", "<version>", 1)
	for _, doc := range []string{"docs/data-tier.md", "docs/reference.md"} {
		text := readDoc(t, doc)
		if !strings.Contains(text, pattern) {
			t.Errorf("%s does not name the image %s", doc, pattern)
		}
		for _, m := range regexp.MustCompile(`postgres:<version>-[a-z0-9]+`).FindAllString(text, -1) {
			if !strings.HasSuffix(pattern, m) {
				t.Errorf("%s names %s, the operator runs %s", doc, m, pattern)
			}
		}
	}
}

// TestDocsPepperFormat: every place that tells a user how to bring a pepper states
// what the authserver and ValidPepper accept: exactly 64 hex characters.
func TestDocsPepperFormat(t *testing.T) {
	want := fmt.Sprintf("%d hex characters", 2*PepperBytes)
	for _, doc := range []string{"config/samples/auth_v1alpha1_authstack.yaml", "docs/authserver.md", "docs/reference.md"} {
		text := readDoc(t, doc)
		if !strings.Contains(text, want) {
			t.Errorf("%s does not say the pepper is %s", doc, want)
		}
		if regexp.MustCompile(`(?i)at least\s+(#\s*)?32 bytes`).MatchString(text) {
			t.Errorf("%s says the pepper may be longer than 32 bytes; ValidPepper wants exactly %s", doc, want)
		}
	}
	if !ValidPepper([]byte(strings.Repeat("ab", PepperBytes))) || ValidPepper([]byte(strings.Repeat("ab", PepperBytes+1))) {
		t.Error("ValidPepper does not accept exactly 64 hex characters")
	}
}

// TestIngressPathServesTheAPI: the only Ingress path the CRD accepts (/auth, its
// default) is the prefix of every public route of the authserver's API.
func TestIngressPathServesTheAPI(t *testing.T) {
	s := sampleStack()
	s.Spec.Ingress.Path = ""
	prefix := ingressPath(s)
	var routes int
	for _, m := range regexp.MustCompile(`(?m)^  (/[^:]*):`).FindAllStringSubmatch(readDoc(t, "authserver/httpapi/openapi.yaml"), -1) {
		switch p := m[1]; p {
		case "/health", "/ready", "/openapi.yaml": // probes and the spec itself: not routed by the Ingress
		default:
			routes++
			if !strings.HasPrefix(p, prefix+"/") {
				t.Errorf("route %s is not under the Ingress path %s", p, prefix)
			}
		}
	}
	if routes < 10 {
		t.Fatalf("found %d routes in openapi.yaml", routes)
	}
	if crd := readDoc(t, "config/crd/bases/auth.leanauth.dev_authstacks.yaml"); !strings.Contains(crd, "rule: self == '"+prefix+"'") {
		t.Errorf("the CRD does not pin spec.ingress.path to %s", prefix)
	}
}
