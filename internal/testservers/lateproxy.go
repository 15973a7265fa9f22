package testservers

import (
	"io"
	"net"
	"os"
	"strconv"
	"sync"
	"syscall"
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
	// A socket bound but not listening: the port is reserved (no other test can take
	// it in the meantime, as it could a port found free and closed), and the kernel
	// answers a connection to it with a reset, "connection refused".
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatalf("testservers: late port: %v", err)
	}
	if err := syscall.Bind(fd, &syscall.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		syscall.Close(fd)
		t.Fatalf("testservers: late port: %v", err)
	}
	sa, err := syscall.Getsockname(fd)
	if err != nil {
		syscall.Close(fd)
		t.Fatalf("testservers: late port: %v", err)
	}
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(sa.(*syscall.SockaddrInet4).Port))
	file := os.NewFile(uintptr(fd), "late-port")
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
		defer file.Close()
		select {
		case <-done:
			return
		case <-time.After(after):
		}
		if err := syscall.Listen(fd, 128); err != nil {
			t.Errorf("testservers: opening the late port %s: %v", addr, err)
			return
		}
		l, err := net.FileListener(file) // a dup: file is closed when done
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
