package envtranslate

import (
	"fmt"
	"net"
	"strings"
)

// PgBouncerIni rewrites the host= and port= of every [databases] entry of a
// pgbouncer.ini through the address mapping (keys as in Options.Addresses);
// ns resolves short Service names. An in-cluster host without a mapping is an error.
func PgBouncerIni(ini, ns string, addresses map[string]string) (string, error) {
	addrs, err := addressMap(addresses, ns)
	if err != nil {
		return "", err
	}
	t := &translator{ns: ns, addrs: addrs}
	lines := strings.Split(ini, "\n")
	section := ""
	for i, line := range lines {
		trim := strings.TrimSpace(line)
		if strings.HasPrefix(trim, "[") && strings.HasSuffix(trim, "]") {
			section = strings.ToLower(strings.Trim(trim, "[] "))
			continue
		}
		if section != "databases" || trim == "" || strings.HasPrefix(trim, ";") || strings.HasPrefix(trim, "#") {
			continue
		}
		name, conn, ok := strings.Cut(line, "=")
		if !ok {
			continue
		}
		fields := strings.Fields(conn)
		host, port := "", "5432"
		for _, f := range fields {
			if k, v, ok := strings.Cut(f, "="); ok {
				switch k {
				case "host":
					host = v
				case "port":
					port = v
				}
			}
		}
		if host == "" {
			continue
		}
		to, ok := t.lookup(host, port)
		if !ok {
			if inCluster(host) {
				return "", fmt.Errorf("pgbouncer database %s: in-cluster address %s:%s has no local equivalent", strings.TrimSpace(name), host, port)
			}
			continue
		}
		th, tp, err := net.SplitHostPort(to)
		if err != nil {
			return "", fmt.Errorf("address mapping for %s:%s: %w", host, port, err)
		}
		hasPort := false
		for j, f := range fields {
			switch {
			case strings.HasPrefix(f, "host="):
				fields[j] = "host=" + th
			case strings.HasPrefix(f, "port="):
				fields[j], hasPort = "port="+tp, true
			}
		}
		if !hasPort {
			fields = append(fields, "port="+tp)
		}
		lines[i] = strings.TrimRight(name, " ") + " = " + strings.Join(fields, " ")
	}
	return strings.Join(lines, "\n"), nil
}
