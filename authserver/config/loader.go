package config

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

// The loader: reads variables (and the NAME_FILE variants of secrets) and
// collects every problem, each naming its variable and never its value.

// Getenv looks an environment variable up; os.LookupEnv fits.
type Getenv func(string) (string, bool)

// ReadFile reads a file; os.ReadFile fits.
type ReadFile func(string) ([]byte, error)

type loader struct {
	get  Getenv
	read ReadFile
	errs []error
}

func (l *loader) fail(name, format string, args ...any) {
	l.errs = append(l.errs, fmt.Errorf("%s: %s", name, fmt.Sprintf(format, args...)))
}

// err is every problem found, each naming its variable, or nil.
func (l *loader) err() error {
	if len(l.errs) == 0 {
		return nil
	}
	return fmt.Errorf("invalid configuration: %w", errors.Join(l.errs...))
}

// raw returns the trimmed value of name, or of the file named by name_FILE
// when secretFile is true. Both set is an error.
func (l *loader) raw(name string, fileVariant bool) (string, bool) {
	v, ok := l.get(name)
	if fileVariant {
		if path, fok := l.get(name + "_FILE"); fok && path != "" {
			if ok && v != "" {
				l.fail(name, "set both %s and %s_FILE; set only one", name, name)
				return "", false
			}
			b, err := l.read(path)
			if err != nil {
				// The path is not secret; the content would be.
				l.fail(name+"_FILE", "cannot read %q: %v", path, unwrapPathErr(err))
				return "", false
			}
			return strings.TrimSpace(string(b)), true
		}
	}
	if !ok {
		return "", false
	}
	return strings.TrimSpace(v), v != ""
}

func unwrapPathErr(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

func (l *loader) required(name string, secret bool) string {
	n := len(l.errs)
	v, ok := l.raw(name, secret)
	if !ok && len(l.errs) == n {
		if secret {
			l.fail(name, "required (set %s or %s_FILE)", name, name)
		} else {
			l.fail(name, "required")
		}
	}
	return v
}

func (l *loader) str(name, def string, secret bool) string {
	v, ok := l.raw(name, secret)
	if !ok {
		return def
	}
	return v
}

func (l *loader) integer(name string, def, min, max int) int {
	v, ok := l.raw(name, false)
	if !ok {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < min || n > max {
		l.fail(name, "must be an integer from %d to %d, got %q", min, max, v)
		return def
	}
	return n
}

func (l *loader) duration(name string, def, min time.Duration) time.Duration {
	v, ok := l.raw(name, false)
	if !ok {
		return def
	}
	d, err := time.ParseDuration(v)
	if err != nil || d < min {
		l.fail(name, "must be a Go duration of at least %s (like 30m, 24h), got %q", min, v)
		return def
	}
	return d
}

func (l *loader) boolean(name string, def bool) bool {
	v, ok := l.raw(name, false)
	if !ok {
		return def
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		l.fail(name, "must be true or false, got %q", v)
		return def
	}
	return b
}

func (l *loader) limit(name string, def Limit) Limit {
	v, ok := l.raw(name, false)
	if !ok {
		return def
	}
	lim, err := ParseLimit(v)
	if err != nil {
		l.fail(name, "%v", err)
		return def
	}
	return lim
}

func (l *loader) ratio(name string, def float64) float64 {
	v, ok := l.raw(name, false)
	if !ok {
		return def
	}
	f, err := strconv.ParseFloat(v, 64)
	if err != nil || f < 0 || f > 1 {
		l.fail(name, "must be a number from 0 to 1, got %q", v)
		return def
	}
	return f
}
