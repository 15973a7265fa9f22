package result

import (
	"strings"
	"testing"
	"unicode/utf8"
)

func TestLineRoundTrip(t *testing.T) {
	in := Result{Kind: "postgres", OK: true, DurationMS: 1500, Stored: true, Object: "p/postgres/20261128T030000Z.dump.gz.gpg", SizeBytes: 1234, RawBytes: 5678}
	line := in.Line()
	if strings.Count(string(line), "\n") != 1 || !strings.HasSuffix(string(line), "\n") {
		t.Fatalf("not one line: %q", line)
	}
	out, ok := Parse("some earlier output\n" + string(line))
	if !ok || out != in {
		t.Fatalf("round trip: %+v, %v", out, ok)
	}
	if _, ok := Parse("pg_dump: killed"); ok {
		t.Error("a line that is not JSON parsed as a result")
	}
}

func TestLineBoundsTheError(t *testing.T) {
	r := Result{Kind: "redis", Error: strings.Repeat("é", MaxErrorBytes)} // 2 bytes a rune: the cut falls inside one
	line := r.Line()
	if len(line) > 4096 {
		t.Fatalf("line of %d bytes does not fit a termination message", len(line))
	}
	out, ok := Parse(string(line))
	if !ok || len(out.Error) > MaxErrorBytes || !utf8.ValidString(out.Error) || !strings.HasPrefix(r.Error, out.Error) {
		t.Fatalf("error cut to %d bytes, valid UTF-8 %v", len(out.Error), utf8.ValidString(out.Error))
	}
}

func TestParseRefusesPartialResults(t *testing.T) {
	// A line that starts like a result but does not decode must not count as a stored backup.
	if r, ok := Parse(`{"stored":true,"object":"k","size_bytes":"many"}`); ok || r.Stored || r.Object != "" {
		t.Fatalf("partly decoded line accepted: %+v, %v", r, ok)
	}
}
