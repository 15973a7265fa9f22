package httpapi

import (
	"strings"
	"testing"
)

func TestAppendJSONString(t *testing.T) {
	got := string(appendJSONString(nil, "a\"b\\c\n<é>\x01"))
	want := `"a\"b\\c\u000a\u003cé\u003e\u0001"`
	if got != want {
		t.Fatalf("got %s want %s", got, want)
	}
	if !strings.HasPrefix(string(appendTime(nil, fixed)), `"2026-01-02T03:04:05Z"`) {
		t.Fatal(string(appendTime(nil, fixed)))
	}
}
