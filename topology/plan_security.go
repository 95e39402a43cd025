package topology

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"
)

// ClientOpts are the franz-go options that make a client connect to c as
// its Security says: TLS (when enabled or given files), SASL PLAIN or
// SCRAM. Seed brokers are not included. Errors name the cluster and the
// file or variable at fault.
func (c Cluster) ClientOpts() ([]kgo.Opt, error) {
	var opts []kgo.Opt
	s := c.Security
	if s.TLS.Enabled || s.TLS.CAFile != "" || s.TLS.CertFile != "" {
		cfg, err := s.TLS.config()
		if err != nil {
			return nil, fmt.Errorf("cluster %q: security.tls: %w", c.Name, err)
		}
		opts = append(opts, kgo.DialTLSConfig(cfg))
	}
	if m := s.SASL.Mechanism; m != "" {
		pass := s.SASL.Password
		if s.SASL.PasswordEnv != "" {
			var ok bool
			if pass, ok = os.LookupEnv(s.SASL.PasswordEnv); !ok {
				return nil, fmt.Errorf("cluster %q: security.sasl.passwordEnv: environment variable %s is not set", c.Name, s.SASL.PasswordEnv)
			}
		}
		switch m {
		case "PLAIN":
			opts = append(opts, kgo.SASL(plain.Auth{User: s.SASL.Username, Pass: pass}.AsMechanism()))
		case "SCRAM-SHA-256":
			opts = append(opts, kgo.SASL(scram.Auth{User: s.SASL.Username, Pass: pass}.AsSha256Mechanism()))
		case "SCRAM-SHA-512":
			opts = append(opts, kgo.SASL(scram.Auth{User: s.SASL.Username, Pass: pass}.AsSha512Mechanism()))
		default:
			return nil, fmt.Errorf("cluster %q: security.sasl.mechanism %q: want PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512", c.Name, m)
		}
	}
	return opts, nil
}

func (t TLSConfig) config() (*tls.Config, error) {
	cfg := &tls.Config{ServerName: t.ServerName, InsecureSkipVerify: t.InsecureSkipVerify, MinVersion: tls.VersionTLS12}
	if t.CAFile != "" {
		pem, err := os.ReadFile(t.CAFile)
		if err != nil {
			return nil, fmt.Errorf("caFile: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("caFile %s: no PEM certificates in it", t.CAFile)
		}
		cfg.RootCAs = pool
	}
	if t.CertFile != "" || t.KeyFile != "" {
		cert, err := tls.LoadX509KeyPair(t.CertFile, t.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("certFile/keyFile: %w", err)
		}
		cfg.Certificates = []tls.Certificate{cert}
	}
	return cfg, nil
}
