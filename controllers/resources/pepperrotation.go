package resources

// Pepper rotation (spec.pepperRotation, controllers/pepperrotation.go): which Secret
// key holds each pepper version, how the pods get the old ones, and the Job that
// counts what each pepper still protects.

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	authv1alpha1 "github.com/leanauth/authstack/api/v1alpha1"
	"github.com/leanauth/authstack/authserver/pepperusage"
)

const (
	// ComponentPepperCount labels the Jobs that count the hashes per pepper.
	ComponentPepperCount = "pepper-count"
	// AnnotationPepperVersion on the authserver pod template: the version it hashes with.
	AnnotationPepperVersion = "auth.leanauth.dev/pepper-version"
	// AnnotationPeppers on the authserver pod template: every version it accepts.
	AnnotationPeppers = "auth.leanauth.dev/peppers"
	// LabelPepperVersion on a count Job: the current version when it was created.
	LabelPepperVersion = "auth.leanauth.dev/pepper-version"
	// OldPeppersMountPath holds one file per old pepper, v<version>.
	OldPeppersMountPath = "/var/run/authstack/old-peppers"
	// PepperCountInterval is how often the hashes are counted while old peppers are mounted.
	PepperCountInterval = 10 * time.Minute
)

// PepperVersion is one pepper version and the Secret key holding it.
type PepperVersion struct {
	Version int32
	Ref     authv1alpha1.SecretKeyRef
}

// PepperVersions lists the versions 1..spec.pepperRotation.version, oldest first:
// version 1 is PepperRef; a higher one is the entry you bring with spec.pepper, or
// the generated Secret <name>-pepper-v<version>.
func PepperVersions(stack *authv1alpha1.AuthStack) []PepperVersion {
	out := []PepperVersion{{1, PepperRef(stack)}}
	rot := stack.Spec.PepperRotation
	if rot == nil {
		return out
	}
	brought := map[int32]authv1alpha1.SecretKeyRef{}
	for _, p := range rot.Peppers {
		brought[p.Version] = p.SecretRef
	}
	for v := int32(2); v <= rot.Version; v++ {
		ref, ok := brought[v]
		if stack.Spec.Pepper == nil || !ok {
			ref = authv1alpha1.SecretKeyRef{Name: GeneratedPepperSecretName(stack, v), Key: PepperSecretKey}
		}
		out = append(out, PepperVersion{v, ref})
	}
	return out
}

// GeneratedPepperSecretName names the Secret of a generated pepper version.
func GeneratedPepperSecretName(stack *authv1alpha1.AuthStack, version int32) string {
	if version <= 1 {
		return PepperSecretName(stack)
	}
	return fmt.Sprintf("%s-v%d", PepperSecretName(stack), version)
}

// GeneratedPepperSecret renders a generated pepper version's Secret: like the first
// one (PepperSecret), immutable, without an owner, never updated or deleted.
func GeneratedPepperSecret(stack *authv1alpha1.AuthStack, version int32, pepper []byte) *corev1.Secret {
	s := PepperSecret(stack, pepper)
	s.Name = GeneratedPepperSecretName(stack, version)
	s.Annotations[AnnotationPepperVersion] = strconv.Itoa(int(version))
	return s
}

// PepperMounts says which peppers the authserver pods get: Current hashes, Old (newest
// first) still verify. Version is 0 without spec.pepperRotation (nothing is annotated).
type PepperMounts struct {
	Version int32
	Old     []PepperVersion
	// RetiredIDs are the ids of the retired versions (newest first): the migrate check
	// accepts hashes made with them (AUTH_RETIRED_PEPPER_IDS), as after a forced
	// retirement no stored hash may use a mounted pepper yet.
	RetiredIDs []string
}

// withPepperMounts gives the pod template the old peppers, one file each, named by
// AUTH_OLD_PEPPERS_FILE (a comma-separated list), in both containers, and annotates
// the versions, so the reconciler reads back what the pods run.
func withPepperMounts(tpl *corev1.PodTemplateSpec, m PepperMounts) {
	if m.Version == 0 {
		return
	}
	versions := []string{strconv.Itoa(int(m.Version))}
	var paths []string
	var sources []corev1.VolumeProjection
	for _, o := range m.Old {
		name := "v" + strconv.Itoa(int(o.Version))
		versions = append(versions, strconv.Itoa(int(o.Version)))
		paths = append(paths, OldPeppersMountPath+"/"+name)
		sources = append(sources, corev1.VolumeProjection{Secret: &corev1.SecretProjection{
			LocalObjectReference: corev1.LocalObjectReference{Name: o.Ref.Name},
			Items:                []corev1.KeyToPath{{Key: o.Ref.Key, Path: name}},
		}})
	}
	tpl.Annotations[AnnotationPepperVersion] = versions[0]
	tpl.Annotations[AnnotationPeppers] = strings.Join(versions, ",")
	if len(m.RetiredIDs) > 0 {
		for i := range tpl.Spec.InitContainers {
			if c := &tpl.Spec.InitContainers[i]; c.Name == MigrateContainerName {
				c.Env = sortEnv(append(c.Env, corev1.EnvVar{Name: "AUTH_RETIRED_PEPPER_IDS", Value: strings.Join(m.RetiredIDs, ",")}))
			}
		}
	}
	if len(m.Old) == 0 {
		return
	}
	tpl.Spec.Volumes = append(tpl.Spec.Volumes, corev1.Volume{Name: "old-peppers", VolumeSource: corev1.VolumeSource{
		Projected: &corev1.ProjectedVolumeSource{Sources: sources, DefaultMode: ptr.To[int32](0o440)}}})
	for _, cs := range [][]corev1.Container{tpl.Spec.InitContainers, tpl.Spec.Containers} {
		for i := range cs {
			if cs[i].Name != MigrateContainerName && cs[i].Name != ComponentAuthServer && cs[i].Name != ComponentRestore && cs[i].Name != ComponentBackupVerify {
				continue
			}
			cs[i].VolumeMounts = append(cs[i].VolumeMounts, corev1.VolumeMount{Name: "old-peppers", MountPath: OldPeppersMountPath, ReadOnly: true})
			cs[i].Env = sortEnv(append(cs[i].Env, corev1.EnvVar{Name: "AUTH_OLD_PEPPERS_FILE", Value: strings.Join(paths, ",")}))
		}
	}
}

// PepperCountJobName names the count Job of one version and interval: a new name each
// interval, so that the reconciler creates at most one per interval, even from a stale
// cache. At most 63 characters (a Job's name is a label value of its pods).
func PepperCountJobName(stack *authv1alpha1.AuthStack, version int32, now time.Time) string {
	return fmt.Sprintf("%s-pepper-count-v%d-%x", stack.Name, version, now.Unix()/int64(PepperCountInterval/time.Second))
}

// PepperCountJob renders the Job that runs `authserver peppers` against the database
// (the direct URL, like the backup Job: the NetworkPolicy admits its pods to the
// managed PostgreSQL) and leaves the counts in its termination message. It gets no
// pepper. It is owned by the stack and deleted an hour after it finished.
func PepperCountJob(stack *authv1alpha1.AuthStack, src BackupSources, version int32, now time.Time) *batchv1.Job {
	if src.DatabaseURL == nil {
		return nil
	}
	job := shortDatabaseJob(stack, PepperCountJobName(stack, version, now), ComponentPepperCount, src.Image, 2,
		[]string{"peppers"}, []corev1.EnvVar{secretEnv("DATABASE_URL", *src.DatabaseURL)})
	job.Labels[LabelPepperVersion] = strconv.Itoa(int(version))
	return job
}

// shortDatabaseJob is a one-container Job of the authserver image that runs a short
// database command (a count, a role change): small resources, five minutes at most,
// retried backoff times, owned by the stack and deleted an hour after it finished.
func shortDatabaseJob(stack *authv1alpha1.AuthStack, name, component, image string, backoff int32, args []string, env []corev1.EnvVar) *batchv1.Job {
	return &batchv1.Job{
		TypeMeta:   metav1.TypeMeta{APIVersion: "batch/v1", Kind: "Job"},
		ObjectMeta: objectMeta(stack, name, component),
		Spec: batchv1.JobSpec{
			BackoffLimit:            ptr.To(backoff),
			ActiveDeadlineSeconds:   ptr.To[int64](300),
			TTLSecondsAfterFinished: ptr.To[int32](3600),
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: Labels(stack, component)},
				Spec: restrictedPod(corev1.PodSpec{
					RestartPolicy:                 corev1.RestartPolicyNever,
					TerminationGracePeriodSeconds: ptr.To[int64](10),
					Containers: []corev1.Container{{
						Name:  component,
						Image: image,
						Args:  args,
						Env:   sortEnv(env),
						Resources: corev1.ResourceRequirements{
							Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("10m"), corev1.ResourceMemory: resource.MustParse("32Mi")},
							Limits:   corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("64Mi")},
						},
					}},
				}),
			},
		},
	}
}

// PepperCount is the newest finished count of a version.
type PepperCount struct {
	Usage pepperusage.Usage
	At    metav1.Time
	Job   string
}

// LatestPepperCount reads the newest completed count Job made for version (owned by
// the stack, uid) and the termination message of its pod (controlled by that Job):
// pods anyone could label do not count. That is no authentication: a pod's creator sets
// its owner references (controllers/DESIGN.md, "Pepper rotation"). ok is false when there is none.
func LatestPepperCount(jobs []batchv1.Job, pods []corev1.Pod, stackUID string, version int32) (PepperCount, bool) {
	// Newest first. Creation times have a resolution of one second, so Jobs created in
	// the same second are ordered by name, newest (greatest) first: deterministic, and
	// the operator's names grow with their interval.
	jobs = slices.Clone(jobs)
	slices.SortFunc(jobs, func(a, b batchv1.Job) int {
		if c := b.CreationTimestamp.Compare(a.CreationTimestamp.Time); c != 0 {
			return c
		}
		return strings.Compare(b.Name, a.Name)
	})
	for _, j := range jobs {
		owner := metav1.GetControllerOf(&j)
		if owner == nil || string(owner.UID) != stackUID || j.Labels[LabelPepperVersion] != strconv.Itoa(int(version)) {
			continue
		}
		var done *metav1.Time
		for _, c := range j.Status.Conditions {
			if c.Type == batchv1.JobComplete && c.Status == corev1.ConditionTrue {
				done = &c.LastTransitionTime
			}
		}
		if done == nil {
			continue
		}
		for _, p := range pods {
			po := metav1.GetControllerOf(&p)
			if po == nil || po.UID != j.UID {
				continue
			}
			for _, cs := range p.Status.ContainerStatuses {
				if t := cs.State.Terminated; t != nil && t.ExitCode == 0 && cs.Name == ComponentPepperCount {
					if u, err := pepperusage.Parse(t.Message); err == nil {
						return PepperCount{Usage: u, At: *done, Job: j.Name}, true
					}
				}
			}
		}
	}
	return PepperCount{}, false
}
