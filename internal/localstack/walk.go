package localstack

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"time"
)

// Step is one step of the walk, for printing.
type Step struct {
	Name   string
	Detail string
}

// WalkResult is what the walk saw.
type WalkResult struct {
	Steps     []Step
	UserID    string
	SessionOK bool
}

var tokenLink = regexp.MustCompile(`https?://\S+[?&]token=([A-Za-z0-9_\-%]+)`)

// Walk signs a new user up at the authserver at base, reads the verification
// email from mailpit's API at mailAPI, verifies, logs in and checks the
// session. Each step is passed to step as it completes.
func Walk(ctx context.Context, base, mailAPI, email, password string, step func(Step)) (*WalkResult, error) {
	if step == nil {
		step = func(Step) {}
	}
	res := &WalkResult{}
	done := func(name, format string, args ...any) {
		s := Step{Name: name, Detail: fmt.Sprintf(format, args...)}
		res.Steps = append(res.Steps, s)
		step(s)
	}
	hc := &http.Client{Timeout: 20 * time.Second}

	status, body, err := call(ctx, hc, "POST", base+"/auth/signup", "", map[string]string{"email": email, "password": password})
	if err != nil || status != http.StatusAccepted {
		return res, fmt.Errorf("signup: %d %s %v", status, body, err)
	}
	done("signup", "POST /auth/signup %s -> %d %s", email, status, compact(body))

	status, body, _ = call(ctx, hc, "POST", base+"/auth/login", "", map[string]string{"email": email, "password": password})
	if status != http.StatusForbidden {
		return res, fmt.Errorf("login before verification: want 403, got %d %s", status, body)
	}
	done("login refused before verification", "POST /auth/login -> %d %s", status, compact(body))

	msg, err := waitForMail(ctx, hc, mailAPI, email, 30*time.Second)
	if err != nil {
		return res, err
	}
	m := tokenLink.FindStringSubmatch(msg.Text)
	if m == nil {
		return res, fmt.Errorf("no verification link in the email %q", msg.Subject)
	}
	token, err := url.QueryUnescape(m[1])
	if err != nil {
		return res, fmt.Errorf("decoding the token of the verification link: %w", err)
	}
	link := m[0]
	if i := strings.Index(link, "token="); i >= 0 {
		link = link[:i] + "token=…"
	}
	done("verification email", "from %s to %s, subject %q, link %s (read from mailpit, the SMTP server the authserver sent it to)", msg.From.Address, email, msg.Subject, link)

	status, body, err = call(ctx, hc, "POST", base+"/auth/verify-email", "", map[string]string{"token": token})
	if err != nil || status != http.StatusOK {
		return res, fmt.Errorf("verify: %d %s %v", status, body, err)
	}
	done("verify", "POST /auth/verify-email -> %d %s", status, compact(body))

	status, body, err = call(ctx, hc, "POST", base+"/auth/login", "", map[string]string{"email": email, "password": password})
	if err != nil || status != http.StatusOK {
		return res, fmt.Errorf("login: %d %s %v", status, body, err)
	}
	var login struct {
		Token string `json:"token"`
	}
	if err := json.Unmarshal(body, &login); err != nil || login.Token == "" {
		return res, fmt.Errorf("login answered without a session token: %s", body)
	}
	done("login", "POST /auth/login -> %d (session token %d characters, not shown)", status, len(login.Token))

	status, body, err = call(ctx, hc, "GET", base+"/auth/session", login.Token, nil)
	if err != nil || status != http.StatusOK {
		return res, fmt.Errorf("session: %d %s %v", status, body, err)
	}
	var sess map[string]any
	_ = json.Unmarshal(body, &sess)
	if !strings.Contains(strings.ToLower(string(body)), strings.ToLower(email)) {
		return res, fmt.Errorf("the session does not name %s: %s", email, body)
	}
	res.SessionOK = true
	if u, ok := sess["user"].(map[string]any); ok {
		res.UserID, _ = u["id"].(string)
	}
	done("session", "GET /auth/session (Bearer token) -> %d %s", status, compact(body))
	return res, nil
}

func call(ctx context.Context, hc *http.Client, method, u, bearer string, body any) (int, []byte, error) {
	var r io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return 0, nil, err
		}
		r = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, r)
	if err != nil {
		return 0, nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	req.Header.Set("User-Agent", "authstack-demo/1")
	resp, err := hc.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	return resp.StatusCode, b, err
}

func compact(b []byte) string {
	var buf bytes.Buffer
	if json.Compact(&buf, b) == nil {
		b = buf.Bytes()
	}
	s := string(b)
	if len(s) > 300 {
		s = s[:300] + "…"
	}
	return s
}

type mailMessage struct {
	ID      string
	Subject string
	From    struct{ Address string }
	To      []struct{ Address string }
	Text    string
}

// waitForMail polls mailpit's API for the newest message to addr.
func waitForMail(ctx context.Context, hc *http.Client, api, addr string, timeout time.Duration) (*mailMessage, error) {
	deadline := time.Now().Add(timeout)
	for {
		var list struct{ Messages []mailMessage }
		q := url.Values{"query": {"to:" + addr}}
		if err := getJSON(ctx, hc, api+"/api/v1/search?"+q.Encode(), &list); err != nil {
			return nil, err
		}
		for _, m := range list.Messages {
			for _, to := range m.To {
				if strings.EqualFold(to.Address, addr) {
					var full mailMessage
					if err := getJSON(ctx, hc, api+"/api/v1/message/"+url.PathEscape(m.ID), &full); err != nil {
						return nil, err
					}
					return &full, nil
				}
			}
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("no email to %s arrived at mailpit within %s", addr, timeout)
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(300 * time.Millisecond):
		}
	}
}

func getJSON(ctx context.Context, hc *http.Client, u string, v any) error {
	status, body, err := call(ctx, hc, "GET", u, "", nil)
	if err != nil {
		return fmt.Errorf("mailpit API: %w", err)
	}
	if status != http.StatusOK {
		return fmt.Errorf("mailpit API %s: %d %s", u, status, body)
	}
	return json.Unmarshal(body, v)
}
