package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// loadSpec describes one closed-loop load: conns connections, each sending
// its next request as soon as the previous answer arrived, for dur.
type loadSpec struct {
	name  string
	addr  string // host:port, loopback
	conns int
	dur   time.Duration
	// request returns the raw HTTP/1.1 request for connection c (keep-alive).
	request func(c int) []byte
	// okStatus is the status that counts as a success.
	okStatus int
	// maxSamples bounds the latency samples kept per connection.
	maxSamples int
	// retryAfter makes a connection that got a 503 or 429 with Retry-After
	// wait that long before its next request, as a well-behaved client
	// does (the login storm); otherwise it sends the next one at once.
	retryAfter bool
}

// loadResult is what one load run measured.
type loadResult struct {
	Name     string
	Conns    int
	Elapsed  time.Duration
	OK       int            // responses with okStatus
	Statuses map[int]int    // every status seen
	Errors   int            // transport errors (connection refused, reset, timeout)
	P50, P99 time.Duration  // latency of the OK responses
	Max      time.Duration  // slowest OK response
	ErrorMsg map[string]int // a few transport error texts
}

// RPS is successful responses per second.
func (r loadResult) RPS() float64 {
	if r.Elapsed <= 0 {
		return 0
	}
	return float64(r.OK) / r.Elapsed.Seconds()
}

func (r loadResult) String() string {
	return fmt.Sprintf("%-24s conns=%-4d ok=%-7d %9.1f req/s  p50=%-9s p99=%-9s max=%-9s statuses=%v errors=%d",
		r.Name, r.Conns, r.OK, r.RPS(), r.P50.Round(time.Microsecond), r.P99.Round(time.Microsecond),
		r.Max.Round(time.Microsecond), r.Statuses, r.Errors)
}

type connStats struct {
	lat      []time.Duration
	statuses map[int]int
	errors   int
	errMsg   map[string]int
	last     time.Time
}

// runLoad runs the closed-loop load. It uses a small hand-written HTTP/1.1
// client over keep-alive connections so that the load generator costs as
// little CPU as possible (both sides share the same 2 cores).
func runLoad(ctx context.Context, s loadSpec) loadResult {
	if s.maxSamples == 0 {
		s.maxSamples = 200000
	}
	start := time.Now()
	deadline := start.Add(s.dur)
	stats := make([]*connStats, s.conns)
	var wg sync.WaitGroup
	var ready sync.WaitGroup
	ready.Add(s.conns)
	gate := make(chan struct{})
	var dialed atomic.Int32
	for c := 0; c < s.conns; c++ {
		st := &connStats{statuses: map[int]int{}, errMsg: map[string]int{}}
		stats[c] = st
		wg.Add(1)
		go func(c int) {
			defer wg.Done()
			req := s.request(c)
			var conn net.Conn
			var br *bufio.Reader
			dial := func() error {
				if conn != nil {
					conn.Close()
				}
				var err error
				conn, err = net.DialTimeout("tcp", s.addr, 5*time.Second)
				if err != nil {
					conn = nil
					return err
				}
				br = bufio.NewReaderSize(conn, 16<<10)
				return nil
			}
			derr := dial()
			if derr == nil {
				dialed.Add(1)
			}
			ready.Done()
			<-gate
			for {
				now := time.Now()
				if now.After(deadline) || ctx.Err() != nil {
					break
				}
				if conn == nil {
					if err := dial(); err != nil {
						st.errors++
						st.errMsg[trimErr(err)]++
						time.Sleep(10 * time.Millisecond)
						continue
					}
				}
				_ = conn.SetDeadline(now.Add(60 * time.Second))
				t0 := time.Now()
				status, wait, closeConn, err := roundTrip(conn, br, req)
				d := time.Since(t0)
				if err != nil {
					st.errors++
					st.errMsg[trimErr(err)]++
					conn.Close()
					conn = nil
					continue
				}
				st.statuses[status]++
				st.last = time.Now()
				if status == s.okStatus && len(st.lat) < s.maxSamples {
					st.lat = append(st.lat, d)
				}
				if closeConn {
					conn.Close()
					conn = nil
				}
				if s.retryAfter && wait > 0 && (status == http.StatusServiceUnavailable || status == http.StatusTooManyRequests) {
					select {
					case <-time.After(min(wait, time.Until(deadline))):
					case <-ctx.Done():
					}
				}
			}
			if conn != nil {
				conn.Close()
			}
		}(c)
	}
	ready.Wait()
	start = time.Now()
	deadline = start.Add(s.dur)
	close(gate)
	wg.Wait()

	return summarize(s.name, s.conns, s.okStatus, start, s.dur, stats)
}

// summarize merges the connections' counts of a load that started at start
// and was meant to last dur.
func summarize(name string, conns, okStatus int, start time.Time, dur time.Duration, stats []*connStats) loadResult {
	res := loadResult{Name: name, Conns: conns, Statuses: map[int]int{}, ErrorMsg: map[string]int{}}
	var all []time.Duration
	last := start
	for _, st := range stats {
		for k, v := range st.statuses {
			res.Statuses[k] += v
		}
		res.Errors += st.errors
		for k, v := range st.errMsg {
			res.ErrorMsg[k] += v
		}
		all = append(all, st.lat...)
		if st.last.After(last) {
			last = st.last
		}
	}
	res.OK = res.Statuses[okStatus]
	// Requests in flight at the deadline finish after it: count the time
	// until the last answer so that the rate is not inflated.
	res.Elapsed = last.Sub(start)
	if res.Elapsed < dur {
		res.Elapsed = dur
	}
	sort.Slice(all, func(i, j int) bool { return all[i] < all[j] })
	res.P50, res.P99 = percentile(all, 0.50), percentile(all, 0.99)
	if len(all) > 0 {
		res.Max = all[len(all)-1]
	}
	return res
}

func percentile(sorted []time.Duration, q float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(q*float64(len(sorted))+0.5) - 1
	if i < 0 {
		i = 0
	}
	if i >= len(sorted) {
		i = len(sorted) - 1
	}
	return sorted[i]
}

// roundTrip writes one request and reads the whole response; retryAfter
// is its Retry-After in seconds (0 when absent).
func roundTrip(conn net.Conn, br *bufio.Reader, req []byte) (status int, retryAfter time.Duration, closeConn bool, err error) {
	if _, err := conn.Write(req); err != nil {
		return 0, 0, true, err
	}
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		return 0, 0, true, err
	}
	_, err = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if err != nil {
		return 0, 0, true, err
	}
	if secs, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil && secs > 0 {
		retryAfter = time.Duration(secs) * time.Second
	}
	return resp.StatusCode, retryAfter, resp.Close, nil
}

func trimErr(err error) string {
	s := err.Error()
	if len(s) > 80 {
		s = s[:80]
	}
	return s
}

// getRequest is a keep-alive GET with an optional bearer token.
func getRequest(path, token string) []byte {
	s := "GET " + path + " HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: authbench\r\n"
	if token != "" {
		s += "Authorization: Bearer " + token + "\r\n"
	}
	return []byte(s + "\r\n")
}

// postJSON is a keep-alive POST of a JSON body.
func postJSON(path, body string) []byte {
	return []byte(fmt.Sprintf("POST %s HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: authbench\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s",
		path, len(body), body))
}

var netDialer = net.Dialer{Timeout: 2 * time.Second}
