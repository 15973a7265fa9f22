package kubectlplugin

import "testing"

// TestPauseResume: pause sets spec.paused and waits for the operator's Paused
// condition, status shows it, resume waits until the condition is gone.
func TestPauseResume(t *testing.T) {
	ns := newStack(t)
	out, code := run(t, ns, "pause", "auth", "--timeout", "90s")
	if code != 0 {
		t.Fatalf("pause: exit %d\n%s", code, out)
	}
	wantLines(t, out, "AuthStack "+ns+"/auth paused (spec.paused: true)",
		"condition Paused=True (Paused): spec.paused is true")
	if !getStack(t, ns).Spec.Paused {
		t.Error("spec.paused is not true")
	}
	out, _ = run(t, ns, "status", "auth")
	wantLines(t, out, "Paused: yes (spec.paused", "Paused True Paused", "Progressing False Paused")

	out, code = run(t, ns, "resume", "auth", "--timeout", "90s")
	if code != 0 {
		t.Fatalf("resume: exit %d\n%s", code, out)
	}
	wantLines(t, out, "AuthStack "+ns+"/auth resumed (spec.paused: false)", "the operator reconciles the AuthStack again")
	if getStack(t, ns).Spec.Paused {
		t.Error("spec.paused is still true")
	}
	out, _ = run(t, ns, "status", "auth")
	wantLines(t, out, "Paused: no")
	if containsLine(out, "Paused True") {
		t.Errorf("status after resume still shows Paused True:\n%s", out)
	}
}
