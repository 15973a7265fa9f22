// Command authserver is the AuthStack authentication service.
// Subcommands: serve (default), migrate, healthcheck, version.
package main

import (
	"os"

	"github.com/leanauth/authstack/authserver/app"
)

func main() {
	os.Exit(app.Main(os.Args[1:], os.Stdout, os.Stderr))
}
