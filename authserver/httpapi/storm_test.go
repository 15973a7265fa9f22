package httpapi_test

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/leanauth/authstack/authserver/internal/authtest"
)

// rawLogin opens a connection to the API and sends the headers of a login
// whose body (of length n) is not sent yet.
func rawLogin(t *testing.T, e *authtest.Env, n int) (net.Conn, *bufio.Reader) {
	t.Helper()
	c, err := net.Dial("tcp", strings.TrimPrefix(e.BaseURL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	fmt.Fprintf(c, "POST /auth/login HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n", n)
	return c, bufio.NewReader(c)
}

// When every hashing slot and queue place is taken, a login is answered
// 503 + Retry-After before its body is read: the shed costs no read, no
// JSON, no Redis and no PostgreSQL (a login whose body never comes is
// answered all the same). The admitted request is then served normally.
func TestLoginShedBeforeTheBody(t *testing.T) {
	t.Parallel()
	e := authtest.Start(t, authtest.Options{Vars: map[string]string{
		"AUTH_HASH_CONCURRENCY": "1", "AUTH_HASH_QUEUE": "0",
	}})
	e.SignupVerifyLogin(t, "shed@example.com", "the shed password")
	body := `{"email":"shed@example.com","password":"the shed password"}`
	type conn struct {
		c net.Conn
		r *bufio.Reader
	}
	holder, holderR := rawLogin(t, e, len(body)) // admitted: waits for its body, holding the only place
	waiting := []conn{{holder, holderR}}
	var shed *http.Response
	for i := 0; i < 50 && shed == nil; i++ {
		// The holder's headers may not have been read yet: a probe admitted
		// in its place holds it in turn (and the holder is shed), and the next
		// probe is shed.
		c, r := rawLogin(t, e, len(body))
		_ = c.SetReadDeadline(time.Now().Add(2 * time.Second))
		if resp, err := http.ReadResponse(r, nil); err == nil {
			shed = resp
		} else {
			waiting = append(waiting, conn{c, r})
		}
	}
	if shed == nil {
		t.Fatal("no login without its body was answered while the only hashing place was taken")
	}
	b := new(bytes.Buffer)
	_, _ = b.ReadFrom(shed.Body)
	if ra, err := strconv.Atoi(shed.Header.Get("Retry-After")); shed.StatusCode != 503 || err != nil || ra < 1 || !strings.Contains(b.String(), `"code":"busy"`) {
		t.Fatalf("shed login: %d Retry-After %q %s", shed.StatusCode, shed.Header.Get("Retry-After"), b)
	}
	// The one login holding the place (whichever connection that is) is then
	// served normally; any other was shed.
	var ok int
	for _, w := range waiting {
		fmt.Fprint(w.c, body)
		_ = w.c.SetReadDeadline(time.Now().Add(30 * time.Second))
		resp, err := http.ReadResponse(w.r, nil)
		if err != nil {
			t.Fatal(err)
		}
		switch resp.StatusCode {
		case 200:
			ok++
		case 503:
		default:
			t.Fatalf("a login without its body: %d", resp.StatusCode)
		}
	}
	if ok != 1 {
		t.Fatalf("%d admitted logins served, want 1", ok)
	}
}

// A storm of wrong-password logins, for a registered and an unregistered
// address from one client, on one hashing slot: the shed requests (503)
// count toward no lockout and no failure audit, and their answer is the same
// bytes whether the address is registered or not; the owner, with fewer
// counted failures than the lockout threshold, still logs in.
func TestLoginStormKeepsAccountSafety(t *testing.T) {
	t.Parallel()
	e := authtest.Start(t, authtest.Options{Vars: map[string]string{
		"AUTH_HASH_CONCURRENCY": "1", "AUTH_HASH_QUEUE": "1",
		// A hash long enough that the storm's requests all arrive while
		// the first ones hash.
		"AUTH_ARGON2_ITERATIONS": "16",
		"AUTH_LOCKOUT_THRESHOLD": "5", "AUTH_RATELIMIT_LOGIN_IP": "off", "AUTH_RATELIMIT_LOGIN_ACCOUNT": "off",
	}})
	known, pw := "stormed@example.com", "the right password"
	e.SignupVerifyLogin(t, known, pw)
	before := auditKinds(t, e.Store)["LOGIN_FAIL"]

	const n = 40
	type answer struct {
		status int
		retry  string // not compared: spread at random (TestShedRetryAfterIsSpread)
		body   string
	}
	answers := make([]answer, n)
	var wg sync.WaitGroup
	for i := range answers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			email := known
			if i%2 == 1 {
				email = fmt.Sprintf("ghost%d@example.com", i)
			}
			r := e.Do(t, "POST", "/auth/login", map[string]string{"email": email, "password": "a wrong password"})
			answers[i] = answer{r.Status, r.Header.Get("Retry-After"), string(r.Body)}
		}()
	}
	wg.Wait()
	var shed, failed, knownFailed int
	var shedAnswer *answer
	for i, a := range answers {
		switch a.status {
		case 503:
			shed++
			if shedAnswer == nil {
				shedAnswer = &answers[i]
			} else if a.status != shedAnswer.status || a.body != shedAnswer.body {
				t.Errorf("shed answers differ (registered: %v): %+v vs %+v", i%2 == 0, a, *shedAnswer)
			}
		case 401:
			failed++
			if i%2 == 0 {
				knownFailed++
			}
		default:
			t.Errorf("login %d: %d %s", i, a.status, a.body)
		}
	}
	t.Logf("%d logins: %d shed, %d failed (%d for the registered address)", n, shed, failed, knownFailed)
	if shed == 0 {
		t.Fatal("the storm shed nothing")
	}
	if ra, err := strconv.Atoi(shedAnswer.retry); err != nil || ra < 1 {
		t.Errorf("shed without Retry-After: %+v", *shedAnswer)
	}
	if got := auditKinds(t, e.Store)["LOGIN_FAIL"] - before; got != failed {
		t.Errorf("%d LOGIN_FAIL audit rows for %d answered failures (%d shed)", got, failed, shed)
	}
	if knownFailed < 5 {
		if r := e.Do(t, "POST", "/auth/login", map[string]string{"email": known, "password": pw}); r.Status != 200 {
			t.Errorf("after %d counted failures (threshold 5) and %d shed requests the owner's login got %d %s", knownFailed, shed, r.Status, r.Body)
		}
	}
}

// A shed login closes its connection even when its whole body came with the
// headers (which net/http could otherwise keep alive): the client is to come
// back after Retry-After, and an idle connection kept for it holds a
// goroutine and buffers for nothing.
func TestShedClosesTheConnection(t *testing.T) {
	t.Parallel()
	e := authtest.Start(t, authtest.Options{Vars: map[string]string{
		"AUTH_HASH_CONCURRENCY": "1", "AUTH_HASH_QUEUE": "0",
	}})
	body := `{"email":"nobody@example.com","password":"a password"}`
	// Logins without their body until one is shed: an earlier one then
	// holds the only place, waiting for its body.
	held := false
	for i := 0; i < 50 && !held; i++ {
		c, r := rawLogin(t, e, len(body))
		_ = c.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
		_, err := http.ReadResponse(r, nil)
		held = err == nil
	}
	if !held {
		t.Fatal("no login without its body was shed")
	}
	c, r := rawLogin(t, e, len(body))
	fmt.Fprint(c, body)
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	resp, err := http.ReadResponse(r, nil)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	if resp.StatusCode != 503 || !resp.Close {
		t.Fatalf("a complete login while the place is held: %d, Connection: close %v", resp.StatusCode, resp.Close)
	}
	if n, err := r.Read(make([]byte, 1)); n != 0 || err != io.EOF {
		t.Fatalf("the connection of a shed login stays open (read %d bytes, %v)", n, err)
	}
}

// The Retry-After of a shed login is the expected wait of the requests
// already admitted, at least a second, spread at random up to twice that:
// shed together, the clients do not come back together. Here the one place
// is held by a login waiting for its body (no hash runs, so the expected
// wait stays the same): every shed answer says between b and 2b seconds,
// for one b ≥ 1, and they do not all say the same.
func TestShedRetryAfterIsSpread(t *testing.T) {
	t.Parallel()
	e := authtest.Start(t, authtest.Options{Vars: map[string]string{
		"AUTH_HASH_CONCURRENCY": "1", "AUTH_HASH_QUEUE": "0",
	}})
	body := `{"email":"nobody@example.com","password":"a password"}`
	var seen []int
	for i := 0; i < 200 && len(seen) < 40; i++ {
		c, r := rawLogin(t, e, len(body))
		_ = c.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
		resp, err := http.ReadResponse(r, nil)
		if err != nil {
			continue // admitted: it holds the place, waiting for its body
		}
		ra, err := strconv.Atoi(resp.Header.Get("Retry-After"))
		if resp.StatusCode != 503 || err != nil {
			t.Fatalf("shed login: %d Retry-After %q", resp.StatusCode, resp.Header.Get("Retry-After"))
		}
		seen = append(seen, ra)
	}
	if len(seen) < 40 {
		t.Fatalf("only %d logins shed", len(seen))
	}
	lo, hi := seen[0], seen[0]
	for _, v := range seen {
		lo, hi = min(lo, v), max(hi, v)
	}
	if lo < 1 || hi > 2*lo || lo == hi {
		t.Errorf("Retry-After of %d shed logins between %d and %d s, want b to 2b, b ≥ 1, not all equal: %v", len(seen), lo, hi, seen)
	}
}
