package v1alpha1_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

const (
	msgDatabaseVolumeKept = "database.managed cannot be turned off while its storage.deleteOnStackDeletion is true: the volume would be deleted with the StatefulSet; set deleteOnStackDeletion to false first"
	msgRedisVolumeKept    = "the managed Redis cannot be turned off (redis.urlSecretRef) while its storage.deleteOnStackDeletion is true: the volumes would be deleted with the StatefulSet; set deleteOnStackDeletion to false first"
)

// volumeKeptCases turn a managed component off. With storage.deleteOnStackDeletion
// the StatefulSet's volume claims are deleted with the StatefulSet, which turning the
// component off deletes: the API refuses that, so "volumes are kept when a component is
// turned off" (docs/data-tier.md) holds.
var volumeKeptCases = []struct {
	name           string
	create, update map[string]any // spec fields set (dotted paths); nil values delete
	field, msg     string         // empty: accepted
}{
	{name: "managed database with deleteOnStackDeletion turned off",
		create: map[string]any{"database": map[string]any{"managed": map[string]any{"storage": map[string]any{"deleteOnStackDeletion": true}}}},
		update: map[string]any{"database": map[string]any{"urlSecretRef": map[string]any{"name": "db", "key": "url"}}},
		field:  "spec.database", msg: msgDatabaseVolumeKept},
	{name: "managed database without deleteOnStackDeletion turned off",
		create: map[string]any{"database": map[string]any{"managed": map[string]any{}}},
		update: map[string]any{"database": map[string]any{"urlSecretRef": map[string]any{"name": "db", "key": "url"}}}},
	{name: "managed database deleteOnStackDeletion set to false",
		create: map[string]any{"database": map[string]any{"managed": map[string]any{"storage": map[string]any{"deleteOnStackDeletion": true}}}},
		update: map[string]any{"database": map[string]any{"managed": map[string]any{"storage": map[string]any{"deleteOnStackDeletion": false}}}}},
	{name: "managed redis with deleteOnStackDeletion turned off",
		create: map[string]any{"redis": map[string]any{"storage": map[string]any{"deleteOnStackDeletion": true}}},
		update: map[string]any{"redis": map[string]any{"urlSecretRef": map[string]any{"name": "redis", "key": "url"}, "storage": map[string]any{"deleteOnStackDeletion": true}}},
		field:  "spec.redis", msg: msgRedisVolumeKept},
	{name: "managed redis without deleteOnStackDeletion turned off",
		create: map[string]any{"redis": map[string]any{}},
		update: map[string]any{"redis": map[string]any{"urlSecretRef": map[string]any{"name": "redis", "key": "url"}}}},
}

func TestTurningOffKeepsVolumes(t *testing.T) {
	ctx := context.Background()
	for i, tc := range volumeKeptCases {
		t.Run(tc.name, func(t *testing.T) {
			spec := minimalSpec()
			for k, v := range tc.create {
				spec[k] = v
			}
			u := authStack(fmt.Sprintf("volumes-%d", i), spec)
			if err := k8sClient.Create(ctx, u); err != nil {
				t.Fatalf("creating: %v", err)
			}
			t.Cleanup(func() { _ = k8sClient.Delete(context.Background(), u) })
			spec, _, _ = unstructured.NestedMap(u.Object, "spec")
			for k, v := range tc.update {
				spec[k] = v
			}
			if err := unstructured.SetNestedMap(u.Object, spec, "spec"); err != nil {
				t.Fatal(err)
			}
			err := k8sClient.Update(ctx, u)
			if tc.field == "" {
				if err != nil {
					t.Fatalf("update rejected: %v", err)
				}
				return
			}
			if err == nil || !apierrors.IsInvalid(err) || !strings.Contains(err.Error(), tc.field) || !strings.Contains(err.Error(), tc.msg) {
				t.Fatalf("update: got %v, want Invalid at %s: %s", err, tc.field, tc.msg)
			}
		})
	}
}
