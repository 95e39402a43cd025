package cli

import (
	"errors"
	"fmt"
	"reflect"
	"strings"

	"github.com/spf13/pflag"
	"github.com/spf13/viper"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kdr-io/kdr/clientsec"
)

// securityFlag is one clientsec.Config setting of a cluster as a flag:
// prefix ("source-", or none) then clientsec.Flag(field).
type securityFlag struct {
	field, name, usage string
}

// securityFlags are a cluster's TLS and SASL flags; cluster describes it
// in their usage ("the source").
func securityFlags(prefix, cluster string) []securityFlag {
	usage := map[string]string{
		"TLS.Enabled":            "connect to %s with TLS, trusting the system's roots (any other tls flag turns TLS on too)",
		"TLS.CAFile":             "PEM file of the CA certificates that sign %s's broker certificates (ssl.truststore)",
		"TLS.CertFile":           "PEM client certificate for %s, for brokers that ask for one (with the key file)",
		"TLS.KeyFile":            "PEM key of the client certificate for %s",
		"TLS.ServerName":         "name checked against %s's broker certificates instead of the host dialled",
		"TLS.InsecureSkipVerify": "accept any certificate from %s (tests only)",
		"SASL.Mechanism":         "SASL mechanism for %s: PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512 (sasl.mechanism); empty for none",
		"SASL.Username":          "SASL user for %s",
		"SASL.Password":          "SASL password for %s; prefer the variable %s or the -env flag, as a flag shows in process lists",
		"SASL.PasswordEnv":       "name of an environment variable holding the SASL password for %s (wins over %s)",
	}
	var out []securityFlag
	for _, field := range clientsec.Fields() {
		name := prefix + clientsec.Flag(field)
		u := fmt.Sprintf(usage[field], cluster)
		if strings.HasPrefix(field, "SASL.Password") {
			u = fmt.Sprintf(usage[field], cluster, envName(prefix+clientsec.Flag("SASL.Password")))
		}
		out = append(out, securityFlag{field: field, name: name, usage: u})
	}
	return out
}

// setting is the field of c that f sets.
func (f securityFlag) setting(c *clientsec.Config) reflect.Value {
	section, name, _ := strings.Cut(f.field, ".")
	return reflect.ValueOf(c).Elem().FieldByName(section).FieldByName(name)
}

// define registers f on fs with def's value as its default.
func (f securityFlag) define(fs *pflag.FlagSet, def clientsec.Config) {
	v := f.setting(&def)
	if v.Kind() == reflect.Bool {
		fs.Bool(f.name, v.Bool(), f.usage)
	} else {
		fs.String(f.name, v.String(), f.usage)
	}
}

// read sets f's field of c from v (flag, KDR_* variable or config file).
func (f securityFlag) read(v *viper.Viper, c *clientsec.Config) {
	s := f.setting(c)
	if s.Kind() == reflect.Bool {
		s.SetBool(v.GetBool(f.name))
	} else {
		s.SetString(v.GetString(f.name))
	}
}

// addSecurityFlags registers a cluster's TLS and SASL flags.
func addSecurityFlags(fs *pflag.FlagSet, prefix, cluster string) {
	for _, f := range securityFlags(prefix, cluster) {
		f.define(fs, clientsec.Config{})
	}
}

// readSecurity reads the flags addSecurityFlags registered with prefix,
// then lets an ambient password be (ambientPassword).
func readSecurity(v *viper.Viper, fs *pflag.FlagSet, prefix string) clientsec.Config {
	var c clientsec.Config
	for _, f := range securityFlags(prefix, "") {
		f.read(v, &c)
	}
	ambientPassword(&c, fs, prefix)
	return c
}

// ambientPassword drops a password c did not ask for: one read from the
// KDR_*_SASL_PASSWORD variable (or a config file) with no SASL mechanism,
// or beside a -password-env flag. The variable may be exported for another
// cluster or command, and kdr up's workers inherit kdr up's environment.
// A password given as a flag always counts, so a conflict is still said.
func ambientPassword(c *clientsec.Config, fs *pflag.FlagSet, prefix string) {
	if fs.Changed(prefix + clientsec.Flag("SASL.Password")) {
		return
	}
	if c.SASL.Mechanism == "" || c.SASL.PasswordEnv != "" {
		c.SASL.Password = ""
	}
}

// securityProblems names c's problems by their flags (prefix then
// clientsec.Flag), or returns nil.
func securityProblems(c clientsec.Config, prefix string) error {
	var lines []string
	for _, p := range c.Problems() {
		flags := make([]string, len(p.Fields))
		for i, f := range p.Fields {
			flags[i] = "--" + prefix + clientsec.Flag(f)
		}
		lines = append(lines, fmt.Sprintf("%s: %s (%s)", strings.Join(flags, "/"), p.Problem, p.Fix))
	}
	if len(lines) == 0 {
		return nil
	}
	return errors.New(strings.Join(lines, "; "))
}

// seededOpts are a client's options for the cluster at brokers with
// security c (securityOpts).
func seededOpts(brokers []string, c clientsec.Config, prefix string) ([]kgo.Opt, error) {
	sec, err := securityOpts(c, prefix)
	if err != nil {
		return nil, err
	}
	return append([]kgo.Opt{kgo.SeedBrokers(brokers...)}, sec...), nil
}

// securityOpts are c's client options; an error names the flag at fault.
func securityOpts(c clientsec.Config, prefix string) ([]kgo.Opt, error) {
	opts, err := c.Opts()
	var se *clientsec.SettingError
	if errors.As(err, &se) {
		return nil, usageError{fmt.Errorf("--%s%s: %w", prefix, clientsec.Flag(se.Field), se.Err)}
	}
	return opts, err
}

// envName is the KDR_* variable viper reads for a flag.
func envName(flag string) string {
	return "KDR_" + strings.ToUpper(strings.ReplaceAll(flag, "-", "_"))
}
