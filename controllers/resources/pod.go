package resources

import (
	"cmp"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"

	authv1alpha1 "github.com/leanauth/authstack/api/v1alpha1"
)

// The parts every pod of the stack shares: one place for each.

// restrictedPod fills in what every pod spec of the stack has: no service account
// token, no service links, Pod Security "restricted", and the in-memory /tmp volume
// after its own volumes. Each container gets restrictedContainer.
func restrictedPod(spec corev1.PodSpec) corev1.PodSpec {
	spec.AutomountServiceAccountToken = ptr.To(false)
	spec.EnableServiceLinks = ptr.To(false)
	spec.SecurityContext = RestrictedPodSecurityContext()
	spec.Volumes = append(spec.Volumes, tmpVolume())
	for i := range spec.InitContainers {
		spec.InitContainers[i] = restrictedContainer(spec.InitContainers[i])
	}
	for i := range spec.Containers {
		spec.Containers[i] = restrictedContainer(spec.Containers[i])
	}
	return spec
}

// restrictedContainer fills in what every container has: the restricted security
// context (read-only root filesystem), IfNotPresent, and its logs as the termination
// message when it wrote none.
func restrictedContainer(c corev1.Container) corev1.Container {
	c.ImagePullPolicy = corev1.PullIfNotPresent
	c.SecurityContext = RestrictedContainerSecurityContext()
	c.TerminationMessagePolicy = corev1.TerminationMessageFallbackToLogsOnError
	return c
}

// tmpMount mounts the tmp volume at /tmp, the only writable path of a container.
var tmpMount = corev1.VolumeMount{Name: "tmp", MountPath: "/tmp"}

// tmpVolume is a small in-memory /tmp for a read-only root filesystem.
func tmpVolume() corev1.Volume {
	return corev1.Volume{Name: "tmp", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{
		Medium:    corev1.StorageMediumMemory,
		SizeLimit: ptr.To(resource.MustParse("16Mi")),
	}}}
}

// secretVolume mounts the Secret name (only items, when given) readable by the group.
func secretVolume(volume, name string, items ...corev1.KeyToPath) corev1.Volume {
	return corev1.Volume{Name: volume, VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{
		SecretName: name, Items: items, DefaultMode: ptr.To[int32](0o440),
	}}}
}

// image is the image rule of every workload: the spec's, else the operator's flag,
// else the built-in default.
func image(spec, operator, builtin string) string { return cmp.Or(spec, operator, builtin) }

// httpProbe probes the http port.
func httpProbe(path string, initialDelay, period, timeout int32) *corev1.Probe {
	return &corev1.Probe{
		ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{
			Path: path, Port: intstr.FromString(PortNameHTTP), Scheme: corev1.URISchemeHTTP,
		}},
		InitialDelaySeconds: initialDelay,
		PeriodSeconds:       period,
		TimeoutSeconds:      timeout,
		FailureThreshold:    3,
		SuccessThreshold:    1,
	}
}

// PreStopDelaySeconds is how long a server behind a Service keeps serving after its
// pod is marked terminating, before it gets SIGTERM and stops accepting: the time the
// EndpointSlice controller, kube-proxy and the proxies that route to pod addresses
// take to stop sending it new connections. Without it a rollout refuses the
// connections routed to the old pod in that moment (three in
// TestRealNodeDatabasePasswordRotation, test/realnode/dbrotation_test.go).
const PreStopDelaySeconds = 10

// leaveServiceFirst is the preStop hook of PreStopDelaySeconds (a kubelet sleep: no
// shell in the image needed).
func leaveServiceFirst() *corev1.Lifecycle {
	return &corev1.Lifecycle{PreStop: &corev1.LifecycleHandler{Sleep: &corev1.SleepAction{Seconds: PreStopDelaySeconds}}}
}

// tcpProbe checks that the named port accepts connections.
func tcpProbe(port string, initialDelay, period, failures int32) *corev1.Probe {
	return &corev1.Probe{
		ProbeHandler:        corev1.ProbeHandler{TCPSocket: &corev1.TCPSocketAction{Port: intstr.FromString(port)}},
		InitialDelaySeconds: initialDelay,
		PeriodSeconds:       period,
		TimeoutSeconds:      3,
		FailureThreshold:    failures,
		SuccessThreshold:    1,
	}
}

// topologySpread spreads the pods over nodes and zones, preferring but not requiring it,
// so a small cluster still schedules every replica.
func topologySpread(selector map[string]string) []corev1.TopologySpreadConstraint {
	var out []corev1.TopologySpreadConstraint
	for _, key := range []string{corev1.LabelHostname, corev1.LabelTopologyZone} {
		out = append(out, corev1.TopologySpreadConstraint{
			MaxSkew:           1,
			TopologyKey:       key,
			WhenUnsatisfiable: corev1.ScheduleAnyway,
			LabelSelector:     &metav1.LabelSelector{MatchLabels: selector},
		})
	}
	return out
}

// pvcRetention keeps the volumes when the StatefulSet goes, unless the spec says otherwise.
func pvcRetention(storage authv1alpha1.StorageSpec) *appsv1.StatefulSetPersistentVolumeClaimRetentionPolicy {
	whenDeleted := appsv1.RetainPersistentVolumeClaimRetentionPolicyType
	if storage.DeleteOnStackDeletion {
		whenDeleted = appsv1.DeletePersistentVolumeClaimRetentionPolicyType
	}
	return &appsv1.StatefulSetPersistentVolumeClaimRetentionPolicy{
		WhenDeleted: whenDeleted,
		WhenScaled:  appsv1.RetainPersistentVolumeClaimRetentionPolicyType,
	}
}

// DataVolumeName names the volume claim template of the StatefulSets; the claims are
// "<DataVolumeName>-<StatefulSet>-<ordinal>".
const DataVolumeName = "data"

// StorageClaimName names the data volume claim of pod ordinal of the StatefulSet sts.
func StorageClaimName(sts string, ordinal int32) string {
	return fmt.Sprintf("%s-%s-%d", DataVolumeName, sts, ordinal)
}

// StorageSize is the size the spec asks for.
func StorageSize(storage authv1alpha1.StorageSpec) resource.Quantity {
	if storage.Size != nil {
		return storage.Size.DeepCopy()
	}
	return resource.MustParse(authv1alpha1.DefaultStorageSize)
}

// volumeClaim renders the "data" volume claim template.
func volumeClaim(storage authv1alpha1.StorageSpec) corev1.PersistentVolumeClaim {
	// volumeClaimTemplates is an atomic list: the API server's defaults inside it
	// (volumeMode, status.phase) count as ours, so they are rendered here too, and
	// what it drops (the template's apiVersion and kind) is not, or every reconcile
	// would see a difference and write.
	return corev1.PersistentVolumeClaim{
		ObjectMeta: metav1.ObjectMeta{Name: DataVolumeName},
		Spec: corev1.PersistentVolumeClaimSpec{
			AccessModes:      []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
			StorageClassName: storage.StorageClassName,
			VolumeMode:       ptr.To(corev1.PersistentVolumeFilesystem),
			Resources:        corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: StorageSize(storage)}},
		},
		Status: corev1.PersistentVolumeClaimStatus{Phase: corev1.ClaimPending},
	}
}

// secretEnv is an environment variable read from a Secret key: values are never inlined.
func secretEnv(name string, ref authv1alpha1.SecretKeyRef) corev1.EnvVar {
	return corev1.EnvVar{Name: name, ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{
		LocalObjectReference: corev1.LocalObjectReference{Name: ref.Name},
		Key:                  ref.Key,
	}}}
}

// sortEnv sorts an environment by name, so the rendering is deterministic.
func sortEnv(env []corev1.EnvVar) []corev1.EnvVar {
	slices.SortFunc(env, func(a, b corev1.EnvVar) int { return strings.Compare(a.Name, b.Name) })
	return env
}

// SecretDataHash hashes a Secret's or ConfigMap's data, keys in order, for a pod
// template annotation.
func SecretDataHash(data map[string][]byte) string {
	var uses []SecretUse
	values := map[authv1alpha1.SecretKeyRef][]byte{}
	for _, k := range sortedKeys(data) {
		ref := authv1alpha1.SecretKeyRef{Key: k}
		uses = append(uses, SecretUse{Field: k, Ref: ref})
		values[ref] = data[k]
	}
	return ConfigHash(uses, values)
}

// rollingDeployment never goes below the replica count during a rollout: new pods
// come first (maxSurge), none is taken down before its replacement is ready.
func rollingDeployment(maxSurge intstr.IntOrString) appsv1.DeploymentStrategy {
	return appsv1.DeploymentStrategy{
		Type: appsv1.RollingUpdateDeploymentStrategyType,
		RollingUpdate: &appsv1.RollingUpdateDeployment{
			MaxUnavailable: ptr.To(intstr.FromInt32(0)),
			MaxSurge:       &maxSurge,
		},
	}
}

// podMeta is the pod template metadata of a component: its labels and the hash of
// the configuration its pods read (a change rolls them).
func podMeta(stack *authv1alpha1.AuthStack, component, configHash string) metav1.ObjectMeta {
	return metav1.ObjectMeta{
		Labels:      Labels(stack, component),
		Annotations: map[string]string{AnnotationConfigHash: configHash},
	}
}

// podDisruptionBudget allows one pod of the component down at a time, whatever the
// replica count; pods that never became ready may always be evicted, so a broken
// rollout never blocks a node drain.
func podDisruptionBudget(stack *authv1alpha1.AuthStack, name, component string) *policyv1.PodDisruptionBudget {
	return &policyv1.PodDisruptionBudget{
		TypeMeta:   metav1.TypeMeta{APIVersion: "policy/v1", Kind: "PodDisruptionBudget"},
		ObjectMeta: objectMeta(stack, name, component),
		Spec: policyv1.PodDisruptionBudgetSpec{
			MaxUnavailable:             ptr.To(intstr.FromInt32(1)),
			Selector:                   &metav1.LabelSelector{MatchLabels: SelectorLabels(stack, component)},
			UnhealthyPodEvictionPolicy: ptr.To(policyv1.AlwaysAllow),
		},
	}
}

// service renders the ClusterIP Service of a component (headless: clusterIP None).
func service(stack *authv1alpha1.AuthStack, name, component string, headless bool, ports ...corev1.ServicePort) *corev1.Service {
	svc := &corev1.Service{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Service"},
		ObjectMeta: objectMeta(stack, name, component),
		Spec: corev1.ServiceSpec{
			Type:     corev1.ServiceTypeClusterIP,
			Selector: SelectorLabels(stack, component),
			Ports:    ports,
		},
	}
	if headless {
		svc.Spec.ClusterIP = corev1.ClusterIPNone
	}
	return svc
}

// servicePort is a TCP port of a Service, targeting the container port of that name.
func servicePort(name string, port int32) corev1.ServicePort {
	return corev1.ServicePort{Name: name, Port: port, TargetPort: intstr.FromString(name), Protocol: corev1.ProtocolTCP}
}

// oneShotJobName names a one-shot Job (created once, never updated) after everything
// it carries: prefix, then a hash of the rendered Job without its name. A Job whose
// template would change is a new Job; the reconciler deletes the one it supersedes.
func oneShotJobName(prefix string, job *batchv1.Job) string {
	body, err := json.Marshal(job)
	if err != nil {
		panic(fmt.Sprintf("encoding a rendered Job: %v", err)) // a typed object always encodes
	}
	sum := sha256.Sum256(body)
	return prefix + "-" + hex.EncodeToString(sum[:])[:8]
}
