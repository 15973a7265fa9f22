package httpapi

import (
	"testing"
	"unicode/utf8"
)

func TestDecodeBody(t *testing.T) {
	cases := []struct {
		name, ct, body string
		status         int
	}{
		{"ok", "application/json", `{"email":"a@b.co","password":"x"}`, 0},
		{"ok charset", "application/json; charset=utf-8", `{"email":"a@b.co","password":"x"}`, 0},
		{"no content type", "", `{"email":"a@b.co","password":"x"}`, 415},
		{"text/plain (a cross-site form can send it)", "text/plain", `{"email":"a@b.co","password":"x"}`, 415},
		{"invalid UTF-8", "application/json", "{\"email\":\"a@b.co\",\"password\":\"pass\xffword\"}", 400},
		{"lone surrogate escape", "application/json", `{"email":"a@b.co","password":"pass\udc00word"}`, 400},
		{"U+FFFD sent escaped", "application/json", `{"email":"a@b.co","password":"pass\ufffdword"}`, 0},
		{"U+FFFD sent raw", "application/json", "{\"email\":\"a@b.co\",\"password\":\"pass\uFFFDword\"}", 0},
		{"form", "application/x-www-form-urlencoded", `email=a`, 415},
		{"bad media type", "application/json; =", `{}`, 415},
		{"empty", "application/json", ``, 400},
		{"spaces", "application/json", "  \n", 400},
		{"array", "application/json", `[]`, 400},
		{"string", "application/json", `"x"`, 400},
		{"null", "application/json", `null`, 400},
		{"number field", "application/json", `{"email":1,"password":"x"}`, 400},
		{"unknown field", "application/json", `{"email":"a@b.co","password":"x","admin":true}`, 400},
		{"missing field", "application/json", `{"email":"a@b.co"}`, 400},
		{"empty field", "application/json", `{"email":"a@b.co","password":""}`, 400},
		{"null field", "application/json", `{"email":"a@b.co","password":null}`, 400},
		{"truncated", "application/json", `{"email":"a@b.co","pass`, 400},
		{"syntax", "application/json", `{"email":"a@b.co",}`, 400},
		{"two objects", "application/json", `{"email":"a@b.co","password":"x"}{}`, 400},
		{"trailing garbage", "application/json", `{"email":"a@b.co","password":"x"} x`, 400},
	}
	for _, c := range cases {
		var req credentialsRequest
		err := DecodeBody(c.ct, []byte(c.body), &req)
		got := 0
		if err != nil {
			got = err.Status
			if err.Message == "" || err.Code == "" {
				t.Errorf("%s: error without code or message", c.name)
			}
		}
		if got != c.status {
			t.Errorf("%s: status %d, want %d (%v)", c.name, got, c.status, err)
		}
	}
}

// FuzzDecodeBody: no input panics, errors are 4xx with a message, and a
// success means every required field is set. Its seed corpus runs as a
// normal test; fuzz with: go test -fuzz FuzzDecodeBody ./authserver/httpapi/
func FuzzDecodeBody(f *testing.F) {
	for _, s := range []string{
		`{"email":"a@b.co","password":"secret pw"}`, `{"token":"abc"}`, `{"current_password":"a","new_password":"b"}`,
		`{}`, `[]`, `null`, `{"email":"\u0000"}`, `{"email":"a","email":"b","password":"c"}`, `{"password":"x"`,
		`{"email":"a@b.co","password":"x"}garbage`, "\xff\xfe", `{"email":1e999}`, `{"email":{"nested":[1,2,3]}}`,
	} {
		f.Add("application/json", []byte(s))
	}
	f.Add("text/plain", []byte(`{}`))
	f.Add("", []byte(`{"token":"t"}`))
	f.Fuzz(func(t *testing.T, ct string, body []byte) {
		targets := []validated{&credentialsRequest{}, &tokenRequest{}, &emailRequest{}, &resetRequest{}, &changeRequest{}}
		for _, dst := range targets {
			err := DecodeBody(ct, body, dst)
			if err != nil {
				if err.Status < 400 || err.Status > 499 || err.Message == "" || !utf8.ValidString(err.Message) {
					t.Fatalf("bad error %+v for %q", err, body)
				}
				continue
			}
			for _, f := range dst.required() {
				if f.value == "" {
					t.Fatalf("accepted %q with %s empty", body, f.name)
				}
			}
		}
	})
}
