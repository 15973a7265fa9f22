package v1alpha1_test

import (
	"context"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	authv1alpha1 "github.com/leanauth/authstack/api/v1alpha1"
)

// spec.backup.verify and the private key refs. The cases join rejectCases
// (validation_test.go), like backup_validation_test.go's.

const (
	msgVerifyNeedsKey     = "backup.verify needs backup.encryption.privateKeySecretRef: a drill decrypts the backup it restores"
	msgPassphraseNeedsKey = "encryption.passphraseSecretRef needs encryption.privateKeySecretRef"
	msgPrivateNotPublic   = "encryption.privateKeySecretRef must name another Secret key than publicKeySecretRef"
)

func init() {
	with := func(kv ...any) map[string]any {
		set := map[string]any{}
		for k, v := range backupLeaves {
			set[k] = v
		}
		for i := 0; i+1 < len(kv); i += 2 {
			set[kv[i].(string)] = kv[i+1]
		}
		return set
	}
	priv := map[string]any{"name": "backup-private", "key": "private.asc"}
	rejectCases = append(rejectCases,
		rejectCase{name: "verify without the private key", set: with("backup.verify.schedule", "0 5 * * *"),
			field: "spec.backup", kind: kindCEL, msg: msgVerifyNeedsKey},
		rejectCase{name: "verify schedule bad", set: with("backup.encryption.privateKeySecretRef", priv, "backup.verify.schedule", "0 5 * *"),
			field: "spec.backup.verify.schedule", kind: kindCEL, msg: msgSchedule},
		rejectCase{name: "verify schedule too long", set: with("backup.encryption.privateKeySecretRef", priv, "backup.verify.schedule", "0 3 * * "+strings.Repeat("1,", 60)+"1"),
			field: "spec.backup.verify.schedule", kind: kindMaxLength},
		rejectCase{name: "passphrase without the private key", set: with("backup.encryption.passphraseSecretRef", map[string]any{"name": "pp", "key": "passphrase"}),
			field: "spec.backup.encryption", kind: kindCEL, msg: msgPassphraseNeedsKey},
		rejectCase{name: "private key is the public key", set: with("backup.encryption.privateKeySecretRef", map[string]any{"name": "backup-key", "key": "public.asc"}),
			field: "spec.backup.encryption", kind: kindCEL, msg: msgPrivateNotPublic},
		rejectCase{name: "private key key missing", set: with("backup.encryption.privateKeySecretRef", map[string]any{"name": "backup-private"}),
			field: "spec.backup.encryption.privateKeySecretRef.key", kind: kindRequired},
	)
	// Both refs are SecretKeyRefs: their name/key rules, at these uses.
	for _, ref := range []string{"privateKeySecretRef", "passphraseSecretRef"} {
		for _, c := range []struct {
			sub, kind string
			v         string
		}{
			{"name", kindMinLength, ""}, {"name", kindMaxLength, strings.Repeat("a", 254)}, {"name", kindPattern, "Bad_Name"},
			{"key", kindMinLength, ""}, {"key", kindMaxLength, strings.Repeat("a", 254)}, {"key", kindPattern, "bad key"},
		} {
			r := map[string]any{"name": "backup-private", "key": "k"}
			r[c.sub] = c.v
			set := with("backup.encryption."+ref, r)
			if ref == "passphraseSecretRef" {
				set["backup.encryption.privateKeySecretRef"] = priv
			}
			rejectCases = append(rejectCases, rejectCase{name: "backup " + ref + " " + c.sub + " " + c.kind, set: set,
				field: "spec.backup.encryption." + ref + "." + c.sub, kind: c.kind})
		}
	}
}

// TestDrillAcceptedAndDefaulted: a drill with the private key (and a
// passphrase) passes, and its schedule defaults to DefaultDrillSchedule.
func TestDrillAcceptedAndDefaulted(t *testing.T) {
	spec := minimalSpec()
	spec["backup"] = backupSpec()
	setPath(spec, "backup.encryption.privateKeySecretRef", map[string]any{"name": "backup-key", "key": "private.asc"})
	setPath(spec, "backup.encryption.passphraseSecretRef", map[string]any{"name": "backup-key", "key": "passphrase"})
	setPath(spec, "backup.verify", map[string]any{})
	u := authStack("drill-ok", spec)
	if err := k8sClient.Create(context.Background(), u, client.DryRunAll); err != nil {
		t.Fatalf("rejected: %v", err)
	}
	var got authv1alpha1.AuthStack
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, &got); err != nil {
		t.Fatal(err)
	}
	if v := got.Spec.Backup.Verify; v == nil || v.Schedule != authv1alpha1.DefaultDrillSchedule || v.Suspend {
		t.Fatalf("verify defaulted to %+v", v)
	}
}
