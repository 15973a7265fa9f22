// Command edgeapp is the real-node edge tests' app and client (test/realnode,
// edge_test.go), one static binary in one image:
//
//	edgeapp app :8080     the protected app (internal/edgecases.App); GET /_seen
//	                      lists every X-Auth-User-Id it saw (asked from the host)
//	edgeapp client :8080  sends requests from inside the pod network for the test:
//	                      GET /fetch?url=&host=&method=&body=&h=Name:Value... one request,
//	                      redirects not followed, answered as JSON {status,header,body};
//	                      GET /load?url=&host=&h=...&c=&seconds= a closed-loop load on c
//	                      keep-alive connections, answered as JSON latency percentiles
package main

import (
	"encoding/json"
	"fmt"
	"io"
	"log"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/leanauth/authstack/internal/edgecases"
)

func main() {
	if len(os.Args) != 3 {
		log.Fatal("usage: edgeapp app|client ADDR")
	}
	mux := http.NewServeMux()
	switch os.Args[1] {
	case "app":
		app := &edgecases.App{}
		mux.Handle("/", app)
		mux.HandleFunc("GET /_seen", func(w http.ResponseWriter, _ *http.Request) { _ = json.NewEncoder(w).Encode(app.Seen()) })
	case "client":
		mux.HandleFunc("GET /{$}", func(http.ResponseWriter, *http.Request) {})
		mux.HandleFunc("GET /fetch", fetch)
		mux.HandleFunc("GET /load", load)
	default:
		log.Fatalf("unknown mode %q", os.Args[1])
	}
	log.Fatal(http.ListenAndServe(os.Args[2], mux))
}

// request builds the request a /fetch or /load query describes.
func request(q map[string][]string) (*http.Request, error) {
	get := func(k string) string {
		if v := q[k]; len(v) > 0 {
			return v[0]
		}
		return ""
	}
	method := get("method")
	if method == "" {
		method = "GET"
	}
	req, err := http.NewRequest(method, get("url"), strings.NewReader(get("body")))
	if err != nil {
		return nil, err
	}
	if h := get("host"); h != "" {
		req.Host = h
	}
	if get("body") != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for _, h := range q["h"] {
		k, v, _ := strings.Cut(h, ":")
		req.Header.Add(strings.TrimSpace(k), strings.TrimSpace(v))
	}
	return req, nil
}

var noRedirects = &http.Client{Timeout: 10 * time.Second,
	CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

func fetch(w http.ResponseWriter, r *http.Request) {
	req, err := request(r.URL.Query())
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	resp, err := noRedirects.Do(req)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	_ = json.NewEncoder(w).Encode(map[string]any{"status": resp.StatusCode, "header": resp.Header, "body": string(body)})
}

// load sends the request on c connections, each waiting for its answer
// before the next, for the given seconds, and reports latency percentiles of
// the answers with status 200 (others are counted).
func load(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	c, _ := strconv.Atoi(q.Get("c"))
	secs, _ := strconv.ParseFloat(q.Get("seconds"), 64)
	if c < 1 || secs <= 0 {
		http.Error(w, "c and seconds are required", http.StatusBadRequest)
		return
	}
	if _, err := request(q); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	hc := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: c, DisableCompression: true},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	var mu sync.Mutex
	var lat []time.Duration
	other := 0
	end := time.Now().Add(time.Duration(secs * float64(time.Second)))
	var wg sync.WaitGroup
	for range c {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for time.Now().Before(end) {
				req, _ := request(q)
				t0 := time.Now()
				resp, err := hc.Do(req)
				ok := err == nil && resp.StatusCode == 200
				if err == nil {
					_, _ = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
				}
				d := time.Since(t0)
				mu.Lock()
				if ok {
					lat = append(lat, d)
				} else {
					other++
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	slices.Sort(lat)
	pct := func(p float64) float64 {
		if len(lat) == 0 {
			return 0
		}
		return float64(lat[int(p*float64(len(lat)-1))].Microseconds()) / 1000
	}
	_ = json.NewEncoder(w).Encode(map[string]any{"ok": len(lat), "other": other,
		"p50_ms": pct(0.5), "p90_ms": pct(0.9), "p99_ms": pct(0.99), "rate": fmt.Sprintf("%.0f/s", float64(len(lat))/secs)})
}
