package pepperusage

import (
	"reflect"
	"strings"
	"testing"
)

func TestLineParses(t *testing.T) {
	u := Usage{PasswordHashes: map[string]int64{"abc+/def": 3}, TOTPSecrets: map[string]int64{}, Other: 1}
	got, err := Parse("some log\n" + string(u.Line()))
	if err != nil || !reflect.DeepEqual(got, u) {
		t.Fatalf("Parse(Line) = %+v, %v; want %+v", got, err, u)
	}
	for _, bad := range []string{"", "not json", `{"password_hashes":{}}`} {
		if _, err := Parse(bad); err == nil {
			t.Errorf("Parse(%q) accepted", bad)
		}
	}
}

func TestLineFitsATerminationMessage(t *testing.T) {
	u := Usage{PasswordHashes: map[string]int64{}, TOTPSecrets: map[string]int64{}}
	for i := range MaxIDs { // both maps full
		id := ID([]byte{byte(i), byte(i >> 8)})
		u.PasswordHashes[id], u.TOTPSecrets[id] = 1<<40, 1<<40
	}
	if n := len(u.Line()); n > 4096 {
		t.Fatalf("line of %d bytes", n)
	}
	if id := ID([]byte(strings.Repeat("k", 32))); len(id) != 8 {
		t.Fatalf("id %q, want 8 characters", id)
	}
}
