package cli

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/kdr-io/kdr/clientsec"
	"github.com/kdr-io/kdr/internal/kdrtest"
)

// TestMirrorRunSecurityFlags: the --source-* and --target-* TLS and SASL
// flags, and the password's KDR_* variable, land in the flow.
func TestMirrorRunSecurityFlags(t *testing.T) {
	t.Setenv("KDR_TARGET_SASL_PASSWORD", "from-env")
	o, err := parseMirrorRun(t, nil, "--source-alias", "east", "--source-brokers", "a:1", "--target-alias", "west", "--target-brokers", "b:2",
		"--source-tls-ca-file", "/ca.pem", "--source-tls-server-name", "kafka.east", "--source-sasl-mechanism", "SCRAM-SHA-256",
		"--source-sasl-username", "mm2", "--source-sasl-password-env", "EAST_PW",
		"--target-tls-enabled", "--target-sasl-mechanism", "PLAIN", "--target-sasl-username", "mm2w")
	if err != nil {
		t.Fatal(err)
	}
	src := clientsec.Config{TLS: clientsec.TLS{CAFile: "/ca.pem", ServerName: "kafka.east"},
		SASL: clientsec.SASL{Mechanism: "SCRAM-SHA-256", Username: "mm2", PasswordEnv: "EAST_PW"}}
	tgt := clientsec.Config{TLS: clientsec.TLS{Enabled: true},
		SASL: clientsec.SASL{Mechanism: "PLAIN", Username: "mm2w", Password: "from-env"}}
	if o.Flow.Source.Security != src || o.Flow.Target.Security != tgt {
		t.Fatalf("source %+v\ntarget %+v\nwant %+v\nand %+v", o.Flow.Source.Security, o.Flow.Target.Security, src, tgt)
	}
}

// TestMirrorRunAmbientPassword: a KDR_*_SASL_PASSWORD variable counts only
// where a password is wanted and no -password-env flag names another, so
// one exported for another cluster (kdr up's workers inherit kdr up's
// environment) is no conflict; a password flag always counts.
func TestMirrorRunAmbientPassword(t *testing.T) {
	t.Setenv("KDR_SOURCE_SASL_PASSWORD", "ambient")
	t.Setenv("KDR_TARGET_SASL_PASSWORD", "ambient")
	base := []string{"--source-alias", "east", "--source-brokers", "a:1", "--target-alias", "west", "--target-brokers", "b:2"}
	o, err := parseMirrorRun(t, nil, append(slices.Clone(base),
		"--source-sasl-mechanism", "PLAIN", "--source-sasl-username", "u", "--source-sasl-password-env", "EAST_PW")...)
	if err != nil {
		t.Fatal(err)
	}
	if s, tg := o.Flow.Source.Security.SASL, o.Flow.Target.Security.SASL; s.Password != "" || s.PasswordEnv != "EAST_PW" || tg != (clientsec.SASL{}) {
		t.Fatalf("source %+v, target %+v: the ambient passwords should be let be", s, tg)
	}
	_, err = parseMirrorRun(t, nil, append(slices.Clone(base), "--target-sasl-password", "given")...)
	if err == nil || !strings.Contains(err.Error(), "--target-sasl-mechanism") {
		t.Fatalf("a password flag without a mechanism: %v, want an error naming --target-sasl-mechanism", err)
	}
}

// TestMirrorRunSecurityErrors: each problem names the flags at fault.
func TestMirrorRunSecurityErrors(t *testing.T) {
	base := []string{"--source-alias", "east", "--source-brokers", "a:1", "--target-alias", "west", "--target-brokers", "b:2"}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--source-sasl-mechanism", "PLAIN", "--source-sasl-password-env", "X"}, "--source-sasl-username: required with a SASL mechanism"},
		{[]string{"--target-sasl-mechanism", "GSSAPI"}, `--target-sasl-mechanism: unknown mechanism "GSSAPI"`},
		{[]string{"--target-sasl-mechanism", "PLAIN", "--target-sasl-username", "u"}, "--target-sasl-password/--target-sasl-password-env"},
		{[]string{"--source-sasl-username", "u"}, "--source-sasl-mechanism"},
		{[]string{"--target-tls-cert-file", "c.pem"}, "--target-tls-cert-file/--target-tls-key-file"},
	} {
		_, err := parseMirrorRun(t, nil, append(slices.Clone(base), c.args...)...)
		var ue usageError
		if !errors.As(err, &ue) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: error %v, want a usage error with %q", c.args, err, c.want)
		}
	}
	// Files and variables are read when the worker starts: a missing one is
	// a usage error naming its flag, not a worker that retries forever.
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--source-sasl-mechanism", "PLAIN", "--source-sasl-username", "u", "--source-sasl-password-env", "KDR_TEST_UNSET_PW"},
			"--source-sasl-password-env: environment variable KDR_TEST_UNSET_PW is not set"},
		{[]string{"--target-tls-ca-file", "/nonexistent/ca.pem"}, "--target-tls-ca-file: open /nonexistent/ca.pem"},
	} {
		var out, errOut bytes.Buffer
		args := append(append([]string{"mirror", "run"}, base...), append(c.args, "--metrics-listen", "")...)
		if code := Execute(args, nil, &out, &errOut); code != exitUsage || !strings.Contains(errOut.String(), c.want) {
			t.Errorf("%v: exit %d, stderr %q; want %d and %q", c.args, code, errOut.String(), exitUsage, c.want)
		}
	}
}

// TestAdminCommandsAuthenticate: the cluster commands connect to a cluster
// that asks for TLS and SASL SCRAM-SHA-256 with --tls-* and --sasl-*
// (the password in KDR_SASL_PASSWORD), and say what is wrong without them.
func TestAdminCommandsAuthenticate(t *testing.T) {
	s := kdrtest.StartSecured(t, clientsec.ScramSHA256, true, kfake.SeedTopics(1, "orders"))
	t.Setenv("KDR_SASL_PASSWORD", s.Password)
	sec := []string{"--tls-ca-file", s.CAFile, "--sasl-mechanism", "SCRAM-SHA-256", "--sasl-username", s.User}
	mustKdr(t, s.Addr(), "k1=v1\nk2=v2\n", append([]string{"produce", "orders", "--key-separator", "="}, sec...)...)
	out := mustKdr(t, s.Addr(), "", append([]string{"consume", "orders", "--from-beginning", "--max-messages", "2", "--format", `%k=%v\n`}, sec...)...)
	if out != "k1=v1\nk2=v2\n" {
		t.Fatalf("consumed %q", out)
	}
	if out := mustKdr(t, s.Addr(), "", append([]string{"topic", "list"}, sec...)...); !strings.Contains(out, "orders") {
		t.Fatalf("topic list: %q", out)
	}
	for _, c := range []struct {
		name string
		args []string
		want string
	}{
		{"no TLS", []string{"--sasl-mechanism", "SCRAM-SHA-256", "--sasl-username", s.User}, "is TLS missing?"},
		{"half a client certificate", []string{"--tls-key-file", "k.pem"}, "--tls-cert-file/--tls-key-file"},
		{"no such CA file", []string{"--tls-ca-file", "/nonexistent/ca.pem"}, "--tls-ca-file: open /nonexistent/ca.pem"},
		{"a CA that did not sign the broker", []string{"--tls-ca-file", kdrtest.StartMutualTLS(t).CAFile}, "the TLS handshake with brokers"},
		{"wrong password", append(slices.Clone(sec), "--sasl-password", "not-it"), "ended the connection during SASL authentication (SASL_SSL SCRAM-SHA-256 as mirror)"},
	} {
		r := runKdr(t, s.Addr(), "", append([]string{"topic", "list", "--timeout", "3s"}, c.args...)...)
		if r.code == exitOK || !strings.Contains(r.stderr, c.want) {
			t.Errorf("%s: exit %d, stderr %q; want a failure saying %q", c.name, r.code, r.stderr, c.want)
		}
	}
}

// TestTopologyApplyToSecuredCluster: kdr topology plan and apply reach an
// existing cluster with the TLS and SASL settings the topology gives it,
// and say which cluster refused them when they are wrong.
func TestTopologyApplyToSecuredCluster(t *testing.T) {
	east := kdrtest.StartBroker(t)
	west := kdrtest.StartSecured(t, clientsec.ScramSHA256, true)
	mustKdr(t, east.Addr(), "", "topic", "create", "orders", "--partitions", "3")
	t.Setenv("KDR_TEST_WEST_PASSWORD", west.Password)
	write := func(passwordEnv string) string {
		doc := fmt.Sprintf(`apiVersion: kdr.io/v1
kind: Topology
metadata:
  name: secured-plan
clusters:
  - name: east
    bootstrap: [%q]
  - name: west
    bootstrap: [%q]
    security:
      tls: {caFile: %q}
      sasl: {mechanism: SCRAM-SHA-256, username: %q, passwordEnv: %s}
replication:
  - type: active-passive
    primary: east
    standby: west
`, east.Addr(), west.Addr(), west.CAFile, west.User, passwordEnv)
		path := filepath.Join(t.TempDir(), "topology.yaml")
		if err := os.WriteFile(path, []byte(doc), 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	file := write("KDR_TEST_WEST_PASSWORD")
	wantLines(t, "plan", mustTopology(t, "plan", file), "+ create topic west/east.orders (3 partitions, RF 1)")
	mustTopology(t, "apply", file, "--yes") // kdr failover's name for --auto-approve
	wantLines(t, "plan after apply", mustTopology(t, "plan", file), "No changes. The clusters match the topology.")
	t.Setenv("KDR_SASL_PASSWORD", west.Password)
	out := mustKdr(t, west.Addr(), "", "topic", "describe", "east.orders", "--tls-ca-file", west.CAFile,
		"--sasl-mechanism", "SCRAM-SHA-256", "--sasl-username", west.User)
	if !strings.Contains(out, "east.orders") {
		t.Fatalf("east.orders on the secured cluster: %q", out)
	}

	r := runTopology(t, "", "plan", write("KDR_TEST_UNSET_PASSWORD"))
	if r.code == exitOK || !strings.Contains(r.stderr, `cluster "west": security.sasl.passwordEnv: environment variable KDR_TEST_UNSET_PASSWORD is not set`) {
		t.Fatalf("plan with an unset password variable: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
}

// TestAdminCommandsMutualTLS: a cluster that requires a client
// certificate (ssl.client.auth=required) is reached with --tls-cert-file
// and --tls-key-file, and refuses a client without one.
func TestAdminCommandsMutualTLS(t *testing.T) {
	s := kdrtest.StartMutualTLS(t, kfake.SeedTopics(1, "orders"))
	out := mustKdr(t, s.Addr(), "", "topic", "list", "--tls-ca-file", s.CAFile, "--tls-cert-file", s.CertFile, "--tls-key-file", s.KeyFile)
	if !strings.Contains(out, "orders") {
		t.Fatalf("topic list: %q", out)
	}
	r := runKdr(t, s.Addr(), "", "topic", "list", "--timeout", "3s", "--tls-ca-file", s.CAFile)
	if r.code == exitOK || !strings.Contains(r.stderr, "the TLS handshake with brokers "+s.Addr()+" failed; check --tls-ca-file, --tls-cert-file") ||
		!strings.Contains(r.stderr, "certificate required") {
		t.Fatalf("without a client certificate: exit %d, stderr %q; want a failure about the certificate", r.code, r.stderr)
	}
	t.Logf("without a client certificate: %s", strings.TrimSpace(r.stderr))
}
