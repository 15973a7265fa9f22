// Command pause is the pod sandbox image of the real node (hack/real-node.sh):
// it holds a pod's namespaces, reaps orphaned children (a pod that shares its
// process namespace makes it their parent) and exits on SIGTERM or SIGINT.
// The upstream image cannot be pulled here, so the node builds its own.
package main

import (
	"os"
	"os/signal"
	"syscall"
)

func main() {
	sig := make(chan os.Signal, 8)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT, syscall.SIGCHLD)
	for s := range sig {
		if s != syscall.SIGCHLD {
			return
		}
		for {
			pid, err := syscall.Wait4(-1, nil, syscall.WNOHANG, nil)
			if pid <= 0 || err != nil {
				break
			}
		}
	}
}
