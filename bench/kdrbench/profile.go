package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"time"
)

// pprofAvailable reports whether metrics (host:port) serves Go's pprof index.
func pprofAvailable(ctx context.Context, metrics string) bool {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+metrics+"/debug/pprof/", nil)
	if err != nil {
		return false
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return false
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, resp.Body)
	return resp.StatusCode == http.StatusOK
}

// fetchCPUProfile takes a CPU profile of seconds from metrics' pprof endpoint
// and writes it to path.
func fetchCPUProfile(ctx context.Context, metrics string, seconds int, path string) error {
	url := fmt.Sprintf("http://%s/debug/pprof/profile?seconds=%d", metrics, seconds)
	ctx, cancel := context.WithTimeout(ctx, time.Duration(seconds+30)*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
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

// pprofTop runs `go tool pprof -top` on a saved profile. Go profiles carry
// their symbols, so the broker binary is not needed.
func pprofTop(ctx context.Context, path string, nodes int) (string, error) {
	cmd := exec.CommandContext(ctx, "go", "tool", "pprof", "-top", fmt.Sprintf("-nodecount=%d", nodes), path)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("go tool pprof: %v\n%s", err, out)
	}
	return string(out), nil
}

// profiled runs work while a CPU profile of seconds is taken from metrics,
// starting the profile once work has had half a second to reach its steady
// state. work's context is canceled when the profile is complete; work may
// stop then, or run to its own end, which profiled waits for.
func profiled(ctx context.Context, metrics string, seconds int, path string, work func(context.Context)) error {
	wctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		work(wctx)
	}()
	select {
	case <-time.After(500 * time.Millisecond):
	case <-done:
	}
	err := fetchCPUProfile(ctx, metrics, seconds, path)
	cancel()
	<-done
	return err
}
