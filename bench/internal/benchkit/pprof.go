package benchkit

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"time"
)

// PprofAvailable reports whether metrics (host:port) serves Go's pprof
// index, so that a broker without it is noted once rather than failing
// every profile.
func PprofAvailable(ctx context.Context, metrics string) bool {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	resp, err := get(ctx, "http://"+metrics+"/debug/pprof/")
	if err != nil {
		return false
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, resp.Body)
	return resp.StatusCode == http.StatusOK
}

// FetchCPUProfile takes a CPU profile of seconds from metrics' pprof
// endpoint and writes it to path. The request may take 30 s longer than
// the profile, for a broker too busy to answer at once.
func FetchCPUProfile(ctx context.Context, metrics string, seconds int, path string) error {
	return FetchPprof(ctx, metrics, fmt.Sprintf("profile?seconds=%d", seconds), time.Duration(seconds+30)*time.Second, path)
}

// FetchPprof saves metrics' /debug/pprof/<what> (e.g. "goroutine?debug=1")
// to path, giving up after timeout.
func FetchPprof(ctx context.Context, metrics, what string, timeout time.Duration, path string) error {
	url := fmt.Sprintf("http://%s/debug/pprof/%s", metrics, what)
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	resp, err := get(ctx, url)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return fmt.Errorf("GET %s: %s: %s", url, resp.Status, b)
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, resp.Body); err != nil {
		f.Close()
		return fmt.Errorf("GET %s: %w", url, err)
	}
	return f.Close()
}

// get is an HTTP GET bounded by ctx, which http.Get is not.
func get(ctx context.Context, url string) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	return http.DefaultClient.Do(req)
}

// PprofTop runs `go tool pprof -top` on a saved profile and returns its
// output. Go profiles carry their symbols, so the broker binary is not
// needed.
func PprofTop(ctx context.Context, path string, nodes int) (string, error) {
	cmd := exec.CommandContext(ctx, "go", "tool", "pprof", "-top", fmt.Sprintf("-nodecount=%d", nodes), path)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("go tool pprof: %v\n%s", err, out)
	}
	return string(out), nil
}
