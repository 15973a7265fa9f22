package mail

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"mime"
	"mime/quotedprintable"
	"net"
	"net/mail"
	"net/smtp"
	"net/textproto"
	"strconv"
	"strings"
	"time"

	"github.com/leanauth/authstack/authserver/config"
)

// Message is one email to send.
type Message struct {
	ID      int64 // outbox id, used in the Message-ID header
	To      string
	Subject string
	Text    string
	HTML    string
}

// Sender delivers one message; the SMTP implementation is SMTPSender.
type Sender interface {
	Send(ctx context.Context, m Message) error
}

// SMTPSender sends over SMTP: STARTTLS when the server offers it (required
// with TLS "starttls"), implicit TLS with "tls", AUTH PLAIN only when a user
// is configured.
type SMTPSender struct {
	cfg     config.SMTP
	from    *mail.Address
	timeout time.Duration
	host    string // for Message-ID
}

// NewSMTPSender validates cfg and returns a sender.
func NewSMTPSender(cfg config.SMTP) (*SMTPSender, error) {
	from, err := mail.ParseAddress(cfg.From)
	if err != nil {
		return nil, fmt.Errorf("parsing MAIL_FROM: %w", err)
	}
	host := "authserver"
	if at := strings.LastIndexByte(from.Address, '@'); at >= 0 {
		host = from.Address[at+1:]
	}
	return &SMTPSender{cfg: cfg, from: from, timeout: 30 * time.Second, host: host}, nil
}

// PermanentError is an SMTP rejection that retrying will not fix.
type PermanentError struct{ Err error }

func (e *PermanentError) Error() string { return "permanent: " + e.Err.Error() }
func (e *PermanentError) Unwrap() error { return e.Err }

func classify(err error) error {
	var te *textproto.Error
	if errors.As(err, &te) && te.Code >= 500 && te.Code < 600 {
		switch te.Code {
		case 530, 534, 535, 538: // authentication and TLS problems: our config, retry
			return err
		}
		return &PermanentError{Err: err}
	}
	return err
}

// Send delivers m. Errors never contain the SMTP password.
func (s *SMTPSender) Send(ctx context.Context, m Message) error {
	to, err := mail.ParseAddress(m.To)
	if err != nil {
		return &PermanentError{Err: fmt.Errorf("invalid recipient: %w", err)}
	}
	body, err := s.build(m, to)
	if err != nil {
		return &PermanentError{Err: err}
	}
	deadline := time.Now().Add(s.timeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	addr := net.JoinHostPort(s.cfg.Host, strconv.Itoa(s.cfg.Port))
	dialer := &net.Dialer{Timeout: 10 * time.Second}
	tlsCfg := &tls.Config{ServerName: s.cfg.Host, InsecureSkipVerify: s.cfg.InsecureSkipVerify, MinVersion: tls.VersionTLS12} //nolint:gosec // opt-in for test relays
	implicit := s.cfg.TLS == "tls" || (s.cfg.TLS == "auto" && s.cfg.Port == 465)
	var conn net.Conn
	if implicit {
		conn, err = (&tls.Dialer{NetDialer: dialer, Config: tlsCfg}).DialContext(ctx, "tcp", addr)
	} else {
		conn, err = dialer.DialContext(ctx, "tcp", addr)
	}
	if err != nil {
		return fmt.Errorf("connecting to SMTP server %s: %w", addr, err)
	}
	_ = conn.SetDeadline(deadline)
	c, err := smtp.NewClient(conn, s.cfg.Host)
	if err != nil {
		conn.Close()
		return fmt.Errorf("SMTP greeting: %w", classify(err))
	}
	defer c.Close()
	if err := c.Hello(s.host); err != nil {
		return fmt.Errorf("SMTP EHLO: %w", classify(err))
	}
	if !implicit && s.cfg.TLS != "none" {
		if ok, _ := c.Extension("STARTTLS"); ok {
			if err := c.StartTLS(tlsCfg); err != nil {
				return fmt.Errorf("SMTP STARTTLS: %w", err)
			}
		} else if s.cfg.TLS == "starttls" {
			return errors.New("SMTP server does not offer STARTTLS and SMTP_TLS=starttls requires it")
		}
	}
	if s.cfg.User != "" {
		// PlainAuth refuses to send credentials over an unencrypted
		// connection except to localhost.
		if err := c.Auth(smtp.PlainAuth("", s.cfg.User, s.cfg.Pass, s.cfg.Host)); err != nil {
			return fmt.Errorf("SMTP AUTH as configured SMTP_USER: %w", classify(err))
		}
	}
	if err := c.Mail(s.from.Address); err != nil {
		return fmt.Errorf("SMTP MAIL FROM: %w", classify(err))
	}
	if err := c.Rcpt(to.Address); err != nil {
		return fmt.Errorf("SMTP RCPT TO: %w", classify(err))
	}
	w, err := c.Data()
	if err != nil {
		return fmt.Errorf("SMTP DATA: %w", classify(err))
	}
	if _, err := w.Write(body); err != nil {
		return fmt.Errorf("SMTP writing message: %w", err)
	}
	if err := w.Close(); err != nil {
		return fmt.Errorf("SMTP end of data: %w", classify(err))
	}
	_ = c.Quit()
	return nil
}

func (s *SMTPSender) build(m Message, to *mail.Address) ([]byte, error) {
	if strings.ContainsAny(m.Subject, "\r\n") {
		return nil, errors.New("subject contains a line break")
	}
	var rnd [8]byte
	_, _ = rand.Read(rnd[:])
	boundary := "authstack-" + hex.EncodeToString(rnd[:])
	var b bytes.Buffer
	h := func(k, v string) { b.WriteString(k + ": " + v + "\r\n") }
	h("From", s.from.String())
	h("To", to.String())
	h("Subject", mime.QEncoding.Encode("utf-8", m.Subject))
	h("Date", time.Now().UTC().Format(time.RFC1123Z))
	// Stable per outbox row: a receiver can recognise a redelivery.
	h("Message-ID", fmt.Sprintf("<outbox-%d@%s>", m.ID, s.host))
	h("MIME-Version", "1.0")
	h("Content-Type", `multipart/alternative; boundary="`+boundary+`"`)
	b.WriteString("\r\n")
	part := func(ctype, content string) error {
		b.WriteString("--" + boundary + "\r\n")
		b.WriteString("Content-Type: " + ctype + "; charset=utf-8\r\n")
		b.WriteString("Content-Transfer-Encoding: quoted-printable\r\n\r\n")
		qp := quotedprintable.NewWriter(&b)
		if _, err := qp.Write([]byte(content)); err != nil {
			return err
		}
		if err := qp.Close(); err != nil {
			return err
		}
		b.WriteString("\r\n")
		return nil
	}
	if err := part("text/plain", m.Text); err != nil {
		return nil, err
	}
	if err := part("text/html", m.HTML); err != nil {
		return nil, err
	}
	b.WriteString("--" + boundary + "--\r\n")
	return b.Bytes(), nil
}
