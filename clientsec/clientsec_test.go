package clientsec

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// TestKeysFlagsAndArgs: the names a setting goes by in YAML, in flags and
// in kdr up's worker arguments.
func TestKeysFlagsAndArgs(t *testing.T) {
	want := map[string][2]string{
		"TLS.Enabled": {"tls.enabled", "tls-enabled"}, "TLS.CAFile": {"tls.caFile", "tls-ca-file"},
		"TLS.CertFile": {"tls.certFile", "tls-cert-file"}, "TLS.KeyFile": {"tls.keyFile", "tls-key-file"},
		"TLS.ServerName": {"tls.serverName", "tls-server-name"}, "TLS.InsecureSkipVerify": {"tls.insecureSkipVerify", "tls-insecure-skip-verify"},
		"SASL.Mechanism": {"sasl.mechanism", "sasl-mechanism"}, "SASL.Username": {"sasl.username", "sasl-username"},
		"SASL.Password": {"sasl.password", "sasl-password"}, "SASL.PasswordEnv": {"sasl.passwordEnv", "sasl-password-env"},
	}
	fields := Fields()
	if len(fields) != len(want) {
		t.Errorf("Fields() = %v, want the %d of the table", fields, len(want))
	}
	for _, f := range fields {
		if got := [2]string{Key(f), Flag(f)}; got != want[f] {
			t.Errorf("%s: key and flag %q, want %q", f, got, want[f])
		}
	}
	if Key("TLS.Nope") != "TLS.Nope" {
		t.Errorf("Key of an unknown field: %q", Key("TLS.Nope"))
	}
	c := Config{TLS: TLS{CAFile: "/ca.pem"}, SASL: SASL{Mechanism: Plain, Username: "u", Password: "secret"}}
	all := strings.Join(c.Args("x-", true), " ")
	if all != "--x-tls-enabled=false --x-tls-ca-file=/ca.pem --x-tls-cert-file= --x-tls-key-file= --x-tls-server-name= "+
		"--x-tls-insecure-skip-verify=false --x-sasl-mechanism=PLAIN --x-sasl-username=u --x-sasl-password-env=" {
		t.Errorf("Args(all): %s", all)
	}
	if set := strings.Join(c.Args("x-", false), " "); set != "--x-tls-ca-file=/ca.pem --x-sasl-mechanism=PLAIN --x-sasl-username=u" {
		t.Errorf("Args(set only): %s", set)
	}
}

func TestProblems(t *testing.T) {
	for _, c := range []struct {
		name string
		c    Config
		want []string // first field of each problem
	}{
		{"zero", Config{}, nil},
		{"password without mechanism", Config{SASL: SASL{Password: "p"}}, []string{"SASL.Mechanism"}},
		{"user without mechanism", Config{SASL: SASL{Username: "u"}}, []string{"SASL.Mechanism"}},
		{"unknown mechanism", Config{SASL: SASL{Mechanism: "GSSAPI", Username: "u", Password: "p"}}, []string{"SASL.Mechanism"}},
		{"no user, two passwords", Config{SASL: SASL{Mechanism: Plain, Password: "p", PasswordEnv: "P"}}, []string{"SASL.Username", "SASL.Password"}},
		{"no password", Config{SASL: SASL{Mechanism: ScramSHA512, Username: "u"}}, []string{"SASL.Password"}},
		{"key without certificate", Config{TLS: TLS{KeyFile: "k.pem"}}, []string{"TLS.CertFile"}},
		{"complete", Config{TLS: TLS{CAFile: "ca.pem", CertFile: "c.pem", KeyFile: "k.pem"}, SASL: SASL{Mechanism: ScramSHA256, Username: "u", PasswordEnv: "P"}}, nil},
	} {
		var got []string
		for _, p := range c.c.Problems() {
			got = append(got, p.Fields[0])
		}
		if !reflect.DeepEqual(got, c.want) {
			t.Errorf("%s: problems at %v, want %v (%+v)", c.name, got, c.want, c.c.Problems())
		}
	}
}

func TestOptsErrorsNameTheSetting(t *testing.T) {
	dir := t.TempDir()
	notPEM := filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(notPEM, []byte("not a certificate"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		c     Config
		field string
		want  string
	}{
		{Config{SASL: SASL{Mechanism: Plain, Username: "u", PasswordEnv: "KDR_TEST_UNSET_PASSWORD"}}, "SASL.PasswordEnv", "environment variable KDR_TEST_UNSET_PASSWORD is not set"},
		{Config{TLS: TLS{CAFile: filepath.Join(dir, "missing.pem")}}, "TLS.CAFile", "no such file"},
		{Config{TLS: TLS{CAFile: notPEM}}, "TLS.CAFile", "no PEM certificate"},
		{Config{TLS: TLS{CertFile: notPEM, KeyFile: notPEM}}, "TLS.CertFile", "loading the certificate and its key"},
		{Config{SASL: SASL{Mechanism: Plain}}, "SASL.Username", "required"},
	} {
		_, err := c.c.Opts()
		var se *SettingError
		if !errors.As(err, &se) || se.Field != c.field || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: error %v, want a SettingError of %s saying %q", c.c, err, c.field, c.want)
		}
	}
	t.Setenv("KDR_TEST_PASSWORD", "")
	for _, c := range []struct {
		c    Config
		opts int
		desc string
	}{
		{Config{}, 0, "PLAINTEXT"},
		{Config{TLS: TLS{Enabled: true}}, 1, "SSL"},
		{Config{SASL: SASL{Mechanism: ScramSHA512, Username: "u", PasswordEnv: "KDR_TEST_PASSWORD"}}, 1, "SASL_PLAINTEXT SCRAM-SHA-512 as u"},
		{Config{TLS: TLS{ServerName: "k"}, SASL: SASL{Mechanism: Plain, Username: "u", Password: "p"}}, 2, "SASL_SSL PLAIN as u"},
	} {
		if opts, err := c.c.Opts(); err != nil || len(opts) != c.opts || c.c.String() != c.desc {
			t.Errorf("%+v: %d options, error %v, %q; want %d, %q", c.c, len(opts), err, c.c.String(), c.opts, c.desc)
		}
	}
}
