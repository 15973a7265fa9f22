package v1alpha1

// CloudNativePGSpec points the stack at a CloudNativePG Cluster (postgresql.cnpg.io/v1)
// in the AuthStack's namespace. The operator reads the connection from the Secret
// CloudNativePG generates for the application user, <cluster>-app (keys username,
// password, host, port, dbname), follows its rotation, opens the NetworkPolicy egress to
// the Cluster's pods and reports the Cluster's readiness in DatabaseReady. It never
// writes the Cluster, the Pooler or their Secrets (docs/data-tier.md).
type CloudNativePGSpec struct {
	// Cluster is the name of the CloudNativePG Cluster.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=60
	// +kubebuilder:validation:Pattern=`^[a-z]([-a-z0-9]*[a-z0-9])?$`
	Cluster string `json:"cluster"`
	// Pooler is the name of a CloudNativePG Pooler of that Cluster (type rw): the
	// authserver connects to its Service, <pooler>, instead of the Cluster's -rw Service
	// (its migrations still go to -rw). Only with pooler.enabled false: one pooler is enough.
	// +optional
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=63
	// +kubebuilder:validation:Pattern=`^[a-z]([-a-z0-9]*[a-z0-9])?$`
	Pooler string `json:"pooler,omitempty"`
}
