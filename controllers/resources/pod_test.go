package resources

import (
	"testing"

	appsv1 "k8s.io/api/apps/v1"

	authv1alpha1 "github.com/leanauth/authstack/api/v1alpha1"
)

// TestDeploymentsLeaveTheServiceBeforeStopping: every Deployment the operator renders
// sits behind a Service and rolls one pod at a time, so each of its serving containers
// keeps serving PreStopDelaySeconds after its pod is marked terminating (a kubelet
// preStop sleep), and the grace period leaves the authserver its drain
// (AUTH_SHUTDOWN_TIMEOUT, 20 s) after that. Without the delay, the real node's rotation
// test saw three connections refused when the old authserver pod stopped.
func TestDeploymentsLeaveTheServiceBeforeStopping(t *testing.T) {
	s := sampleStack()
	s.Spec.Database = authv1alpha1.DatabaseSpec{Managed: &authv1alpha1.ManagedDatabaseSpec{Version: "16"}}
	in := sampleInputs(s)
	for _, tc := range []struct {
		dep   *appsv1.Deployment
		drain int64 // what the server needs after SIGTERM
	}{
		{AuthServerDeployment(s, in), 20},
		{PgBouncerDeployment(s, in), 0},
	} {
		spec := tc.dep.Spec.Template.Spec
		for _, c := range spec.Containers {
			if len(c.Ports) == 0 {
				continue
			}
			if c.Lifecycle == nil || c.Lifecycle.PreStop == nil || c.Lifecycle.PreStop.Sleep == nil ||
				c.Lifecycle.PreStop.Sleep.Seconds < PreStopDelaySeconds {
				t.Errorf("%s: container %s stops accepting as soon as its pod terminates (lifecycle %+v)", tc.dep.Name, c.Name, c.Lifecycle)
				continue
			}
			if grace := *spec.TerminationGracePeriodSeconds; grace < c.Lifecycle.PreStop.Sleep.Seconds+tc.drain {
				t.Errorf("%s: terminationGracePeriodSeconds %d < the preStop delay %d + the drain %d s", tc.dep.Name, grace, c.Lifecycle.PreStop.Sleep.Seconds, tc.drain)
			}
		}
	}
}
