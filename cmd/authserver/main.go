// Command authserver is the AuthStack authentication service; app.Main
// dispatches its subcommands (authserver help lists them).
package main

import (
	"os"

	"github.com/leanauth/authstack/authserver/app"
)

func main() {
	os.Exit(app.Main(os.Args[1:], os.Stdout, os.Stderr))
}
