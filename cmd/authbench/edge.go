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
	"sort"
	"sync"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/leanauth/authstack/internal/servers"
)

// grpcStreamsPerConn: Envoy multiplexes its checks over a few HTTP/2
// connections; so does the load.
const grpcStreamsPerConn = 8

// runGRPCLoad calls Check from s.conns goroutines over s.conns/8 connections
// for s.dur; an OK CheckResponse counts as status 200, a denied one as 401.
func runGRPCLoad(ctx context.Context, addr string, s loadSpec, token string) loadResult {
	nconn := (s.conns + grpcStreamsPerConn - 1) / grpcStreamsPerConn
	clients := make([]authv3.AuthorizationClient, nconn)
	for i := range clients {
		cc, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			return loadResult{Name: s.name, ErrorMsg: map[string]int{trimErr(err): 1}}
		}
		defer cc.Close()
		clients[i] = authv3.NewAuthorizationClient(cc)
	}
	req := &authv3.CheckRequest{Attributes: &authv3.AttributeContext{Request: &authv3.AttributeContext_Request{
		Http: &authv3.AttributeContext_HttpRequest{Method: "GET", Scheme: "http", Host: "app.example.test", Path: "/app/x",
			Headers: map[string]string{"authorization": "Bearer " + token, "accept": "application/json", "user-agent": "authbench"}},
	}}}
	res := loadResult{Name: s.name, Conns: s.conns, Statuses: map[int]int{}, ErrorMsg: map[string]int{}}
	var mu sync.Mutex
	var all []time.Duration
	var wg sync.WaitGroup
	start := time.Now()
	deadline := start.Add(s.dur)
	for g := 0; g < s.conns; g++ {
		wg.Add(1)
		go func(c authv3.AuthorizationClient) {
			defer wg.Done()
			var lat []time.Duration
			statuses := map[int]int{}
			errs := map[string]int{}
			for time.Now().Before(deadline) && ctx.Err() == nil {
				t0 := time.Now()
				r, err := c.Check(ctx, req)
				d := time.Since(t0)
				switch {
				case err != nil:
					errs[trimErr(err)]++
				case codes.Code(r.GetStatus().GetCode()) == codes.OK:
					statuses[200]++
					if len(lat) < 200000 {
						lat = append(lat, d)
					}
				default:
					statuses[int(r.GetDeniedResponse().GetStatus().GetCode())]++
				}
			}
			mu.Lock()
			defer mu.Unlock()
			all = append(all, lat...)
			for k, v := range statuses {
				res.Statuses[k] += v
			}
			for k, v := range errs {
				res.ErrorMsg[k] += v
				res.Errors += v
			}
		}(clients[g%nconn])
	}
	wg.Wait()
	res.Elapsed = time.Since(start)
	res.OK = res.Statuses[200]
	sort.Slice(all, func(i, j int) bool { return all[i] < all[j] })
	res.P50, res.P99 = percentile(all, 0.50), percentile(all, 0.99)
	if len(all) > 0 {
		res.Max = all[len(all)-1]
	}
	return res
}

// checkRequest is GET /auth/check as Traefik's ForwardAuth sends it.
func checkRequest(token string) []byte {
	return []byte("GET /auth/check HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: authbench\r\nAccept: application/json\r\n" +
		"Authorization: Bearer " + token + "\r\nX-Forwarded-Proto: http\r\nX-Forwarded-Host: app.example.test\r\nX-Forwarded-Uri: /app/x\r\n\r\n")
}

func runCheckPhase(ctx context.Context, o options, st *stack, tokens []string, rep *report) error {
	// --- the check vs the floor ------------------------------------------------
	var floorRPS, httpRPS, grpcRPS, httpRatio, grpcRatio, floorPC, httpPC, grpcPC []float64
	var floorRes, httpRes, grpcRes []loadResult
	// perCore is the rate per CPU-second of the serving process, robust to
	// other load on a shared machine.
	perCore := func(xs []float64, r loadResult, m phaseMem) []float64 {
		if m.Cores > 0 {
			xs = append(xs, r.RPS()/m.Cores)
		}
		return xs
	}
	authPid := st.auth.Pid()
	for round := 0; round < o.rounds && ctx.Err() == nil; round++ {
		w := watchRSS(st.floor.Pid())
		prof := startProfile(o.profileDir, fmt.Sprintf("check-floor-round%d", round+1), st.floor.Pid())
		f := measure(ctx, o, loadSpec{name: "floor GET (1 Redis GET)", addr: st.flrAddr, conns: o.sessionConns, okStatus: 200,
			request: func(c int) []byte { return getRequest("/floor", tokens[c%len(tokens)]) }})
		floorPC = perCore(floorPC, f, w.finish())
		prof.stop()
		w = watchRSS(authPid)
		prof = startProfile(o.profileDir, fmt.Sprintf("check-http-round%d", round+1), authPid)
		h := measure(ctx, o, loadSpec{name: "GET /auth/check", addr: st.authAddr, conns: o.sessionConns, okStatus: 200,
			request: func(c int) []byte { return checkRequest(tokens[c%len(tokens)]) }})
		httpPC = perCore(httpPC, h, w.finish())
		prof.stop()
		gs := loadSpec{name: "gRPC Check", conns: o.sessionConns}
		if o.warmup > 0 {
			gs.dur = o.warmup
			runGRPCLoad(ctx, st.grpcAddr, gs, tokens[round%len(tokens)])
		}
		gs.dur = o.duration
		w = watchRSS(authPid)
		prof = startProfile(o.profileDir, fmt.Sprintf("check-grpc-round%d", round+1), authPid)
		g := runGRPCLoad(ctx, st.grpcAddr, gs, tokens[round%len(tokens)])
		grpcPC = perCore(grpcPC, g, w.finish())
		prof.stop()
		if g.OK == 0 {
			return fmt.Errorf("gRPC Check: no OK answer: statuses %v errors %v", g.Statuses, g.ErrorMsg)
		}
		floorRes, httpRes, grpcRes = append(floorRes, f), append(httpRes, h), append(grpcRes, g)
		floorRPS, httpRPS, grpcRPS = append(floorRPS, f.RPS()), append(httpRPS, h.RPS()), append(grpcRPS, g.RPS())
		if f.RPS() > 0 {
			httpRatio, grpcRatio = append(httpRatio, h.RPS()/f.RPS()), append(grpcRatio, g.RPS()/f.RPS())
		}
		rep.add("round %d: %s", round+1, f)
		rep.add("round %d: %s", round+1, h)
		rep.add("round %d: %s", round+1, g)
	}
	hr, gr := median(httpRatio), median(grpcRatio)
	hp99, gp99 := medDur(httpRes, false), medDur(grpcRes, false)
	rep.add("CHECK: floor median %.0f req/s; GET /auth/check %.0f req/s, ratio %.2f (target ≥ 0.80: %s), p50/p99 %s/%s (p99 < 10ms: %s); gRPC Check %.0f req/s, ratio %.2f (target ≥ 0.80: %s), p50/p99 %s/%s (p99 < 10ms: %s); floor p50/p99 %s/%s; %d connections",
		median(floorRPS), median(httpRPS), hr, verdict(hr >= 0.8), medDur(httpRes, true), hp99, verdict(hp99 < 10*time.Millisecond),
		median(grpcRPS), gr, verdict(gr >= 0.8), medDur(grpcRes, true), gp99, verdict(gp99 < 10*time.Millisecond),
		medDur(floorRes, true), medDur(floorRes, false), o.sessionConns)
	if len(floorPC) > 0 && len(httpPC) > 0 && len(grpcPC) > 0 {
		rep.add("CHECK per CPU-second of the server process: floor %.0f, GET /auth/check %.0f (ratio %.2f), gRPC Check %.0f (ratio %.2f)",
			median(floorPC), median(httpPC), median(httpPC)/median(floorPC), median(grpcPC), median(grpcPC)/median(floorPC))
	}

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
