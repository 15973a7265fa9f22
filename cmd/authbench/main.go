// Command authbench is the load benchmark of the authserver (the targets
// are listed in docs/benchmarks.md). It starts real PostgreSQL, Redis, pgbouncer and mailpit on
// loopback (internal/servers), runs `authserver migrate` and
// `authserver serve`, creates verified users through the HTTP API and the
// emails, and then measures, in one run:
//
//   - GET /auth/session against a bare net/http handler doing one Redis GET
//     (the floor, a separate process serving the same bytes), alternating
//     rounds, with throughput, p50/p99 and the ratio;
//   - GET /auth/check and the ext_authz gRPC Check against the same floor,
//     and the latency nginx (as ingress-nginx configures auth-url) adds with
//     the check in the path (edge.go);
//   - POST /auth/login throughput against the ideal CPU count ÷ CPU time of
//     one argon2id hash as the authserver ran them during the load (its
//     password_hash_* counters), with sequential hashes timed here beside it;
//   - a login storm over many connections (clients honouring Retry-After):
//     goodput against the hash bound, p50/p99 of the successful logins and
//     the authserver's peak RSS;
//   - for the login and storm loads, where the machine's CPUs went: the
//     authserver, PostgreSQL, pgbouncer, Redis, mailpit, authbench itself and
//     the other processes (cpushare.go);
//   - with -profile DIR, CPU and heap profiles of each phase (profile.go); with
//     -perf DIR, Linux perf profiles of the serving processes (perf.go).
//
// Everything listens on 127.0.0.1, every loop is bounded, and the run stops
// by itself. Run it from the repository root:
//
//	go run ./cmd/authbench            # builds ./cmd/authserver
//	go run ./cmd/authbench -h         # knobs
//
// Results are recorded in docs/benchmarks.md.
package main

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/json"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"runtime"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"
	"golang.org/x/crypto/argon2"

	fork "github.com/leanauth/authstack/internal/argon2"
	"github.com/leanauth/authstack/internal/procstat"
	"github.com/leanauth/authstack/internal/servers"
)

type argon2Params struct {
	memoryKiB   uint
	iterations  uint
	parallelism uint
}

type options struct {
	authserverBin  string
	pgbouncer      bool
	floorOnly      bool
	warmup         time.Duration
	duration       time.Duration
	rounds         int
	sessionConns   int
	proxyConns     int
	loginConns     int
	loginDuration  time.Duration
	floodConns     int
	floodDuration  time.Duration
	users          int
	hashSamples    int
	argon2         argon2Params
	hashWait       string
	hashConcurrent int
	timeout        time.Duration
	keepLogs       bool
	profileDir     string
	perfDir        string
	stormBackoff   bool
	phases         map[string]bool
	env            envList
}

// envList collects repeated -env KEY=VALUE flags.
type envList []string

func (e *envList) String() string { return strings.Join(*e, " ") }
func (e *envList) Set(v string) error {
	if !strings.Contains(v, "=") {
		return fmt.Errorf("want KEY=VALUE, got %q", v)
	}
	*e = append(*e, v)
	return nil
}

func main() {
	if len(os.Args) > 1 && os.Args[1] == "floor" {
		if err := runFloor(os.Args[2:]); err != nil {
			fmt.Fprintln(os.Stderr, "authbench floor:", err)
			os.Exit(1)
		}
		return
	}
	var o options
	flag.StringVar(&o.authserverBin, "authserver", "", "authserver binary (default: go build ./cmd/authserver)")
	flag.BoolVar(&o.pgbouncer, "pgbouncer", true, "put pgbouncer (transaction pooling) between the authserver and PostgreSQL")
	flag.BoolVar(&o.floorOnly, "floor-only", false, "only measure the floor and the hash time (no authserver)")
	flag.DurationVar(&o.warmup, "warmup", 2*time.Second, "unmeasured load before each measured session/floor round")
	flag.DurationVar(&o.duration, "duration", 8*time.Second, "length of each measured session/floor round")
	flag.IntVar(&o.rounds, "rounds", 3, "alternating floor/session rounds (the median is reported)")
	flag.IntVar(&o.sessionConns, "session-conns", 64, "connections for the session and floor loads")
	flag.IntVar(&o.proxyConns, "proxy-conns", 4, "connections for the proxy latency load of the check phase (0: no proxy load)")
	flag.IntVar(&o.loginConns, "login-conns", 2*runtime.NumCPU(), "connections for the login throughput load")
	flag.DurationVar(&o.loginDuration, "login-duration", 15*time.Second, "length of the login throughput load")
	flag.IntVar(&o.floodConns, "flood-conns", 500, "connections for the login flood")
	flag.DurationVar(&o.floodDuration, "flood-duration", 15*time.Second, "length of the login flood")
	flag.IntVar(&o.users, "users", 8, "verified users to create (logins rotate over them)")
	flag.IntVar(&o.hashSamples, "hash-samples", 20, "sequential hashes timed for the time of one hash")
	flag.UintVar(&o.argon2.memoryKiB, "argon2-memory-kib", 19456, "argon2id memory (passed to the authserver too)")
	flag.UintVar(&o.argon2.iterations, "argon2-iterations", 2, "argon2id iterations")
	flag.UintVar(&o.argon2.parallelism, "argon2-parallelism", 1, "argon2id parallelism")
	flag.StringVar(&o.hashWait, "hash-wait", "", "AUTH_HASH_WAIT_TIMEOUT for the authserver (default: its own)")
	flag.IntVar(&o.hashConcurrent, "hash-concurrency", 0, "AUTH_HASH_CONCURRENCY for the authserver (default: its own, GOMAXPROCS)")
	flag.BoolVar(&o.keepLogs, "keep-logs", false, "keep the authserver's log directory after the run")
	flag.StringVar(&o.perfDir, "perf", "", "write a CPU profile (Linux perf) of the serving process under each measured session/check load to this directory (perf.go)")
	flag.StringVar(&o.profileDir, "profile", "", "write CPU and heap profiles and goroutine dumps of the authserver for each phase into this directory (AUTH_DEBUG_PPROF)")
	flag.BoolVar(&o.stormBackoff, "storm-retry-after", true, "in the login storm, a connection answered 503/429 waits its Retry-After before the next login (false: at once)")
	phases := flag.String("phases", "session,check,login,flood", "phases to run, comma-separated")
	flag.Var(&o.env, "env", "extra KEY=VALUE for the authserver's environment (repeatable), e.g. -env GOMEMLIMIT=off")
	flag.DurationVar(&o.timeout, "timeout", 20*time.Minute, "hard limit for the whole run")
	flag.Parse()
	o.phases = map[string]bool{}
	for _, p := range strings.Split(*phases, ",") {
		switch p = strings.TrimSpace(p); p {
		case "session", "check", "login", "flood":
			o.phases[p] = true
		case "":
		default:
			fmt.Fprintf(os.Stderr, "authbench: unknown phase %q (want session, check, login, flood)\n", p)
			os.Exit(2)
		}
	}

	slog.SetDefault(slog.New(slog.NewTextHandler(os.Stderr, nil)))
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, o.timeout)
	defer cancel()
	if err := run(ctx, o); err != nil {
		fmt.Fprintln(os.Stderr, "authbench:", err)
		os.Exit(1)
	}
}

// hashTime times sequential argon2id(HMAC-SHA256(pepper, password)) hashes
// as the authserver computes them, with both golang.org/x/crypto/argon2
// (fresh memory per hash) and the authserver's fork with reused memory
// (internal/argon2), and returns the faster median: the stricter
// "time of one hash". Wall and CPU time (of this process while hashing,
// which other load on a shared machine does not inflate; argon2 runs its
// lanes on goroutines, so the whole process is measured, and nothing else
// runs in it meanwhile) are both returned, with a description.
func hashTime(p argon2Params, n int) (wall, cpu time.Duration, desc string) {
	pepper := make([]byte, 32)
	salt := make([]byte, 16)
	rand.Read(pepper)
	procCPU := func() time.Duration {
		var ru syscall.Rusage
		if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
			return 0
		}
		return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	}
	var mem fork.Memory
	impls := []struct {
		name string
		f    func(pw, salt []byte) []byte
	}{
		{"x/crypto", func(pw, salt []byte) []byte {
			return argon2.IDKey(pw, salt, uint32(p.iterations), uint32(p.memoryKiB), uint8(p.parallelism), 32)
		}},
		{"authserver fork", func(pw, salt []byte) []byte {
			return fork.IDKey(&mem, pw, salt, uint32(p.iterations), uint32(p.memoryKiB), uint8(p.parallelism), 32)
		}},
	}
	var parts []string
	for _, im := range impls {
		one := func() (time.Duration, time.Duration) {
			rand.Read(salt)
			t0, c0 := time.Now(), procCPU()
			mac := hmac.New(sha256.New, pepper)
			mac.Write([]byte("correct horse battery staple"))
			im.f(mac.Sum(nil), salt)
			return time.Since(t0), procCPU() - c0
		}
		one() // warm up
		ws := make([]float64, n)
		cs := make([]float64, n)
		for i := range ws {
			w, c := one()
			ws[i], cs[i] = float64(w), float64(c)
		}
		w, c := time.Duration(median(ws)), time.Duration(median(cs))
		parts = append(parts, fmt.Sprintf("%s %s (CPU %s)", im.name, w.Round(time.Microsecond), c.Round(time.Microsecond)))
		if wall == 0 || w < wall {
			wall, cpu = w, c
		}
	}
	mem.Release()
	return wall, cpu, strings.Join(parts, ", ")
}

func loadavg1() float64 {
	var la float64
	fmt.Sscan(procstat.LoadAvg(), &la)
	return la
}

func cpuModel() string {
	b, _ := os.ReadFile("/proc/cpuinfo")
	for _, l := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(l, ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return "?"
}

type report struct {
	lines []string
}

func (r *report) add(format string, args ...any) {
	line := fmt.Sprintf(format, args...)
	r.lines = append(r.lines, line)
	fmt.Println(line)
}

func verdict(ok bool) string {
	if ok {
		return "MET"
	}
	return "NOT MET"
}

func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func run(ctx context.Context, o options) error {
	rep := &report{}
	rep.add("authbench %s: %d CPUs (%s), GOMAXPROCS %d, load average before: %s",
		time.Now().UTC().Format(time.RFC3339), runtime.NumCPU(), cpuModel(), runtime.GOMAXPROCS(0), procstat.LoadAvg())

	if la := loadavg1(); la > float64(runtime.NumCPU()) {
		rep.add("WARNING: load average %.1f > %d CPUs: other processes share the CPU, absolute rates will be low and noisy (compare the ratios and the per-CPU-second numbers)", la, runtime.NumCPU())
	}
	slog.Info("timing one argon2id hash", "m", o.argon2.memoryKiB, "t", o.argon2.iterations, "p", o.argon2.parallelism)
	ht, _, hdesc := hashTime(o.argon2, o.hashSamples)
	rep.add("one argon2id hash (m=%d KiB, t=%d, p=%d), median of %d: %s → %d CPUs ÷ %s = %.1f/s (the login and storm ideals use the CPU time of the hashes during each load)",
		o.argon2.memoryKiB, o.argon2.iterations, o.argon2.parallelism, o.hashSamples, hdesc,
		runtime.NumCPU(), ht.Round(time.Microsecond), float64(runtime.NumCPU())/ht.Seconds())

	if o.floorOnly {
		return runFloorOnly(ctx, o, rep)
	}

	tmp, err := os.MkdirTemp("", "authbench-bin-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	if o.authserverBin == "" {
		slog.Info("building ./cmd/authserver")
		if o.authserverBin, err = buildAuthserver(ctx, tmp); err != nil {
			return err
		}
	}
	extra := append([]string(nil), o.env...)
	if o.hashWait != "" {
		extra = append(extra, "AUTH_HASH_WAIT_TIMEOUT="+o.hashWait)
	}
	if o.hashConcurrent > 0 {
		extra = append(extra, fmt.Sprintf("AUTH_HASH_CONCURRENCY=%d", o.hashConcurrent))
	}
	if o.perfDir != "" {
		if err := os.MkdirAll(o.perfDir, 0o755); err != nil {
			return err
		}
	}
	if o.profileDir != "" {
		if err := os.MkdirAll(o.profileDir, 0o755); err != nil {
			return err
		}
		extra = append(extra, "AUTH_DEBUG_PPROF=true")
	}
	st, err := startStack(ctx, stackOptions{authserverBin: o.authserverBin, pgbouncer: o.pgbouncer, argon2: o.argon2, extraEnv: extra, keepLogs: o.keepLogs})
	if err != nil {
		return err
	}
	defer st.close()
	authPid := st.auth.Pid()
	rss0, _ := procstat.StatusKiB(authPid, "VmRSS")
	rep.add("stack: authserver pid %d (RSS at start %.1f MiB), PostgreSQL 127.0.0.1, Redis, mailpit, pgbouncer=%v",
		authPid, mib(rss0), o.pgbouncer)

	slog.Info("creating verified users through signup, email and verify", "users", o.users)
	users, err := st.createUsers(ctx, o.users)
	if err != nil {
		return err
	}

	// Sessions for the session load: one per connection, by concurrent logins.
	slog.Info("logging in to create sessions", "sessions", o.sessionConns)
	tokens := make([]string, o.sessionConns)
	{
		var wg sync.WaitGroup
		var mu sync.Mutex
		var firstErr error
		sem := make(chan struct{}, 2*runtime.NumCPU())
		for i := range tokens {
			wg.Add(1)
			sem <- struct{}{}
			go func(i int) {
				defer wg.Done()
				defer func() { <-sem }()
				var tok string
				var err error
				for try := 0; try < 5; try++ { // 503 when no hash slot is free in time
					if tok, err = st.login(users[i%len(users)]); err == nil {
						break
					}
					time.Sleep(200 * time.Millisecond)
				}
				mu.Lock()
				defer mu.Unlock()
				if err != nil && firstErr == nil {
					firstErr = err
				}
				tokens[i] = tok
			}(i)
		}
		wg.Wait()
		if firstErr != nil {
			return fmt.Errorf("creating sessions: %w", firstErr)
		}
	}
	body, err := st.sessionBody(tokens[0])
	if err != nil {
		return err
	}
	if err := seedFloor(ctx, st.redis.URL(), tokens, body); err != nil {
		return err
	}

	loginReq := func(c int) []byte {
		u := users[c%len(users)]
		b, _ := json.Marshal(map[string]string{"email": u.email, "password": u.password})
		return postJSON("/auth/login", string(b))
	}
	if o.phases["session"] {
		// --- session vs floor -----------------------------------------------------
		var floorRPS, sessRPS, ratios, floorPerCore, sessPerCore []float64
		var floorRes, sessRes []loadResult
		var sessMem phaseMem
		resetPeakRSS(authPid)
		for round := 0; round < o.rounds && ctx.Err() == nil; round++ {
			fw := watchRSS(st.floor.Pid())
			fperf := startPerf(o.perfDir, fmt.Sprintf("floor-session-round%d", round+1), st.floor.Pid())
			f := measure(ctx, o, loadSpec{name: "floor GET (1 Redis GET)", addr: st.flrAddr, conns: o.sessionConns, okStatus: 200,
				request: func(c int) []byte { return getRequest("/floor", tokens[c%len(tokens)]) }})
			fm := fw.finish()
			fperf.stop()
			w := watchRSS(authPid)
			perf := startPerf(o.perfDir, fmt.Sprintf("session-round%d", round+1), authPid)
			var prof *phaseProfile
			if round == 0 {
				prof = startProfile(ctx, st.metrics, o.profileDir, "session", o.warmup+o.duration)
			}
			s := measure(ctx, o, loadSpec{name: "GET /auth/session", addr: st.authAddr, conns: o.sessionConns, okStatus: 200,
				request: func(c int) []byte { return getRequest("/auth/session", tokens[c%len(tokens)]) }})
			m := w.finish()
			perf.stop()
			if e := prof.wait(); e != "" {
				rep.add("profiling: %s", e)
			}
			if m.PeakKiB > sessMem.PeakKiB {
				sessMem.PeakKiB = m.PeakKiB
			}
			if m.SampledKiB > sessMem.SampledKiB {
				sessMem.SampledKiB = m.SampledKiB
			}
			sessMem.Cores = m.Cores
			floorRes, sessRes = append(floorRes, f), append(sessRes, s)
			floorRPS, sessRPS = append(floorRPS, f.RPS()), append(sessRPS, s.RPS())
			if f.RPS() > 0 {
				ratios = append(ratios, s.RPS()/f.RPS())
			}
			if fm.Cores > 0 && m.Cores > 0 {
				floorPerCore = append(floorPerCore, f.RPS()/fm.Cores)
				sessPerCore = append(sessPerCore, s.RPS()/m.Cores)
			}
			rep.add("round %d: %s  (floor %.2f cores; %.2f threads waiting for a CPU)", round+1, f, fm.Cores, fm.Starved)
			rep.add("round %d: %s  (authserver %.2f cores, %.2f of them in the kernel; %.2f threads waiting for a CPU)", round+1, s, m.Cores, m.SysCores, m.Starved)
		}
		ratio := median(ratios)
		rep.add("SESSION: floor median %.0f req/s, /auth/session median %.0f req/s, ratio %.2f (target ≥ 0.95: %s); p50/p99 session %s/%s vs floor %s/%s (p99 < 10ms: %s); authserver peak RSS %.1f MiB",
			median(floorRPS), median(sessRPS), ratio, verdict(ratio >= 0.95),
			medDur(sessRes, true), medDur(sessRes, false), medDur(floorRes, true), medDur(floorRes, false),
			verdict(medDur(sessRes, false) < 10*time.Millisecond), mib(sessMem.PeakKiB))
		if len(sessPerCore) > 0 {
			rep.add("SESSION per CPU-second of the server process (robust to other load on the machine): floor %.0f, /auth/session %.0f, ratio %.2f",
				median(floorPerCore), median(sessPerCore), median(sessPerCore)/median(floorPerCore))
		}
	}

	if o.phases["check"] {
		if err := runCheckPhase(ctx, o, st, tokens, rep); err != nil {
			return err
		}
	}

	procNames := map[int]string{os.Getpid(): "authbench", authPid: "authserver", st.floor.Pid(): "floor"}
	if o.phases["login"] {
		// --- login throughput -----------------------------------------------------
		// The ideal is the CPUs ÷ the CPU time of one hash as the authserver
		// ran them during the load (its password_hash_* counters: per-thread
		// CPU clocks, so neither other processes nor waiting for a CPU
		// inflate it, and measured in the same seconds as the rate). Sequential
		// hashes in this process just before and after are reported beside it:
		// on a shared virtual machine they move by half from one minute to the
		// next.
		hb, hbc, _ := hashTime(o.argon2, o.hashSamples)
		resetPeakRSS(authPid)
		gc0 := scrapeCounter(st.metrics, "go_gc_duration_seconds_count")
		hw0, c0 := scrapeHashWork(st.metrics), snapCPU(procNames)
		w := watchRSS(authPid)
		prof := startProfile(ctx, st.metrics, o.profileDir, "login", o.loginDuration)
		lr := runLoad(ctx, loadSpec{name: "POST /auth/login", addr: st.authAddr, conns: o.loginConns, dur: o.loginDuration, okStatus: 200, request: loginReq})
		lm := w.finish()
		c1, hw1 := snapCPU(procNames), scrapeHashWork(st.metrics)
		if e := prof.wait(); e != "" {
			rep.add("profiling: %s", e)
		}
		gc1 := scrapeCounter(st.metrics, "go_gc_duration_seconds_count")
		rep.add("%s  (authserver %.2f cores, %.2f of them in the kernel; %.2f threads on average waiting for a CPU)", lr, lm.Cores, lm.SysCores, lm.Starved)
		rep.add("CPU during the login load, in cores: %s", shareBetween(c0, c1))
		if gc0 >= 0 && gc1 >= 0 && lr.OK > 0 {
			rep.add("authserver GC cycles during the login load: %.0f (%.2f per login)", gc1-gc0, (gc1-gc0)/float64(lr.OK))
		}
		ha, hac, _ := hashTime(o.argon2, o.hashSamples)
		seqIdeal := float64(runtime.NumCPU()) / ((hb + ha) / 2).Seconds()
		rep.add("one sequential hash around the login load: %s before, %s after (CPU %s, %s) → %d CPUs ÷ %s = %.1f/s",
			hb.Round(time.Microsecond), ha.Round(time.Microsecond), hbc.Round(time.Microsecond), hac.Round(time.Microsecond),
			runtime.NumCPU(), ((hb + ha) / 2).Round(time.Microsecond), seqIdeal)
		n, hwall, hcpu, ok := hashesBetween(hw0, hw1)
		if !ok { // an authserver older than its password_hash_* counters
			rep.add("WARNING: no password_hash_* counters: the ideal uses the sequential hashes' CPU time")
			n, hcpu = float64(lr.OK), (hbc+hac)/2
		}
		ideal := float64(runtime.NumCPU()) / hcpu.Seconds()
		if ok {
			rep.add("hashes during the login load (the authserver's password_hash_* counters): %.0f, per hash CPU %s, wall %s",
				n, hcpu.Round(time.Microsecond), hwall.Round(time.Microsecond))
		}
		rep.add("LOGIN: %.1f logins/s = %.0f%% of ideal %.1f/s = %d CPUs ÷ %s of CPU per hash in the load (target ≥ 95%%: %s); %.0f%% of the sequential hash's %.1f/s; p50 %s p99 %s; authserver peak RSS %.1f MiB",
			lr.RPS(), 100*lr.RPS()/ideal, ideal, runtime.NumCPU(), hcpu.Round(time.Microsecond), verdict(lr.RPS() >= 0.95*ideal),
			100*lr.RPS()/seqIdeal, seqIdeal, lr.P50.Round(time.Millisecond), lr.P99.Round(time.Millisecond), mib(lm.PeakKiB))
		if cpu := c1.groups["authserver"] - c0.groups["authserver"]; cpu > 0 {
			rep.add("LOGIN per CPU-second of the authserver: %.0f%% of its CPU went into the hashes of successful logins (%.0f%% into hashes)",
				100*float64(lr.OK)*hcpu.Seconds()/cpu, 100*n*hcpu.Seconds()/cpu)
		}
	}

	if o.phases["flood"] {
		// --- login storm ------------------------------------------------------------
		// Every client logs in at once (after an outage or a deploy): 500
		// connections for 15 s. Goodput is the successful logins per second
		// over the whole run, against the hash bound: the CPUs ÷ the CPU time
		// of one hash during the storm, as for the login load.
		hb, hbc, _ := hashTime(o.argon2, o.hashSamples)
		resetPeakRSS(authPid)
		hw0, c0 := scrapeHashWork(st.metrics), snapCPU(procNames)
		w := watchRSS(authPid)
		prof := startProfile(ctx, st.metrics, o.profileDir, "storm", o.floodDuration)
		fr := runLoad(ctx, loadSpec{name: "login storm", addr: st.authAddr, conns: o.floodConns, dur: o.floodDuration, okStatus: 200,
			request: loginReq, retryAfter: o.stormBackoff})
		fm := w.finish()
		c1, hw1 := snapCPU(procNames), scrapeHashWork(st.metrics)
		if e := prof.wait(); e != "" {
			rep.add("profiling: %s", e)
		}
		ha, hac, _ := hashTime(o.argon2, o.hashSamples)
		n, hwall, hcpu, ok := hashesBetween(hw0, hw1)
		if !ok {
			rep.add("WARNING: no password_hash_* counters: the bound uses the sequential hashes' CPU time")
			n, hcpu = float64(fr.OK), (hbc+hac)/2
		}
		bound := float64(runtime.NumCPU()) / hcpu.Seconds()
		seqBound := float64(runtime.NumCPU()) / ((hb + ha) / 2).Seconds()
		rep.add("%s  (authserver %.2f cores, %.2f of them in the kernel; %.2f threads on average waiting for a CPU)", fr, fm.Cores, fm.SysCores, fm.Starved)
		rep.add("CPU during the storm, in cores: %s", shareBetween(c0, c1))
		if ok {
			rep.add("hashes during the storm: %.0f, per hash CPU %s, wall %s", n, hcpu.Round(time.Microsecond), hwall.Round(time.Microsecond))
		}
		rep.add("one sequential hash around the storm: %s before, %s after", hb.Round(time.Microsecond), ha.Round(time.Microsecond))
		if len(fr.ErrorMsg) > 0 {
			rep.add("storm transport errors: %v", fr.ErrorMsg)
		}
		peak := fm.PeakKiB
		if fm.SampledKiB > peak {
			peak = fm.SampledKiB
		}
		wait := 2 * time.Second // AUTH_HASH_WAIT_TIMEOUT's default
		if o.hashWait != "" {
			if d, err := time.ParseDuration(o.hashWait); err == nil {
				wait = d
			}
		}
		rep.add("STORM: %d connections for %s (Retry-After honoured: %v), statuses %v; goodput %.1f logins/s = %.0f%% of the hash bound %d CPUs ÷ %s = %.1f/s (target ≥ 90%%: %s; %.0f%% of the sequential hash's %.1f/s); successful logins p50 %s p99 %s (target p99 < 2 × the %s queue wait: %s)",
			o.floodConns, o.floodDuration, o.stormBackoff, fr.Statuses, fr.RPS(), 100*fr.RPS()/bound, runtime.NumCPU(), hcpu.Round(time.Microsecond), bound,
			verdict(fr.RPS() >= 0.9*bound), 100*fr.RPS()/seqBound, seqBound, fr.P50.Round(time.Millisecond), fr.P99.Round(time.Millisecond), wait, verdict(fr.P99 < 2*wait))
		if cpu := c1.groups["authserver"] - c0.groups["authserver"]; cpu > 0 {
			rep.add("STORM per CPU-second of the authserver: %.0f%% of its CPU went into hashes that succeeded (%.0f%% into hashes)",
				100*float64(fr.OK)*hcpu.Seconds()/cpu, 100*n*hcpu.Seconds()/cpu)
		}
		rep.add("STORM memory: authserver peak RSS %.1f MiB (sampled max %.1f MiB) (target < 80 MiB: %s)",
			mib(peak), mib(fm.SampledKiB), verdict(mib(peak) < 80))
	}

	// The authserver must still be alive and serving.
	if ex, err := st.auth.Exited(); ex {
		return fmt.Errorf("authserver exited during the run (%v); log:\n%s", err, servers.LogTail(st.auth.LogPath()))
	}
	errs, warns, firstErr, firstWarn := st.logProblems()
	rep.add("authserver log: %d ERROR and %d WARN lines", errs, warns)
	if firstErr != "" {
		rep.add("  first ERROR: %.400s", firstErr)
	}
	if firstWarn != "" {
		rep.add("  first WARN: %.400s", firstWarn)
	}
	rep.add("load average after: %s", procstat.LoadAvg())
	return nil
}

func medDur(rs []loadResult, p50 bool) time.Duration {
	var xs []float64
	for _, r := range rs {
		if p50 {
			xs = append(xs, float64(r.P50))
		} else {
			xs = append(xs, float64(r.P99))
		}
	}
	return time.Duration(median(xs)).Round(time.Microsecond)
}

// measure runs an unmeasured warm-up and then the measured load.
func measure(ctx context.Context, o options, s loadSpec) loadResult {
	if o.warmup > 0 {
		w := s
		w.dur = o.warmup
		runLoad(ctx, w)
	}
	s.dur = o.duration
	return runLoad(ctx, s)
}

// seedFloor stores body under each token's floor key.
func seedFloor(ctx context.Context, redisURL string, tokens []string, body []byte) error {
	opt, err := redis.ParseURL(redisURL)
	if err != nil {
		return err
	}
	rdb := redis.NewClient(opt)
	defer rdb.Close()
	for _, t := range tokens {
		if err := rdb.Set(ctx, floorKeyPrefix+t, body, time.Hour).Err(); err != nil {
			return fmt.Errorf("seeding the floor keys: %w", err)
		}
	}
	return nil
}

// runFloorOnly measures the floor alone (no authserver needed).
func runFloorOnly(ctx context.Context, o options, rep *report) error {
	rd, err := servers.StartRedis(servers.DefaultRedisConf(servers.RandomSecret(16)))
	if err != nil {
		return err
	}
	defer rd.Close()
	port, err := servers.FreePort()
	if err != nil {
		return err
	}
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	self, err := os.Executable()
	if err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "authbench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	fl, err := servers.StartProcess("floor", self, []string{"floor", "-addr", addr, "-redis", rd.URL()}, nil, dir+"/floor.log")
	if err != nil {
		return err
	}
	defer fl.Stop()
	if err := fl.WaitReady(20*time.Second, func() error { return tcpOK(addr) }); err != nil {
		return err
	}
	tokens := make([]string, o.sessionConns)
	for i := range tokens {
		tokens[i] = servers.RandomSecret(32)
	}
	body := []byte(`{"user":{"id":"0190f5a4-3b1c-7d2e-8f00-112233445566","email":"bench0@example.test","email_verified":true},"session":{"id":"0190f5a4-3b1c-7d2e-8f00-665544332211","created_at":"2026-11-28T10:00:00Z","expires_at":"2026-12-05T10:00:00Z"}}`)
	if err := seedFloor(ctx, rd.URL(), tokens, body); err != nil {
		return err
	}
	for round := 0; round < o.rounds && ctx.Err() == nil; round++ {
		w := watchRSS(fl.Pid())
		f := measure(ctx, o, loadSpec{name: "floor GET (1 Redis GET)", addr: addr, conns: o.sessionConns, okStatus: 200,
			request: func(c int) []byte { return getRequest("/floor", tokens[c%len(tokens)]) }})
		m := w.finish()
		rep.add("round %d: %s  (floor process %.2f cores, RSS %.1f MiB)", round+1, f, m.Cores, mib(m.PeakKiB))
	}
	rep.add("load average after: %s", procstat.LoadAvg())
	return nil
}

func tcpOK(addr string) error {
	c, err := (&netDialer).Dial("tcp", addr)
	if err != nil {
		return err
	}
	return c.Close()
}
