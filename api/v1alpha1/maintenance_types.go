package v1alpha1

// Maintenance control: spec.paused (in AuthStackSpec) and spec.updatePolicy, with the
// defaults a stack was rendered with in status.operatorDefaults (controllers/DESIGN.md,
// "Pause" and "Operator defaults").

// Values of spec.updatePolicy.operatorDefaults.
const (
	OperatorDefaultsFollow = "Follow"
	OperatorDefaultsPinned = "Pinned"
)

// AnnotationAdoptOperatorDefaults, set to any new value, makes a Pinned stack adopt
// the running operator's defaults once (the value is recorded in
// status.operatorDefaults.handledRequest).
const AnnotationAdoptOperatorDefaults = "auth.leanauth.dev/adopt-operator-defaults"

// UpdatePolicySpec says when the stack's pods take up new defaults of the operator
// (the images of its --authserver-image, --pgbouncer-image and --redis-image flags).
type UpdatePolicySpec struct {
	// OperatorDefaults is Follow (the pods roll to the running operator's defaults as
	// soon as it runs with new ones) or Pinned (the stack keeps the defaults recorded in
	// status.operatorDefaults until it is annotated
	// auth.leanauth.dev/adopt-operator-defaults=<any new value>). Images set in the spec
	// are used either way.
	// +optional
	// +kubebuilder:default=Follow
	// +kubebuilder:validation:Enum=Follow;Pinned
	OperatorDefaults string `json:"operatorDefaults,omitempty"`
}

// OperatorDefaultsStatus is what the stack's children are rendered with where the spec
// names no image.
type OperatorDefaultsStatus struct {
	// +optional
	AuthServerImage string `json:"authServerImage,omitempty"`
	// +optional
	PgBouncerImage string `json:"pgBouncerImage,omitempty"`
	// +optional
	RedisImage string `json:"redisImage,omitempty"`
	// Pending is true when the running operator has other defaults that this Pinned
	// stack has not adopted.
	// +optional
	Pending bool `json:"pending,omitempty"`
	// HandledRequest is the last value of the auth.leanauth.dev/adopt-operator-defaults
	// annotation the operator acted on.
	// +optional
	HandledRequest string `json:"handledRequest,omitempty"`
}

// ConditionOperatorDefaultsPending is set on Pinned stacks: True while the running
// operator has other defaults than the ones the stack renders with (the message names
// them and how to adopt them), False when they are the same. It never decides Ready.
const ConditionOperatorDefaultsPending = "OperatorDefaultsPending"

// Reasons of ConditionOperatorDefaultsPending.
const (
	ReasonNewerOperatorDefaults   = "NewerOperatorDefaults"
	ReasonOperatorDefaultsCurrent = "OperatorDefaultsCurrent"
)
