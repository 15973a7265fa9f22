// Command authserver is the AuthStack authentication service.
// Subcommands: serve (default), migrate, healthcheck, version,
// backup postgres|redis, restore postgres|redis (authserver/backup).
package main

import (
	"os"

	"github.com/leanauth/authstack/authserver/app"
	"github.com/leanauth/authstack/authserver/backup"
)

func main() {
	if len(os.Args) > 1 && (os.Args[1] == "backup" || os.Args[1] == "restore") {
		os.Exit(backup.Main(os.Args[1:], os.Stdout, os.Stderr))
	}
	os.Exit(app.Main(os.Args[1:], os.Stdout, os.Stderr))
}
