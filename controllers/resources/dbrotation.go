package resources

// The password rotation of the managed PostgreSQL (spec.database.managed.passwordRotation,
// controllers/dbrotation.go): the two login roles used alternately, the Secret of each
// generation's password, and the Jobs that run `authserver db-role`.

import (
	"fmt"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"

	authv1alpha1 "github.com/leanauth/authstack/api/v1alpha1"
)

const (
	// ComponentDBRotate labels the rotation Jobs (the NetworkPolicy admits them to the database).
	ComponentDBRotate = "db-rotate"
	// ManagedDatabaseSecondUser is the other login role of a rotation. It is a member of
	// ManagedDatabaseUser and acts as it in every session (ALTER ROLE ... SET role), so
	// whatever the pods create is owned by ManagedDatabaseUser whichever role they use.
	ManagedDatabaseSecondUser = ManagedDatabaseUser + "_b"
	// AnnotationDatabaseRole on a generation's password Secret names its role.
	AnnotationDatabaseRole = "auth.leanauth.dev/database-role"
	// DBRotatePrepare and DBRotateRetire are the steps of the Jobs.
	DBRotatePrepare = "prepare"
	DBRotateRetire  = "retire"
)

// OtherDatabaseRole is the role a rotation from role switches to.
func OtherDatabaseRole(role string) string {
	if role == ManagedDatabaseSecondUser {
		return ManagedDatabaseUser
	}
	return ManagedDatabaseSecondUser
}

// DatabasePasswordSecretName names the Secret of a generation's password: generation 0
// is the password the database was created with.
func DatabasePasswordSecretName(stack *authv1alpha1.AuthStack, generation int32) string {
	if generation == 0 {
		return PostgresPasswordSecretName(stack)
	}
	return fmt.Sprintf("%s-%d", PostgresPasswordSecretName(stack), generation)
}

// DatabasePasswordSecret renders a rotation generation's password Secret: created once,
// never updated, not owned (kept with the volume, like the first one).
func DatabasePasswordSecret(stack *authv1alpha1.AuthStack, generation int32, role string, password []byte) *corev1.Secret {
	s := generatedSecret(stack, DatabasePasswordSecretName(stack, generation), ComponentPostgres,
		fmt.Sprintf("The password of role %s of the managed PostgreSQL of AuthStack %s from passwordRotation generation %d; it stops logging in when a later rotation retires the role.",
			role, stack.Name, generation),
		map[string][]byte{PostgresPasswordKey: password})
	s.Annotations[AnnotationDatabaseRole] = role
	return s
}

// DBRotateJobName names the Job of one step of one generation.
func DBRotateJobName(stack *authv1alpha1.AuthStack, generation int32, step string) string {
	return fmt.Sprintf("%s-dbrot-%d-%s", stack.Name, generation, step) // at most 63 characters
}

// DBRotateJob renders the Job of one rotation step: `authserver db-role prepare ROLE
// OWNER` (with the new password from its Secret) or `db-role retire ROLE`, logging in
// with the credential the pods use at that moment (the connection Secret's direct URL,
// like the backup Job). It is owned by the stack and deleted an hour after it finished.
func DBRotateJob(stack *authv1alpha1.AuthStack, in Inputs, generation int32, step, role string, password *authv1alpha1.SecretKeyRef) *batchv1.Job {
	src := DefaultBackupSources(stack, in)
	env := []corev1.EnvVar{secretEnv("DATABASE_URL", *src.DatabaseURL)}
	args := []string{"db-role", step, role}
	if step == DBRotatePrepare {
		args = append(args, ManagedDatabaseUser)
		env = append(env, secretEnv("DB_ROLE_PASSWORD", *password))
	}
	return shortDatabaseJob(stack, DBRotateJobName(stack, generation, step), ComponentDBRotate, src.Image, 3, args, env)
}
