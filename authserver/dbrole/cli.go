package dbrole

import (
	"context"
	"fmt"
	"io"
)

// Usage is the db-role command's usage.
const Usage = `usage: authserver db-role prepare ROLE OWNER   (DB_ROLE_PASSWORD: the new password)
       authserver db-role retire ROLE
Both connect with DATABASE_DIRECT_URL, else DATABASE_URL.
`

// Main runs `authserver db-role` with args (after the command name).
func Main(ctx context.Context, args []string, getenv func(string) (string, bool), stdout, stderr io.Writer) int {
	url, ok := getenv("DATABASE_DIRECT_URL")
	if !ok || url == "" {
		url, _ = getenv("DATABASE_URL")
	}
	prepare, retire := len(args) == 3 && args[0] == "prepare", len(args) == 2 && args[0] == "retire"
	var err error
	switch {
	case !prepare && !retire:
		fmt.Fprint(stderr, Usage)
		return 2
	case url == "":
		err = fmt.Errorf("DATABASE_DIRECT_URL or DATABASE_URL is required")
	case prepare:
		pw, _ := getenv("DB_ROLE_PASSWORD")
		if err = Prepare(ctx, url, args[2], args[1], pw); err == nil {
			fmt.Fprintf(stdout, "role %s logs in with its new password and acts as %s\n", args[1], args[2])
		}
	default:
		if err = Retire(ctx, url, args[1]); err == nil {
			fmt.Fprintf(stdout, "role %s no longer logs in\n", args[1])
		}
	}
	if err != nil {
		fmt.Fprintln(stderr, "authserver db-role:", err)
		return 1
	}
	return 0
}
