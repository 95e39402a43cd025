package kdrtest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
)

// Secured is a kfake cluster that asks for SASL, TLS or both: the
// stand-in for an existing cluster kdr's clients must authenticate to.
// (kdr's own brokers speak neither.)
type Secured struct {
	*kfake.Cluster
	// CAFile is the PEM file of the CA that signed the broker's
	// certificate ("" without TLS).
	CAFile string
	// CertFile and KeyFile are a client certificate the broker accepts
	// and its key ("" without TLS).
	CertFile, KeyFile string
	// Mechanism, User and Password are the superuser's SASL credentials
	// (empty without SASL).
	Mechanism, User, Password string
}

// StartSecured starts a one-broker kfake cluster with SASL user User
// (mechanism PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512), with TLS if withTLS,
// and stops it when the test ends. opts are more kfake options.
func StartSecured(t testing.TB, mechanism string, withTLS bool, opts ...kfake.Opt) *Secured {
	t.Helper()
	s := &Secured{Mechanism: mechanism, User: "mirror", Password: "s3cret-" + rand.Text()[:8]}
	all := []kfake.Opt{kfake.NumBrokers(1), kfake.EnableSASL(), kfake.Superuser(mechanism, s.User, s.Password)}
	if withTLS {
		all = append(all, kfake.TLS(s.newPKI(t, false)))
	}
	return s.start(t, append(all, opts...))
}

// StartMutualTLS starts a one-broker kfake cluster that speaks TLS and
// requires a client certificate signed by its CA (Kafka's
// ssl.client.auth=required), without SASL.
func StartMutualTLS(t testing.TB, opts ...kfake.Opt) *Secured {
	t.Helper()
	s := &Secured{}
	return s.start(t, append([]kfake.Opt{kfake.NumBrokers(1), kfake.TLS(s.newPKI(t, true))}, opts...))
}

func (s *Secured) start(t testing.TB, opts []kfake.Opt) *Secured {
	t.Helper()
	c, err := kfake.NewCluster(opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	s.Cluster = c
	return s
}

// Addr is the broker's address.
func (s *Secured) Addr() string { return s.ListenAddrs()[0] }

// newPKI makes a CA, a broker certificate it signs for 127.0.0.1 and
// localhost, and a client certificate; writes the CA, the client
// certificate and its key to PEM files in the test's temp dir (s's CAFile,
// CertFile, KeyFile); and returns the broker's TLS config, which requires
// a client certificate if requireClient.
func (s *Secured) newPKI(t testing.TB, requireClient bool) *tls.Config {
	t.Helper()
	dir := t.TempDir()
	write := func(name, typ string, der []byte) string {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	key := func() *ecdsa.PrivateKey {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	now := time.Now()
	sign := func(tmpl, parent *x509.Certificate, pub *ecdsa.PublicKey, signer *ecdsa.PrivateKey) []byte {
		tmpl.NotBefore, tmpl.NotAfter = now.Add(-time.Hour), now.Add(24*time.Hour)
		der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, pub, signer)
		if err != nil {
			t.Fatal(err)
		}
		return der
	}
	caKey, srvKey, cliKey := key(), key(), key()
	ca := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "kdr test CA"},
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	caDER := sign(ca, ca, &caKey.PublicKey, caKey)
	srvDER := sign(&x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "kdr test broker"},
		DNSNames: []string{"localhost"}, IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}, ca, &srvKey.PublicKey, caKey)
	cliDER := sign(&x509.Certificate{SerialNumber: big.NewInt(3), Subject: pkix.Name{CommonName: "kdr-mirror"},
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}, ca, &cliKey.PublicKey, caKey)
	cliKeyDER, err := x509.MarshalECPrivateKey(cliKey)
	if err != nil {
		t.Fatal(err)
	}
	s.CAFile = write("ca.pem", "CERTIFICATE", caDER)
	s.CertFile = write("client.pem", "CERTIFICATE", cliDER)
	s.KeyFile = write("client-key.pem", "EC PRIVATE KEY", cliKeyDER)
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{{Certificate: [][]byte{srvDER}, PrivateKey: srvKey}}}
	if requireClient {
		caCert, err := x509.ParseCertificate(caDER)
		if err != nil {
			t.Fatal(err)
		}
		cfg.ClientCAs = x509.NewCertPool()
		cfg.ClientCAs.AddCert(caCert)
		cfg.ClientAuth = tls.RequireAndVerifyClientCert
	}
	return cfg
}
