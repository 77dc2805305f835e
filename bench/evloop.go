package main

// The comparison of issue 16 (make bench-evloop, go run ./bench -evloop):
// nutcracker, shardproxy and the event-loop prototype of bench/evloop,
// unpinned and with the proxy pinned to one core, the memory of idle
// client connections, and where each proxy spends its CPU (perf for all
// three, pprof for the two Go ones, syscalls counted by perf's
// tracepoints). bench/README.md, "Event-loop prototype (issue 16)",
// describes the method and reads the results.

import (
	"bufio"
	"errors"
	"fmt"
	"log"
	"math"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// evOptions are the -evloop flags.
type evOptions struct {
	rounds, requests int
	spBin, evBin     string
	idle             []int    // idle connection counts for the memory figures
	phases           []string // unpinned, pinned, memory, profile
	profDir          string
	fileLimit        int // RLIMIT_NOFILE in force for the harness and the proxies
}

// proxyKind is one column of the report: a proxy and how it is run.
type proxyKind struct {
	name string // column label
	note string // how it runs, for the legend
}

var (
	kindNC  = proxyKind{"nc", "nutcracker 0.5.0 -v 4"}
	kindSP  = proxyKind{"sp", "shardproxy (bin/shardproxy), default GOMAXPROCS (half the CPUs)"}
	kindEV  = proxyKind{"ev", "prototype, default GOMAXPROCS and as many loops"}
	kindEV1 = proxyKind{"ev1", "prototype, GOMAXPROCS=1, one loop"}
)

// evWorkloads are make bench's rows that the issue asks for.
func evWorkloads() []workload {
	return []workload{
		{"GET -P 1", 50, []string{"-P", "1", "-t", "get"}, false},
		{"SET -P 1", 50, []string{"-P", "1", "-t", "set"}, false},
		{"GET -P 16", 50, []string{"-P", "16", "-t", "get"}, false},
		{"SET -P 16", 50, []string{"-P", "16", "-t", "set"}, false},
		{"GET 1 client", 1, []string{"-P", "1", "-t", "get"}, false},
	}
}

func evloopMain(o evOptions) {
	maxIdle := 0
	for _, n := range o.idle {
		maxIdle = max(maxIdle, n)
	}
	o.fileLimit = raiseFileLimitHard(2*maxIdle + 10000)
	for _, bin := range []string{o.spBin, o.evBin} {
		if _, err := os.Stat(bin); err != nil {
			log.Fatalf("%v (make bench-evloop builds both binaries)", err)
		}
	}
	if slices.Contains(o.phases, "profile") {
		if o.profDir == "" {
			dir, err := os.MkdirTemp("", "evloop-profiles")
			check(err)
			o.profDir = dir
		}
		check(os.MkdirAll(o.profDir, 0o755))
	}
	start := time.Now()
	fmt.Printf("Measured %s on %d CPUs: %d rounds × %d requests (GET 1 client: %d), median of rounds, redis-benchmark (random keys over 100,000, 64-byte values), 2 redis-servers.\n\n",
		time.Now().UTC().Format("2006-01-02"), runtime.NumCPU(), o.rounds, o.requests, o.requests/5)
	fmt.Println("Columns: " + strings.Join([]string{legend(kindNC), legend(kindSP), legend(kindEV), legend(kindEV1)}, "; ") + ".")
	fmt.Println()
	for _, ph := range o.phases {
		switch ph {
		case "unpinned":
			evThroughput(&o, false, []proxyKind{kindNC, kindSP, kindEV, kindEV1})
		case "pinned":
			// Under taskset -c 0 every Go proxy sees one CPU: GOMAXPROCS
			// is 1 and the prototype runs one loop, so ev1 = ev.
			evThroughput(&o, true, []proxyKind{kindNC, kindSP, kindEV})
		case "memory":
			evMemory(&o, []proxyKind{kindNC, kindSP, kindEV, kindEV1})
		case "profile":
			evProfiles(&o, []proxyKind{kindNC, kindSP, kindEV})
		default:
			log.Fatalf("-evloop-phases: unknown phase %q (unpinned, pinned, memory, profile)", ph)
		}
	}
	if slices.Contains(o.phases, "profile") {
		fmt.Printf("Profiles kept in %s. ", o.profDir)
	}
	fmt.Printf("The whole run took %s.\n", time.Since(start).Round(time.Second))
}

func legend(k proxyKind) string { return k.name + " = " + k.note }

// bed is one setting: two redis-servers and the proxies started over
// them; pinned puts every proxy on CPU 0 and the servers and the load on
// CPU 1.
type bed struct {
	o          *evOptions
	dir        string
	pinned     bool
	redisPorts []int
	redisPIDs  []int
	procs      []*exec.Cmd
}

func newBed(o *evOptions, pinned bool) *bed {
	dir, err := os.MkdirTemp("", "evloop-bench")
	check(err)
	b := &bed{o: o, dir: dir, pinned: pinned}
	for range 2 {
		port := freePort()
		cmd := b.spawn(b.loadPin(), nil, lookPath("redis-server"), "--port", strconv.Itoa(port), "--bind", "127.0.0.1",
			"--save", "", "--appendonly", "no", "--dir", dir, "--protected-mode", "no")
		b.redisPorts = append(b.redisPorts, port)
		b.redisPIDs = append(b.redisPIDs, cmd.Process.Pid)
		waitPort(port)
	}
	return b
}

// proxyPin and loadPin are the taskset prefixes of the pinned setting.
func (b *bed) proxyPin() []string {
	if !b.pinned {
		return nil
	}
	return []string{lookPath("taskset"), "-c", "0"}
}

func (b *bed) loadPin() []string {
	if !b.pinned {
		return nil
	}
	return []string{lookPath("taskset"), "-c", "1"}
}

// spawn starts prefix + name + args with its output in the bed's
// directory; the process dies with the harness.
func (b *bed) spawn(prefix, env []string, name string, args ...string) *exec.Cmd {
	argv := append(append(slices.Clone(prefix), name), args...)
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = append(os.Environ(), env...)
	logf, err := os.Create(filepath.Join(b.dir, fmt.Sprintf("%s-%d.log", filepath.Base(name), len(b.procs))))
	check(err)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	check(cmd.Start())
	b.procs = append(b.procs, cmd)
	return cmd
}

// startProxy starts a proxy of kind k over the bed's servers and returns
// it as a target once it accepts connections. env is added to its
// environment (SHARDPROXY_CPUPROFILE).
func (b *bed) startProxy(k proxyKind, env []string) (target, *exec.Cmd) {
	port := freePort()
	yml := filepath.Join(b.dir, fmt.Sprintf("%s-%d.yml", k.name, port))
	check(os.WriteFile(yml, fmt.Appendf(nil,
		"bench:\n  listen: 127.0.0.1:%d\n  redis: true\n  hash: fnv1a_64\n  distribution: ketama\n  timeout: 2000\n  servers:\n   - 127.0.0.1:%d:1\n   - 127.0.0.1:%d:1\n",
		port, b.redisPorts[0], b.redisPorts[1]), 0o644))
	logPath := strings.TrimSuffix(yml, ".yml") + ".log"
	var cmd *exec.Cmd
	switch k {
	case kindNC:
		cmd = b.spawn(b.proxyPin(), env, lookPath("nutcracker"), "-c", yml, "-v", "4", "-o", logPath,
			"-s", strconv.Itoa(freePort()), "-a", "127.0.0.1", "-p", strings.TrimSuffix(yml, ".yml")+".pid")
	case kindSP:
		cmd = b.spawn(b.proxyPin(), env, b.o.spBin, "-c", yml, "-v", "4", "-o", logPath, "-s", strconv.Itoa(freePort()), "-a", "127.0.0.1")
	case kindEV, kindEV1:
		if k == kindEV1 {
			env = append(env, "GOMAXPROCS=1")
		}
		cmd = b.spawn(b.proxyPin(), env, b.o.evBin, "-listen", fmt.Sprintf("127.0.0.1:%d", port),
			"-servers", fmt.Sprintf("127.0.0.1:%d,127.0.0.1:%d", b.redisPorts[0], b.redisPorts[1]))
	}
	waitPort(port)
	return target{k.name, port, cmd.Process.Pid}, cmd
}

// stop ends a process with SIGTERM (the Go proxies write their profile
// then) and waits for it.
func (b *bed) stop(cmd *exec.Cmd) {
	_ = cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { _, _ = cmd.Process.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		_ = cmd.Process.Kill()
		<-done
	}
	b.procs = slices.DeleteFunc(b.procs, func(c *exec.Cmd) bool { return c == cmd })
}

func (b *bed) close() {
	for len(b.procs) > 0 {
		b.stop(b.procs[len(b.procs)-1])
	}
	os.RemoveAll(b.dir)
}

func (b *bed) run(tg target, w workload, n int) sample {
	return runLoad(b.loadPin(), tg, w, n, b.redisPIDs)
}

// evThroughput runs every workload against every proxy in alternating
// rounds and prints throughput, CPU per request and latency.
func evThroughput(o *evOptions, pinned bool, kinds []proxyKind) {
	b := newBed(o, pinned)
	defer b.close()
	var targets []target
	for _, k := range kinds {
		tg, _ := b.startProxy(k, nil)
		targets = append(targets, tg)
	}
	workloads := evWorkloads()
	results := map[string]map[string][]sample{}
	for _, w := range workloads {
		results[w.name] = map[string][]sample{}
	}
	for round := range o.rounds {
		order := roundOrder(targets, round)
		for _, w := range workloads {
			for _, tg := range order {
				n := o.requests
				if w.clients == 1 {
					n /= 5
				}
				results[w.name][tg.name] = append(results[w.name][tg.name], b.run(tg, w, n))
			}
		}
		log.Printf("evloop %s: round %d/%d done", settingName(pinned), round+1, o.rounds)
	}

	if pinned {
		fmt.Println("### Pinned: the proxy on CPU 0, redis-servers and redis-benchmark on CPU 1")
	} else {
		fmt.Println("### Unpinned: everything shares both CPUs")
	}
	fmt.Println()
	med := func(w workload, k proxyKind) sample { return median(results[w.name][k.name]) }
	header := func(first string, cols []string) {
		fmt.Printf("| %s | %s |\n|%s\n", first, strings.Join(cols, " | "), strings.Repeat("---|", len(cols)+1))
	}
	var names, ratios []string
	for _, k := range kinds {
		names = append(names, k.name)
		if k != kindNC {
			ratios = append(ratios, k.name+"/nc")
		}
	}
	fmt.Println("Throughput, requests/s, and the ratio to nutcracker:")
	fmt.Println()
	header("workload", append(slices.Clone(names), ratios...))
	for _, w := range workloads {
		var cells, rs []string
		for _, k := range kinds {
			cells = append(cells, fmt.Sprintf("%.0f", med(w, k).rps))
			if k != kindNC {
				rs = append(rs, fmt.Sprintf("**%.2f**", med(w, k).rps/med(w, kindNC).rps))
			}
		}
		fmt.Printf("| %s (%d clients) | %s |\n", w.name, w.clients, strings.Join(append(cells, rs...), " | "))
	}
	fmt.Println()
	fmt.Println("CPU time per request, µs: the proxy's (all threads, from schedstat), its ratio to nutcracker's, and the two redis-servers' (lower = more requests per read: batching).")
	fmt.Println()
	header("workload", append(append(slices.Clone(names), ratios...), "redis "+strings.Join(names, " / ")))
	for _, w := range workloads {
		var cells, rs, redis []string
		for _, k := range kinds {
			cells = append(cells, fmt.Sprintf("%.2f", med(w, k).proxyCPU/1000))
			redis = append(redis, fmt.Sprintf("%.2f", med(w, k).redisCPU/1000))
			if k != kindNC {
				rs = append(rs, fmt.Sprintf("**%.2f**", med(w, k).proxyCPU/med(w, kindNC).proxyCPU))
			}
		}
		fmt.Printf("| %s (%d clients) | %s | %s |\n", w.name, w.clients, strings.Join(append(cells, rs...), " | "), strings.Join(redis, " / "))
	}
	fmt.Println()
	fmt.Println("Latency p50 / p99, ms (redis-benchmark's):")
	fmt.Println()
	header("workload", names)
	for _, w := range workloads {
		var cells []string
		for _, k := range kinds {
			s := med(w, k)
			cells = append(cells, fmt.Sprintf("%.3f / %.3f", s.p50, s.p99))
		}
		fmt.Printf("| %s (%d clients) | %s |\n", w.name, w.clients, strings.Join(cells, " | "))
	}
	fmt.Println()
}

func settingName(pinned bool) string {
	if pinned {
		return "pinned"
	}
	return "unpinned"
}

// evMemory measures the RSS growth per idle client connection, each
// proxy in a fresh process per count (so that one count's heap does not
// absorb the next one's growth), after a short load so that buffers and
// server connections exist as they would in service.
func evMemory(o *evOptions, kinds []proxyKind) {
	b := newBed(o, false)
	defer b.close()
	warm := workload{"warm", 50, []string{"-P", "1", "-t", "get"}, false}
	perConn := map[int]map[string]float64{}
	label := map[int]string{}
	// Each connection is a descriptor in the proxy and one in the
	// harness; keep a margin for everything else.
	feasible := o.fileLimit - 2000
	var counts []int
	for _, n := range o.idle {
		label[n] = strconv.Itoa(n)
		if n > feasible {
			label[feasible] = fmt.Sprintf("%d (%d asked: RLIMIT_NOFILE is %d and could not be raised)", feasible, n, o.fileLimit)
			n = feasible
		}
		if !slices.Contains(counts, n) {
			counts = append(counts, n)
		}
	}
	for _, n := range counts {
		perConn[n] = map[string]float64{}
		for _, k := range kinds {
			tg, cmd := b.startProxy(k, nil)
			b.run(tg, warm, 5000)
			time.Sleep(500 * time.Millisecond)
			perConn[n][k.name] = idleGrowth(tg.port, tg.pid, n)
			b.stop(cmd)
		}
		log.Printf("evloop memory: %d idle connections done", n)
	}
	fmt.Println("### Memory per idle client connection")
	fmt.Println()
	fmt.Println("RSS growth of a fresh proxy (after 5,000 GETs) while it holds n idle client connections, ÷ n, in bytes; clients dial from 127.0.0.2, 127.0.0.3, … (at most 20,000 connections per source address).")
	fmt.Println()
	var names []string
	for _, k := range kinds {
		names = append(names, k.name)
	}
	fmt.Printf("| idle connections | %s |\n|%s\n", strings.Join(names, " | "), strings.Repeat("---|", len(names)+1))
	for _, n := range counts {
		var cells []string
		for _, k := range kinds {
			cells = append(cells, fmt.Sprintf("%.0f", perConn[n][k.name]))
		}
		fmt.Printf("| %s | %s |\n", label[n], strings.Join(cells, " | "))
	}
	fmt.Println()
}

// perSource is how many connections one loopback source address makes:
// below the 28,232 ports of Linux's default ephemeral range.
const perSource = 20000

// idleGrowth opens n idle connections to port, waits until the proxy
// (pid) holds them all, and returns its RSS growth per connection.
func idleGrowth(port, pid, n int) float64 {
	t0 := time.Now()
	fd0 := countFDs(pid)
	before := rss(pid)
	conns := make([]*net.TCPConn, n)
	var wg sync.WaitGroup
	var mu sync.Mutex
	failed := 0
	const dialers = 16
	for d := range dialers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := d; i < n; i += dialers {
				src := &net.TCPAddr{IP: net.IPv4(127, 0, 0, byte(2+i/perSource))}
				dialer := net.Dialer{LocalAddr: src, Timeout: 10 * time.Second, Control: bindNoPort}
				c, err := dialer.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port))
				if err != nil {
					mu.Lock()
					if failed == 0 {
						log.Printf("idle connection %d from %s: %v", i, src.IP, err)
					}
					failed++
					mu.Unlock()
					continue
				}
				tc := c.(*net.TCPConn)
				// Closed with a reset: no TIME_WAIT left to hold the
				// source ports for the next proxy's turn.
				_ = tc.SetLinger(0)
				conns[i] = tc
			}
		}()
	}
	wg.Wait()
	dialled := time.Since(t0)
	opened := n - failed
	deadline := time.Now().Add(60 * time.Second)
	for countFDs(pid) < fd0+opened && time.Now().Before(deadline) {
		time.Sleep(250 * time.Millisecond)
	}
	held := countFDs(pid) - fd0
	time.Sleep(time.Second) // let the proxy settle (and Go's heap grow to its goal)
	after := rss(pid)
	for _, c := range conns {
		if c != nil {
			c.Close()
		}
	}
	if failed > 0 || held < opened {
		log.Printf("port %d: %d of %d connections opened, the proxy holds %d", port, opened, n, held)
	}
	log.Printf("port %d: %d idle connections dialled in %s, measured after %s", port, opened,
		dialled.Round(time.Millisecond), time.Since(t0).Round(time.Millisecond))
	if opened == 0 {
		return math.NaN()
	}
	return float64(after-before) / float64(opened)
}

// bindNoPort sets IP_BIND_ADDRESS_NO_PORT on a dialling socket: bind(2)
// then takes only the source address and connect(2) picks the port, which
// is much faster than bind searching the port range for each of tens of
// thousands of sockets.
func bindNoPort(_, _ string, rc syscall.RawConn) error {
	var serr error
	err := rc.Control(func(fd uintptr) {
		serr = unix.SetsockoptInt(int(fd), unix.IPPROTO_IP, unix.IP_BIND_ADDRESS_NO_PORT, 1)
	})
	return errors.Join(err, serr)
}

func countFDs(pid int) int {
	ents, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	check(err)
	return len(ents)
}

// raiseFileLimitHard raises RLIMIT_NOFILE to n, the hard limit too when
// it is lower (which takes CAP_SYS_RESOURCE): the harness and the proxies
// it starts (which inherit it, nutcracker included) hold the idle
// connections. It returns the limit in force, at most n; when the hard
// limit cannot be raised, the soft one is raised to it.
func raiseFileLimitHard(n int) int {
	var rl syscall.Rlimit
	check(syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl))
	if rl.Cur >= uint64(n) {
		return n
	}
	want := syscall.Rlimit{Cur: uint64(n), Max: max(rl.Max, uint64(n))}
	err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &want)
	if err == nil {
		return n
	}
	log.Printf("RLIMIT_NOFILE %d: %v; staying at the hard limit %d", n, err, rl.Max)
	rl.Cur = rl.Max
	check(syscall.Setrlimit(syscall.RLIMIT_NOFILE, &rl))
	return int(rl.Max)
}

// parseCounts reads "5000,50000".
func parseCounts(s string) []int {
	var out []int
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f == "" {
			continue
		}
		n, err := strconv.Atoi(f)
		if err != nil || n < 1 {
			log.Fatalf("-evloop-idle %q: want counts like 5000,50000", s)
		}
		out = append(out, n)
	}
	return out
}

// The profile phase: pinned, GET -P 1 with 50 clients, one fresh process
// per proxy. Syscalls are counted in the kernel (perf stat on the syscall
// tracepoints: no ptrace, so batching is not disturbed as strace would),
// then perf record samples the process, kernel included, while the Go
// proxies also write a pprof profile (SHARDPROXY_CPUPROFILE).

// countedSyscalls are the syscalls counted one by one; raw_syscalls
// counts them all.
var countedSyscalls = []string{"read", "write", "writev", "epoll_wait", "epoll_pwait", "epoll_ctl", "futex", "nanosleep", "getpeername"}

type profResult struct {
	syscalls map[string]float64 // per request; "all" is every syscall
	perf     perfSplit
	pprof    []share // Go proxies only
	perfData string
	pprofOut string
}

func evProfiles(o *evOptions, kinds []proxyKind) {
	b := newBed(o, true)
	defer b.close()
	w := workload{"GET -P 1", 50, []string{"-P", "1", "-t", "get"}, false}
	results := map[string]profResult{}
	for _, k := range kinds {
		var r profResult
		var env []string
		if k != kindNC {
			r.pprofOut = filepath.Join(o.profDir, k.name+".pprof")
			env = []string{"SHARDPROXY_CPUPROFILE=" + r.pprofOut}
		}
		tg, cmd := b.startProxy(k, env)
		b.run(tg, w, o.requests/10)
		r.syscalls = b.countSyscalls(tg, w, o.requests)
		r.perfData = filepath.Join(o.profDir, k.name+".perf.data")
		b.perfRecord(tg, w, o.requests, r.perfData)
		b.stop(cmd)
		r.perf = perfReport(r.perfData)
		if r.pprofOut != "" {
			bin := o.spBin
			if k != kindSP {
				bin = o.evBin
			}
			r.pprof = pprofShares(bin, r.pprofOut)
		}
		results[k.name] = r
		log.Printf("evloop profile: %s done", k.name)
	}

	fmt.Println("### Where the CPU goes (pinned, GET -P 1, 50 clients)")
	fmt.Println()
	fmt.Printf("System calls per request (perf stat on the syscall tracepoints, %d requests):\n\n", o.requests)
	cols := append([]string{"all"}, countedSyscalls...)
	fmt.Printf("| proxy | %s | other |\n|%s\n", strings.Join(cols, " | "), strings.Repeat("---|", len(cols)+2))
	for _, k := range kinds {
		s := results[k.name].syscalls
		var cells []string
		rest := s["all"]
		for _, c := range cols {
			cells = append(cells, fmt.Sprintf("%.2f", s[c]))
			if c != "all" {
				rest -= s[c]
			}
		}
		fmt.Printf("| %s | %s | %.2f |\n", k.name, strings.Join(cells, " | "), rest)
	}
	fmt.Println()
	fmt.Println("perf record (cpu-clock, call graphs): share of the proxy's samples in user space and in the kernel, and the kernel time under each system call (inclusive: the socket, TCP and loopback work it causes, and any sleep in it).")
	fmt.Println()
	fmt.Printf("| proxy | user | kernel | %s | other kernel |\n|%s\n", strings.Join(perfGroupNames(), " | "), strings.Repeat("---|", len(perfGroups)+4))
	for _, k := range kinds {
		p := results[k.name].perf
		cells := []string{pct(p.user), pct(p.kernel)}
		rest := p.kernel
		for _, g := range perfGroups {
			cells = append(cells, pct(p.groups[g.name]))
			rest -= p.groups[g.name]
		}
		fmt.Printf("| %s | %s | %s |\n", k.name, strings.Join(cells, " | "), pct(max(rest, 0)))
	}
	fmt.Println()
	fmt.Println("Top symbols (self time, perf):")
	fmt.Println()
	for _, k := range kinds {
		fmt.Printf("- %s: %s\n", k.name, strings.Join(results[k.name].perf.top, ", "))
	}
	fmt.Println()
	fmt.Println("pprof of the Go proxies (the whole process life: warm-up and both runs), by what the sampled stack is doing:")
	fmt.Println()
	var goKinds []proxyKind
	for _, k := range kinds {
		if results[k.name].pprof != nil {
			goKinds = append(goKinds, k)
		}
	}
	var gnames []string
	for _, k := range goKinds {
		gnames = append(gnames, k.name)
	}
	fmt.Printf("| category | %s |\n|%s\n", strings.Join(gnames, " | "), strings.Repeat("---|", len(gnames)+1))
	for _, c := range pprofCategories {
		var cells []string
		for _, k := range goKinds {
			v := 0.0
			for _, s := range results[k.name].pprof {
				if s.name == c {
					v = s.frac
				}
			}
			cells = append(cells, pct(v))
		}
		fmt.Printf("| %s | %s |\n", c, strings.Join(cells, " | "))
	}
	fmt.Println()
}

func pct(f float64) string { return fmt.Sprintf("%.1f %%", 100*f) }

// countSyscalls counts the proxy's system calls during one run.
func (b *bed) countSyscalls(tg target, w workload, n int) map[string]float64 {
	out := filepath.Join(b.dir, tg.name+".stat")
	events := []string{"raw_syscalls:sys_enter"}
	for _, s := range countedSyscalls {
		events = append(events, "syscalls:sys_enter_"+s)
	}
	perf := b.spawn(b.loadPin(), nil, lookPath("perf"), "stat", "-x", ",", "-o", out, "-e", strings.Join(events, ","), "-p", strconv.Itoa(tg.pid))
	time.Sleep(300 * time.Millisecond)
	b.run(tg, w, n)
	b.interrupt(perf)
	counts := map[string]float64{}
	data, err := os.ReadFile(out)
	check(err)
	for _, line := range strings.Split(string(data), "\n") {
		f := strings.Split(line, ",")
		if len(f) < 3 || strings.HasPrefix(line, "#") {
			continue
		}
		v, err := strconv.ParseFloat(f[0], 64)
		if err != nil {
			continue // <not counted>, <not supported>
		}
		name := strings.TrimPrefix(strings.TrimPrefix(f[2], "syscalls:sys_enter_"), "raw_syscalls:sys_enter")
		if name == "" {
			name = "all"
		}
		counts[name] = v / float64(n)
	}
	if _, ok := counts["all"]; !ok {
		log.Fatalf("perf stat counted nothing:\n%s", data)
	}
	return counts
}

// interrupt stops perf (which then writes its output) and waits for it.
func (b *bed) interrupt(cmd *exec.Cmd) {
	_ = cmd.Process.Signal(os.Interrupt)
	_, _ = cmd.Process.Wait()
	b.procs = slices.DeleteFunc(b.procs, func(c *exec.Cmd) bool { return c == cmd })
}

// perfRecord samples the proxy, kernel included, during one run.
func (b *bed) perfRecord(tg target, w workload, n int, out string) {
	perf := b.spawn(b.loadPin(), nil, lookPath("perf"), "record", "-F", "2999", "-g", "-o", out, "-p", strconv.Itoa(tg.pid))
	time.Sleep(300 * time.Millisecond)
	b.run(tg, w, n)
	b.interrupt(perf)
}

// perfGroups name the kernel entry points whose inclusive time is
// reported: each system call the proxies make on the request path, and
// the ones the Go runtime makes for itself.
var perfGroups = []struct {
	name string
	re   *regexp.Regexp
}{
	{"write", regexp.MustCompile(`^(ksys_write|do_writev)$`)},
	{"read", regexp.MustCompile(`^ksys_read$`)},
	{"epoll_ctl", regexp.MustCompile(`^__x64_sys_epoll_ctl$`)},
	{"epoll_wait", regexp.MustCompile(`^__x64_sys_epoll_(p?wait)$`)},
	{"futex, nanosleep", regexp.MustCompile(`^__x64_sys_(futex|nanosleep)$`)},
}

func perfGroupNames() []string {
	var out []string
	for _, g := range perfGroups {
		out = append(out, g.name)
	}
	return out
}

type perfSplit struct {
	user, kernel float64
	groups       map[string]float64
	top          []string
}

var perfLine = regexp.MustCompile(`^\s*([0-9.]+)%\s+(?:([0-9.]+)%\s+)?(?:\[([.a-z])\]\s+)?(.+?)\s*$`)

// perfReport reads a perf.data with perf report: the user/kernel split
// (by DSO), the inclusive kernel time of perfGroups, and the top symbols.
func perfReport(data string) perfSplit {
	report := func(args ...string) []string {
		out, err := exec.Command(lookPath("perf"), append([]string{"report", "-i", data, "--stdio", "-q", "-g", "none"}, args...)...).Output()
		if err != nil {
			log.Fatalf("perf report %v: %v", args, err)
		}
		return strings.Split(string(out), "\n")
	}
	p := perfSplit{groups: map[string]float64{}}
	for _, line := range report("--no-children", "--sort", "dso") {
		m := perfLine.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		v, _ := strconv.ParseFloat(m[1], 64)
		if strings.Contains(m[4], "kernel.kallsyms") {
			p.kernel += v / 100
		} else {
			p.user += v / 100
		}
	}
	for _, line := range report("--children", "--sort", "sym") {
		m := perfLine.FindStringSubmatch(line)
		if m == nil || m[3] != "k" {
			continue
		}
		v, _ := strconv.ParseFloat(m[1], 64)
		for _, g := range perfGroups {
			if g.re.MatchString(m[4]) {
				p.groups[g.name] += v / 100
			}
		}
	}
	for _, line := range report("--no-children", "--sort", "sym") {
		m := perfLine.FindStringSubmatch(line)
		if m == nil || len(p.top) == 8 {
			continue
		}
		p.top = append(p.top, fmt.Sprintf("%s %s%%", m[4], m[1]))
	}
	return p
}

// pprofCategories, in the order they are tried on each sampled stack.
var pprofCategories = []string{
	"GC and allocation",
	"runtime: scheduling, netpoller, syscall entry/exit",
	"syscall: write",
	"syscall: read",
	"syscall: epoll",
	"syscall: other",
	"RESP parsing",
	"the rest (proxy code, runtime helpers)",
}

type share struct {
	name string
	frac float64
}

var (
	gcFrames    = regexp.MustCompile(`^runtime\.(gcBgMarkWorker|gcDrain|gcAssistAlloc|mallocgc|bgsweep|bgscavenge|scanobject|markroot|gcStart|growslice|newobject)`)
	schedFrames = regexp.MustCompile(`^runtime\.(schedule|findRunnable|park_m|mcall|gopark|goready|ready|wakep|startm|stopm|handoffp|sysmon|entersyscall|exitsyscall|reentersyscall|entersyscallblock|netpoll|notesleep|notewakeup|futexsleep|futexwakeup|goexit0|gosched_m|goschedImpl|Gosched|newproc|runqsteal|stealWork|checkTimers|mstart|usleep|osyield|futex|epollwait|lock2|unlock2)$`)
	syscallLeaf = regexp.MustCompile(`^(internal/runtime/syscall/linux\.Syscall6|syscall\.(Raw)?Syscall6?|syscall\.rawSyscallNoError|golang\.org/x/sys/unix\.(Raw)?Syscall(6|NoError)?)$`)
	syscallName = regexp.MustCompile(`^(?:syscall|golang\.org/x/sys/unix|internal/poll)\.(?:\(\*?[A-Za-z]+\)\.)?([A-Za-z0-9_]+)$`)
	respFrames  = regexp.MustCompile(`/internal/resp\.`)
)

// pprofShares classifies every sample of a CPU profile by its stack
// (go tool pprof -traces).
func pprofShares(bin, prof string) []share {
	out, err := exec.Command(lookPath("go"), "tool", "pprof", "-traces", bin, prof).Output()
	if err != nil {
		log.Fatalf("go tool pprof -traces %s: %v", prof, err)
	}
	totals := map[string]float64{}
	var all float64
	var value float64
	var stack []string
	flush := func() {
		if len(stack) > 0 {
			totals[classify(stack)] += value
			all += value
		}
		stack = nil
	}
	sc := bufio.NewScanner(strings.NewReader(string(out)))
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "-----------+") {
			flush()
			continue
		}
		f := strings.Fields(line)
		if len(f) == 0 || strings.Contains(line, ": ") {
			continue // the header
		}
		if len(stack) == 0 && len(f) >= 2 {
			d, err := time.ParseDuration(f[0])
			if err != nil {
				continue
			}
			value = float64(d)
			f = f[1:]
		}
		stack = append(stack, f[0])
	}
	flush()
	var shares []share
	for _, c := range pprofCategories {
		if all > 0 {
			shares = append(shares, share{c, totals[c] / all})
		}
	}
	return shares
}

// classify names what a stack (leaf first) is doing.
func classify(stack []string) string {
	has := func(re *regexp.Regexp) bool {
		return slices.ContainsFunc(stack, re.MatchString)
	}
	switch {
	case has(gcFrames):
		return pprofCategories[0]
	case has(schedFrames):
		return pprofCategories[1]
	case syscallLeaf.MatchString(stack[0]):
		// The first frame above the raw syscall that names it.
		for _, f := range stack[1:] {
			m := syscallName.FindStringSubmatch(f)
			if m == nil || syscallLeaf.MatchString(f) {
				continue
			}
			name := strings.ToLower(m[1])
			switch {
			case strings.Contains(name, "write"):
				return pprofCategories[2]
			case strings.Contains(name, "read"):
				return pprofCategories[3]
			case strings.Contains(name, "epoll"):
				return pprofCategories[4]
			}
			return pprofCategories[5]
		}
		return pprofCategories[5]
	case has(respFrames):
		return pprofCategories[6]
	}
	return pprofCategories[7]
}
