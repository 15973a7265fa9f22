package main

// The check phase: what forward auth costs. Side by side in alternating
// rounds: the floor (one Redis GET), GET /auth/check and the ext_authz gRPC
// Check, each with a bearer session token; then the latency a real proxy
// (Debian's nginx configured as ingress-nginx configures auth-url) adds with
// the check in the path, against the same proxy without it, and the same
// for Traefik's ForwardAuth.

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"

	"github.com/leanauth/authstack/internal/servers"
)

// checkCall is the ext_authz CheckRequest of the gRPC loads: what Envoy sends
// for GET /app/x with a bearer token.
func checkCall(token string) *authv3.CheckRequest {
	return &authv3.CheckRequest{Attributes: &authv3.AttributeContext{Request: &authv3.AttributeContext_Request{
		Http: &authv3.AttributeContext_HttpRequest{Method: "GET", Scheme: "http", Host: "app.example.test", Path: "/app/x",
			Headers: map[string]string{"authorization": "Bearer " + token, "accept": "application/json", "user-agent": "authbench"}},
	}}}
}

// checkRequest is GET path (/auth/check) as Traefik's ForwardAuth sends it.
// The floor gets the same request at /floor: the same bytes to read and parse.
func checkRequest(path, token string) []byte {
	return []byte("GET " + path + " HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: authbench\r\nAccept: application/json\r\n" +
		"Authorization: Bearer " + token + "\r\nX-Forwarded-Proto: http\r\nX-Forwarded-Host: app.example.test\r\nX-Forwarded-Uri: /app/x\r\n\r\n")
}

func runCheckPhase(ctx context.Context, o options, st *stack, tokens []string, rep *report) error {
	// --- the check vs the floor ------------------------------------------------
	// Four loads per round, alternating: the floor, GET /auth/check, the
	// floor's gRPC Check (one Redis GET on bare grpc-go: what gRPC itself
	// costs) and the authserver's gRPC Check. Besides the rates, each load
	// reports the rate per CPU-second of the serving process (robust to other
	// load on a shared machine) and the cores the load generator (this
	// process) used, taken from the same two CPUs as the servers': the
	// HTTP/1.1 (load.go) and HTTP/2 (grpcload.go) clients do not cost the same.
	authPid, floorPid := st.auth.Pid(), st.floor.Pid()
	type checkLoad struct {
		name, file string
		pid        int
		run        func(round int) loadResult
		res        []loadResult
		rps, pc    []float64
		gen        []float64 // load generator cores
	}
	grpcLoad := func(name, addr string) func(int) loadResult {
		return func(round int) loadResult {
			gs := grpcSpec{name: name, addr: addr, conns: o.sessionConns, dur: o.warmup,
				request: func(c int) *authv3.CheckRequest { return checkCall(tokens[c%len(tokens)]) }}
			if o.warmup > 0 {
				runGRPCLoad(ctx, gs)
			}
			gs.dur = o.duration
			r, _ := runGRPCLoad(ctx, gs)
			return r
		}
	}
	loads := []*checkLoad{
		{name: "floor GET (1 Redis GET)", file: "floor-http", pid: floorPid, run: func(int) loadResult {
			return measure(ctx, o, loadSpec{name: "floor GET (1 Redis GET)", addr: st.flrAddr, conns: o.sessionConns, okStatus: 200,
				request: func(c int) []byte { return checkRequest("/floor", tokens[c%len(tokens)]) }})
		}},
		{name: "GET /auth/check", file: "check-http", pid: authPid, run: func(int) loadResult {
			return measure(ctx, o, loadSpec{name: "GET /auth/check", addr: st.authAddr, conns: o.sessionConns, okStatus: 200,
				request: func(c int) []byte { return checkRequest("/auth/check", tokens[c%len(tokens)]) }})
		}},
		{name: "floor gRPC Check", file: "floor-grpc", pid: floorPid, run: grpcLoad("floor gRPC Check", st.grpcFlr)},
		{name: "gRPC Check", file: "check-grpc", pid: authPid, run: grpcLoad("gRPC Check", st.grpcAddr)},
	}
	floor, httpCheck, grpcFloor, grpcCheck := loads[0], loads[1], loads[2], loads[3]
	var httpRatio, grpcRatio, grpcFloorRatio []float64
	for round := 0; round < o.rounds && ctx.Err() == nil; round++ {
		for _, l := range loads {
			w, gen := watchRSS(l.pid), watchRSS(os.Getpid())
			prof := startPerf(o.perfDir, fmt.Sprintf("%s-round%d", l.file, round+1), l.pid)
			var gprof *phaseProfile // Go's profiles of the authserver's loads, first round
			if round == 0 && l.pid == authPid {
				gprof = startProfile(ctx, st.metrics, o.profileDir, l.file, o.warmup+o.duration)
			}
			r := l.run(round)
			prof.stop()
			if e := gprof.wait(); e != "" {
				rep.add("profiling: %s", e)
			}
			m, g := w.finish(), gen.finish()
			if r.OK == 0 {
				return fmt.Errorf("%s: no OK answer: statuses %v errors %v", l.name, r.Statuses, r.ErrorMsg)
			}
			l.res, l.rps, l.gen = append(l.res, r), append(l.rps, r.RPS()), append(l.gen, g.Cores)
			if m.Cores > 0 {
				l.pc = append(l.pc, r.RPS()/m.Cores)
			}
			rep.add("round %d: %s  (server %.2f cores, load generator %.2f cores)", round+1, r, m.Cores, g.Cores)
		}
		f := floor.rps[len(floor.rps)-1]
		httpRatio = append(httpRatio, httpCheck.rps[len(httpCheck.rps)-1]/f)
		grpcRatio = append(grpcRatio, grpcCheck.rps[len(grpcCheck.rps)-1]/f)
		grpcFloorRatio = append(grpcFloorRatio, grpcFloor.rps[len(grpcFloor.rps)-1]/f)
	}
	hr, gr := median(httpRatio), median(grpcRatio)
	hp99, gp99 := medDur(httpCheck.res, false), medDur(grpcCheck.res, false)
	rep.add("CHECK: floor median %.0f req/s; GET /auth/check %.0f req/s, ratio %.2f (target ≥ 0.80: %s), p50/p99 %s/%s (p99 < 10ms: %s); gRPC Check %.0f req/s, ratio %.2f (target ≥ 0.80: %s), p50/p99 %s/%s (p99 < 10ms: %s); floor p50/p99 %s/%s; %d connections",
		median(floor.rps), median(httpCheck.rps), hr, verdict(hr >= 0.8), medDur(httpCheck.res, true), hp99, verdict(hp99 < 10*time.Millisecond),
		median(grpcCheck.rps), gr, verdict(gr >= 0.8), medDur(grpcCheck.res, true), gp99, verdict(gp99 < 10*time.Millisecond),
		medDur(floor.res, true), medDur(floor.res, false), o.sessionConns)
	rep.add("CHECK gRPC floor (bare grpc-go, one Redis GET): %.0f req/s, ratio to the floor %.2f, p50/p99 %s/%s; the authserver's gRPC Check ÷ the gRPC floor %.2f",
		median(grpcFloor.rps), median(grpcFloorRatio), medDur(grpcFloor.res, true), medDur(grpcFloor.res, false), median(grpcCheck.rps)/median(grpcFloor.rps))
	if len(floor.pc) > 0 && len(httpCheck.pc) > 0 && len(grpcCheck.pc) > 0 && len(grpcFloor.pc) > 0 {
		rep.add("CHECK per CPU-second of the server process: floor %.0f, GET /auth/check %.0f (ratio %.2f), gRPC floor %.0f (ratio %.2f), gRPC Check %.0f (ratio %.2f; %.2f of the gRPC floor)",
			median(floor.pc), median(httpCheck.pc), median(httpCheck.pc)/median(floor.pc), median(grpcFloor.pc), median(grpcFloor.pc)/median(floor.pc),
			median(grpcCheck.pc), median(grpcCheck.pc)/median(floor.pc), median(grpcCheck.pc)/median(grpcFloor.pc))
	}
	rep.add("CHECK load generator (authbench) cores, median: HTTP/1.1 client %.2f (floor) and %.2f (check), gRPC client %.2f (floor) and %.2f (check)",
		median(floor.gen), median(httpCheck.gen), median(grpcFloor.gen), median(grpcCheck.gen))

	// --- what a proxy adds ---------------------------------------------------
	if o.proxyConns == 0 {
		return nil
	}
	ng, err := servers.StartNginx(st.flrAddr, servers.NginxAuth{AuthURL: "http://" + st.authAddr + "/auth/check",
		Headers: []string{"X-Auth-User-Id", "X-Auth-Email", "X-Auth-Session-Id"}, NoAuthPrefix: "/app/open/"})
	if err != nil {
		return fmt.Errorf("starting nginx (hack/test-deps.sh installs it): %w", err)
	}
	defer ng.Close()
	tr, err := startBenchTraefik(st)
	if err != nil {
		return err
	}
	defer tr.Close()
	proxies := []struct{ name, addr, how string }{
		{"nginx", ng.Addr(), "as ingress-nginx: a new connection to the check per request"},
		{"traefik", tr.Addr(), "ForwardAuth, file provider"},
	}
	without, with := make([][]loadResult, len(proxies)), make([][]loadResult, len(proxies))
	for round := 0; round < o.rounds && ctx.Err() == nil; round++ {
		for i, p := range proxies {
			a := measure(ctx, o, loadSpec{name: p.name + ", no check", addr: p.addr, conns: o.proxyConns, okStatus: 200,
				request: func(c int) []byte { return getRequest("/app/open/x", tokens[c%len(tokens)]) }})
			b := measure(ctx, o, loadSpec{name: p.name + " + /auth/check", addr: p.addr, conns: o.proxyConns, okStatus: 200,
				request: func(c int) []byte { return getRequest("/app/x", tokens[c%len(tokens)]) }})
			without[i], with[i] = append(without[i], a), append(with[i], b)
			rep.add("round %d: %s", round+1, a)
			rep.add("round %d: %s", round+1, b)
		}
	}
	for i, p := range proxies {
		added := medDur(with[i], true) - medDur(without[i], true)
		rep.add("PROXY %s (%s): p50 %s with the check vs %s without: the check adds %s at p50 (target < 2ms: %s), p99 %s vs %s; %d connections",
			p.name, p.how, medDur(with[i], true), medDur(without[i], true), added, verdict(added < 2*time.Millisecond),
			medDur(with[i], false), medDur(without[i], false), o.proxyConns)
	}
	return nil
}

// traefikDynamic routes /app/open/ straight to the app and the rest of /app/
// through ForwardAuth to the check (the longer rule wins).
const traefikDynamic = `http:
  routers:
    open: {rule: "PathPrefix(` + "`/app/open/`" + `)", service: app, entryPoints: [web]}
    checked: {rule: "PathPrefix(` + "`/app/`" + `)", service: app, middlewares: [auth], entryPoints: [web]}
  middlewares:
    auth: {forwardAuth: {address: "http://%s/auth/check", authResponseHeadersRegex: "^X-Auth-"}}
  services:
    app: {loadBalancer: {servers: [{url: "http://%s"}]}}
`

// startBenchTraefik starts Traefik (hack/traefik.sh) with the file provider
// and waits until both routes answer.
func startBenchTraefik(st *stack) (*servers.Traefik, error) {
	dyn := filepath.Join(st.dir, "traefik-dynamic.yml")
	if err := os.WriteFile(dyn, []byte(fmt.Sprintf(traefikDynamic, st.authAddr, st.flrAddr)), 0o644); err != nil {
		return nil, err
	}
	tr, err := servers.StartTraefik(nil, "--providers.file.filename="+dyn)
	if err != nil {
		return nil, fmt.Errorf("starting Traefik (%s builds it): %w", servers.TraefikScript, err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for _, path := range []string{"/app/open/x", "/app/x"} {
		for {
			resp, err := st.client.Get("http://" + tr.Addr() + path)
			if err == nil {
				resp.Body.Close()
				if resp.StatusCode != http.StatusNotFound {
					break
				}
			}
			if time.Now().After(deadline) {
				tr.Close()
				return nil, fmt.Errorf("traefik does not route %s (%v):\n%s", path, err, tr.LogTail())
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	return tr, nil
}
