package resources

import (
	"strings"
	"testing"
	"time"

	authv1alpha1 "github.com/leanauth/authstack/api/v1alpha1"
)

func TestPepperCountJobNameFits(t *testing.T) {
	stack := &authv1alpha1.AuthStack{}
	stack.Name = strings.Repeat("a", authv1alpha1.MaxNameLength)
	if n := PepperCountJobName(stack, 100, time.Date(2100, 1, 1, 0, 0, 0, 0, time.UTC)); len(n) > 63 {
		t.Fatalf("%q: %d characters", n, len(n))
	}
}
