package resources

import (
	policyv1 "k8s.io/api/policy/v1"

	authv1alpha1 "github.com/leanauth/authstack/api/v1alpha1"
)

// AuthServerPDB renders the PodDisruptionBudget of the authserver: at most one pod
// evicted at a time, whatever the replica count; pods that never became ready may
// always be evicted, so a broken rollout never blocks a node drain.
func AuthServerPDB(stack *authv1alpha1.AuthStack) *policyv1.PodDisruptionBudget {
	return podDisruptionBudget(stack, AuthServerName(stack), ComponentAuthServer)
}
