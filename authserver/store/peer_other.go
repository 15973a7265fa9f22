//go:build !unix

package store

import "net"

// unsolicited: without a non-blocking peek, idle connections are pinged after a second only.
func unsolicited(net.Conn) bool { return false }
