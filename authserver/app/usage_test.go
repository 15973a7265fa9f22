package app

import (
	"bytes"
	"strings"
	"testing"
)

// TestUsageListsEveryCommand: the usage text has one line per command of the
// dispatch table, and every command it lists dispatches.
func TestUsageListsEveryCommand(t *testing.T) {
	var out, errb bytes.Buffer
	if code := Main([]string{"help"}, &out, &errb); code != 0 {
		t.Fatalf("help: exit %d", code)
	}
	listed := map[string]bool{}
	for _, line := range strings.Split(out.String(), "\n") {
		if strings.HasPrefix(line, "  ") {
			listed[strings.Fields(line)[0]] = true
		}
	}
	for _, c := range commands {
		if !listed[c.name] {
			t.Errorf("usage does not list %q:\n%s", c.name, out.String())
		}
		delete(listed, c.name)
	}
	for name := range listed {
		t.Errorf("usage lists %q, which is not in the dispatch table", name)
	}
	// The binary's every entry point goes through this table.
	for _, name := range []string{"serve", "migrate", "healthcheck", "version", "backup", "restore", "help"} {
		found := false
		for _, c := range commands {
			found = found || c.name == name
		}
		if !found {
			t.Errorf("no command %q", name)
		}
	}
}

func TestDispatch(t *testing.T) {
	cases := []struct {
		args        []string
		code        int
		out, errOut string
	}{
		{[]string{"--version"}, 0, "", ""},
		{[]string{"version", "extra"}, 2, "", "usage: authserver"},
		{[]string{"frobnicate"}, 2, "", `unknown command "frobnicate"`},
		{[]string{"backup"}, 2, "", "authserver backup postgres"},           // backup's own usage
		{[]string{"restore", "etcd"}, 2, "", "authserver restore postgres"}, // an unknown kind
		{[]string{"factors-reset"}, 2, "", "usage: authserver"},
		{[]string{"factors-reset", "a@example.com", "b@example.com"}, 2, "", "usage: authserver"},
		{[]string{"factors-reset", "not-an-address"}, 1, "", "authserver factors-reset: not an email address"}, // checked before any connection
	}
	for _, tc := range cases {
		var out, errb bytes.Buffer
		code := Main(tc.args, &out, &errb)
		if code != tc.code || !strings.Contains(out.String(), tc.out) || !strings.Contains(errb.String(), tc.errOut) {
			t.Errorf("%v: exit %d, stdout %q, stderr %q", tc.args, code, out.String(), errb.String())
		}
	}
}
