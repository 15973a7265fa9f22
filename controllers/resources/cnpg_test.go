package resources

import (
	"errors"
	"strings"
	"testing"

	"k8s.io/utils/ptr"

	authv1alpha1 "github.com/leanauth/authstack/api/v1alpha1"
)

func cnpgSecretData() map[string][]byte {
	return map[string][]byte{"username": []byte("app"), "password": []byte("p@ss/w:rd"), "host": []byte("pg-rw"),
		"port": []byte("5432"), "dbname": []byte("app"), "uri": []byte("ignored")}
}

func TestCNPGDatabaseURL(t *testing.T) {
	db, err := CNPGDatabaseURL(cnpgSecretData())
	if err != nil {
		t.Fatal(err)
	}
	if db.Host != "pg-rw" || db.Port != 5432 || db.User != "app" || db.Password != "p@ss/w:rd" || db.DBName != "app" || db.SSLMode != "require" {
		t.Errorf("parsed %#v (password %q)", db, db.Password)
	}
	for _, k := range CNPGAppSecretKeys {
		data := cnpgSecretData()
		delete(data, k)
		_, err := CNPGDatabaseURL(data)
		if !errors.Is(err, ErrInvalidDatabaseURL) || !strings.Contains(err.Error(), `"`+k+`"`) || strings.Contains(err.Error(), "p@ss") {
			t.Errorf("without %s: %v", k, err)
		}
	}
	data := cnpgSecretData()
	data["port"] = []byte("p@ss")
	if _, err := CNPGDatabaseURL(data); err == nil || strings.Contains(err.Error(), "p@ss") {
		t.Errorf("a bad port: %v", err)
	}
}

func cnpgStack(pooler string) *authv1alpha1.AuthStack {
	s := sampleStack()
	s.Spec.Database = authv1alpha1.DatabaseSpec{CloudNativePG: &authv1alpha1.CloudNativePGSpec{Cluster: "pg", Pooler: pooler}}
	if pooler != "" {
		s.Spec.Pooler.Enabled = ptr.To(false)
	}
	return s
}

func TestCNPGConnection(t *testing.T) {
	db, _ := CNPGDatabaseURL(cnpgSecretData())
	const direct = "postgres://app:p%40ss%2Fw%3Ard@pg-rw:5432/app?sslmode=require"
	for name, tc := range map[string]struct {
		stack      *authv1alpha1.AuthStack
		url        string
		directEnv  bool
		backupFrom string
	}{
		"direct":           {cnpgStack(""), direct, false, ConnectionDatabaseDirectURLKey},
		"CNPG Pooler":      {cnpgStack("pg-pooler-rw"), "postgres://app:p%40ss%2Fw%3Ard@pg-pooler-rw:5432/app?sslmode=require", true, ConnectionDatabaseDirectURLKey},
		"own pgbouncer on": {func() *authv1alpha1.AuthStack { s := cnpgStack(""); s.Spec.Pooler.Enabled = ptr.To(true); return s }(), "", true, ConnectionDatabaseDirectURLKey},
	} {
		t.Run(name, func(t *testing.T) {
			if name == "direct" {
				tc.stack.Spec.Pooler.Enabled = ptr.To(false)
			}
			c := ConnectionFor(tc.stack, db, "")
			if c.DatabaseDirectURL != direct {
				t.Errorf("direct URL %q, want %q", c.DatabaseDirectURL, direct)
			}
			if tc.url != "" && c.DatabaseURL != tc.url {
				t.Errorf("URL %q, want %q", c.DatabaseURL, tc.url)
			}
			refs := envRefs(t, tc.stack)[ComponentAuthServer]
			if refs["DATABASE_URL"] != ConnectionSecretName(tc.stack)+"/"+ConnectionDatabaseURLKey {
				t.Errorf("DATABASE_URL from %q", refs["DATABASE_URL"])
			}
			if _, ok := refs["DATABASE_DIRECT_URL"]; ok != tc.directEnv {
				t.Errorf("DATABASE_DIRECT_URL set %v, want %v", ok, tc.directEnv)
			}
			if src := DefaultBackupSources(tc.stack, sampleInputs(tc.stack)); src.DatabaseURL == nil || src.DatabaseURL.Key != tc.backupFrom {
				t.Errorf("backups read %+v", src.DatabaseURL)
			}
		})
	}
}
