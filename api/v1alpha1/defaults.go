package v1alpha1

import (
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
)

// The defaults of the CRD. The `+kubebuilder:default` markers in the types are the
// authority: the API server applies them, and the operator's builders trust the
// defaulted spec. This table says the same values once more for what the API server
// never defaulted (an AuthStack built in Go, in tests), and TestDefaults,
// TestDataTierDefaults and TestBackupDefaults check that each marker gives exactly
// the value written here.
const (
	DefaultAutoscalingEnabled                  = true
	DefaultPoolerEnabled                       = true
	DefaultNetworkPolicyEnabled                = true
	DefaultMonitoringEnabled                   = false
	DefaultAuthServerReplicas         int32    = 3
	DefaultPoolerReplicas             int32    = 2
	DefaultPoolMode                   PoolMode = "transaction"
	DefaultPoolerMaxClientConnections int32    = 1000
	DefaultPoolerPoolSize             int32    = 25
	DefaultRedisShards                int32    = 3
	DefaultRedisMaxMemory                      = "1gb"
	DefaultRedisMaxMemoryPolicy                = "volatile-ttl" // evict the shortest TTL first: authserver/DESIGN.md, "Redis keys and memory"
	DefaultPostgresVersion                     = "17"
	DefaultStorageSize                         = "10Gi"
	DefaultBackupSchedule                      = "0 3 * * *"
	DefaultBackupRetentionDays        int32    = 30
	DefaultTraceSampleRatio                    = "0.1"
	DefaultSentryEnvironment                   = "production"
	DefaultAccessLogEnabled                    = true
	DefaultAccessLogHotPathSample              = "0.01" // the authserver's own default too: TestAccessLogDefaultIsTheAuthServers
)

// DefaultAuthServerResources are authServer.resources' default.
func DefaultAuthServerResources() corev1.ResourceRequirements {
	return resources("250m", "256Mi", "500m", "512Mi")
}

// DefaultPgBouncerResources are pooler.resources' default.
func DefaultPgBouncerResources() corev1.ResourceRequirements {
	return resources("50m", "64Mi", "500m", "128Mi")
}

// DefaultRedisResources are redis.resources' default: room above the default maxmemory
// (1gb) for the copy-on-write of an AOF rewrite or snapshot.
func DefaultRedisResources() corev1.ResourceRequirements {
	return resources("100m", "1Gi", "", "2Gi")
}

// DefaultPostgresResources are database.managed.resources' default.
func DefaultPostgresResources() corev1.ResourceRequirements {
	return resources("250m", "512Mi", "", "1Gi")
}

func resources(reqCPU, reqMem, limCPU, limMem string) corev1.ResourceRequirements {
	r := corev1.ResourceRequirements{
		Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse(reqCPU), corev1.ResourceMemory: resource.MustParse(reqMem)},
		Limits:   corev1.ResourceList{corev1.ResourceMemory: resource.MustParse(limMem)},
	}
	if limCPU != "" {
		r.Limits[corev1.ResourceCPU] = resource.MustParse(limCPU)
	}
	return r
}
