package resources

import (
	"cmp"
	"fmt"
	"net/url"
	"strconv"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	authv1alpha1 "github.com/leanauth/authstack/api/v1alpha1"
)

// The managed Redis: a StatefulSet with a headless Service, redis.conf in a ConfigMap
// (no secret in it), the password in a generated Secret that outlives the stack, and
// the auth include (requirepass/masterauth) rendered into an owned Secret.
const (
	ComponentRedis          = "redis"
	ComponentRedisBootstrap = "redis-bootstrap"
	RedisPort               = 6379
	RedisBusPort            = 16379
	PortNameRedis           = "redis"
	PortNameRedisBus        = "cluster-bus"
	// RedisConfigDir holds redis.conf (and bootstrap.sh) from the ConfigMap.
	RedisConfigDir = "/etc/redis"
	// RedisAuthDir holds auth.conf from the auth Secret; redis.conf includes it.
	RedisAuthDir = "/etc/redis-auth"
	RedisDataDir = "/data"
	// Keys.
	RedisConfKey       = "redis.conf"
	RedisBootstrapKey  = "bootstrap.sh"
	RedisAuthConfKey   = "auth.conf"
	RedisPasswordKey   = "password"
	DefaultRedisImage  = "docker.io/library/redis:7.4-alpine"
	redisPasswordBytes = 32
)

// RedisDisabledCommands are renamed to "" in redis.conf: nothing can run them. A
// session cache never needs them, and each either destroys data (FLUSHDB, FLUSHALL,
// SWAPDB, MIGRATE, RESTORE), stops or reconfigures the server behind the operator's
// back (SHUTDOWN, CONFIG, REPLICAOF, SLAVEOF, FAILOVER, ACL, MODULE, DEBUG, SAVE), or
// stalls it (KEYS, MONITOR). CLUSTER, PSYNC and SYNC stay: cluster bootstrap and
// replication need them. The pods still stop cleanly: SIGTERM does what SHUTDOWN did.
var RedisDisabledCommands = []string{
	"ACL", "CONFIG", "DEBUG", "FAILOVER", "FLUSHALL", "FLUSHDB", "KEYS", "MIGRATE", "MODULE",
	"MONITOR", "REPLICAOF", "RESTORE", "SAVE", "SHUTDOWN", "SLAVEOF", "SWAPDB",
}

// ManagedRedis says whether the operator runs Redis (no external urlSecretRef).
func ManagedRedis(stack *authv1alpha1.AuthStack) bool { return stack.Spec.Redis.URLSecretRef == nil }

// RedisClusterMode says whether the managed Redis is a Redis Cluster.
func RedisClusterMode(stack *authv1alpha1.AuthStack) bool {
	return ManagedRedis(stack) && stack.Spec.Redis.Mode == authv1alpha1.RedisCluster
}

// RedisName names the StatefulSet, headless Service, ConfigMap, PDB and NetworkPolicy.
func RedisName(stack *authv1alpha1.AuthStack) string { return stack.Name + "-redis" }

// RedisPasswordSecretName names the generated password Secret (not owned: kept with the data).
func RedisPasswordSecretName(stack *authv1alpha1.AuthStack) string {
	return stack.Name + "-redis-password"
}

// RedisAuthSecretName names the owned Secret with the auth include of redis.conf.
func RedisAuthSecretName(stack *authv1alpha1.AuthStack) string { return stack.Name + "-redis-auth" }

// RedisPasswordRef is the Secret key holding the managed Redis password.
func RedisPasswordRef(stack *authv1alpha1.AuthStack) authv1alpha1.SecretKeyRef {
	return authv1alpha1.SecretKeyRef{Name: RedisPasswordSecretName(stack), Key: RedisPasswordKey}
}

// RedisReplicas is the number of Redis pods: 1, or shards × (1 + replicasPerShard).
func RedisReplicas(stack *authv1alpha1.AuthStack) int32 {
	if !RedisClusterMode(stack) {
		return 1
	}
	r := stack.Spec.Redis
	return cmp.Or(r.Shards, authv1alpha1.DefaultRedisShards) * (1 + r.ReplicasPerShard)
}

// redisPodHost is the DNS name of Redis pod i (through the headless Service).
func redisPodHost(stack *authv1alpha1.AuthStack, i int32) string {
	return fmt.Sprintf("%s-%d.%s.%s.svc", RedisName(stack), i, RedisName(stack), stack.Namespace)
}

// RedisHost is the headless Service's name: in standalone mode it resolves to the one pod.
func RedisHost(stack *authv1alpha1.AuthStack) string {
	return RedisName(stack) + "." + stack.Namespace + ".svc"
}

// RedisClientURL is the REDIS_URL of the authserver for the managed Redis. In cluster
// mode it is go-redis's cluster URL form: the first node, and every other as addr=.
func RedisClientURL(stack *authv1alpha1.AuthStack, password string) string {
	u := url.URL{Scheme: "redis", User: url.UserPassword("", password)}
	if !RedisClusterMode(stack) {
		u.Host = fmt.Sprintf("%s:%d", RedisHost(stack), RedisPort)
		u.Path = "/0"
		return u.String()
	}
	u.Host = fmt.Sprintf("%s:%d", redisPodHost(stack, 0), RedisPort)
	q := url.Values{}
	for i := int32(1); i < RedisReplicas(stack); i++ {
		q.Add("addr", fmt.Sprintf("%s:%d", redisPodHost(stack, i), RedisPort))
	}
	u.RawQuery = q.Encode()
	return u.String()
}

// NewRedisPassword returns a fresh random password, hex-encoded (no character needs quoting).
func NewRedisPassword() ([]byte, error) {
	return randomHex(redisPasswordBytes)
}

// RedisPasswordSecret renders the generated password Secret. Like the pepper it has no
// owner reference: the volumes outlive the stack by default, and so must their
// password. The operator creates it once and never updates it; a person may rotate it
// (the pods roll).
func RedisPasswordSecret(stack *authv1alpha1.AuthStack, password []byte) *corev1.Secret {
	return generatedSecret(stack, RedisPasswordSecretName(stack), ComponentRedis,
		"The password of the managed Redis of AuthStack "+stack.Name+". Kept when the AuthStack is deleted, like the Redis volumes.",
		map[string][]byte{RedisPasswordKey: password})
}

// RedisConf renders redis.conf. It holds no secret: the last line includes auth.conf
// from the auth Secret.
func RedisConf(stack *authv1alpha1.AuthStack) string {
	r := stack.Spec.Redis
	maxMemory := cmp.Or(r.MaxMemory, authv1alpha1.DefaultRedisMaxMemory)
	policy := cmp.Or(r.MaxMemoryPolicy, authv1alpha1.DefaultRedisMaxMemoryPolicy)
	var b strings.Builder
	b.WriteString("# Rendered by the authstack operator for AuthStack " + stack.Namespace + "/" + stack.Name + ". Do not edit: changes are reverted.\n")
	lines := []string{
		"port " + strconv.Itoa(RedisPort),
		"bind * -::*",
		"protected-mode yes",
		"daemonize no",
		`logfile ""`,
		"dir " + RedisDataDir,
		"tcp-keepalive 300",
		"timeout 300",
		"maxclients 10000",
		"# Persistence: the append-only file (fsync every second) and RDB snapshots (the save rules).",
		"appendonly yes",
		"appendfsync everysec",
		"save 900 1",
		"save 300 10",
		"save 60 10000",
		"# Cached sessions (evicting one costs a database read) have the shortest TTLs; locks, limit",
		"# counters and revocation markers longer ones: volatile-ttl evicts the sessions first.",
		"maxmemory " + maxMemory,
		"maxmemory-policy " + policy,
	}
	if RedisClusterMode(stack) {
		lines = append(lines,
			"# Redis Cluster (formed by the bootstrap Job).",
			"cluster-enabled yes",
			"cluster-config-file nodes.conf", // in dir, on the volume
			"cluster-node-timeout 5000",
			"cluster-require-full-coverage no",
			"cluster-allow-reads-when-down no",
		)
	}
	lines = append(lines, "# Commands a session cache never needs.")
	for _, c := range RedisDisabledCommands {
		lines = append(lines, fmt.Sprintf("rename-command %s \"\"", c))
	}
	lines = append(lines, "# The password (requirepass, masterauth), from the auth Secret.",
		"include "+RedisAuthDir+"/"+RedisAuthConfKey)
	for _, l := range lines {
		b.WriteString(l + "\n")
	}
	return b.String()
}

// RedisAuthConf renders the include with the password.
func RedisAuthConf(password string) string {
	q := redisQuote(password)
	return "requirepass " + q + "\nmasterauth " + q + "\n"
}

// redisQuote quotes a redis.conf argument.
func redisQuote(s string) string {
	r := strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`, "\r", `\r`)
	return `"` + r.Replace(s) + `"`
}

// RedisAuthSecret renders the owned Secret with auth.conf, from the password.
func RedisAuthSecret(stack *authv1alpha1.AuthStack, password string) *corev1.Secret {
	return &corev1.Secret{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Secret"},
		ObjectMeta: objectMeta(stack, RedisAuthSecretName(stack), ComponentRedis),
		Type:       corev1.SecretTypeOpaque,
		Data:       map[string][]byte{RedisAuthConfKey: []byte(RedisAuthConf(password))},
	}
}

// RedisConfigMap renders redis.conf (and, in cluster mode, the bootstrap script).
func RedisConfigMap(stack *authv1alpha1.AuthStack) *corev1.ConfigMap {
	data := map[string]string{RedisConfKey: RedisConf(stack)}
	if RedisClusterMode(stack) {
		data[RedisBootstrapKey] = RedisBootstrapScript()
	}
	return &corev1.ConfigMap{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "ConfigMap"},
		ObjectMeta: objectMeta(stack, RedisName(stack), ComponentRedis),
		Data:       data,
	}
}

// RedisConfigHash hashes what the Redis pods read at start: redis.conf and auth.conf.
func RedisConfigHash(stack *authv1alpha1.AuthStack, password string) string {
	return SecretDataHash(map[string][]byte{
		RedisConfKey:     []byte(RedisConf(stack)),
		RedisAuthConfKey: []byte(RedisAuthConf(password)),
	})
}

// RedisStatefulSet renders the managed Redis. The pod template carries the hash of
// redis.conf and auth.conf: a change rolls the pods, one at a time.
func RedisStatefulSet(stack *authv1alpha1.AuthStack, in Inputs) *appsv1.StatefulSet {
	r := stack.Spec.Redis
	selector := SelectorLabels(stack, ComponentRedis)
	ports := []corev1.ContainerPort{{Name: PortNameRedis, ContainerPort: RedisPort, Protocol: corev1.ProtocolTCP}}
	args := []string{RedisConfigDir + "/" + RedisConfKey}
	var env []corev1.EnvVar
	if RedisClusterMode(stack) {
		ports = append(ports, corev1.ContainerPort{Name: PortNameRedisBus, ContainerPort: RedisBusPort, Protocol: corev1.ProtocolTCP})
		// Each node announces its stable DNS name, so clients and peers find it again
		// after a restart with a new IP.
		env = append(env, corev1.EnvVar{Name: "POD_NAME", ValueFrom: &corev1.EnvVarSource{
			FieldRef: &corev1.ObjectFieldSelector{APIVersion: "v1", FieldPath: "metadata.name"}}})
		args = append(args,
			"--cluster-announce-hostname", "$(POD_NAME)."+RedisName(stack)+"."+stack.Namespace+".svc",
			"--cluster-preferred-endpoint-type", "hostname")
	}
	return &appsv1.StatefulSet{
		TypeMeta:   metav1.TypeMeta{APIVersion: "apps/v1", Kind: "StatefulSet"},
		ObjectMeta: objectMeta(stack, RedisName(stack), ComponentRedis),
		Spec: appsv1.StatefulSetSpec{
			Replicas:             ptr.To(RedisReplicas(stack)),
			ServiceName:          RedisName(stack),
			Selector:             &metav1.LabelSelector{MatchLabels: selector},
			PodManagementPolicy:  appsv1.ParallelPodManagement,
			RevisionHistoryLimit: ptr.To[int32](5),
			UpdateStrategy: appsv1.StatefulSetUpdateStrategy{
				Type: appsv1.RollingUpdateStatefulSetStrategyType,
			},
			PersistentVolumeClaimRetentionPolicy: pvcRetention(r.Storage),
			VolumeClaimTemplates:                 []corev1.PersistentVolumeClaim{volumeClaim(r.Storage)},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: podMeta(stack, ComponentRedis, in.RedisConfigHash),
				Spec: restrictedPod(corev1.PodSpec{
					TerminationGracePeriodSeconds: ptr.To[int64](60),
					TopologySpreadConstraints:     topologySpread(selector),
					Containers: []corev1.Container{{
						Name:           ComponentRedis,
						Image:          RedisImage(stack, in),
						Command:        []string{"redis-server"},
						Args:           args,
						Env:            env,
						Ports:          ports,
						Resources:      ptr.Deref(r.Resources.DeepCopy(), authv1alpha1.DefaultRedisResources()),
						ReadinessProbe: tcpProbe(PortNameRedis, 5, 5, 3),
						LivenessProbe:  tcpProbe(PortNameRedis, 30, 10, 6),
						VolumeMounts: []corev1.VolumeMount{
							{Name: DataVolumeName, MountPath: RedisDataDir},
							redisConfigMount,
							{Name: "auth", MountPath: RedisAuthDir, ReadOnly: true},
							tmpMount,
						},
					}},
					Volumes: []corev1.Volume{redisConfigVolume(stack), secretVolume("auth", RedisAuthSecretName(stack))},
				}),
			},
		},
	}
}

// RedisImage is the image of the Redis pods and of the cluster bootstrap.
func RedisImage(stack *authv1alpha1.AuthStack, in Inputs) string {
	return image(stack.Spec.Redis.Image, in.RedisImage, DefaultRedisImage)
}

// redisConfigMount mounts the ConfigMap with redis.conf (and the bootstrap script).
var redisConfigMount = corev1.VolumeMount{Name: "config", MountPath: RedisConfigDir, ReadOnly: true}

func redisConfigVolume(stack *authv1alpha1.AuthStack) corev1.Volume {
	return corev1.Volume{Name: "config", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{
		LocalObjectReference: corev1.LocalObjectReference{Name: RedisName(stack)},
		DefaultMode:          ptr.To[int32](0o444),
	}}}
}

// RedisService renders the headless Service: stable per-pod DNS names for the
// StatefulSet, and in standalone mode the name clients use.
func RedisService(stack *authv1alpha1.AuthStack) *corev1.Service {
	ports := []corev1.ServicePort{servicePort(PortNameRedis, RedisPort)}
	if RedisClusterMode(stack) {
		ports = append(ports, servicePort(PortNameRedisBus, RedisBusPort))
	}
	svc := service(stack, RedisName(stack), ComponentRedis, true, ports...)
	// The cluster bootstrap must reach nodes before they are ready.
	svc.Spec.PublishNotReadyAddresses = RedisClusterMode(stack)
	return svc
}

// RedisPDB allows one Redis pod down at a time. In standalone mode that is the only
// pod: a node drain restarts it (sessions are read from PostgreSQL meanwhile) rather
// than blocking the drain forever.
func RedisPDB(stack *authv1alpha1.AuthStack) *policyv1.PodDisruptionBudget {
	return podDisruptionBudget(stack, RedisName(stack), ComponentRedis)
}
