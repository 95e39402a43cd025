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

// Secured is a kfake cluster that asks for SASL and, with a CA, TLS: the
// stand-in for an existing cluster kdr's clients must authenticate to.
// (kdr's own brokers speak neither.)
type Secured struct {
	*kfake.Cluster
	// CAFile is the PEM file of the CA that signed the brokers'
	// certificate ("" without TLS).
	CAFile string
	// Mechanism, User and Password are the superuser's SASL credentials.
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
		var cfg *tls.Config
		s.CAFile, cfg = serverTLS(t)
		all = append(all, kfake.TLS(cfg))
	}
	c, err := kfake.NewCluster(append(all, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	s.Cluster = c
	return s
}

// Addr is the broker's address.
func (s *Secured) Addr() string { return s.ListenAddrs()[0] }

// serverTLS makes a CA and a certificate it signs for 127.0.0.1 and
// localhost, writes the CA to a PEM file in the test's temp dir, and
// returns that file and a server config presenting the certificate.
func serverTLS(t testing.TB) (caFile string, cfg *tls.Config) {
	t.Helper()
	key := func() *ecdsa.PrivateKey {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	caKey, srvKey := key(), key()
	now := time.Now()
	ca := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "kdr test CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	caDER, err := x509.CreateCertificate(rand.Reader, ca, ca, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	srv := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "kdr test broker"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		DNSNames: []string{"localhost"}, IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	srvDER, err := x509.CreateCertificate(rand.Reader, srv, ca, &srvKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	caFile = filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}), 0o600); err != nil {
		t.Fatal(err)
	}
	return caFile, &tls.Config{MinVersion: tls.VersionTLS12,
		Certificates: []tls.Certificate{{Certificate: [][]byte{srvDER}, PrivateKey: srvKey}}}
}
