package resources

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	authv1alpha1 "github.com/leanauth/authstack/api/v1alpha1"
)

// objectMeta is the metadata of an object the stack owns: its labels and a controller
// reference, so Kubernetes garbage-collects it with the AuthStack.
func objectMeta(stack *authv1alpha1.AuthStack, name, component string) metav1.ObjectMeta {
	return metav1.ObjectMeta{
		Name:            name,
		Namespace:       stack.Namespace,
		Labels:          Labels(stack, component),
		OwnerReferences: []metav1.OwnerReference{OwnerReference(stack)},
	}
}

// OwnerReference is the controller reference to the stack.
func OwnerReference(stack *authv1alpha1.AuthStack) metav1.OwnerReference {
	return metav1.OwnerReference{
		APIVersion:         authv1alpha1.GroupVersion.String(),
		Kind:               "AuthStack",
		Name:               stack.Name,
		UID:                stack.UID,
		Controller:         ptr.To(true),
		BlockOwnerDeletion: ptr.To(true),
	}
}
