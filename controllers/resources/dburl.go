package resources

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"regexp"
	"strconv"
	"strings"
)

// DatabaseURL is a parsed PostgreSQL URL. Password is a secret: never log or print a
// DatabaseURL, and never put one in an error.
type DatabaseURL struct {
	Host     string
	Port     int
	DBName   string
	User     string
	Password string
	// SSLMode is the URL's sslmode ("prefer", libpq's default, when absent).
	SSLMode string
}

// sslModes are libpq's sslmode values; pgbouncer's server_tls_sslmode takes the same names.
var sslModes = map[string]bool{"disable": true, "allow": true, "prefer": true, "require": true, "verify-ca": true, "verify-full": true}

// Names that go into pgbouncer.ini and connection strings unquoted.
var (
	safeIdent = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_.$-]{0,62}$`)
	safeHost  = regexp.MustCompile(`^[A-Za-z0-9]([-A-Za-z0-9.]*[A-Za-z0-9])?$`)
)

// ErrInvalidDatabaseURL is wrapped by every ParseDatabaseURL error. The messages name
// the part that is wrong, never the URL (it holds the password).
var ErrInvalidDatabaseURL = errors.New("invalid database URL")

func invalidURL(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalidDatabaseURL, fmt.Sprintf(format, args...))
}

// ParseDatabaseURL parses postgres://user:password@host:port/dbname?sslmode=... .
// Everything the pooler needs must be there: host, user, password, database name.
func ParseDatabaseURL(raw string) (DatabaseURL, error) {
	raw = strings.TrimSpace(raw)
	u, err := url.Parse(raw)
	if err != nil {
		return DatabaseURL{}, invalidURL("not a URL")
	}
	if u.Scheme != "postgres" && u.Scheme != "postgresql" {
		return DatabaseURL{}, invalidURL("the scheme must be postgres:// or postgresql://")
	}
	d := DatabaseURL{Host: u.Hostname(), Port: 5432, SSLMode: "prefer"}
	if d.Host == "" {
		return DatabaseURL{}, invalidURL("no host")
	}
	if strings.Contains(u.Host, ",") {
		return DatabaseURL{}, invalidURL("several hosts are not supported")
	}
	if !safeHost.MatchString(d.Host) && net.ParseIP(d.Host) == nil {
		return DatabaseURL{}, invalidURL("the host has characters a host name cannot have")
	}
	if p := u.Port(); p != "" {
		n, err := strconv.Atoi(p)
		if err != nil || n < 1 || n > 65535 {
			return DatabaseURL{}, invalidURL("the port must be 1-65535")
		}
		d.Port = n
	}
	if u.User == nil || u.User.Username() == "" {
		return DatabaseURL{}, invalidURL("no user")
	}
	d.User = u.User.Username()
	if !safeIdent.MatchString(d.User) {
		return DatabaseURL{}, invalidURL("the user name must match %s", safeIdent)
	}
	pw, ok := u.User.Password()
	if !ok || pw == "" {
		return DatabaseURL{}, invalidURL("no password")
	}
	if strings.ContainsAny(pw, "\x00\n\r") {
		return DatabaseURL{}, invalidURL("the password contains a control character")
	}
	d.Password = pw
	d.DBName = strings.TrimPrefix(u.Path, "/")
	if d.DBName == "" {
		return DatabaseURL{}, invalidURL("no database name")
	}
	if !safeIdent.MatchString(d.DBName) {
		return DatabaseURL{}, invalidURL("the database name must match %s", safeIdent)
	}
	q, err := url.ParseQuery(u.RawQuery)
	if err != nil {
		return DatabaseURL{}, invalidURL("the query string does not parse")
	}
	if m := q.Get("sslmode"); m != "" {
		if !sslModes[m] {
			return DatabaseURL{}, invalidURL("sslmode %q is not one of disable, allow, prefer, require, verify-ca, verify-full", m)
		}
		d.SSLMode = m
	}
	return d, nil
}

// HostPort is host:port, with brackets around an IPv6 address.
func (d DatabaseURL) HostPort() string { return net.JoinHostPort(d.Host, strconv.Itoa(d.Port)) }

// URLWith renders a postgres:// URL for d's user, password and database at host:port
// with the given sslmode.
func (d DatabaseURL) URLWith(host string, port int, sslmode string) string {
	u := url.URL{
		Scheme:   "postgres",
		User:     url.UserPassword(d.User, d.Password),
		Host:     net.JoinHostPort(host, strconv.Itoa(port)),
		Path:     "/" + d.DBName,
		RawQuery: url.Values{"sslmode": {sslmode}}.Encode(),
	}
	return u.String()
}

// String never shows the password.
func (d DatabaseURL) String() string {
	return fmt.Sprintf("postgres://%s:REDACTED@%s/%s?sslmode=%s", d.User, d.HostPort(), d.DBName, d.SSLMode)
}

// GoString never shows the password either (%#v).
func (d DatabaseURL) GoString() string { return d.String() }
