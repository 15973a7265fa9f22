package resources

import (
	"reflect"
	"testing"

	authv1alpha1 "github.com/leanauth/authstack/api/v1alpha1"
)

func TestPepperRef(t *testing.T) {
	if got, want := PepperRef(sampleStack()), (authv1alpha1.SecretKeyRef{Name: "demo-pepper", Key: "pepper"}); got != want {
		t.Errorf("generated PepperRef = %+v, want %+v", got, want)
	}
	if got, want := PepperRef(withOwnPepper(sampleStack())), (authv1alpha1.SecretKeyRef{Name: "byo-pepper", Key: "current"}); got != want {
		t.Errorf("own PepperRef = %+v, want %+v", got, want)
	}
}

func TestReferencedSecrets(t *testing.T) {
	db := authv1alpha1.SecretKeyRef{Name: "demo-db", Key: "url"}
	redis := authv1alpha1.SecretKeyRef{Name: "demo-redis", Key: "url"}
	smtp := authv1alpha1.SecretKeyRef{Name: "demo-smtp", Key: "password"}
	gen := authv1alpha1.SecretKeyRef{Name: "demo-pepper", Key: "pepper"}
	own := authv1alpha1.SecretKeyRef{Name: "byo-pepper", Key: "current"}
	for _, tc := range []struct {
		name  string
		stack *authv1alpha1.AuthStack
		want  []SecretUse
	}{
		{"all refs, generated pepper", sampleStack(), []SecretUse{
			{"spec.pepper.secretRef", gen}, {"spec.database.urlSecretRef", db},
			{"spec.redis.urlSecretRef", redis}, {"spec.smtp.passwordSecretRef", smtp},
		}},
		{"own pepper", withOwnPepper(sampleStack()), []SecretUse{
			{"spec.pepper.secretRef", own}, {"spec.database.urlSecretRef", db},
			{"spec.redis.urlSecretRef", redis}, {"spec.smtp.passwordSecretRef", smtp},
		}},
		{"no SMTP password", func() *authv1alpha1.AuthStack {
			s := sampleStack()
			s.Spec.SMTP.PasswordSecretRef = nil
			return s
		}(), []SecretUse{
			{"spec.pepper.secretRef", gen}, {"spec.database.urlSecretRef", db}, {"spec.redis.urlSecretRef", redis},
		}},
		{"only the pepper", func() *authv1alpha1.AuthStack {
			s := sampleStack()
			s.Spec.SMTP.PasswordSecretRef, s.Spec.Database.URLSecretRef, s.Spec.Redis.URLSecretRef = nil, nil, nil
			return s
		}(), []SecretUse{{"spec.pepper.secretRef", gen},
			// Without redis.urlSecretRef the operator runs Redis with a generated password.
			{"spec.redis (generated password)", RedisPasswordRef(sampleStack())}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := ReferencedSecrets(tc.stack); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("ReferencedSecrets = %+v\nwant %+v", got, tc.want)
			}
		})
	}
}

// Every Secret the Deployment reads is in ReferencedSecrets, so its rotation rolls the pods.
func TestReferencedSecretsCoverDeployment(t *testing.T) {
	for _, v := range stackVariants {
		t.Run(v.name, func(t *testing.T) {
			s := v.stack()
			refs := map[authv1alpha1.SecretKeyRef]bool{}
			for _, u := range ReferencedSecrets(s) {
				refs[u.Ref] = true
			}
			spec := renderDeployment(s).Spec.Template.Spec
			read := map[authv1alpha1.SecretKeyRef]bool{}
			for _, c := range append(append(spec.InitContainers[:0:0], spec.InitContainers...), spec.Containers...) {
				for _, e := range c.Env {
					if e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil {
						read[authv1alpha1.SecretKeyRef{Name: e.ValueFrom.SecretKeyRef.Name, Key: e.ValueFrom.SecretKeyRef.Key}] = true
					}
				}
			}
			for _, vol := range spec.Volumes {
				if vol.Secret != nil {
					for _, item := range vol.Secret.Items {
						read[authv1alpha1.SecretKeyRef{Name: vol.Secret.SecretName, Key: item.Key}] = true
					}
				}
			}
			if !reflect.DeepEqual(read, refs) {
				t.Errorf("the pods read %v, ReferencedSecrets lists %v", read, refs)
			}
		})
	}
}

func TestConfigHash(t *testing.T) {
	s := sampleStack()
	uses := ReferencedSecrets(s)
	values := func() map[authv1alpha1.SecretKeyRef][]byte {
		m := map[authv1alpha1.SecretKeyRef][]byte{}
		for k, v := range testSecretValues {
			m[k] = append([]byte(nil), v...)
		}
		return m
	}
	base := ConfigHash(uses, values())
	if len(base) != 32 {
		t.Errorf("hash %q has %d characters, want 32", base, len(base))
	}
	if again := ConfigHash(ReferencedSecrets(s.DeepCopy()), values()); again != base {
		t.Errorf("same values, different hash: %s vs %s", again, base)
	}
	// Values of Secret keys the stack does not read change nothing.
	extra := values()
	extra[authv1alpha1.SecretKeyRef{Name: "unrelated", Key: "x"}] = []byte("whatever")
	extra[authv1alpha1.SecretKeyRef{Name: "demo-db", Key: "other-key"}] = []byte("whatever")
	if got := ConfigHash(uses, extra); got != base {
		t.Error("a value the stack does not read changed the hash")
	}
	// Each referenced value, rotated, changes the hash; each to a different one.
	seen := map[string]string{base: "base"}
	for _, u := range uses {
		m := values()
		m[u.Ref] = append(m[u.Ref], '!')
		got := ConfigHash(uses, m)
		if prev, dup := seen[got]; dup {
			t.Errorf("rotating %s (%s/%s) gives the hash of %s", u.Field, u.Ref.Name, u.Ref.Key, prev)
		}
		seen[got] = u.Field
	}
	// Pointing a field at another Secret with the same value also rolls the pods.
	moved := withOwnPepper(sampleStack())
	m := values()
	m[PepperRef(moved)] = m[PepperRef(s)]
	if ConfigHash(ReferencedSecrets(moved), m) == base {
		t.Error("switching the pepper to another Secret with the same value kept the hash")
	}
}
