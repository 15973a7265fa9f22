package v1alpha1

// Condition types of an AuthStack.
const (
	// ConditionReady is True when every component of the stack is ready.
	ConditionReady = "Ready"
	// ConditionAuthServerAvailable is True when the authserver Deployment is available.
	ConditionAuthServerAvailable = "AuthServerAvailable"
	// ConditionPoolerReady is True when pgbouncer is available, or the pooler is disabled.
	ConditionPoolerReady = "PoolerReady"
	// ConditionRedisReady is True when the managed Redis is ready (and, in cluster
	// mode, the cluster is formed), or the external Redis URL Secret is usable.
	ConditionRedisReady = "RedisReady"
	// ConditionDatabaseReady is True when the managed PostgreSQL is ready, or the
	// external database URL Secret exists and parses.
	ConditionDatabaseReady = "DatabaseReady"
	// ConditionProgressing is True while a workload of the stack rolls out or scales.
	// It never decides Ready.
	ConditionProgressing = "Progressing"
	// ConditionDegraded is True when something needs a person: a missing Secret, an
	// unusable URL or pepper, an object the API server refused.
	ConditionDegraded = "Degraded"
	// ConditionPaused is True while spec.paused stops the operator from changing the
	// stack's children (absent otherwise).
	ConditionPaused = "Paused"
)

// Reasons of maintenance control (maintenance_types.go).
const (
	// ReasonPaused: spec.paused is true (Paused True, Progressing False).
	ReasonPaused = "Paused"
)

// Reasons of DatabaseReady with spec.database.cloudNativePG (cnpg_types.go).
const (
	// ReasonCloudNativePGNotServed: the cluster does not serve postgresql.cnpg.io/v1 Cluster.
	ReasonCloudNativePGNotServed = "CloudNativePGNotServed"
	// ReasonClusterNotFound: the named CloudNativePG Cluster does not exist.
	ReasonClusterNotFound = "ClusterNotFound"
)

// Condition reasons.
const (
	ReasonAvailable        = "Available"
	ReasonProgressing      = "Progressing"
	ReasonUnavailable      = "Unavailable"
	ReasonAllReady         = "AllComponentsReady"
	ReasonSecretNotFound   = "SecretNotFound"
	ReasonSecretKeyMissing = "SecretKeyMissing"
	ReasonApplyFailed      = "ApplyFailed"
	ReasonRolledOut        = "RolledOut"
	ReasonNoErrors         = "NoErrors"
)

// Reasons about the pepper.
const (
	ReasonInvalidPepper = "InvalidPepper"
	ReasonPepperMissing = "PepperMissing"
	// ReasonPepperMismatch: the stored password hashes use none of the pods' peppers
	// (a restore into a stack that generated a new pepper); see docs/backup-and-restore.md.
	ReasonPepperMismatch = "PepperMismatch"
)

// Reasons about the data tier.
const (
	ReasonDisabled         = "Disabled"
	ReasonExternal         = "External"
	ReasonInvalidURL       = "InvalidURL"
	ReasonClusterNotFormed = "ClusterNotFormed"
	ReasonWaitingForPods   = "WaitingForPods"
)

// The Gateway API route of spec.gateway (controllers/gateway.go).
const (
	// ConditionGatewayRouteReady is True when every Gateway of spec.gateway.parentRefs
	// accepted the authserver's HTTPRoute. Present only while spec.gateway.enabled.
	ConditionGatewayRouteReady = "GatewayRouteReady"

	ReasonGatewayAPINotServed = "GatewayAPINotServed"
	ReasonRouteAccepted       = "Accepted"
	ReasonRouteNotAccepted    = "NotAccepted"
)

// Reasons of an AuthPolicy's Ready condition (controllers/authpolicy.go).
const (
	ReasonWired               = "Wired"
	ReasonStackNotFound       = "AuthStackNotFound"
	ReasonNamespaceNotAllowed = "NamespaceNotAllowed"
	ReasonKindNotServed       = "KindNotServed"
	ReasonTargetNotFound      = "TargetNotFound"
	ReasonTargetConflict      = "TargetConflict"
	ReasonFilterMissing       = "FilterMissing"
)
