// Command coredns is CoreDNS with only the plugins the real node's Corefile uses
// (hack/real-node.sh writes it: bind, errors, cache, kubernetes). CoreDNS's own
// binary links every plugin, and with them the AWS, Azure and Google Cloud SDKs of
// route53, azure and clouddns: a cold build of that took 30 minutes here. This is the
// way CoreDNS documents for a custom build: a main that imports the plugins it wants
// and sets their order (the order of plugin.cfg).
//
// Its own module (go.mod beside it), so the project's module does not depend on CoreDNS.
package main

import (
	"github.com/coredns/coredns/core/dnsserver"
	"github.com/coredns/coredns/coremain"

	_ "github.com/coredns/coredns/plugin/bind"
	_ "github.com/coredns/coredns/plugin/cache"
	_ "github.com/coredns/coredns/plugin/errors"
	_ "github.com/coredns/coredns/plugin/kubernetes"
)

func init() {
	dnsserver.Directives = []string{"bind", "errors", "cache", "kubernetes"}
}

func main() { coremain.Run() }
