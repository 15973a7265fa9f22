package servers

import (
	"os"
	"strings"
	"testing"
)

// The version the tests expect is the one hack/traefik.sh builds.
func TestTraefikPin(t *testing.T) {
	b, err := os.ReadFile("../../" + TraefikScript)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), `TRAEFIK_VERSION="${TRAEFIK_VERSION:-`+TraefikVersion+`}"`) {
		t.Fatalf("%s does not pin %s", TraefikScript, TraefikVersion)
	}
}
