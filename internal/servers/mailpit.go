package servers

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"time"
)

// Mailpit is a running mailpit: an SMTP server (any or no authentication
// accepted, no TLS) and its HTTP API, both on 127.0.0.1. Messages are kept
// in a SQLite file, so they survive Stop and Start.
type Mailpit struct {
	dir      string
	smtpPort int
	httpPort int
	proc     *process
	client   *http.Client
}

// Message is one received email.
type Message struct {
	ID      string
	From    string
	To      []string // To, Cc and Bcc (envelope) addresses
	Subject string
	Text    string
	HTML    string
}

// MailpitBinary finds mailpit in the cache of hack/test-deps.sh or in PATH.
func MailpitBinary() (string, error) {
	if p := os.Getenv("MAILPIT_BIN"); p != "" {
		return p, nil
	}
	return findBinary("mailpit", filepath.Join(CacheDir(), "bin"))
}

// StartMailpit starts mailpit on two free loopback ports; extra are more
// mailpit flags (like --smtp-allowed-recipients, which makes it answer 550
// to the others).
func StartMailpit(extra ...string) (*Mailpit, error) {
	bin, err := MailpitBinary()
	if err != nil {
		return nil, err
	}
	var lastErr error
	for attempt := 0; attempt < 3; attempt++ {
		dir, err := makeDir("mailpit", nil)
		if err != nil {
			return nil, err
		}
		m := &Mailpit{dir: dir, client: &http.Client{Timeout: 10 * time.Second}}
		if m.smtpPort, err = FreePort(); err == nil {
			m.httpPort, err = FreePort()
		}
		if err != nil {
			os.RemoveAll(dir)
			return nil, err
		}
		m.proc = &process{name: "mailpit", path: bin, dir: dir,
			logPath: filepath.Join(dir, "mailpit.log"), deathSg: syscall.SIGKILL, stopSg: syscall.SIGTERM,
			args: []string{
				"--smtp", m.SMTPAddr(), "--listen", "127.0.0.1:" + strconv.Itoa(m.httpPort),
				"--database", filepath.Join(dir, "mailpit.db"),
				"--smtp-auth-accept-any", "--smtp-auth-allow-insecure", "--smtp-disable-rdns",
				"--disable-version-check", "--max", "100000",
			}}
		m.proc.args = append(m.proc.args, extra...)
		if lastErr = m.Start(); lastErr == nil {
			return m, nil
		}
		m.Close()
		if !isAddrInUse(lastErr) {
			break
		}
	}
	return nil, lastErr
}

// Start (re)starts mailpit on the same ports with the same database.
func (m *Mailpit) Start() error {
	if ex, _ := m.proc.exited(); !ex {
		return nil
	}
	if err := m.proc.start(); err != nil {
		return err
	}
	return m.proc.waitReady(30*time.Second, func() error {
		resp, err := m.client.Get(m.APIURL() + "/readyz")
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("readyz: %s", resp.Status)
		}
		return tcpDial(m.SMTPAddr())
	})
}

// Stop stops mailpit (its messages stay in the database file).
func (m *Mailpit) Stop() { m.proc.stop() }

// Close stops mailpit and removes its directory.
func (m *Mailpit) Close() {
	m.proc.stop()
	os.RemoveAll(m.dir)
}

// SMTPAddr is the SMTP host:port.
func (m *Mailpit) SMTPAddr() string { return "127.0.0.1:" + strconv.Itoa(m.smtpPort) }

// SMTPPort is the SMTP port.
func (m *Mailpit) SMTPPort() int { return m.smtpPort }

// APIURL is the base URL of the HTTP API (no trailing slash).
func (m *Mailpit) APIURL() string { return "http://127.0.0.1:" + strconv.Itoa(m.httpPort) }

// LogPath is the file holding mailpit's output.
func (m *Mailpit) LogPath() string { return m.proc.logPath }

type apiAddress struct{ Name, Address string }

type apiMessage struct {
	ID          string
	From        *apiAddress
	To, Cc, Bcc []apiAddress
	Subject     string
	Text, HTML  string
}

func (m *Mailpit) getJSON(ctx context.Context, path string, v any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, m.APIURL()+path, nil)
	if err != nil {
		return err
	}
	resp, err := m.client.Do(req)
	if err != nil {
		return fmt.Errorf("mailpit API %s: %w", path, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("mailpit API %s: %s", path, resp.Status)
	}
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		return fmt.Errorf("decoding mailpit API %s: %w", path, err)
	}
	return nil
}

// Summaries lists every received message without bodies, oldest first.
func (m *Mailpit) Summaries(ctx context.Context) ([]Message, error) {
	var out []Message
	for start := 0; ; {
		var page struct {
			Total         int
			MessagesCount int `json:"messages_count"`
			Messages      []apiMessage
		}
		if err := m.getJSON(ctx, "/api/v1/messages?limit=500&start="+strconv.Itoa(start), &page); err != nil {
			return nil, err
		}
		for _, am := range page.Messages {
			out = append(out, toMessage(am))
		}
		start += len(page.Messages)
		if len(page.Messages) == 0 || start >= page.MessagesCount {
			break
		}
	}
	// The API lists newest first.
	for i, j := 0, len(out)-1; i < j; i, j = i+1, j-1 {
		out[i], out[j] = out[j], out[i]
	}
	return out, nil
}

// Message fetches one message with its text and HTML bodies.
func (m *Mailpit) Message(ctx context.Context, id string) (Message, error) {
	var am apiMessage
	if err := m.getJSON(ctx, "/api/v1/message/"+url.PathEscape(id), &am); err != nil {
		return Message{}, err
	}
	return toMessage(am), nil
}

// Messages lists every received message with bodies, oldest first.
func (m *Mailpit) Messages(ctx context.Context) ([]Message, error) {
	sums, err := m.Summaries(ctx)
	if err != nil {
		return nil, err
	}
	for i := range sums {
		full, err := m.Message(ctx, sums[i].ID)
		if err != nil {
			return nil, err
		}
		sums[i] = full
	}
	return sums, nil
}

func toMessage(am apiMessage) Message {
	msg := Message{ID: am.ID, Subject: am.Subject, Text: am.Text, HTML: am.HTML}
	if am.From != nil {
		msg.From = am.From.Address
	}
	for _, list := range [][]apiAddress{am.To, am.Cc, am.Bcc} {
		for _, a := range list {
			msg.To = append(msg.To, a.Address)
		}
	}
	return msg
}
