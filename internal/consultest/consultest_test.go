package consultest

import (
	"fmt"
	"io"
	"net/http"
	"runtime"
	"strings"
	"testing"
)

// skipRecorder is a TB that records Skip and stops the goroutine like
// testing.T does.
type skipRecorder struct {
	testing.TB
	skipped string
}

func (r *skipRecorder) Skip(args ...any) {
	r.skipped = fmt.Sprint(args...)
	runtime.Goexit()
}

func TestConsulTestSkipsWithoutBinary(t *testing.T) {
	t.Setenv(EnvBin, "")
	r := &skipRecorder{TB: t}
	done := make(chan struct{})
	go func() {
		defer close(done)
		Start(r)
		t.Error("Start returned without a binary")
	}()
	<-done
	if r.skipped != "set KDR_CONSUL_BIN (make test builds it: scripts/consul.sh)" {
		t.Fatalf("skipped with %q", r.skipped)
	}
}

func TestConsulTestRestartKeepsState(t *testing.T) {
	a := Start(t)
	url := "http://" + a.Addr() + "/v1/kv/consultest/probe"
	req, _ := http.NewRequest(http.MethodPut, url, strings.NewReader("kept"))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("PUT %s: %s", url, resp.Status)
	}

	a.Kill()
	if a.Running() {
		t.Fatal("Running() after Kill")
	}
	if _, err := http.Get(url); err == nil {
		t.Fatal("the agent still answers after Kill")
	}
	a.Restart()
	resp, err = http.Get(url + "?raw")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || string(body) != "kept" {
		t.Fatalf("after Restart GET = %s %q, want the value written before the kill", resp.Status, body)
	}
}
