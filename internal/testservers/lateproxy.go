package testservers

import (
	"io"
	"net"
	"strconv"
	"sync"
	"testing"
	"time"
)

// LateProxy returns a loopback address that refuses connections (nothing listens
// on it) for the first `after`, then forwards each connection to target: a server
// a new Job pod reaches only a moment after it started, as when the NetworkPolicy
// engine admits the pod's address late (kube-router rejects until then,
// "connection refused"). It stops at the end of the test, closing the connections still open.
func LateProxy(t testing.TB, target string, after time.Duration) string {
	t.Helper()
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(FreePort(t)))
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		ln    net.Listener
		conns []net.Conn
		done  = make(chan struct{})
	)
	wg.Add(1)
	go func() {
		defer wg.Done()
		select {
		case <-done:
			return
		case <-time.After(after):
		}
		l, err := net.Listen("tcp", addr)
		if err != nil {
			t.Errorf("testservers: opening the late port %s: %v", addr, err)
			return
		}
		mu.Lock()
		ln = l
		mu.Unlock()
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				up, err := net.Dial("tcp", target)
				if err != nil {
					return
				}
				mu.Lock()
				conns = append(conns, up)
				mu.Unlock()
				go func() { _, _ = io.Copy(up, c); up.Close() }()
				_, _ = io.Copy(c, up)
			}()
		}
	}()
	t.Cleanup(func() {
		close(done)
		mu.Lock()
		if ln != nil {
			ln.Close()
		}
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return addr
}
