package clientsec

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// TestEveryFieldHasKeyAndFlag: Key gives each field its mapstructure tag
// (the YAML key under "security") and Flag a flag suffix, so that no
// setting can be added without a name for errors and kdr up's arguments.
func TestEveryFieldHasKeyAndFlag(t *testing.T) {
	flags := map[string]string{}
	for _, typ := range []reflect.Type{reflect.TypeFor[TLS](), reflect.TypeFor[SASL]()} {
		section := strings.ToLower(typ.Name())
		for i := range typ.NumField() {
			f := typ.Field(i)
			field := typ.Name() + "." + f.Name
			if want := section + "." + f.Tag.Get("mapstructure"); Key(field) != want {
				t.Errorf("Key(%q) = %q, want %q", field, Key(field), want)
			}
			flag := Flag(field)
			if flag == field || flags[flag] != "" {
				t.Errorf("Flag(%q) = %q (also %q's)", field, flag, flags[flag])
			}
			flags[flag] = field
		}
	}
	// Args carries every flag but the password's.
	args := strings.Join(Config{}.Args("x-"), " ")
	for flag, field := range flags {
		if has := strings.Contains(args, "--x-"+flag+"="); has != (field != "SASL.Password") {
			t.Errorf("Args has --x-%s: %v", flag, has)
		}
	}
}

func TestProblems(t *testing.T) {
	for _, c := range []struct {
		name string
		c    Config
		want []string // first field of each problem
	}{
		{"zero", Config{}, nil},
		{"a lone password is ignored", Config{SASL: SASL{Password: "p"}}, nil},
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
		{Config{TLS: TLS{CertFile: notPEM, KeyFile: notPEM}}, "TLS.CertFile", "tls.keyFile"},
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
