//go:build realnode

package realnode

import (
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// NewNamespace creates a namespace that enforces Pod Security "restricted"
// (the API server rejects any other pod there) and deletes it after the test.
func NewNamespace(t *testing.T, prefix string) string {
	t.Helper()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{
		GenerateName: prefix + "-",
		Labels:       map[string]string{"pod-security.kubernetes.io/enforce": "restricted"},
	}}
	if err := env.c.Create(Ctx(t), ns); err != nil {
		t.Fatalf("creating a namespace: %v", err)
	}
	t.Cleanup(func() {
		if t.Failed() { // the kubelet deletes a pod's logs with the pod
			keepPodLogs(ns.Name)
		}
		_ = env.c.Delete(Ctx(t), ns)
	})
	return ns.Name
}

// keepPodLogs copies the container logs of a namespace's pods to
// failed-pod-logs in the kept state folder.
func keepPodLogs(ns string) {
	dirs, _ := filepath.Glob(filepath.Join(env.state, "node", "pod-logs", ns+"_*"))
	for _, d := range dirs {
		_ = os.CopyFS(filepath.Join(env.dir, "failed-pod-logs", filepath.Base(d)), os.DirFS(d))
	}
}

// RestrictedSecurityContext is a container security context that Pod Security
// "restricted" admits.
func RestrictedSecurityContext() *corev1.SecurityContext {
	return &corev1.SecurityContext{
		RunAsNonRoot:             ptr.To(true),
		RunAsUser:                ptr.To[int64](65532),
		AllowPrivilegeEscalation: ptr.To(false),
		ReadOnlyRootFilesystem:   ptr.To(true),
		Capabilities:             &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
		SeccompProfile:           &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
	}
}

// Agent is a netcheck pod: the test sends it requests from the host, and it
// dials, fetches or resolves from inside the pod network.
type Agent struct {
	Namespace, Name string
	Pod             *corev1.Pod
}

// AgentPort is the port netcheck serves on.
const AgentPort = 8080

// AgentPod is the pod spec of an agent with these labels (ready when it serves).
func AgentPod(namespace, name string, labels map[string]string) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: name, Labels: labels},
		Spec: corev1.PodSpec{
			TerminationGracePeriodSeconds: ptr.To[int64](1),
			AutomountServiceAccountToken:  ptr.To(false),
			Containers: []corev1.Container{{
				Name:            "netcheck",
				Image:           NetcheckImage,
				ImagePullPolicy: corev1.PullNever,
				Args:            []string{"serve", fmt.Sprintf(":%d", AgentPort)},
				Ports:           []corev1.ContainerPort{{Name: "http", ContainerPort: AgentPort}},
				ReadinessProbe: &corev1.Probe{
					ProbeHandler:  corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/", Port: intstr.FromInt32(AgentPort)}},
					PeriodSeconds: 1,
				},
				Resources: corev1.ResourceRequirements{
					Requests: corev1.ResourceList{"cpu": resourceQuantity("5m"), "memory": resourceQuantity("16Mi")},
					Limits:   corev1.ResourceList{"memory": resourceQuantity("32Mi")},
				},
				SecurityContext: RestrictedSecurityContext(),
			}},
		},
	}
}

// StartAgent runs an agent pod and waits until its container runs and serves.
func StartAgent(t *testing.T, namespace, name string, labels map[string]string) *Agent {
	t.Helper()
	pod := AgentPod(namespace, name, labels)
	if err := env.c.Create(Ctx(t), pod); err != nil {
		t.Fatalf("creating the agent pod %s: %v", name, err)
	}
	a := &Agent{Namespace: namespace, Name: name}
	a.Pod = WaitPodReady(t, namespace, name, 3*time.Minute)
	return a
}

// WaitPodReady waits until every container of the pod runs and is ready, and
// returns the pod.
func WaitPodReady(t *testing.T, namespace, name string, timeout time.Duration) *corev1.Pod {
	t.Helper()
	var pod corev1.Pod
	Eventually(t, timeout, "pod "+namespace+"/"+name+" running and ready", func() error {
		if err := env.c.Get(Ctx(t), client.ObjectKey{Namespace: namespace, Name: name}, &pod); err != nil {
			return err
		}
		if len(pod.Status.ContainerStatuses) == 0 {
			return fmt.Errorf("phase %s, no container status yet (%s)", pod.Status.Phase, podConditions(&pod))
		}
		for _, cs := range pod.Status.ContainerStatuses {
			if cs.State.Running == nil || !cs.Ready {
				return fmt.Errorf("container %s: running=%v ready=%v waiting=%v terminated=%v; log: %s",
					cs.Name, cs.State.Running != nil, cs.Ready, cs.State.Waiting, cs.State.Terminated,
					lastLines(ContainerLog(namespace, name, cs.Name), 5))
			}
		}
		return nil
	})
	return &pod
}

func podConditions(p *corev1.Pod) string {
	var parts []string
	for _, c := range p.Status.Conditions {
		parts = append(parts, fmt.Sprintf("%s=%s %s", c.Type, c.Status, c.Message))
	}
	return strings.Join(parts, "; ")
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, " | ")
}

func (a *Agent) call(path string, q url.Values) (string, error) {
	status, body, err := httpGet(fmt.Sprintf("http://%s:%d%s?%s", a.Pod.Status.PodIP, AgentPort, path, q.Encode()))
	if err != nil {
		return "", fmt.Errorf("asking agent %s: %w", a.Name, err)
	}
	if status != 200 {
		return "", fmt.Errorf("from %s: %s", a.Name, strings.TrimSpace(body))
	}
	return strings.TrimSpace(body), nil
}

// Dial opens a TCP connection to addr (host:port) from inside the agent's pod.
func (a *Agent) Dial(addr string) error {
	_, err := a.call("/dial", url.Values{"addr": {addr}})
	return err
}

// Get fetches url from inside the agent's pod and returns the body.
func (a *Agent) Get(u string) (string, error) {
	return a.call("/get", url.Values{"url": {u}})
}

// Resolve looks name up in DNS from inside the agent's pod.
func (a *Agent) Resolve(name string) (string, error) {
	return a.call("/resolve", url.Values{"name": {name}})
}

// ExpectReach waits until the agent reaches addr; ExpectBlocked until it
// cannot (the enforcer applies policies asynchronously). kube-router rejects a
// blocked connection, which looks like a closed port: a test that expects a
// block shows, in the same state, another pod reaching the same address.
func (a *Agent) ExpectReach(t *testing.T, addr string) {
	t.Helper()
	Eventually(t, 60*time.Second, a.Name+" reaches "+addr, func() error { return a.Dial(addr) })
}

func (a *Agent) ExpectBlocked(t *testing.T, addr string) {
	t.Helper()
	Eventually(t, 60*time.Second, a.Name+" is blocked from "+addr, func() error {
		if err := a.Dial(addr); err == nil {
			return fmt.Errorf("connected")
		}
		return nil
	})
}

// DeletePod removes a pod now (no grace) and ignores a missing one.
func DeletePod(t *testing.T, namespace, name string) {
	t.Helper()
	p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: name}}
	if err := env.c.Delete(Ctx(t), p, client.GracePeriodSeconds(0)); err != nil && !apierrors.IsNotFound(err) {
		t.Fatalf("deleting pod %s: %v", name, err)
	}
}

func resourceQuantity(s string) resource.Quantity { return resource.MustParse(s) }
