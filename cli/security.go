package cli

import (
	"errors"
	"fmt"
	"strings"

	"github.com/spf13/pflag"
	"github.com/spf13/viper"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kdr-io/kdr/clientsec"
)

// securityField is one clientsec.Config setting as a flag: the flag is the
// prefix ("source-", or none) then clientsec.Flag(field).
type securityField struct {
	field  string // Go name in clientsec.Config
	usage  string // %s is the cluster's description
	isBool bool
	get    func(*clientsec.Config) any // *string or *bool
}

func securityFields() []securityField {
	return []securityField{
		{"TLS.Enabled", "connect to %s with TLS, trusting the system's roots (any other tls flag turns TLS on too)", true,
			func(c *clientsec.Config) any { return &c.TLS.Enabled }},
		{"TLS.CAFile", "PEM file of the CA certificates that sign %s's broker certificates (ssl.truststore)", false,
			func(c *clientsec.Config) any { return &c.TLS.CAFile }},
		{"TLS.CertFile", "PEM client certificate for %s, for brokers that ask for one (with the key file)", false,
			func(c *clientsec.Config) any { return &c.TLS.CertFile }},
		{"TLS.KeyFile", "PEM key of the client certificate for %s", false,
			func(c *clientsec.Config) any { return &c.TLS.KeyFile }},
		{"TLS.ServerName", "name checked against %s's broker certificates instead of the host dialled", false,
			func(c *clientsec.Config) any { return &c.TLS.ServerName }},
		{"TLS.InsecureSkipVerify", "accept any certificate from %s (tests only)", true,
			func(c *clientsec.Config) any { return &c.TLS.InsecureSkipVerify }},
		{"SASL.Mechanism", "SASL mechanism for %s: PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512 (sasl.mechanism); empty for none", false,
			func(c *clientsec.Config) any { return &c.SASL.Mechanism }},
		{"SASL.Username", "SASL user for %s", false,
			func(c *clientsec.Config) any { return &c.SASL.Username }},
		{"SASL.Password", "SASL password for %s; prefer its environment variable or the -env flag, as a flag shows in process lists", false,
			func(c *clientsec.Config) any { return &c.SASL.Password }},
		{"SASL.PasswordEnv", "name of an environment variable holding the SASL password for %s", false,
			func(c *clientsec.Config) any { return &c.SASL.PasswordEnv }},
	}
}

// addSecurityFlags registers the TLS and SASL flags of a cluster, each
// named prefix + clientsec.Flag(field); cluster describes it in the usage.
func addSecurityFlags(fs *pflag.FlagSet, prefix, cluster string) {
	for _, f := range securityFields() {
		name, usage := prefix+clientsec.Flag(f.field), fmt.Sprintf(f.usage, cluster)
		if f.field == "SASL.Password" {
			usage += " (" + envName(name) + ")"
		}
		if f.isBool {
			fs.Bool(name, false, usage)
		} else {
			fs.String(name, "", usage)
		}
	}
}

// readSecurity reads the flags addSecurityFlags registered with prefix.
func readSecurity(v *viper.Viper, prefix string) clientsec.Config {
	var c clientsec.Config
	for _, f := range securityFields() {
		name := prefix + clientsec.Flag(f.field)
		switch p := f.get(&c).(type) {
		case *bool:
			*p = v.GetBool(name)
		case *string:
			*p = v.GetString(name)
		}
	}
	return c
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

// envName is the KDR_* variable viper reads for a flag.
func envName(flag string) string {
	return "KDR_" + strings.ToUpper(strings.ReplaceAll(flag, "-", "_"))
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
