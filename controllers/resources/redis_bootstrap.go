package resources

// The Redis Cluster bootstrap: a one-shot Job that forms the cluster from the
// StatefulSet's pods, running redis_bootstrap.sh from the Redis ConfigMap.

import (
	_ "embed"
	"fmt"
	"strconv"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	authv1alpha1 "github.com/leanauth/authstack/api/v1alpha1"
)

//go:embed redis_bootstrap.sh
var redisBootstrapScript string

// RedisBootstrapName names the cluster bootstrap's NetworkPolicy, and prefixes its Job.
func RedisBootstrapName(stack *authv1alpha1.AuthStack) string {
	return stack.Name + "-redis-bootstrap"
}

// RedisBootstrapJobName names the bootstrap Job RedisBootstrapJob renders ("" outside
// cluster mode).
func RedisBootstrapJobName(stack *authv1alpha1.AuthStack, in Inputs) string {
	if job := RedisBootstrapJob(stack, in); job != nil {
		return job.Name
	}
	return ""
}

// RedisBootstrapScript forms the Redis Cluster. It is safe to run again: when the
// first node already knows other nodes (a formed or forming cluster) it only waits
// for cluster_state:ok; it never re-creates a cluster. Arguments: replicas per shard,
// then every node as host:port. REDISCLI_AUTH holds the password.
func RedisBootstrapScript() string { return redisBootstrapScript }

// RedisBootstrapArgs are the bootstrap script's arguments for the stack's pods.
func RedisBootstrapArgs(stack *authv1alpha1.AuthStack) []string {
	args := []string{strconv.Itoa(int(stack.Spec.Redis.ReplicasPerShard))}
	for i := int32(0); i < RedisReplicas(stack); i++ {
		args = append(args, fmt.Sprintf("%s:%d", redisPodHost(stack, i), RedisPort))
	}
	return args
}

// RedisBootstrapJob renders the Job that forms the cluster, or nil outside cluster
// mode. It is a one-shot Job: created once, never updated (its template is immutable),
// named after everything it carries (oneShotJobName), so a new image or topology gets
// a new Job; re-running it on a formed cluster changes nothing.
func RedisBootstrapJob(stack *authv1alpha1.AuthStack, in Inputs) *batchv1.Job {
	if !RedisClusterMode(stack) {
		return nil
	}
	labels := Labels(stack, ComponentRedisBootstrap)
	job := &batchv1.Job{
		TypeMeta:   metav1.TypeMeta{APIVersion: "batch/v1", Kind: "Job"},
		ObjectMeta: objectMeta(stack, "", ComponentRedisBootstrap),
		Spec: batchv1.JobSpec{
			BackoffLimit:            ptr.To[int32](20),
			ActiveDeadlineSeconds:   ptr.To[int64](1800),
			TTLSecondsAfterFinished: nil,
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: restrictedPod(corev1.PodSpec{
					RestartPolicy: corev1.RestartPolicyOnFailure,
					Containers: []corev1.Container{{
						Name:    ComponentRedisBootstrap,
						Image:   RedisImage(stack, in),
						Command: []string{"sh", RedisConfigDir + "/" + RedisBootstrapKey},
						Args:    RedisBootstrapArgs(stack),
						Env:     []corev1.EnvVar{secretEnv("REDISCLI_AUTH", RedisPasswordRef(stack))},
						Resources: corev1.ResourceRequirements{
							Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("10m"), corev1.ResourceMemory: resource.MustParse("16Mi")},
							Limits:   corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("64Mi")},
						},
						VolumeMounts: []corev1.VolumeMount{redisConfigMount, tmpMount},
					}},
					Volumes: []corev1.Volume{redisConfigVolume(stack)},
				}),
			},
		},
	}
	job.Name = oneShotJobName(RedisBootstrapName(stack), job)
	return job
}
