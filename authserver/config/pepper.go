package config

// LoadPeppers reads the peppers (AUTH_PEPPER, AUTH_OLD_PEPPERS: loadPeppers) for
// `authserver migrate`, which checks them against the stored password hashes. No
// AUTH_PEPPER is no error: migrate then skips the check. AUTH_PEPPER_SOURCE, when set,
// names where the pepper comes from (the operator sets the Secret's name), for the
// message of a mismatch.
func LoadPeppers(get Getenv, read ReadFile) (peppers []Pepper, source string, err error) {
	l := &loader{get: get, read: read}
	source = l.str("AUTH_PEPPER_SOURCE", "", false)
	if _, ok := l.raw("AUTH_PEPPER", true); ok {
		c := &Config{}
		loadPeppers(l, c)
		peppers = c.Peppers
	}
	if err := l.err(); err != nil {
		return nil, "", err
	}
	return peppers, source, nil
}
