package resources

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	authv1alpha1 "github.com/leanauth/authstack/api/v1alpha1"
)

// randomHex returns n random bytes, hex-encoded.
func randomHex(n int) ([]byte, error) {
	raw := make([]byte, n)
	if _, err := rand.Read(raw); err != nil {
		return nil, fmt.Errorf("reading random bytes: %w", err)
	}
	return []byte(hex.EncodeToString(raw)), nil
}

// generatedSecret is a Secret the operator creates once and never updates or deletes,
// with no owner reference (it outlives the stack, like the data it protects).
func generatedSecret(stack *authv1alpha1.AuthStack, name, component, note string, data map[string][]byte) *corev1.Secret {
	return &corev1.Secret{
		TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Secret"},
		ObjectMeta: metav1.ObjectMeta{
			Name:      name,
			Namespace: stack.Namespace,
			Labels:    Labels(stack, component),
			Annotations: map[string]string{
				AnnotationRetain:         "true",
				"auth.leanauth.dev/note": note + " Never deleted by the operator.",
			},
		},
		Type: corev1.SecretTypeOpaque,
		Data: data,
	}
}
