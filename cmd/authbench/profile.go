package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// phaseProfile fetches profiles of the authserver while one phase runs,
// from net/http/pprof on its metrics listener (AUTH_DEBUG_PPROF=true,
// which authbench -profile sets): a CPU profile of the phase's length, and
// two thirds in (under load) the heap profile (proto, and the text form
// that ends with the runtime's MemStats) and the goroutines. The files are
// <dir>/<phase>.{cpu.pprof,heap.pprof,heap.txt,goroutine.txt}; read them
// with `go tool pprof -top <authserver binary> <file>`.
type phaseProfile struct {
	wg   sync.WaitGroup
	mu   sync.Mutex
	errs []string
}

// startProfile starts profiling a phase of length dur; nil (a no-op) when dir is "".
func startProfile(ctx context.Context, metricsURL, dir, phase string, dur time.Duration) *phaseProfile {
	if dir == "" {
		return nil
	}
	base := strings.TrimSuffix(metricsURL, "/metrics") + "/debug/pprof/"
	p := &phaseProfile{}
	get := func(path, file string) {
		defer p.wg.Done()
		if err := fetchTo(ctx, base+path, filepath.Join(dir, phase+"."+file)); err != nil {
			p.mu.Lock()
			p.errs = append(p.errs, err.Error())
			p.mu.Unlock()
		}
	}
	p.wg.Add(4)
	go get(fmt.Sprintf("profile?seconds=%d", max(1, int(dur/time.Second))), "cpu.pprof")
	go func() {
		select {
		case <-time.After(dur * 2 / 3):
		case <-ctx.Done():
		}
		go get("heap", "heap.pprof")
		go get("heap?debug=1", "heap.txt")
		get("goroutine?debug=1", "goroutine.txt")
	}()
	return p
}

// wait waits for the profiles and returns the fetch errors ("" when none).
func (p *phaseProfile) wait() string {
	if p == nil {
		return ""
	}
	p.wg.Wait()
	return strings.Join(p.errs, "; ")
}

func fetchTo(ctx context.Context, url, file string) error {
	req, err := http.NewRequestWithContext(ctx, "GET", url, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("fetching %s: %w", url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		return fmt.Errorf("fetching %s: status %d (is AUTH_DEBUG_PPROF on?)", url, resp.StatusCode)
	}
	f, err := os.Create(file)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, resp.Body); err != nil {
		f.Close()
		return fmt.Errorf("fetching %s: %w", url, err)
	}
	return f.Close()
}
