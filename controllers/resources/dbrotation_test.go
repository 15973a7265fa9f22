package resources

import (
	"math"
	"slices"
	"strings"
	"testing"

	authv1alpha1 "github.com/leanauth/authstack/api/v1alpha1"
)

func managedStack() *authv1alpha1.AuthStack {
	s := sampleStack()
	s.Spec.Database = authv1alpha1.DatabaseSpec{Managed: &authv1alpha1.ManagedDatabaseSpec{}}
	return s
}

func TestDBRotateJobNameFits(t *testing.T) {
	stack := &authv1alpha1.AuthStack{}
	stack.Name = strings.Repeat("a", authv1alpha1.MaxNameLength)
	for _, step := range []string{DBRotatePrepare, DBRotateRetire} {
		if n := DBRotateJobName(stack, math.MaxInt32, step); len(n) > 63 {
			t.Errorf("%q: %d characters", n, len(n))
		}
	}
}

func TestAlternatingRoles(t *testing.T) {
	if OtherDatabaseRole(ManagedDatabaseUser) != ManagedDatabaseSecondUser || OtherDatabaseRole(ManagedDatabaseSecondUser) != ManagedDatabaseUser {
		t.Errorf("the pair does not alternate")
	}
	stack := managedStack()
	if n := DatabasePasswordSecretName(stack, 0); n != PostgresPasswordSecretName(stack) {
		t.Errorf("generation 0: %s", n)
	}
	s := DatabasePasswordSecret(stack, 3, ManagedDatabaseSecondUser, []byte("pw"))
	if s.Name != "demo-postgres-password-3" || len(s.OwnerReferences) != 0 || s.Annotations[AnnotationRetain] != "true" || string(s.Data[PostgresPasswordKey]) != "pw" {
		t.Errorf("generation 3 Secret: %+v", s.ObjectMeta)
	}
}

// The prepare Job logs in with the pods' current credential (the connection Secret)
// and gets the new password from its Secret by reference; the retire Job gets no
// password at all. Nothing is inlined.
func TestDBRotateJobs(t *testing.T) {
	for _, pooled := range []bool{true, false} {
		stack := managedStack()
		stack.Spec.Pooler.Enabled = &pooled
		ref := authv1alpha1.SecretKeyRef{Name: DatabasePasswordSecretName(stack, 2), Key: PostgresPasswordKey}
		prep := DBRotateJob(stack, sampleInputs(stack), 2, DBRotatePrepare, ManagedDatabaseUser, &ref)
		c := prep.Spec.Template.Spec.Containers[0]
		if !slices.Equal(c.Args, []string{"db-role", "prepare", "authstack", "authstack"}) {
			t.Errorf("prepare args %q", c.Args)
		}
		env := envByName(t, c)
		wantURL := ConnectionDatabaseURLKey
		if pooled {
			wantURL = ConnectionDatabaseDirectURLKey
		}
		if e := env["DATABASE_URL"]; e.ValueFrom == nil || e.ValueFrom.SecretKeyRef.Name != ConnectionSecretName(stack) || e.ValueFrom.SecretKeyRef.Key != wantURL {
			t.Errorf("pooled %v: DATABASE_URL %+v", pooled, e)
		}
		if e := env["DB_ROLE_PASSWORD"]; e.Value != "" || e.ValueFrom.SecretKeyRef.Name != ref.Name {
			t.Errorf("DB_ROLE_PASSWORD %+v", e)
		}
		if prep.Labels[LabelComponent] != ComponentDBRotate || prep.Spec.Template.Labels[LabelComponent] != ComponentDBRotate || prep.OwnerReferences[0].Kind != "AuthStack" {
			t.Errorf("labels %v / %v", prep.Labels, prep.Spec.Template.Labels)
		}
		ret := DBRotateJob(stack, sampleInputs(stack), 2, DBRotateRetire, ManagedDatabaseSecondUser, nil)
		rc := ret.Spec.Template.Spec.Containers[0]
		if !slices.Equal(rc.Args, []string{"db-role", "retire", "authstack_b"}) || len(rc.Env) != 1 {
			t.Errorf("retire: args %q env %+v", rc.Args, rc.Env)
		}
		if prep.Name == ret.Name {
			t.Errorf("both steps are named %s", prep.Name)
		}
	}
}

// pgbouncer accepts every login given, one auth file line each, quoted.
func TestPgBouncerAcceptsBothRoles(t *testing.T) {
	stack := managedStack()
	db := ManagedDatabaseURL(stack, "new")
	db.User = ManagedDatabaseSecondUser
	_, one := PgBouncerConfig(stack, ManagedDatabaseURL(stack, "old"))
	_, both := PgBouncerConfig(stack, db, ManagedDatabaseURL(stack, "old"))
	if one != `"authstack" "old"`+"\n" {
		t.Errorf("one login: %q", one)
	}
	if both != `"authstack_b" "new"`+"\n"+`"authstack" "old"`+"\n" {
		t.Errorf("two logins: %q", both)
	}
}
