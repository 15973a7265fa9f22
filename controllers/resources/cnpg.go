package resources

import (
	"fmt"
	"net"
	"net/url"
	"strconv"

	"k8s.io/apimachinery/pkg/runtime/schema"

	authv1alpha1 "github.com/leanauth/authstack/api/v1alpha1"
)

// CloudNativePG's names, as its documentation gives them (docs/data-tier.md,
// "CloudNativePG"): the Cluster kind, the labels of its pods, the keys of the Secret it
// generates for the application user.
var CNPGClusterGVK = schema.GroupVersionKind{Group: "postgresql.cnpg.io", Version: "v1", Kind: "Cluster"}

const (
	// LabelCNPGCluster is on every pod of a Cluster (instances and its Poolers').
	LabelCNPGCluster = "cnpg.io/cluster"
	// LabelCNPGPooler is on the pods of a Pooler.
	LabelCNPGPooler = "cnpg.io/poolerName"
	// CNPGPoolerPort is the port of a Pooler's Service.
	CNPGPoolerPort = 5432
	// cnpgSSLMode: CloudNativePG always serves TLS (certificates of its own CA), so
	// the connection requires it; verify-full needs the <cluster>-ca Secret mounted,
	// which the operator does not do.
	cnpgSSLMode = "require"
)

// CNPGAppSecretKeys are the keys of <cluster>-app the operator reads.
var CNPGAppSecretKeys = []string{"username", "password", "host", "port", "dbname"}

// CloudNativePG is the stack's spec.database.cloudNativePG, or nil.
func CloudNativePG(stack *authv1alpha1.AuthStack) *authv1alpha1.CloudNativePGSpec {
	return stack.Spec.Database.CloudNativePG
}

// CNPGAppSecretName names the Secret CloudNativePG generates for the application
// user of the stack's Cluster ("" without one).
func CNPGAppSecretName(stack *authv1alpha1.AuthStack) string {
	if c := CloudNativePG(stack); c != nil {
		return c.Cluster + "-app"
	}
	return ""
}

// CNPGDatabaseURL composes the database from the keys of a <cluster>-app Secret
// (username, password, host, port, dbname; the uri key is not needed). The errors name
// the key that is wrong, never a value.
func CNPGDatabaseURL(data map[string][]byte) (DatabaseURL, error) {
	for _, k := range CNPGAppSecretKeys {
		if len(data[k]) == 0 {
			return DatabaseURL{}, fmt.Errorf("%w: no key %q", ErrInvalidDatabaseURL, k)
		}
	}
	if _, err := strconv.Atoi(string(data["port"])); err != nil {
		return DatabaseURL{}, fmt.Errorf("%w: key \"port\" is not a number", ErrInvalidDatabaseURL)
	}
	u := url.URL{
		Scheme:   "postgres",
		User:     url.UserPassword(string(data["username"]), string(data["password"])),
		Host:     net.JoinHostPort(string(data["host"]), string(data["port"])),
		Path:     "/" + string(data["dbname"]),
		RawQuery: url.Values{"sslmode": {cnpgSSLMode}}.Encode(),
	}
	return ParseDatabaseURL(u.String())
}
