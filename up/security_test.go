package up_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kdr-io/kdr/clientsec"
	"github.com/kdr-io/kdr/internal/kdrtest"
	"github.com/kdr-io/kdr/status"
)

const securedTopologyYAML = `apiVersion: kdr.io/v1
kind: Topology
metadata:
  name: securedtest
clusters:
  - name: a
    region: r1
    local: {brokers: 1, basePort: %d}
  - name: b
    region: r2
    bootstrap: [%s]
    security:
      tls: {caFile: %s}
      sasl: {mechanism: SCRAM-SHA-512, username: %s, password: %s}
replication:
  - type: active-passive
    primary: a
    standby: b
mirror:
  refreshInterval: 500ms
  checkpointInterval: 1s
  syncTopicACLs: false
`

// TestUpMirrorsToSecuredCluster runs kdr up with a flow from a local
// cluster to an existing one that asks for TLS and SASL SCRAM-SHA-512, the
// password written in the topology: the worker authenticates (the password
// reaches it through its environment, not its command line), records
// arrive, and kdr status reaches the secured cluster too.
func TestUpMirrorsToSecuredCluster(t *testing.T) {
	bin := kdrtest.Binary(t)
	b := kdrtest.StartSecured(t, clientsec.ScramSHA512, true)
	pa := kdrtest.FreeBasePort(t, 1, map[int]bool{})
	dir := t.TempDir()
	file := filepath.Join(dir, "secured.yaml")
	yaml := fmt.Sprintf(securedTopologyYAML, pa, b.Addr(), b.CAFile, b.User, b.Password)
	if err := os.WriteFile(file, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	state := filepath.Join(dir, "state")
	aBoot := []string{fmt.Sprintf("127.0.0.1:%d", pa)}

	p := startUp(t, bin, file, "--state-dir", state)
	e := waitHealthy(t, p, state)
	waitBrokers(t, aBoot, 1)
	pid := e.Flows[0].Workers[0].PID
	cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(cmdline), b.Password) || !strings.Contains(string(cmdline), "--target-sasl-mechanism=SCRAM-SHA-512") {
		t.Fatalf("worker %d's command line: %q", pid, strings.ReplaceAll(string(cmdline), "\x00", " "))
	}

	produceFirst(t, aBoot, "payments")
	sec, err := (clientsec.Config{TLS: clientsec.TLS{CAFile: b.CAFile},
		SASL: clientsec.SASL{Mechanism: b.Mechanism, Username: b.User, Password: b.Password}}).Opts()
	if err != nil {
		t.Fatal(err)
	}
	waitRecord(t, []string{b.Addr()}, "a.payments", "first", sec...)
	kdrtest.Eventually(t, 30*time.Second, func() (bool, string) {
		r, code := runStatus(t, bin, file, "--state-dir", state)
		return code == 0 && r.Healthy && len(r.Clusters) == 2 && r.Clusters[1].Reachable && r.Flows[0].State == status.FlowRunning,
			fmt.Sprintf("status exit %d: %+v", code, r)
	})
}
