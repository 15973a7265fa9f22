package v1alpha1

import (
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// AuthStackSpec is the desired auth tier. Defaults live in the CRD schema (markers below),
// so the operator never writes into spec and never fights a GitOps tool.
// +kubebuilder:validation:XValidation:rule="has(self.pepper) == has(oldSelf.pepper)",message="spec.pepper cannot be added or removed after creation: the pepper hashes every password"
// +kubebuilder:validation:XValidation:rule="has(self.bootstrap) == has(oldSelf.bootstrap)",message="spec.bootstrap cannot be added or removed after creation: to restore into an existing stack follow the runbook in docs/backup-and-restore.md"
// +kubebuilder:validation:XValidation:rule="!has(self.bootstrap) || !has(self.bootstrap.fromBackup) || (has(self.backup) && has(self.backup.encryption.privateKeySecretRef))",message="spec.bootstrap.fromBackup needs spec.backup with encryption.privateKeySecretRef: the restore decrypts the backup with it"
// +kubebuilder:validation:XValidation:rule="!has(self.database.cloudNativePG) || !has(self.database.cloudNativePG.pooler) || (has(self.pooler.enabled) && !self.pooler.enabled)",message="database.cloudNativePG.pooler needs pooler.enabled false: the authserver connects to the CloudNativePG Pooler instead of its own pgbouncer"
// +kubebuilder:validation:XValidation:rule="!has(oldSelf.pepperRotation) || has(self.pepperRotation)",message="spec.pepperRotation cannot be removed: that would make version 1 the current pepper again"
// +kubebuilder:validation:XValidation:rule="has(oldSelf.pepperRotation) || !has(self.pepperRotation) || self.pepperRotation.version <= 2",message="spec.pepperRotation added to an existing stack must start at version 1 or 2"
// +kubebuilder:validation:XValidation:rule="!has(self.pepperRotation) || (has(self.pepper) ? (has(self.pepperRotation.peppers) ? self.pepperRotation.peppers.size() : 0) == self.pepperRotation.version - 1 : !has(self.pepperRotation.peppers) || self.pepperRotation.peppers.size() == 0)",message="spec.pepperRotation.peppers: with spec.pepper, name one pepper per version from 2 to pepperRotation.version; without it (generated peppers) leave peppers empty"
type AuthStackSpec struct {
	// Paused stops the operator from changing any child of the stack (no apply, no
	// delete, no generated Secret) while it keeps reporting status: Progressing is False
	// with reason Paused and the Paused condition is True. Setting it back to false
	// converges everything changed meanwhile (maintenance_types.go).
	// +optional
	Paused bool `json:"paused,omitempty"`

	// UpdatePolicy says when the pods take up new operator defaults (maintenance_types.go).
	// +optional
	// +kubebuilder:default={}
	UpdatePolicy UpdatePolicySpec `json:"updatePolicy,omitempty"`

	// AuthServer configures the authserver Deployment.
	AuthServer AuthServerSpec `json:"authServer"`

	// Pepper brings your own pepper. When absent the operator generates one into the
	// Secret <name>-pepper, once; it is never regenerated and not deleted with the AuthStack.
	// +optional
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="spec.pepper is immutable: changing it locks every user out"
	Pepper *PepperSpec `json:"pepper,omitempty"`

	// PepperRotation rotates the pepper (pepper_types.go).
	// +optional
	PepperRotation *PepperRotationSpec `json:"pepperRotation,omitempty"`

	// Database says where PostgreSQL is.
	Database DatabaseSpec `json:"database"`

	// Redis says where the session cache is. By default the operator runs it.
	// +optional
	// +kubebuilder:default={}
	Redis RedisSpec `json:"redis,omitempty"`

	// SMTP is the mail relay for verification and reset emails.
	SMTP SMTPSpec `json:"smtp"`

	// Ingress exposes the authserver over HTTPS.
	// +optional
	// +kubebuilder:default={}
	Ingress IngressSpec `json:"ingress,omitempty"`

	// Gateway exposes the authserver through a Gateway API HTTPRoute (gateway_types.go).
	// +optional
	// +kubebuilder:default={}
	Gateway GatewaySpec `json:"gateway,omitempty"`

	// EdgeAuth configures the check that AuthPolicies wire into proxies (gateway_types.go).
	// +optional
	EdgeAuth EdgeAuthSpec `json:"edgeAuth,omitempty"`

	// Pooler runs pgbouncer between the authserver and PostgreSQL.
	// +optional
	// +kubebuilder:default={}
	Pooler PoolerSpec `json:"pooler,omitempty"`

	// NetworkPolicy restricts traffic between the stack's pods to what each one needs.
	// +optional
	// +kubebuilder:default={}
	NetworkPolicy NetworkPolicySpec `json:"networkPolicy,omitempty"`

	// Backup schedules encrypted off-site backups of PostgreSQL and Redis (backup_types.go).
	// +optional
	Backup *BackupSpec `json:"backup,omitempty"`

	// Bootstrap restores a new stack's database from a backup (bootstrap_types.go).
	// Set at creation only; immutable.
	// +optional
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="spec.bootstrap is immutable: a declared restore runs once, when the stack is created"
	Bootstrap *BootstrapSpec `json:"bootstrap,omitempty"`

	// Monitoring creates a Prometheus Operator ServiceMonitor and PrometheusRule for the
	// authserver, when the monitoring.coreos.com CRDs are served (monitoring_types.go).
	// +optional
	// +kubebuilder:default={}
	Monitoring MonitoringSpec `json:"monitoring,omitempty"`

	// Observability sends the authserver's traces and error reports and switches its
	// access log (observability_types.go).
	// +optional
	// +kubebuilder:default={}
	Observability ObservabilitySpec `json:"observability,omitempty"`
}

// SecretKeyRef names one key of a Secret in the AuthStack's namespace.
type SecretKeyRef struct {
	// Name of the Secret.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$`
	Name string `json:"name"`
	// Key within the Secret.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[-._a-zA-Z0-9]+$`
	Key string `json:"key"`
}

// LogLevel is the authserver's log level.
// +kubebuilder:validation:Enum=debug;info;warn;error
type LogLevel string

// AuthServerSpec configures the authserver pods.
// +kubebuilder:validation:XValidation:rule="!has(self.mailFrom) || self.mailFrom.matches('^([^<>@]*<[^<>@ ]+@[^<>@ ]+>|[^<>@ ]+@[^<>@ ]+)$')",message="authServer.mailFrom must be an email address, optionally with a display name"
type AuthServerSpec struct {
	// Image of the authserver. Defaults to the operator's --authserver-image.
	// +optional
	// +kubebuilder:validation:MaxLength=512
	Image string `json:"image,omitempty"`

	// Replicas when autoscaling is disabled.
	// +optional
	// +kubebuilder:default=3
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=1000
	Replicas *int32 `json:"replicas,omitempty"`

	// Resources of the authserver container.
	// +optional
	// +kubebuilder:default={requests:{cpu:"250m",memory:"256Mi"},limits:{cpu:"500m",memory:"512Mi"}}
	Resources *corev1.ResourceRequirements `json:"resources,omitempty"`

	// LogLevel of the authserver.
	// +optional
	// +kubebuilder:default=info
	LogLevel LogLevel `json:"logLevel,omitempty"`

	// FrontendURL is where links in emails point. It must be https, unless the host is localhost.
	// +kubebuilder:validation:MaxLength=2048
	// +kubebuilder:validation:XValidation:rule="isURL(self) && url(self).getHostname() != '' && (url(self).getScheme() == 'https' || (url(self).getScheme() == 'http' && url(self).getHostname() in ['localhost', '127.0.0.1', '::1']))",message="authServer.frontendURL must be an https URL (http only for localhost)"
	FrontendURL string `json:"frontendURL"`

	// MailFrom is the sender of the emails, for example "Example <noreply@example.com>".
	// Defaults to noreply@ the host of frontendURL.
	// +optional
	// +kubebuilder:validation:MaxLength=320
	MailFrom string `json:"mailFrom,omitempty"`

	// SessionTTL is how long a session lives, as a Go duration (for example 24h).
	// +optional
	// +kubebuilder:default="24h"
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:Pattern=`^([0-9]+(\.[0-9]+)?(ns|us|ms|s|m|h))+$`
	// +kubebuilder:validation:XValidation:rule="duration(self) >= duration('5m') && duration(self) <= duration('8760h')",message="authServer.sessionTTL must be between 5m and 8760h"
	SessionTTL *metav1.Duration `json:"sessionTTL,omitempty"`

	// PasswordHashing sets the argon2id parameters. Raising them rehashes each password at its next login.
	// +optional
	// +kubebuilder:default={}
	PasswordHashing PasswordHashingSpec `json:"passwordHashing,omitempty"`

	// Autoscaling of the authserver Deployment with an HPA.
	// +optional
	// +kubebuilder:default={}
	Autoscaling AutoscalingSpec `json:"autoscaling,omitempty"`

	// TrustedProxies are the CIDRs (or IPs) whose X-Forwarded-For header the authserver
	// believes: the ingress controller's pods. Per-IP rate limits key on the client address
	// found that way; without it every user would share the ingress controller's address.
	// Defaults to the private ranges, where in-cluster ingress controllers run.
	// +optional
	// +kubebuilder:default={"10.0.0.0/8","172.16.0.0/12","192.168.0.0/16","fc00::/7"}
	// +kubebuilder:validation:MaxItems=32
	// +kubebuilder:validation:items:MaxLength=64
	// +listType=atomic
	// +kubebuilder:validation:XValidation:rule="self.all(p, isCIDR(p) || isIP(p))",message="authServer.trustedProxies must hold CIDRs or IP addresses"
	TrustedProxies []string `json:"trustedProxies,omitempty"`

	// TrustedProxyHops is how many proxies in front of the authserver append to
	// X-Forwarded-For (the ingress controller or gateway is one; a load balancer or CDN
	// that appends before it, one more). When set, the client is that entry from the
	// right, whatever its address, so a client on a private address (an in-cluster
	// caller, or every client behind a LoadBalancer Service with externalTrafficPolicy
	// Cluster) cannot have the entry it wrote itself believed. Unset: the right-most
	// entry outside trustedProxies (docs/security.md, "Client addresses").
	// +optional
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=16
	TrustedProxyHops *int32 `json:"trustedProxyHops,omitempty"`

	// PodTemplate overrides scheduling and metadata of the authserver pods.
	// +optional
	PodTemplate *PodTemplateOverrides `json:"podTemplate,omitempty"`

	// MFA configures second factors (mfa_types.go).
	// +optional
	// +kubebuilder:default={}
	MFA MFASpec `json:"mfa,omitempty"`

	// Passkeys sets the WebAuthn relying party (passkeys_types.go).
	// +optional
	Passkeys PasskeysSpec `json:"passkeys,omitempty"`

	// UI configures the hosted pages (ui_types.go).
	// +optional
	UI UISpec `json:"ui,omitempty"`
}

// PasswordHashingSpec holds argon2id parameters. The defaults are OWASP's minimum.
type PasswordHashingSpec struct {
	// MemoryKiB is argon2id's memory cost in KiB.
	// +optional
	// +kubebuilder:default=19456
	// +kubebuilder:validation:Minimum=8192
	// +kubebuilder:validation:Maximum=1048576
	MemoryKiB int32 `json:"memoryKiB,omitempty"`
	// Iterations is argon2id's time cost.
	// +optional
	// +kubebuilder:default=2
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=20
	Iterations int32 `json:"iterations,omitempty"`
	// Parallelism is argon2id's lane count.
	// +optional
	// +kubebuilder:default=1
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=16
	Parallelism int32 `json:"parallelism,omitempty"`
}

// AutoscalingSpec configures the HorizontalPodAutoscaler.
// +kubebuilder:validation:XValidation:rule="!has(self.minReplicas) || !has(self.maxReplicas) || self.minReplicas <= self.maxReplicas",message="autoscaling.minReplicas must be less than or equal to autoscaling.maxReplicas"
type AutoscalingSpec struct {
	// Enabled turns the HPA on; the Deployment then leaves replicas to it.
	// +optional
	// +kubebuilder:default=true
	Enabled *bool `json:"enabled,omitempty"`
	// +optional
	// +kubebuilder:default=3
	// +kubebuilder:validation:Minimum=1
	MinReplicas int32 `json:"minReplicas,omitempty"`
	// +optional
	// +kubebuilder:default=20
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=1000
	MaxReplicas int32 `json:"maxReplicas,omitempty"`
	// TargetCPUUtilization in percent of the CPU request.
	// +optional
	// +kubebuilder:default=70
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=100
	TargetCPUUtilization int32 `json:"targetCPUUtilization,omitempty"`
	// TargetMemoryUtilization in percent of the memory request.
	// +optional
	// +kubebuilder:default=80
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=100
	TargetMemoryUtilization int32 `json:"targetMemoryUtilization,omitempty"`
}

// PodTemplateOverrides are merged into the authserver pod template.
type PodTemplateOverrides struct {
	// +optional
	NodeSelector map[string]string `json:"nodeSelector,omitempty"`
	// +optional
	// +listType=atomic
	Tolerations []corev1.Toleration `json:"tolerations,omitempty"`
	// +optional
	Affinity *corev1.Affinity `json:"affinity,omitempty"`
	// Annotations added to the pods (the operator's own annotations win on conflict).
	// +optional
	Annotations map[string]string `json:"annotations,omitempty"`
	// Labels added to the pods (the operator's selector labels win on conflict).
	// +optional
	Labels map[string]string `json:"labels,omitempty"`
	// PriorityClassName of the pods.
	// +optional
	PriorityClassName string `json:"priorityClassName,omitempty"`
}

// PepperSpec brings your own pepper.
type PepperSpec struct {
	// SecretRef names the Secret key holding the pepper (32 bytes written as 64 hex characters, as `openssl rand -hex 32` prints).
	SecretRef SecretKeyRef `json:"secretRef"`
}

// DatabaseSpec says where PostgreSQL is: an external database (urlSecretRef), a
// CloudNativePG Cluster (cloudNativePG; both production paths) or a single-instance
// PostgreSQL run by the operator (managed, for evaluation and development only: not
// highly available).
// +kubebuilder:validation:XValidation:rule="[has(self.urlSecretRef), has(self.managed), has(self.cloudNativePG)].filter(x, x).size() == 1",message="exactly one of database.urlSecretRef, database.managed and database.cloudNativePG must be set"
// +kubebuilder:validation:XValidation:rule="!has(oldSelf.managed) || !has(oldSelf.managed.storage) || !has(oldSelf.managed.storage.deleteOnStackDeletion) || !oldSelf.managed.storage.deleteOnStackDeletion || has(self.managed)",message="database.managed cannot be turned off while its storage.deleteOnStackDeletion is true: the volume would be deleted with the StatefulSet; set deleteOnStackDeletion to false first"
type DatabaseSpec struct {
	// URLSecretRef names the Secret key holding the PostgreSQL URL (postgres://...).
	// +optional
	URLSecretRef *SecretKeyRef `json:"urlSecretRef,omitempty"`
	// Managed runs a single-instance PostgreSQL StatefulSet with a generated password.
	// Not highly available: for evaluation and development.
	// +optional
	Managed *ManagedDatabaseSpec `json:"managed,omitempty"`
	// CloudNativePG uses a CloudNativePG Cluster of the stack's namespace (cnpg_types.go):
	// the production path for a highly available PostgreSQL run in the cluster.
	// +optional
	CloudNativePG *CloudNativePGSpec `json:"cloudNativePG,omitempty"`
}

// ManagedDatabaseSpec configures the operator-run PostgreSQL.
// +kubebuilder:validation:XValidation:rule="!has(oldSelf.version) || !has(self.version) || self.version == oldSelf.version",message="database.managed.version cannot change: a new PostgreSQL major version needs pg_upgrade on the data, which the operator does not run. Back up, create a stack with the new version and restore into it (docs/backup-and-restore.md)"
// +kubebuilder:validation:XValidation:rule="!has(oldSelf.passwordRotation) || has(self.passwordRotation)",message="database.managed.passwordRotation cannot be removed: the pods may use the second role it created (dbrotation_types.go)"
// +kubebuilder:validation:XValidation:rule="!has(oldSelf.passwordRotation) || !has(self.passwordRotation) || self.passwordRotation.generation >= oldSelf.passwordRotation.generation",message="database.managed.passwordRotation.generation can only be raised"
type ManagedDatabaseSpec struct {
	// Version is the PostgreSQL major version (the image docker.io/library/postgres:<version>-bookworm).
	// It cannot change once set.
	// +optional
	// +kubebuilder:default="17"
	// +kubebuilder:validation:Enum="15";"16";"17"
	Version string `json:"version,omitempty"`
	// Image overrides the PostgreSQL image; it must match version.
	// +optional
	// +kubebuilder:validation:MaxLength=512
	Image string `json:"image,omitempty"`
	// Storage of the data directory.
	// +optional
	// +kubebuilder:default={}
	Storage StorageSpec `json:"storage,omitempty"`
	// Resources of the PostgreSQL container.
	// +optional
	// +kubebuilder:default={requests:{cpu:"250m",memory:"512Mi"},limits:{memory:"1Gi"}}
	Resources *corev1.ResourceRequirements `json:"resources,omitempty"`
	// PasswordRotation rotates the database password with no failed request: raise
	// its generation (dbrotation_types.go).
	// +optional
	PasswordRotation *DatabasePasswordRotationSpec `json:"passwordRotation,omitempty"`
}

// StorageSpec is the persistent volume of a stateful component.
// +kubebuilder:validation:XValidation:rule="!has(oldSelf.size) || !has(self.size) || quantity(string(self.size)).compareTo(quantity(string(oldSelf.size))) >= 0",message="storage.size cannot shrink: a volume only grows. To use smaller volumes, back up, create a stack with the smaller size and restore into it (docs/backup-and-restore.md)"
// +kubebuilder:validation:XValidation:rule="has(self.storageClassName) == has(oldSelf.storageClassName) && (!has(self.storageClassName) || self.storageClassName == oldSelf.storageClassName)",message="storage.storageClassName cannot change: the volumes exist in their class. Back up, create a stack with the new class and restore into it (docs/backup-and-restore.md)"
type StorageSpec struct {
	// Size of each volume. It may grow (the operator expands the existing volumes:
	// their storage class must allow volume expansion), never shrink.
	// +optional
	// +kubebuilder:default="10Gi"
	Size *resource.Quantity `json:"size,omitempty"`
	// StorageClassName of the volumes; empty uses the cluster's default class. It
	// cannot change.
	// +optional
	// +kubebuilder:validation:MaxLength=253
	StorageClassName *string `json:"storageClassName,omitempty"`
	// DeleteOnStackDeletion deletes the volumes with the AuthStack. By default they
	// are kept, so deleting the stack by mistake loses no data. Turning the component
	// off never deletes them: while this is true, the API refuses to turn it off.
	// +optional
	// +kubebuilder:default=false
	DeleteOnStackDeletion bool `json:"deleteOnStackDeletion,omitempty"`
}

// RedisMode is how the managed Redis runs.
// +kubebuilder:validation:Enum=standalone;cluster
type RedisMode string

// Redis modes.
const (
	RedisStandalone RedisMode = "standalone"
	RedisCluster    RedisMode = "cluster"
)

// RedisSpec says where Redis is: managed by the operator (the default), or an external
// Redis when urlSecretRef is set.
// +kubebuilder:validation:XValidation:rule="!has(self.urlSecretRef) || !has(self.mode) || self.mode == 'standalone'",message="redis.mode cluster needs the managed Redis: remove redis.urlSecretRef"
// +kubebuilder:validation:XValidation:rule="has(self.urlSecretRef) || has(oldSelf.urlSecretRef) || (has(self.mode) ? self.mode : 'standalone') == (has(oldSelf.mode) ? oldSelf.mode : 'standalone')",message="redis.mode cannot change on the managed Redis: its volumes hold data of the other mode. Redis only caches sessions (they are kept in PostgreSQL): to switch, delete the AuthStack and its Redis PersistentVolumeClaims (data-<name>-redis-*), then create it with the new mode"
// +kubebuilder:validation:XValidation:rule="has(self.urlSecretRef) || !has(self.mode) || self.mode != 'cluster' || !has(oldSelf.mode) || oldSelf.mode != 'cluster' || ((has(self.shards) ? self.shards : 3) == (has(oldSelf.shards) ? oldSelf.shards : 3) && (has(self.replicasPerShard) ? self.replicasPerShard : 1) == (has(oldSelf.replicasPerShard) ? oldSelf.replicasPerShard : 1))",message="redis.shards and redis.replicasPerShard cannot change on a Redis Cluster: the operator has no resharding path. Redis only caches sessions (they are kept in PostgreSQL): to change the topology, delete the AuthStack and its Redis PersistentVolumeClaims (data-<name>-redis-*), then create it with the new topology"
// +kubebuilder:validation:XValidation:rule="!has(self.urlSecretRef) || has(oldSelf.urlSecretRef) || !has(oldSelf.storage) || !has(oldSelf.storage.deleteOnStackDeletion) || !oldSelf.storage.deleteOnStackDeletion",message="the managed Redis cannot be turned off (redis.urlSecretRef) while its storage.deleteOnStackDeletion is true: the volumes would be deleted with the StatefulSet; set deleteOnStackDeletion to false first"
type RedisSpec struct {
	// URLSecretRef names the Secret key holding an external Redis URL (redis:// or
	// rediss://). When set, the operator runs no Redis.
	// +optional
	URLSecretRef *SecretKeyRef `json:"urlSecretRef,omitempty"`
	// Mode of the managed Redis: one primary (standalone) or a Redis Cluster. It cannot
	// change while the operator runs Redis.
	// +optional
	// +kubebuilder:default=standalone
	Mode RedisMode `json:"mode,omitempty"`
	// Shards of a Redis Cluster (primaries). Fixed once the cluster exists.
	// +optional
	// +kubebuilder:default=3
	// +kubebuilder:validation:Minimum=3
	// +kubebuilder:validation:Maximum=100
	Shards int32 `json:"shards,omitempty"`
	// ReplicasPerShard of a Redis Cluster. Fixed once the cluster exists.
	// +optional
	// +kubebuilder:default=1
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=5
	ReplicasPerShard int32 `json:"replicasPerShard,omitempty"`
	// Image of the managed Redis. Defaults to the operator's --redis-image.
	// +optional
	// +kubebuilder:validation:MaxLength=512
	Image string `json:"image,omitempty"`
	// MaxMemory is redis.conf's maxmemory (for example 1gb, 512mb).
	// +optional
	// +kubebuilder:default="1gb"
	// +kubebuilder:validation:Pattern=`^[1-9][0-9]*(kb|mb|gb)$`
	MaxMemory string `json:"maxMemory,omitempty"`
	// MaxMemoryPolicy is redis.conf's maxmemory-policy. The default, volatile-ttl,
	// evicts the keys closest to expiry first: the authserver gives cached sessions
	// (read again from PostgreSQL when evicted) shorter TTLs than account locks,
	// rate-limit counters and revocation markers, so those are never evicted before
	// a cached session. Any allkeys-* policy loses that guarantee.
	// +optional
	// +kubebuilder:default=volatile-ttl
	// +kubebuilder:validation:Enum=allkeys-lru;allkeys-lfu;allkeys-random;volatile-lru;volatile-lfu;volatile-random;volatile-ttl;noeviction
	MaxMemoryPolicy string `json:"maxMemoryPolicy,omitempty"`
	// Storage of the append-only file and snapshots.
	// +optional
	// +kubebuilder:default={}
	Storage StorageSpec `json:"storage,omitempty"`
	// Resources of the Redis container. Leave room above maxMemory for the fork of
	// an AOF rewrite.
	// +optional
	// +kubebuilder:default={requests:{cpu:"100m",memory:"1Gi"},limits:{memory:"2Gi"}}
	Resources *corev1.ResourceRequirements `json:"resources,omitempty"`
}

// PoolMode is pgbouncer's pool_mode. statement pooling is not offered: it breaks the
// authserver's transactions.
// +kubebuilder:validation:Enum=transaction;session
type PoolMode string

// PoolerSpec configures pgbouncer.
type PoolerSpec struct {
	// Enabled runs pgbouncer; the authserver's DATABASE_URL then points at it and
	// DATABASE_DIRECT_URL (migrations) at the database.
	// +optional
	// +kubebuilder:default=true
	Enabled *bool `json:"enabled,omitempty"`
	// Replicas of pgbouncer.
	// +optional
	// +kubebuilder:default=2
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=20
	Replicas int32 `json:"replicas,omitempty"`
	// PoolMode is pgbouncer's pool_mode.
	// +optional
	// +kubebuilder:default=transaction
	PoolMode PoolMode `json:"poolMode,omitempty"`
	// MaxClientConnections is pgbouncer's max_client_conn, per pgbouncer pod.
	// +optional
	// +kubebuilder:default=1000
	// +kubebuilder:validation:Minimum=10
	// +kubebuilder:validation:Maximum=100000
	MaxClientConnections int32 `json:"maxClientConnections,omitempty"`
	// DefaultPoolSize is pgbouncer's default_pool_size: server connections per
	// database and user, per pgbouncer pod.
	// +optional
	// +kubebuilder:default=25
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=1000
	DefaultPoolSize int32 `json:"defaultPoolSize,omitempty"`
	// Image of pgbouncer. Defaults to the operator's --pgbouncer-image.
	// +optional
	// +kubebuilder:validation:MaxLength=512
	Image string `json:"image,omitempty"`
	// Resources of the pgbouncer container.
	// +optional
	// +kubebuilder:default={requests:{cpu:"50m",memory:"64Mi"},limits:{cpu:"500m",memory:"128Mi"}}
	Resources *corev1.ResourceRequirements `json:"resources,omitempty"`
}

// NetworkPolicySpec configures the NetworkPolicies of the stack.
type NetworkPolicySpec struct {
	// Enabled renders one NetworkPolicy per component: only the authserver reaches
	// pgbouncer and Redis, only pgbouncer, the authserver's migrations and backup jobs
	// reach a managed PostgreSQL, DNS is allowed, nothing else.
	// +optional
	// +kubebuilder:default=true
	Enabled *bool `json:"enabled,omitempty"`
	// IngressControllerNamespaceSelector selects the namespaces of the ingress
	// controller whose pods may reach the authserver's http port (to route to it, and
	// to call /auth/check for the apps it protects). When neither it nor
	// ingressControllerPodSelector is set, the ingress-nginx namespace is admitted
	// only for ingress.className nginx, and no ingress controller otherwise.
	// +optional
	IngressControllerNamespaceSelector *metav1.LabelSelector `json:"ingressControllerNamespaceSelector,omitempty"`
	// IngressControllerPodSelector narrows the ingress controller to these pods; empty
	// allows every pod of the selected namespaces.
	// +optional
	IngressControllerPodSelector *metav1.LabelSelector `json:"ingressControllerPodSelector,omitempty"`
	// GatewayNamespaceSelector selects the namespaces of the Gateway data plane (the
	// proxy pods: Envoy Gateway runs them in its own namespace, envoy-gateway-system,
	// by default) whose pods may reach the http port. When neither it nor
	// gatewayPodSelector is set and gateway.enabled, the namespaces of
	// gateway.parentRefs are admitted.
	// +optional
	GatewayNamespaceSelector *metav1.LabelSelector `json:"gatewayNamespaceSelector,omitempty"`
	// GatewayPodSelector narrows the Gateway data plane to these pods.
	// +optional
	GatewayPodSelector *metav1.LabelSelector `json:"gatewayPodSelector,omitempty"`
	// AllowedIPBlocks are more peers allowed to the http port, as CIDRs: load
	// balancers that send straight to pod IPs, or proxies outside the cluster.
	// +optional
	// +kubebuilder:validation:MaxItems=32
	// +listType=atomic
	AllowedIPBlocks []IPBlock `json:"allowedIPBlocks,omitempty"`
	// MonitoringNamespaceSelector selects the namespaces whose pods may scrape the
	// authserver's metrics port.
	// +optional
	// +kubebuilder:default={matchLabels:{"kubernetes.io/metadata.name":"monitoring"}}
	MonitoringNamespaceSelector *metav1.LabelSelector `json:"monitoringNamespaceSelector,omitempty"`
	// MonitoringPodSelector narrows monitoring to these pods; empty allows every pod
	// of the selected namespaces.
	// +optional
	MonitoringPodSelector *metav1.LabelSelector `json:"monitoringPodSelector,omitempty"`
}

// IPBlock is a CIDR, minus the CIDRs of except.
// +kubebuilder:validation:XValidation:rule="isCIDR(self.cidr)",message="networkPolicy.allowedIPBlocks cidr must be a CIDR such as 10.0.0.0/16"
// +kubebuilder:validation:XValidation:rule="!has(self.except) || !isCIDR(self.cidr) || self.except.all(e, isCIDR(e) && cidr(self.cidr).containsCIDR(e))",message="networkPolicy.allowedIPBlocks except must hold CIDRs inside cidr"
type IPBlock struct {
	// CIDR allowed, for example 10.0.0.0/16 or 2001:db8::/64.
	// +kubebuilder:validation:MaxLength=64
	CIDR string `json:"cidr"`
	// Except are CIDRs inside cidr that stay refused.
	// +optional
	// +kubebuilder:validation:MaxItems=16
	// +kubebuilder:validation:items:MaxLength=64
	// +listType=atomic
	Except []string `json:"except,omitempty"`
}

// SMTPSpec is the mail relay.
// +kubebuilder:validation:XValidation:rule="has(self.username) == has(self.passwordSecretRef)",message="smtp.username and smtp.passwordSecretRef must be set together"
type SMTPSpec struct {
	// Host of the SMTP relay.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[A-Za-z0-9]([-A-Za-z0-9.]*[A-Za-z0-9])?$`
	Host string `json:"host"`
	// Port of the SMTP relay.
	// +optional
	// +kubebuilder:default=587
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=65535
	Port int32 `json:"port,omitempty"`
	// Username for SMTP AUTH, when the relay needs it.
	// +optional
	// +kubebuilder:validation:MaxLength=256
	Username string `json:"username,omitempty"`
	// PasswordSecretRef names the Secret key holding the SMTP password.
	// +optional
	PasswordSecretRef *SecretKeyRef `json:"passwordSecretRef,omitempty"`
}

// IngressSpec exposes the authserver.
// +kubebuilder:validation:XValidation:rule="!has(self.enabled) || !self.enabled || has(self.host)",message="ingress.host is required when ingress.enabled is true"
type IngressSpec struct {
	// Enabled creates the Ingress.
	// +optional
	// +kubebuilder:default=false
	Enabled bool `json:"enabled"`
	// Host name served, for example auth.example.com.
	// +optional
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^(\*\.)?[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`
	Host string `json:"host,omitempty"`
	// Path prefix routed to the authserver: /auth, the prefix of every authserver route
	// (any other prefix would answer 404).
	// +optional
	// +kubebuilder:default="/auth"
	// +kubebuilder:validation:MaxLength=256
	// +kubebuilder:validation:XValidation:rule="self == '/auth'",message="ingress.path must be /auth: the authserver serves every route under /auth, so another prefix would answer 404"
	Path string `json:"path,omitempty"`
	// ClassName is the IngressClass; empty uses the cluster's default class. With
	// nginx (ingress-nginx) the Ingress also carries ingress-nginx's annotations that
	// force HTTPS; other classes get none (they redirect per their own settings).
	// +optional
	// +kubebuilder:validation:MaxLength=253
	ClassName string `json:"className,omitempty"`
	// Annotations added to the Ingress, for the controller in use (for example
	// traefik.ingress.kubernetes.io/router.tls). The operator's own annotations win
	// on conflict.
	// +optional
	// +kubebuilder:validation:MaxProperties=64
	Annotations map[string]string `json:"annotations,omitempty"`
	// TLS of the Ingress.
	// +optional
	TLS *IngressTLS `json:"tls,omitempty"`
}

// IngressTLS configures the certificate.
type IngressTLS struct {
	// SecretName holds (or, with clusterIssuer, will hold) the certificate. Defaults to <name>-tls.
	// +optional
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$`
	SecretName string `json:"secretName,omitempty"`
	// ClusterIssuer is the cert-manager ClusterIssuer that issues the certificate.
	// +optional
	// +kubebuilder:validation:MaxLength=253
	ClusterIssuer string `json:"clusterIssuer,omitempty"`
}

// AuthStackStatus is what the operator observed.
type AuthStackStatus struct {
	// ObservedGeneration is the generation the status describes.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`
	// Conditions: Ready, AuthServerAvailable, and one per component.
	// +optional
	// +listType=map
	// +listMapKey=type
	Conditions []metav1.Condition `json:"conditions,omitempty"`
	// URL where the authserver is reached.
	// +optional
	URL string `json:"url,omitempty"`
	// AuthServer reports the Deployment's replicas.
	// +optional
	AuthServer ReplicaStatus `json:"authServer,omitempty"`
	// PepperSecretName names the Secret the pepper is read from (never its value).
	// +optional
	PepperSecretName string `json:"pepperSecretName,omitempty"`
	// Pepper reports the pepper versions while spec.pepperRotation is set (pepper_types.go).
	// +optional
	Pepper *PepperStatus `json:"pepper,omitempty"`
	// DatabasePasswordRotation reports spec.database.managed.passwordRotation (dbrotation_types.go).
	// +optional
	DatabasePasswordRotation *DatabasePasswordRotationStatus `json:"databasePasswordRotation,omitempty"`
	// Pooler reports the pgbouncer Deployment's replicas.
	// +optional
	Pooler *ReplicaStatus `json:"pooler,omitempty"`
	// Redis reports the managed Redis StatefulSet's replicas.
	// +optional
	Redis *ReplicaStatus `json:"redis,omitempty"`
	// Backups reports the last successful and failed backup of each kind.
	// +optional
	Backups *BackupsStatus `json:"backups,omitempty"`

	// Restore reports the declared restore of spec.bootstrap.fromBackup (bootstrap_types.go).
	// +optional
	Restore *RestoreStatus `json:"restore,omitempty"`

	// OperatorDefaults records the operator defaults the children are rendered with
	// (maintenance_types.go).
	// +optional
	OperatorDefaults *OperatorDefaultsStatus `json:"operatorDefaults,omitempty"`
}

// ReplicaStatus counts replicas.
type ReplicaStatus struct {
	// +optional
	Replicas int32 `json:"replicas,omitempty"`
	// +optional
	ReadyReplicas int32 `json:"readyReplicas,omitempty"`
	// Summary is readyReplicas/replicas, for kubectl.
	// +optional
	Summary string `json:"summary,omitempty"`
}

// MaxNameLength is the longest AuthStack name: every child's name, and every name
// and label the cluster derives from them, must fit (the longest is the Redis Cluster
// bootstrap Job, <name>-redis-bootstrap-<8 hex>, a pod label of at most 63
// characters). The CEL rule on AuthStack repeats it; controllers/resources/names_test.go
// checks every child of every mode at this length.
const MaxNameLength = 38

// AuthStack runs an auth tier: authserver, its Secrets, Service, HPA, PDB and Ingress.
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=ast,categories=all;leanauth
// The name rules apply when an AuthStack is created (a name never changes): a stack
// created before they existed can still be updated, deleted and have its status written.
// +kubebuilder:validation:XValidation:rule="oldSelf.hasValue() || self.metadata.name.size() <= 38",optionalOldSelf=true,message="metadata.name must be at most 38 characters, so the names of the objects the operator creates fit Kubernetes' limits"
// +kubebuilder:validation:XValidation:rule="oldSelf.hasValue() || self.metadata.name.matches('^[a-z]([-a-z0-9]*[a-z0-9])?$')",optionalOldSelf=true,message="metadata.name must start with a letter and hold only lowercase letters, digits and '-' (no dots): it prefixes Service names (DNS-1035 labels)"
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Replicas",type=string,JSONPath=`.status.authServer.summary`
// +kubebuilder:printcolumn:name="URL",type=string,JSONPath=`.status.url`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
// +kubebuilder:printcolumn:name="Reason",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].reason`,priority=1
type AuthStack struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec   AuthStackSpec   `json:"spec"`
	Status AuthStackStatus `json:"status,omitempty"`
}

// AuthStackList is a list of AuthStacks.
// +kubebuilder:object:root=true
type AuthStackList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []AuthStack `json:"items"`
}

func init() {
	SchemeBuilder.Register(&AuthStack{}, &AuthStackList{})
}
