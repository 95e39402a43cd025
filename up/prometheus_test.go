package up_test

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kdr-io/kdr/internal/kdrtest"
)

// TestUpPrometheus: kdr up --prometheus on two one-broker clusters starts
// a Prometheus once healthy, prints its URL with the endpoints, and that
// Prometheus scrapes every broker, the mirror worker and kdr up itself,
// all up; on SIGINT it stops first, before the workers and brokers.
func TestUpPrometheus(t *testing.T) {
	if testing.Short() {
		t.Skip("starts kdr up and Prometheus")
	}
	if _, err := exec.LookPath("prometheus"); err != nil {
		t.Skip("prometheus not found: install Debian's prometheus package (make test does, through scripts/test-deps.sh)")
	}
	start := time.Now()
	bin := kdrtest.Binary(t)
	used := map[int]bool{}
	pa, pb := kdrtest.FreeBasePort(t, 1, used), kdrtest.FreeBasePort(t, 1, used)
	dir := t.TempDir()
	file := filepath.Join(dir, "estate.yaml")
	if err := os.WriteFile(file, []byte(fmt.Sprintf(topologyYAML, pa, pb)), 0o644); err != nil {
		t.Fatal(err)
	}
	state := filepath.Join(dir, "state")
	metrics, listen := kdrtest.ReserveAddr(t, used), kdrtest.ReserveAddr(t, used)
	p := startUp(t, bin, file, "--state-dir", state, "--metrics-listen", metrics, "--prometheus", "--prometheus-listen", listen)
	t.Cleanup(func() {
		if t.Failed() {
			b, _ := os.ReadFile(filepath.Join(state, "logs", "prometheus.log"))
			t.Logf("prometheus.log:\n%s", b)
		}
	})
	waitHealthy(t, p, state)
	// The URL is printed once Prometheus is ready, with the endpoints.
	kdrtest.Eventually(t, 40*time.Second, func() (bool, string) {
		for _, l := range strings.Split(p.Output(), "\n") {
			if f := strings.Fields(l); len(f) == 2 && f[0] == "prometheus" && f[1] == "http://"+listen {
				return true, ""
			}
		}
		return false, "no endpoints line for prometheus http://" + listen + " yet"
	})
	t.Logf("Prometheus ready after %s", time.Since(start).Round(100*time.Millisecond))

	want := map[string]int{"kdr-broker": 2, "kdr-mirror": 1, "kdr-up": 1}
	kdrtest.Eventually(t, 30*time.Second, func() (bool, string) {
		up, bad, err := promTargets("http://" + listen)
		if err != nil {
			return false, err.Error()
		}
		for job, n := range want {
			if up[job] != n {
				return false, fmt.Sprintf("targets up %v, want %v; not up %v", up, want, bad)
			}
		}
		return len(bad) == 0, fmt.Sprintf("targets not up %v", bad)
	})
	t.Logf("every target up after %s", time.Since(start).Round(100*time.Millisecond))

	p.Interrupt(t, 45*time.Second)
	out := p.Output()
	iProm, iWorkers := strings.Index(out, "stopping Prometheus"), strings.Index(out, "stopping: mirror workers first")
	if iProm < 0 || iWorkers < 0 || iProm > iWorkers {
		t.Errorf("want Prometheus stopped before the mirror workers and brokers:\n%s", out)
	}
	if c, err := net.DialTimeout("tcp", listen, time.Second); err == nil {
		c.Close()
		t.Errorf("Prometheus still listens on %s after kdr up stopped", listen)
	}
	t.Logf("took %s", time.Since(start).Round(100*time.Millisecond))
}

// promTargets counts the active targets Prometheus scraped successfully,
// per job, and describes the others.
func promTargets(api string) (map[string]int, []string, error) {
	c := &http.Client{Timeout: 2 * time.Second}
	resp, err := c.Get(api + "/api/v1/targets")
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	var r struct {
		Status string `json:"status"`
		Data   struct {
			ActiveTargets []struct {
				Labels    map[string]string `json:"labels"`
				Health    string            `json:"health"`
				LastError string            `json:"lastError"`
			} `json:"activeTargets"`
		} `json:"data"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&r); err != nil {
		return nil, nil, err
	}
	up := map[string]int{}
	var bad []string
	for _, tg := range r.Data.ActiveTargets {
		if tg.Health == "up" {
			up[tg.Labels["job"]]++
		} else {
			bad = append(bad, fmt.Sprintf("%v %s %s", tg.Labels, tg.Health, tg.LastError))
		}
	}
	return up, bad, nil
}
