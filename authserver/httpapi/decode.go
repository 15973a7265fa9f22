package httpapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strings"
	"unicode/utf8"
)

// DecodeError is a request body the server refuses, with the status to send.
type DecodeError struct {
	Status  int
	Code    string
	Message string
}

func (e *DecodeError) Error() string { return e.Message }

func badRequest(format string, args ...any) *DecodeError {
	return &DecodeError{Status: http.StatusBadRequest, Code: "invalid_request", Message: fmt.Sprintf(format, args...)}
}

// Request bodies of the API. Every field is required.
type (
	credentialsRequest struct {
		Email    string `json:"email"`
		Password string `json:"password"`
	}
	tokenRequest struct {
		Token string `json:"token"`
	}
	emailRequest struct {
		Email string `json:"email"`
	}
	resetRequest struct {
		Token    string `json:"token"`
		Password string `json:"password"`
	}
	changeRequest struct {
		CurrentPassword string `json:"current_password"`
		NewPassword     string `json:"new_password"`
	}
	// passkeyBeginRequest starts a ceremony; challenge is the login
	// challenge of the password step, where one is needed.
	passkeyBeginRequest struct {
		Challenge string `json:"challenge"`
	}
	// passkeyFinishRequest carries the browser's credential.toJSON().
	passkeyFinishRequest struct {
		Challenge  string          `json:"challenge"`
		Name       string          `json:"name"`
		Credential json.RawMessage `json:"credential"`
	}
	nameRequest struct {
		Name string `json:"name"`
	}

	// The second step of a login.
	secondFactorRequest struct {
		Challenge string `json:"challenge"`
		Method    string `json:"method"`
		Code      string `json:"code"`
	}
	challengeRequest struct {
		Challenge string `json:"challenge"`
	}
	challengeCodeRequest struct {
		Challenge string `json:"challenge"`
		Code      string `json:"code"`
	}
	codeRequest struct {
		Code string `json:"code"`
	}
	// Either password, or method and code.
	reauthRequest struct {
		Password string `json:"password"`
		Method   string `json:"method"`
		Code     string `json:"code"`
	}
)

func (r *passkeyBeginRequest) required() []field { return nil }
func (r *passkeyFinishRequest) required() []field {
	if string(r.Credential) == "null" {
		return []field{{"credential", ""}}
	}
	return []field{{"credential", string(r.Credential)}}
}
func (r *nameRequest) required() []field { return []field{{"name", r.Name}} }
func (r *secondFactorRequest) required() []field {
	return []field{{"challenge", r.Challenge}, {"method", r.Method}, {"code", r.Code}}
}
func (r *challengeRequest) required() []field { return []field{{"challenge", r.Challenge}} }
func (r *challengeCodeRequest) required() []field {
	return []field{{"challenge", r.Challenge}, {"code", r.Code}}
}
func (r *codeRequest) required() []field { return []field{{"code", r.Code}} }
func (r *reauthRequest) required() []field {
	if r.Method != "" || r.Code != "" {
		return []field{{"method", r.Method}, {"code", r.Code}}
	}
	return []field{{"password", r.Password}}
}

func (r *credentialsRequest) required() []field {
	return []field{{"email", r.Email}, {"password", r.Password}}
}
func (r *tokenRequest) required() []field { return []field{{"token", r.Token}} }
func (r *emailRequest) required() []field { return []field{{"email", r.Email}} }
func (r *resetRequest) required() []field {
	return []field{{"token", r.Token}, {"password", r.Password}}
}
func (r *changeRequest) required() []field {
	return []field{{"current_password", r.CurrentPassword}, {"new_password", r.NewPassword}}
}

type field struct{ name, value string }

type validated interface{ required() []field }

// DecodeBody reads a JSON object into dst from body (at most limit bytes,
// already enforced by the caller for streams): it must have content type
// application/json (a browser cannot send that cross-site without a CORS
// preflight, unlike a form's), be valid UTF-8, be one object, have no
// unknown fields and every required field as a non-empty string.
func DecodeBody(contentType string, body []byte, dst validated) *DecodeError {
	mt, _, err := mime.ParseMediaType(contentType)
	if err != nil || (mt != "application/json" && !strings.HasSuffix(mt, "+json")) {
		return &DecodeError{Status: http.StatusUnsupportedMediaType, Code: "unsupported_media_type", Message: "request body must be application/json"}
	}
	if len(bytes.TrimSpace(body)) == 0 {
		return badRequest("request body is empty; a JSON object is required")
	}
	// encoding/json turns invalid UTF-8 and lone surrogate escapes into
	// U+FFFD silently: two different passwords would hash the same.
	if !utf8.Valid(body) {
		return badRequest("request body is not valid UTF-8")
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(dst); err != nil {
		var se *json.SyntaxError
		var te *json.UnmarshalTypeError
		switch {
		case errors.As(err, &se):
			return badRequest("malformed JSON at byte %d", se.Offset)
		case errors.As(err, &te):
			if te.Field != "" {
				return badRequest("field %q must be a string", te.Field)
			}
			return badRequest("request body must be a JSON object")
		case errors.Is(err, io.ErrUnexpectedEOF):
			return badRequest("malformed JSON: unexpected end of input")
		case strings.HasPrefix(err.Error(), "json: unknown field "):
			return badRequest("unknown field %s", strings.TrimPrefix(err.Error(), "json: unknown field "))
		default:
			return badRequest("malformed JSON")
		}
	}
	if _, err := dec.Token(); err != io.EOF {
		return badRequest("request body must hold a single JSON object")
	}
	for _, f := range dst.required() {
		if f.value == "" {
			return badRequest("field %q is required", f.name)
		}
		if strings.ContainsRune(f.value, utf8.RuneError) && !sentReplacementChar(body) {
			return badRequest("field %q is not valid Unicode (a lone surrogate escape)", f.name)
		}
	}
	return nil
}

// sentReplacementChar tells whether body spells U+FFFD itself (raw or
// escaped), so a U+FFFD in a decoded field is the client's, not a
// replacement made by encoding/json.
func sentReplacementChar(body []byte) bool {
	return bytes.Contains(body, []byte("\uFFFD")) || bytes.Contains(bytes.ToLower(body), []byte(`\ufffd`))
}

// readBody reads at most limit bytes of r's body.
func readBody(w http.ResponseWriter, r *http.Request, limit int64) ([]byte, *DecodeError) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, &DecodeError{Status: http.StatusRequestEntityTooLarge, Code: "body_too_large", Message: fmt.Sprintf("request body exceeds %d bytes", limit)}
		}
		return nil, badRequest("could not read request body")
	}
	return body, nil
}
