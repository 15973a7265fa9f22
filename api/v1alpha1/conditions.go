package v1alpha1

// Condition types of an AuthStack.
const (
	// ConditionReady is True when every component of the stack is ready.
	ConditionReady = "Ready"
	// ConditionAuthServerAvailable is True when the authserver Deployment is available.
	ConditionAuthServerAvailable = "AuthServerAvailable"
)

// Condition reasons.
const (
	ReasonAvailable         = "Available"
	ReasonProgressing       = "Progressing"
	ReasonUnavailable       = "Unavailable"
	ReasonAllReady          = "AllComponentsReady"
	ReasonComponentNotReady = "ComponentNotReady"
	ReasonSecretNotFound    = "SecretNotFound"
	ReasonSecretKeyMissing  = "SecretKeyMissing"
	ReasonApplyFailed       = "ApplyFailed"
)

// Reasons about the pepper.
const (
	ReasonInvalidPepper = "InvalidPepper"
	ReasonPepperMissing = "PepperMissing"
	ReasonRollingUpdate = "RollingUpdate"
)
