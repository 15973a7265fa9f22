package v1alpha1

import (
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// AuthStackSpec is the desired auth tier. Defaults live in the CRD schema (markers below),
// so the operator never writes into spec and never fights a GitOps tool.
// +kubebuilder:validation:XValidation:rule="has(self.pepper) == has(oldSelf.pepper)",message="spec.pepper cannot be added or removed after creation: the pepper hashes every password"
type AuthStackSpec struct {
	// AuthServer configures the authserver Deployment.
	AuthServer AuthServerSpec `json:"authServer"`

	// Pepper brings your own pepper. When absent the operator generates one into the
	// Secret <name>-pepper, once; it is never regenerated and not deleted with the AuthStack.
	// +optional
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="spec.pepper is immutable: changing it locks every user out"
	Pepper *PepperSpec `json:"pepper,omitempty"`

	// Database says where PostgreSQL is.
	Database DatabaseSpec `json:"database"`

	// Redis says where the session cache is.
	Redis RedisSpec `json:"redis"`

	// SMTP is the mail relay for verification and reset emails.
	SMTP SMTPSpec `json:"smtp"`

	// Ingress exposes the authserver over HTTPS.
	// +optional
	// +kubebuilder:default={}
	Ingress IngressSpec `json:"ingress,omitempty"`
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
// +kubebuilder:validation:XValidation:rule="!has(self.mailFrom) || self.mailFrom.contains('@')",message="authServer.mailFrom must be an email address, optionally with a display name"
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
	// +kubebuilder:validation:XValidation:rule="isURL(self) && (url(self).getScheme() == 'https' || (url(self).getScheme() == 'http' && url(self).getHostname() in ['localhost', '127.0.0.1', '::1']))",message="authServer.frontendURL must be an https URL (http only for localhost)"
	FrontendURL string `json:"frontendURL"`

	// MailFrom is the sender of the emails, for example "Example <noreply@example.com>".
	// +optional
	// +kubebuilder:validation:MaxLength=320
	MailFrom string `json:"mailFrom,omitempty"`

	// SessionTTL is how long a session lives, as a Go duration (for example 24h).
	// +optional
	// +kubebuilder:default="24h"
	// +kubebuilder:validation:Type=string
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

	// PodTemplate overrides scheduling and metadata of the authserver pods.
	// +optional
	PodTemplate *PodTemplateOverrides `json:"podTemplate,omitempty"`
}

// PasswordHashingSpec holds argon2id parameters. The defaults are OWASP's minimum.
type PasswordHashingSpec struct {
	// MemoryKiB is argon2id's memory cost in KiB.
	// +optional
	// +kubebuilder:default=19456
	// +kubebuilder:validation:Minimum=7168
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
// +kubebuilder:validation:XValidation:rule="self.minReplicas <= self.maxReplicas",message="autoscaling.minReplicas must be less than or equal to autoscaling.maxReplicas"
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
	// SecretRef names the Secret key holding the pepper (at least 32 bytes, hex or raw).
	SecretRef SecretKeyRef `json:"secretRef"`
}

// DatabaseSpec says where PostgreSQL is.
// +kubebuilder:validation:XValidation:rule="has(self.urlSecretRef)",message="database.urlSecretRef is required"
type DatabaseSpec struct {
	// URLSecretRef names the Secret key holding the PostgreSQL URL (postgres://...).
	// +optional
	URLSecretRef *SecretKeyRef `json:"urlSecretRef,omitempty"`
}

// RedisSpec says where Redis is.
// +kubebuilder:validation:XValidation:rule="has(self.urlSecretRef)",message="redis.urlSecretRef is required"
type RedisSpec struct {
	// URLSecretRef names the Secret key holding an external Redis URL (redis:// or rediss://).
	// +optional
	URLSecretRef *SecretKeyRef `json:"urlSecretRef,omitempty"`
}

// SMTPSpec is the mail relay.
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
// +kubebuilder:validation:XValidation:rule="!self.enabled || has(self.host)",message="ingress.host is required when ingress.enabled is true"
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
	// Path prefix routed to the authserver.
	// +optional
	// +kubebuilder:default="/auth"
	// +kubebuilder:validation:MaxLength=256
	// +kubebuilder:validation:Pattern=`^/[A-Za-z0-9/._~-]*$`
	Path string `json:"path,omitempty"`
	// ClassName of the ingress controller.
	// +optional
	// +kubebuilder:default=nginx
	// +kubebuilder:validation:MaxLength=253
	ClassName string `json:"className,omitempty"`
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

// AuthStack runs an auth tier: authserver, its Secrets, Service, HPA, PDB and Ingress.
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=ast,categories=all;leanauth
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
