package v1alpha1

// DatabasePasswordRotationSpec rotates the password of the managed PostgreSQL without
// a failed request (docs/operations.md, "Rotate the managed database password"). The
// pods log in as one of two roles, authstack and authstack_b, used alternately (the
// "alternating users" strategy): a rotation gives the role the pods do not use a new
// password, switches pgbouncer and the authserver pods to it with rolling updates, and
// only then removes the other role's password.
type DatabasePasswordRotationSpec struct {
	// Generation asks for a rotation whenever it is raised (like a restart counter):
	// the operator rotates once to the highest value it sees. It can only be raised.
	// +kubebuilder:validation:Minimum=1
	Generation int32 `json:"generation"`
}

// Phases of a database password rotation, in order.
const (
	// DatabaseRotationPreparing: a Job gives the next role its new password (and creates
	// the role the first time) and checks that it logs in.
	DatabaseRotationPreparing = "Preparing"
	// DatabaseRotationSwitchingPooler: pgbouncer rolls to accept both roles.
	DatabaseRotationSwitchingPooler = "SwitchingPooler"
	// DatabaseRotationSwitchingPods: the authserver pods roll to the next role.
	DatabaseRotationSwitchingPods = "SwitchingPods"
	// DatabaseRotationRetiring: a Job removes the previous role's password and ends its sessions.
	DatabaseRotationRetiring = "Retiring"
	// DatabaseRotationComplete: the pods and pgbouncer use only the current role.
	DatabaseRotationComplete = "Complete"
)

// DatabasePasswordRotationStatus says where the rotation of the managed database's
// password is. It never holds a password.
type DatabasePasswordRotationStatus struct {
	// Phase of the rotation to Next (Complete: none in progress).
	// +kubebuilder:validation:Enum=Preparing;SwitchingPooler;SwitchingPods;Retiring;Complete
	Phase string `json:"phase"`
	// Current is the credential in use before the rotation, and after it.
	Current DatabaseCredentialStatus `json:"current"`
	// Next is the credential a rotation in progress introduces.
	// +optional
	Next *DatabaseCredentialStatus `json:"next,omitempty"`
}

// DatabaseCredentialStatus names a login role and the Secret with its password.
type DatabaseCredentialStatus struct {
	// Generation of spec.database.managed.passwordRotation it was made for (0: the
	// password generated with the database).
	Generation int32 `json:"generation"`
	// Role is the PostgreSQL login role.
	Role string `json:"role"`
	// SecretName is the Secret (key "password") holding its password.
	SecretName string `json:"secretName"`
}

// ConditionDatabasePasswordRotated reports spec.database.managed.passwordRotation
// (present only while it is set; it never decides Ready).
const (
	ConditionDatabasePasswordRotated = "DatabasePasswordRotated"
	// ReasonRotationFailed: a rotation Job failed; its pod's log says why.
	ReasonRotationFailed = "RotationFailed"
)
