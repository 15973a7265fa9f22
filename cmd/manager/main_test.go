package main

import (
	"reflect"
	"testing"
)

func TestParseNamespaces(t *testing.T) {
	tests := []struct {
		in      string
		want    []string
		wantErr bool
	}{
		{in: "", want: nil},
		{in: " , ,", want: nil},
		{in: "team-a", want: []string{"team-a"}},
		{in: "team-a, team-b,team-a,", want: []string{"team-a", "team-b"}},
		{in: "Team-A", wantErr: true},
		{in: "team_a", wantErr: true},
		{in: "-team", wantErr: true},
		{in: "team-", wantErr: true},
		{in: "a234567890123456789012345678901234567890123456789012345678901234", wantErr: true},
	}
	for _, tt := range tests {
		got, err := parseNamespaces(tt.in)
		if (err != nil) != tt.wantErr {
			t.Errorf("parseNamespaces(%q) error = %v, want error %v", tt.in, err, tt.wantErr)
			continue
		}
		if !reflect.DeepEqual(got, tt.want) {
			t.Errorf("parseNamespaces(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestIsReleaseVersion(t *testing.T) {
	for v, want := range map[string]bool{
		"v1.2.3":                             true,
		"(devel)":                            false,
		"":                                   false,
		"v0.0.0-20261128103000-abcdefabcdef": false,
		"v1.2.3+dirty":                       false,
		"v1.3.0-rc.1":                        false,
	} {
		if got := isReleaseVersion(v); got != want {
			t.Errorf("isReleaseVersion(%q) = %v, want %v", v, got, want)
		}
	}
}

func TestDefaultAuthServerImage(t *testing.T) {
	old := version
	t.Cleanup(func() { version = old })
	version = "v0.4.1"
	if got, want := defaultAuthServerImage(), "ghcr.io/leanauth/authserver:v0.4.1"; got != want {
		t.Errorf("defaultAuthServerImage() = %q, want %q", got, want)
	}
}
