package clientsec

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"os"
	"reflect"
	"strings"
	"unicode"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"
)

// SASL mechanisms, as Kafka's sasl.mechanism spells them.
const (
	Plain       = "PLAIN"
	ScramSHA256 = "SCRAM-SHA-256"
	ScramSHA512 = "SCRAM-SHA-512"
)

// mechanisms is the list a problem's fix offers.
const mechanisms = Plain + ", " + ScramSHA256 + " or " + ScramSHA512

// Config is how a client connects to one cluster. The zero Config is a
// plaintext connection without authentication.
type Config struct {
	TLS  TLS  `mapstructure:"tls"`
	SASL SASL `mapstructure:"sasl"`
}

// TLS is client TLS. Setting any field turns TLS on; Enabled alone trusts
// the system's roots.
type TLS struct {
	Enabled bool `mapstructure:"enabled"`
	// CAFile holds the PEM certificates that sign the brokers'
	// certificates (ssl.truststore), instead of the system's roots.
	CAFile string `mapstructure:"caFile"`
	// CertFile and KeyFile are a PEM client certificate and its key, for
	// brokers that ask for one (ssl.client.auth=required).
	CertFile string `mapstructure:"certFile"`
	KeyFile  string `mapstructure:"keyFile"`
	// ServerName is checked against the brokers' certificates instead of
	// the host dialled.
	ServerName string `mapstructure:"serverName"`
	// InsecureSkipVerify accepts any certificate: for tests only
	// (ssl.endpoint.identification.algorithm="" does less than this).
	InsecureSkipVerify bool `mapstructure:"insecureSkipVerify"`
}

// SASL is client SASL.
type SASL struct {
	// Mechanism is PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512; empty for none.
	Mechanism string `mapstructure:"mechanism"`
	Username  string `mapstructure:"username"`
	// Password, or PasswordEnv naming an environment variable holding it
	// (so that files can be committed); exactly one with a mechanism.
	Password    string `mapstructure:"password"`
	PasswordEnv string `mapstructure:"passwordEnv"`
}

// On reports whether any TLS setting is given, which turns TLS on.
func (t TLS) On() bool { return t != TLS{} }

// On reports whether SASL is asked for.
func (s SASL) On() bool { return s.Mechanism != "" }

// IsZero reports whether c asks for neither TLS nor SASL.
func (c Config) IsZero() bool { return c == Config{} }

// String describes c without its secrets, as Kafka's security.protocol
// and sasl.mechanism would: "SASL_SSL SCRAM-SHA-256 as mirror".
func (c Config) String() string {
	switch {
	case c.TLS.On() && c.SASL.On():
		return "SASL_SSL " + c.SASL.Mechanism + " as " + c.SASL.Username
	case c.SASL.On():
		return "SASL_PLAINTEXT " + c.SASL.Mechanism + " as " + c.SASL.Username
	case c.TLS.On():
		return "SSL"
	}
	return "PLAINTEXT"
}

// EndedDuringSASL reports whether err is the broker ending a connection on
// which c authenticates with SASL: some brokers do that instead of
// answering SASL_AUTHENTICATION_FAILED, and franz-go then says only EOF
// (not its ErrFirstReadEOF, which says itself what it suspects).
func (c Config) EndedDuringSASL(err error) bool {
	var first *kgo.ErrFirstReadEOF
	return c.SASL.On() && errors.Is(err, io.EOF) && !errors.As(err, &first)
}

// Problem is one invalid setting. Fields are Go field names relative to
// Config ("SASL.Username"); Key turns one into its YAML key and Flag into
// its flag suffix.
type Problem struct {
	Fields       []string
	Problem, Fix string
}

// Problems checks c without reading files or the environment: what Opts
// would refuse for its shape, each naming the fields at fault.
func (c Config) Problems() []Problem {
	var out []Problem
	add := func(p, fix string, fields ...string) {
		out = append(out, Problem{Fields: fields, Problem: p, Fix: fix})
	}
	s := c.SASL
	switch s.Mechanism {
	case "":
		if s != (SASL{}) {
			add("required when other sasl settings are given", "use "+mechanisms, "SASL.Mechanism")
		}
	case Plain, ScramSHA256, ScramSHA512:
		if s.Username == "" {
			add("required with a SASL mechanism", "give the user to authenticate as", "SASL.Username")
		}
		if (s.Password == "") == (s.PasswordEnv == "") {
			add("give exactly one: the password, or the name of an environment variable holding it", "prefer the variable, so the password is in no file or process list",
				"SASL.Password", "SASL.PasswordEnv")
		}
	default:
		add(fmt.Sprintf("unknown mechanism %q", s.Mechanism), "use "+mechanisms, "SASL.Mechanism")
	}
	if (c.TLS.CertFile == "") != (c.TLS.KeyFile == "") {
		add("the certificate and its key go together", "give both for a client certificate, or neither", "TLS.CertFile", "TLS.KeyFile")
	}
	return out
}

// Fields are the Go names of Config's settings, "TLS.Enabled" to
// "SASL.PasswordEnv", in declaration order.
func Fields() []string {
	var out []string
	each(reflect.ValueOf(Config{}), func(field string, _ reflect.Value) { out = append(out, field) })
	return out
}

// each calls fn with the Go name and value of every setting of c.
func each(c reflect.Value, fn func(field string, v reflect.Value)) {
	for i := range c.NumField() {
		section := c.Type().Field(i).Name
		for j := range c.Field(i).NumField() {
			fn(section+"."+c.Field(i).Type().Field(j).Name, c.Field(i).Field(j))
		}
	}
}

// Key is the YAML key of a setting, from its mapstructure tags:
// "TLS.CAFile" → "tls.caFile". An unknown name is returned as it is.
func Key(field string) string {
	section, name, _ := strings.Cut(field, ".")
	st, ok := reflect.TypeFor[Config]().FieldByName(section)
	if !ok {
		return field
	}
	f, ok := st.Type.FieldByName(name)
	if !ok {
		return field
	}
	return st.Tag.Get("mapstructure") + "." + f.Tag.Get("mapstructure")
}

// Flag is the flag suffix of a setting, its key in kebab case:
// "TLS.CAFile" → "tls-ca-file", so `kdr mirror run` has
// --source-tls-ca-file.
func Flag(field string) string {
	var b strings.Builder
	for _, r := range strings.ReplaceAll(Key(field), ".", "-") {
		if unicode.IsUpper(r) {
			b.WriteByte('-')
			r = unicode.ToLower(r)
		}
		b.WriteRune(r)
	}
	return b.String()
}

// Args are c as flags of kdr commands whose flags are prefix +
// Flag(field), "--name=value", for every setting but Password, which no
// argument should carry (pass it through PasswordEnv); with all false, only
// the settings that are not at their zero value.
func (c Config) Args(prefix string, all bool) []string {
	var out []string
	each(reflect.ValueOf(c), func(field string, v reflect.Value) {
		if field == "SASL.Password" || (!all && v.IsZero()) {
			return
		}
		out = append(out, fmt.Sprintf("--%s%s=%v", prefix, Flag(field), v.Interface()))
	})
	return out
}

// SettingError is a setting Opts could not use: a file that does not
// load, a variable that is not set. Field is its Go name in Config.
type SettingError struct {
	Field string
	Err   error
}

func (e *SettingError) Error() string { return Key(e.Field) + ": " + e.Err.Error() }

func (e *SettingError) Unwrap() error { return e.Err }

// password is the SASL password: Password, or the value of the variable
// PasswordEnv names.
func (s SASL) password() (string, error) {
	if s.PasswordEnv == "" {
		return s.Password, nil
	}
	pass, ok := os.LookupEnv(s.PasswordEnv)
	if !ok {
		return "", &SettingError{"SASL.PasswordEnv", fmt.Errorf("environment variable %s is not set", s.PasswordEnv)}
	}
	return pass, nil
}

// Opts are the franz-go options that make a client connect as c says.
// They read the CA and certificate files and the password's variable now;
// errors are *SettingError, naming the setting at fault.
func (c Config) Opts() ([]kgo.Opt, error) {
	if ps := c.Problems(); len(ps) > 0 {
		return nil, &SettingError{ps[0].Fields[0], errors.New(ps[0].Problem)}
	}
	var opts []kgo.Opt
	if c.TLS.On() {
		cfg, err := c.TLS.config()
		if err != nil {
			return nil, err
		}
		opts = append(opts, kgo.DialTLSConfig(cfg))
	}
	if c.SASL.On() {
		pass, err := c.SASL.password()
		if err != nil {
			return nil, err
		}
		user := c.SASL.Username
		switch c.SASL.Mechanism {
		case Plain:
			opts = append(opts, kgo.SASL(plain.Auth{User: user, Pass: pass}.AsMechanism()))
		case ScramSHA256:
			opts = append(opts, kgo.SASL(scram.Auth{User: user, Pass: pass}.AsSha256Mechanism()))
		case ScramSHA512:
			opts = append(opts, kgo.SASL(scram.Auth{User: user, Pass: pass}.AsSha512Mechanism()))
		}
	}
	return opts, nil
}

func (t TLS) config() (*tls.Config, error) {
	cfg := &tls.Config{ServerName: t.ServerName, InsecureSkipVerify: t.InsecureSkipVerify, MinVersion: tls.VersionTLS12}
	if t.CAFile != "" {
		pem, err := os.ReadFile(t.CAFile)
		if err != nil {
			return nil, &SettingError{"TLS.CAFile", err}
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, &SettingError{"TLS.CAFile", fmt.Errorf("%s: no PEM certificate in it", t.CAFile)}
		}
		cfg.RootCAs = pool
	}
	if t.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(t.CertFile, t.KeyFile)
		if err != nil {
			return nil, &SettingError{"TLS.CertFile", fmt.Errorf("loading the certificate and its key: %w", err)}
		}
		cfg.Certificates = []tls.Certificate{cert}
	}
	return cfg, nil
}
