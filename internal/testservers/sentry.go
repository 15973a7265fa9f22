package testservers

import (
	"bufio"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// SentryRecorder is a real HTTP endpoint standing in for Sentry's ingest: it
// keeps each event of every envelope the SDK's own transport posts.
type SentryRecorder struct {
	srv    *httptest.Server
	mu     sync.Mutex
	raw    []string         // each envelope as received
	events []map[string]any // each event item, decoded
	got    chan struct{}
}

// Sentry starts a recorder on a loopback port; closed at t.Cleanup.
func Sentry(t testing.TB) *SentryRecorder {
	rec := &SentryRecorder{got: make(chan struct{}, 100)}
	rec.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		rec.mu.Lock()
		rec.raw = append(rec.raw, string(b))
		sc := bufio.NewScanner(strings.NewReader(string(b)))
		sc.Buffer(make([]byte, 1<<20), 1<<24)
		next := false
		for sc.Scan() {
			var m map[string]any
			if json.Unmarshal(sc.Bytes(), &m) != nil {
				next = false
				continue
			}
			if next {
				rec.events = append(rec.events, m)
				rec.got <- struct{}{}
			}
			next = m["type"] == "event"
		}
		rec.mu.Unlock()
		w.WriteHeader(http.StatusOK)
	}))
	t.Cleanup(rec.srv.Close)
	return rec
}

// DSN points the SDK at the recorder (project 42).
func (rec *SentryRecorder) DSN() string {
	return strings.Replace(rec.srv.URL, "http://", "http://publickey@", 1) + "/42"
}

// Next waits for event i (counting from 0) and returns it.
func (rec *SentryRecorder) Next(t testing.TB, i int) map[string]any {
	t.Helper()
	deadline := time.After(20 * time.Second)
	for {
		rec.mu.Lock()
		n := len(rec.events)
		rec.mu.Unlock()
		if n > i {
			break
		}
		select {
		case <-rec.got:
		case <-deadline:
			t.Fatalf("no Sentry event %d arrived", i+1)
		}
	}
	rec.mu.Lock()
	defer rec.mu.Unlock()
	return rec.events[i]
}

// Events is how many events arrived so far.
func (rec *SentryRecorder) Events() int {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	return len(rec.events)
}

// All is every envelope received, for grepping.
func (rec *SentryRecorder) All() string {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	return strings.Join(rec.raw, "\n")
}
