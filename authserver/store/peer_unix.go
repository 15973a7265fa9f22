//go:build unix

package store

import (
	"net"
	"syscall"
)

// unsolicited says whether an idle connection has something to read (an error the
// server sent before closing) or was closed by the peer. An idle PostgreSQL connection
// is sent nothing, except asynchronous notices, which also get a (harmless) ping.
func unsolicited(c net.Conn) bool {
	if u, ok := c.(interface{ NetConn() net.Conn }); ok { // TLS
		c = u.NetConn()
	}
	sc, ok := c.(syscall.Conn)
	if !ok {
		return false
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return false
	}
	found := false
	// Control, not Read: Read would wait for the descriptor's read lock, which pgconn's
	// background reader holds while it waits for the server (it starts when a write
	// takes over 15 ms, as on a loaded machine, and may stay in a read on the idle
	// connection), so the pool's Acquire hung for good. A peek that does not wait
	// and consumes nothing needs no lock.
	_ = raw.Control(func(fd uintptr) {
		var b [1]byte
		n, _, err := syscall.Recvfrom(int(fd), b[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		// n > 0: data waiting; n == 0 without error: the peer closed; EAGAIN: nothing.
		found = n > 0 || (err == nil && n == 0) || (err != nil && err != syscall.EAGAIN && err != syscall.EWOULDBLOCK)
	})
	return found
}
