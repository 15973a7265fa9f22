package resources

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	authv1alpha1 "github.com/leanauth/authstack/api/v1alpha1"
)

// PepperBytes is the size of a generated pepper.
const PepperBytes = 32

// NewPepper returns a fresh random pepper, hex-encoded.
func NewPepper() ([]byte, error) {
	raw := make([]byte, PepperBytes)
	if _, err := rand.Read(raw); err != nil {
		return nil, fmt.Errorf("reading random bytes for the pepper: %w", err)
	}
	return []byte(hex.EncodeToString(raw)), nil
}

// PepperSecret renders the generated pepper Secret. It deliberately has no owner
// reference, so deleting the AuthStack keeps it (losing the pepper locks every user
// out), and it is immutable, so nobody rewrites it by accident. The operator creates
// it once and never updates or deletes it.
func PepperSecret(stack *authv1alpha1.AuthStack, pepper []byte) *corev1.Secret {
	return &corev1.Secret{
		TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Secret"},
		ObjectMeta: metav1.ObjectMeta{
			Name:      PepperSecretName(stack),
			Namespace: stack.Namespace,
			Labels:    Labels(stack, ComponentPepper),
			Annotations: map[string]string{
				AnnotationRetain: "true",
				"auth.leanauth.dev/note": "The password pepper of AuthStack " + stack.Name +
					". Never deleted by the operator. Deleting it makes every stored password unusable.",
			},
		},
		Type:      corev1.SecretTypeOpaque,
		Immutable: ptr.To(true),
		Data:      map[string][]byte{PepperSecretKey: pepper},
	}
}

// DecodePepper returns a valid pepper's key bytes (what the authserver derives its id from).
func DecodePepper(v []byte) ([]byte, error) {
	return hex.DecodeString(strings.TrimSpace(string(v)))
}

// ValidPepper says whether a pepper value is usable: exactly what the authserver
// accepts (authserver/config.ParsePepper), 32 bytes as 64 hex characters, surrounding
// whitespace ignored. Anything else would pass here and crash-loop every pod.
func ValidPepper(v []byte) bool {
	s := strings.TrimSpace(string(v))
	if len(s) != 2*PepperBytes {
		return false
	}
	_, err := hex.DecodeString(s)
	return err == nil
}

// PepperMismatchExitCode is the exit code of `authserver migrate` when the stored
// password hashes use none of the pods' peppers (authserver/app.ExitPepperMismatch).
const PepperMismatchExitCode = 3

// MigrateContainerName names the authserver's migration init container.
const MigrateContainerName = "migrate"

// PepperMismatch returns the termination message of the first pod whose migrate init
// container refused the pepper (now, or in its last run while it waits to restart),
// and the pod's name. A last run that a later run superseded (the container is running
// again or has since succeeded: the kubelet keeps lastState) does not count, nor do
// deleted pods, nor pods that are not the Deployment's (controlled by a ReplicaSet
// named deployment-<hash>): any pod can carry the labels.
func PepperMismatch(pods []corev1.Pod, deployment string) (pod, message string, ok bool) {
	for _, p := range pods {
		owner := metav1.GetControllerOf(&p)
		if p.DeletionTimestamp != nil || owner == nil || owner.Kind != "ReplicaSet" || !strings.HasPrefix(owner.Name, deployment+"-") {
			continue
		}
		for _, cs := range p.Status.InitContainerStatuses {
			if cs.Name != MigrateContainerName {
				continue
			}
			term := cs.State.Terminated
			if cs.State.Waiting != nil {
				term = cs.LastTerminationState.Terminated
			}
			if term != nil && term.ExitCode == PepperMismatchExitCode {
				return p.Name, strings.TrimSpace(term.Message), true
			}
		}
	}
	return "", "", false
}
