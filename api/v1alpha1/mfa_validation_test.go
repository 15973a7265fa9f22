package v1alpha1_test

import (
	"context"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	authv1alpha1 "github.com/leanauth/authstack/api/v1alpha1"
)

// spec.authServer.mfa rules; the cases join rejectCases (validation_test.go)
// so that TestRejects runs them and TestEveryRuleIsCovered counts them.

const (
	msgMFARequired = "authServer.mfa.mode required needs at least one method in authServer.mfa.methods"
	msgStepUp      = "authServer.mfa.stepUpWindow must be between 1m and 24h"
)

func init() {
	m := "authServer.mfa."
	f := "spec.authServer.mfa"
	rejectCases = append(rejectCases,
		rejectCase{name: "mfa mode unknown", set: map[string]any{m + "mode": "sometimes"}, field: f + ".mode", kind: kindEnum, msg: `"optional", "required"`},
		rejectCase{name: "mfa method unknown", set: map[string]any{m + "methods": []any{"sms"}}, field: f + ".methods[0]", kind: kindEnum, msg: `"totp", "passkey"`},
		rejectCase{name: "mfa required without methods", set: map[string]any{m + "mode": "required", m + "methods": []any{}}, field: f, kind: kindCEL, msg: msgMFARequired},
		rejectCase{name: "mfa stepUpWindow too short", set: map[string]any{m + "stepUpWindow": "30s"}, field: f + ".stepUpWindow", kind: kindCEL, msg: msgStepUp},
		rejectCase{name: "mfa stepUpWindow too long", set: map[string]any{m + "stepUpWindow": "25h"}, field: f + ".stepUpWindow", kind: kindCEL, msg: msgStepUp},
		rejectCase{name: "mfa stepUpWindow not a duration", set: map[string]any{m + "stepUpWindow": "10"}, field: f + ".stepUpWindow", kind: kindPattern},
	)
}

func TestMFAAccepts(t *testing.T) {
	for name, set := range map[string]map[string]any{
		"required with totp":      {"authServer.mfa.mode": "required", "authServer.mfa.methods": []any{"totp"}},
		"required with passkey":   {"authServer.mfa.mode": "required", "authServer.mfa.methods": []any{"passkey"}},
		"optional with none":      {"authServer.mfa.mode": "optional", "authServer.mfa.methods": []any{}},
		"stepUpWindow at the low": {"authServer.mfa.stepUpWindow": "1m"},
		"stepUpWindow at the top": {"authServer.mfa.stepUpWindow": "24h"},
	} {
		t.Run(name, func(t *testing.T) {
			spec := minimalSpec()
			for p, v := range set {
				setPath(spec, p, v)
			}
			if err := k8sClient.Create(context.Background(), authStack("good", spec), client.DryRunAll); err != nil {
				t.Fatalf("rejected: %v", err)
			}
		})
	}
}

// The defaults are the authserver's own (authserver/config, loadMFA).
func TestMFADefaults(t *testing.T) {
	u := authStack("mfa-defaults", minimalSpec())
	if err := k8sClient.Create(context.Background(), u, client.DryRunAll); err != nil {
		t.Fatal(err)
	}
	var got authv1alpha1.AuthStack
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, &got); err != nil {
		t.Fatal(err)
	}
	m := got.Spec.AuthServer.MFA
	if len(m.Methods) != 2 || m.Methods[0] != "totp" || m.Methods[1] != "passkey" || m.Mode != "optional" ||
		m.StepUpWindow == nil || m.StepUpWindow.Duration != 10*time.Minute {
		t.Fatalf("mfa defaults %+v", m)
	}
}
