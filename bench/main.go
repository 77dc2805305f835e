// Command bench compares shardproxy with nutcracker and with direct
// redis-server access on this machine, in alternating rounds, and prints a
// Markdown report (make bench). See bench/README.md for the method.
package main

import (
	"bufio"
	"encoding/csv"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

type target struct {
	name string
	port int
	pid  int // the process whose CPU is charged (0: none)
}

type workload struct {
	name    string
	clients int
	args    []string // redis-benchmark arguments after -c/-n
	direct  bool     // also run against a single redis-server
}

type sample struct {
	rps, p50, p99 float64
	proxyCPU      float64 // ns per request
	redisCPU      float64 // ns per request, both servers
}

func main() {
	rounds := flag.Int("rounds", 5, "alternating rounds")
	requests := flag.Int("n", 100000, "requests per run")
	bin := flag.String("shardproxy", "bin/shardproxy", "shardproxy binary")
	idle := flag.Int("idle", 5000, "idle connections for the memory figure")
	pubsubOnly := flag.Bool("pubsub", false, "run only the pub/sub fan-out row")
	evMode := flag.Bool("evloop", false, "run only the event-loop comparison of issue 16 (bench/evloop.go)")
	evBin := flag.String("evloop-bin", "bin/evloop", "the event-loop prototype's binary (go build -o bin/evloop ./bench/evloop)")
	evIdle := flag.String("evloop-idle", "5000,50000", "-evloop: idle client connections for the memory figures")
	evPhases := flag.String("evloop-phases", "unpinned,pinned,memory,profile", "-evloop: which parts to run")
	evProf := flag.String("evloop-profiles", "", "-evloop: keep the profiles in this directory (default: a new one in the temp dir)")
	flag.Parse()
	log.SetFlags(0)
	if *evMode {
		evloopMain(evOptions{rounds: *rounds, requests: *requests, spBin: *bin, evBin: *evBin,
			idle: parseCounts(*evIdle), phases: strings.Split(*evPhases, ","), profDir: *evProf})
		return
	}
	raiseFileLimit(*idle*3 + 1000)

	dir, err := os.MkdirTemp("", "shardproxy-bench")
	check(err)
	defer os.RemoveAll(dir)
	var procs []*exec.Cmd
	defer func() {
		for _, p := range procs {
			_ = p.Process.Kill()
			_, _ = p.Process.Wait()
		}
	}()
	startEnv := func(env []string, name string, args ...string) *exec.Cmd {
		cmd := exec.Command(name, args...)
		cmd.Env = append(os.Environ(), env...)
		logf, err := os.Create(filepath.Join(dir, filepath.Base(name)+strconv.Itoa(len(procs))+".log"))
		check(err)
		cmd.Stdout, cmd.Stderr = logf, logf
		cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
		check(cmd.Start())
		procs = append(procs, cmd)
		return cmd
	}
	start := func(name string, args ...string) *exec.Cmd { return startEnv(nil, name, args...) }

	var redisPorts []int
	var redisPIDs []int
	for range 2 {
		port := freePort()
		cmd := start(lookPath("redis-server"), "--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--save", "",
			"--appendonly", "no", "--dir", dir, "--protected-mode", "no")
		redisPorts = append(redisPorts, port)
		redisPIDs = append(redisPIDs, cmd.Process.Pid)
		waitPort(port)
	}
	pool := func(port int) string {
		return fmt.Sprintf("bench:\n  listen: 127.0.0.1:%d\n  redis: true\n  hash: fnv1a_64\n  distribution: ketama\n  timeout: 2000\n  servers:\n   - 127.0.0.1:%d:1\n   - 127.0.0.1:%d:1\n",
			port, redisPorts[0], redisPorts[1])
	}
	ncPort, spPort := freePort(), freePort()
	check(os.WriteFile(filepath.Join(dir, "nc.yml"), []byte(pool(ncPort)), 0o644))
	check(os.WriteFile(filepath.Join(dir, "sp.yml"), []byte(pool(spPort)), 0o644))
	nc := start(lookPath("nutcracker"), "-c", filepath.Join(dir, "nc.yml"), "-v", "4", "-o", filepath.Join(dir, "nc.log"),
		"-s", strconv.Itoa(freePort()), "-a", "127.0.0.1", "-p", filepath.Join(dir, "nc.pid"))
	sp := start(*bin, "-c", filepath.Join(dir, "sp.yml"), "-v", "4", "-o", filepath.Join(dir, "sp.log"),
		"-s", strconv.Itoa(freePort()), "-a", "127.0.0.1")
	// The same binary on every core (GOMAXPROCS = all CPUs), for comparison
	// with its default of half the cores.
	sp1Port := freePort()
	check(os.WriteFile(filepath.Join(dir, "sp1.yml"), []byte(pool(sp1Port)), 0o644))
	sp1 := startEnv([]string{"GOMAXPROCS=" + strconv.Itoa(runtime.NumCPU())}, *bin, "-c", filepath.Join(dir, "sp1.yml"), "-v", "4", "-o", filepath.Join(dir, "sp1.log"),
		"-s", strconv.Itoa(freePort()), "-a", "127.0.0.1")
	waitPort(ncPort)
	waitPort(spPort)
	waitPort(sp1Port)

	targets := []target{
		{"direct", redisPorts[0], 0},
		{"nutcracker", ncPort, nc.Process.Pid},
		{"shardproxy", spPort, sp.Process.Pid},
		{"shardproxy-1", sp1Port, sp1.Process.Pid},
	}
	// MGET keys spread over both servers (by shardproxy's own placement,
	// which the tests prove equal to nutcracker's).
	mget := append([]string{"MGET"}, spreadKeys(spPort, redisPorts, 10)...)
	workloads := []workload{
		{"GET -P 1", 50, []string{"-P", "1", "-t", "get"}, true},
		{"SET -P 1", 50, []string{"-P", "1", "-t", "set"}, true},
		{"GET -P 16", 50, []string{"-P", "16", "-t", "get"}, true},
		{"SET -P 16", 50, []string{"-P", "16", "-t", "set"}, true},
		{"MGET 10 keys", 50, mget, false},
		{"GET 1 client", 1, []string{"-P", "1", "-t", "get"}, true},
	}

	if *pubsubOnly {
		pubsubReport(targets[0], targets[2], redisPIDs, *rounds, *requests)
		return
	}
	results := map[string]map[string][]sample{}
	for _, w := range workloads {
		results[w.name] = map[string][]sample{}
	}
	for round := 0; round < *rounds; round++ {
		order := roundOrder(targets, round)
		for _, w := range workloads {
			for _, tg := range order {
				if tg.name == "direct" && !w.direct {
					continue
				}
				n := *requests
				if w.clients == 1 {
					n /= 5
				}
				s := runOne(tg, w, n, redisPIDs)
				results[w.name][tg.name] = append(results[w.name][tg.name], s)
			}
		}
		log.Printf("round %d/%d done", round+1, *rounds)
	}

	fmt.Printf("Measured %s, %d rounds × %d requests (median of rounds), redis-benchmark, 2 redis-servers, nutcracker -v 4.\n\n",
		time.Now().UTC().Format("2006-01-02"), *rounds, *requests)
	fmt.Printf("Throughput (requests/s) and the ratio to nutcracker; sp = shardproxy as it runs by default (GOMAXPROCS = half the CPUs), spN = GOMAXPROCS = all %d CPUs.", runtime.NumCPU())
	fmt.Println()
	fmt.Println()
	fmt.Println("| workload | direct | nutcracker | sp | spN | sp/nc | spN/nc |")
	fmt.Println("|---|---|---|---|---|---|---|")
	for _, w := range workloads {
		r := results[w.name]
		d, n, s, s1 := median(r["direct"]), median(r["nutcracker"]), median(r["shardproxy"]), median(r["shardproxy-1"])
		direct := "—"
		if w.direct {
			direct = fmt.Sprintf("%.0f", d.rps)
		}
		fmt.Printf("| %s (%d clients) | %s | %.0f | %.0f | %.0f | **%.2f** | **%.2f** |\n",
			w.name, w.clients, direct, n.rps, s.rps, s1.rps, s.rps/n.rps, s1.rps/n.rps)
	}
	fmt.Println()
	fmt.Println("CPU time per request in µs: the proxy's (all threads, from schedstat) and the two redis-servers' (lower behind a proxy = batching works).")
	fmt.Println()
	fmt.Println("| workload | nc | sp | spN | sp/nc | spN/nc | redis: direct / nc / sp / spN |")
	fmt.Println("|---|---|---|---|---|---|---|")
	for _, w := range workloads {
		r := results[w.name]
		d, n, s, s1 := median(r["direct"]), median(r["nutcracker"]), median(r["shardproxy"]), median(r["shardproxy-1"])
		redisDirect := "—"
		if w.direct {
			redisDirect = fmt.Sprintf("%.2f", d.redisCPU/1000)
		}
		fmt.Printf("| %s (%d clients) | %.2f | %.2f | %.2f | **%.2f** | **%.2f** | %s / %.2f / %.2f / %.2f |\n",
			w.name, w.clients, n.proxyCPU/1000, s.proxyCPU/1000, s1.proxyCPU/1000, s.proxyCPU/n.proxyCPU, s1.proxyCPU/n.proxyCPU,
			redisDirect, n.redisCPU/1000, s.redisCPU/1000, s1.redisCPU/1000)
	}
	fmt.Println()
	fmt.Println("| latency (ms) | direct p50 / p99 | nutcracker p50 / p99 | sp p50 / p99 | spN p50 / p99 |")
	fmt.Println("|---|---|---|---|---|")
	for _, name := range []string{"GET 1 client", "GET -P 1"} {
		r := results[name]
		d, n, s, s1 := median(r["direct"]), median(r["nutcracker"]), median(r["shardproxy"]), median(r["shardproxy-1"])
		fmt.Printf("| %s | %.3f / %.3f | %.3f / %.3f | %.3f / %.3f | %.3f / %.3f |\n", name, d.p50, d.p99, n.p50, n.p99, s.p50, s.p99, s1.p50, s1.p99)
	}
	fmt.Println()
	blockingTable(spPort, redisPorts, *rounds, *requests/10)
	// The direct target is one redis-server: its CPU is the one counted
	// in both columns (through the proxy, the channels' server gets most).
	pubsubReport(targets[0], targets[2], redisPIDs, *rounds, *requests)
	// Memcached: the same comparison with a small Go load generator.
	var mcPorts, mcPIDs []int
	for range 2 {
		port := freePort()
		args := []string{"-l", "127.0.0.1", "-p", strconv.Itoa(port), "-U", "0"}
		if os.Geteuid() == 0 {
			args = append(args, "-u", "root")
		}
		cmd := start(lookPath("memcached"), args...)
		mcPorts = append(mcPorts, port)
		mcPIDs = append(mcPIDs, cmd.Process.Pid)
		waitPort(port)
	}
	mcPool := func(port int) string {
		return fmt.Sprintf("mc:\n  listen: 127.0.0.1:%d\n  hash: fnv1a_64\n  distribution: ketama\n  timeout: 2000\n  servers:\n   - 127.0.0.1:%d:1\n   - 127.0.0.1:%d:1\n",
			port, mcPorts[0], mcPorts[1])
	}
	mcTargets := []target{{"direct", mcPorts[0], 0}}
	for _, tg := range []struct {
		name string
		env  []string
		bin  string
	}{{"nutcracker", nil, lookPath("nutcracker")}, {"shardproxy", nil, *bin}, {"shardproxy-1", []string{"GOMAXPROCS=" + strconv.Itoa(runtime.NumCPU())}, *bin}} {
		port := freePort()
		conf := filepath.Join(dir, tg.name+"-mc.yml")
		check(os.WriteFile(conf, []byte(mcPool(port)), 0o644))
		args := []string{"-c", conf, "-v", "4", "-o", filepath.Join(dir, tg.name+"-mc.log"), "-s", strconv.Itoa(freePort()), "-a", "127.0.0.1"}
		if tg.name == "nutcracker" {
			args = append(args, "-p", filepath.Join(dir, "nc-mc.pid"))
		}
		cmd := startEnv(tg.env, tg.bin, args...)
		waitPort(port)
		mcTargets = append(mcTargets, target{tg.name, port, cmd.Process.Pid})
	}
	mcPrefill(mcTargets[1].port) // through nutcracker: every key on its server
	mcPrefill(mcPorts[0])        // and all of them on the direct target
	mcWorkloads := []mcWorkload{
		{"get", "get", 50, 1},
		{"set", "set", 50, 1},
		{"get -P 16", "get", 50, 16},
		{"set -P 16", "set", 50, 16},
	}
	mcResults := map[string]map[string][]sample{}
	for _, w := range mcWorkloads {
		mcResults[w.name] = map[string][]sample{}
	}
	for round := 0; round < *rounds; round++ {
		order := roundOrder(mcTargets, round)
		for _, w := range mcWorkloads {
			for _, tg := range order {
				p0, r0 := cpuNanos(tg.pid), cpuNanos(mcPIDs...)
				rps := mcRun(tg.port, w, *requests)
				p1, r1 := cpuNanos(tg.pid), cpuNanos(mcPIDs...)
				s := sample{rps: rps, redisCPU: float64(r1-r0) / float64(*requests)}
				if tg.pid != 0 {
					s.proxyCPU = float64(p1-p0) / float64(*requests)
				}
				mcResults[w.name][tg.name] = append(mcResults[w.name][tg.name], s)
			}
		}
		log.Printf("memcached round %d/%d done", round+1, *rounds)
	}
	fmt.Println("Memcached (Go load generator, 50 connections, 64-byte values over 10,000 keys): throughput, then CPU µs per request of the proxy and of the two memcached.")
	fmt.Println()
	fmt.Println("| workload | direct | nutcracker | sp | spN | sp/nc | spN/nc | CPU nc | CPU sp | CPU spN | sp/nc CPU | memcached CPU direct / nc / sp / spN |")
	fmt.Println("|---|---|---|---|---|---|---|---|---|---|---|---|")
	for _, w := range mcWorkloads {
		r := mcResults[w.name]
		d, n, s, s1 := median(r["direct"]), median(r["nutcracker"]), median(r["shardproxy"]), median(r["shardproxy-1"])
		fmt.Printf("| %s (%d conns) | %.0f | %.0f | %.0f | %.0f | **%.2f** | **%.2f** | %.2f | %.2f | %.2f | **%.2f** | %.2f / %.2f / %.2f / %.2f |\n",
			w.name, w.conns, d.rps, n.rps, s.rps, s1.rps, s.rps/n.rps, s1.rps/n.rps, n.proxyCPU/1000, s.proxyCPU/1000, s1.proxyCPU/1000,
			s.proxyCPU/n.proxyCPU, d.redisCPU/1000, n.redisCPU/1000, s.redisCPU/1000, s1.redisCPU/1000)
	}
	fmt.Println()

	ncMem := idleMemory(ncPort, nc.Process.Pid, *idle)
	spMem := idleMemory(spPort, sp.Process.Pid, *idle)
	fmt.Printf("| memory per idle client connection (%d connections, RSS delta) | nutcracker | shardproxy |\n|---|---|---|\n| bytes | %.0f | %.0f |\n",
		*idle, ncMem, spMem)
}

// roundOrder rotates the targets by the round number, so that no target
// always runs first (and gets the machine at its coolest).
func roundOrder(targets []target, round int) []target {
	k := round % len(targets)
	return append(slices.Clone(targets[k:]), targets[:k]...)
}

// runOne runs one redis-benchmark and charges CPU time to the proxy and
// the redis-servers.
func runOne(tg target, w workload, n int, redisPIDs []int) sample {
	return runLoad(nil, tg, w, n, redisPIDs)
}

// runLoad is runOne with redis-benchmark started under prefix (e.g.
// "taskset -c 1"), so that the load can be pinned.
func runLoad(prefix []string, tg target, w workload, n int, redisPIDs []int) sample {
	args := []string{"-h", "127.0.0.1", "-p", strconv.Itoa(tg.port), "-c", strconv.Itoa(w.clients),
		"-n", strconv.Itoa(n), "-r", "100000", "-d", "64", "--csv"}
	args = append(append(slices.Clone(prefix), lookPath("redis-benchmark")), append(args, w.args...)...)
	p0 := cpuNanos(tg.pid)
	r0 := cpuNanos(redisPIDs...)
	out, err := exec.Command(args[0], args[1:]...).Output()
	if err != nil {
		log.Fatalf("redis-benchmark %v: %v\n%s", args, err, out)
	}
	p1 := cpuNanos(tg.pid)
	r1 := cpuNanos(redisPIDs...)
	recs, err := csv.NewReader(strings.NewReader(string(out))).ReadAll()
	if err != nil || len(recs) < 2 {
		log.Fatalf("redis-benchmark output: %v\n%s", err, out)
	}
	f := func(i int) float64 { v, _ := strconv.ParseFloat(recs[1][i], 64); return v }
	s := sample{rps: f(1), p50: f(4), p99: f(6)}
	requests := float64(n)
	if tg.pid != 0 {
		s.proxyCPU = float64(p1-p0) / requests
	}
	s.redisCPU = float64(r1-r0) / requests
	return s
}

// cpuNanos sums the CPU time of every thread of the given processes, from
// /proc/PID/task/*/schedstat (first field: ns on CPU).
func cpuNanos(pids ...int) int64 {
	var total int64
	for _, pid := range pids {
		if pid == 0 {
			continue
		}
		tasks, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/schedstat", pid))
		for _, t := range tasks {
			b, err := os.ReadFile(t)
			if err != nil {
				continue
			}
			f := strings.Fields(string(b))
			if len(f) > 0 {
				v, _ := strconv.ParseInt(f[0], 10, 64)
				total += v
			}
		}
	}
	return total
}

func median(ss []sample) sample {
	pick := func(get func(sample) float64) float64 {
		v := make([]float64, len(ss))
		for i, s := range ss {
			v[i] = get(s)
		}
		slices.Sort(v)
		if len(v) == 0 {
			return 0
		}
		return v[len(v)/2]
	}
	return sample{
		rps:      pick(func(s sample) float64 { return s.rps }),
		p50:      pick(func(s sample) float64 { return s.p50 }),
		p99:      pick(func(s sample) float64 { return s.p99 }),
		proxyCPU: pick(func(s sample) float64 { return s.proxyCPU }),
		redisCPU: pick(func(s sample) float64 { return s.redisCPU }),
	}
}

// idleMemory opens n idle client connections and returns the proxy's RSS
// growth per connection, in bytes.
func idleMemory(port, pid, n int) float64 {
	before := rss(pid)
	conns := make([]net.Conn, 0, n)
	for i := 0; i < n; i++ {
		c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port))
		if err != nil {
			log.Printf("idle connection %d: %v", i, err)
			break
		}
		conns = append(conns, c)
	}
	// Let the proxy accept and park every connection.
	time.Sleep(2 * time.Second)
	after := rss(pid)
	for _, c := range conns {
		c.Close()
	}
	if len(conns) == 0 {
		return 0
	}
	return float64(after-before) / float64(len(conns))
}

func rss(pid int) int64 {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	check(err)
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb * 1024
		}
	}
	return 0
}

// spreadKeys returns n keys set through the proxy, alternating between the
// two servers.
func spreadKeys(proxyPort int, redisPorts []int, n int) []string {
	var keys []string
	want := 0
	for i := 0; len(keys) < n && i < 100000; i++ {
		k := fmt.Sprintf("mget:%d", i)
		send(proxyPort, fmt.Sprintf("*3\r\n$3\r\nSET\r\n$%d\r\n%s\r\n$3\r\nval\r\n", len(k), k))
		if send(redisPorts[want], fmt.Sprintf("*2\r\n$6\r\nEXISTS\r\n$%d\r\n%s\r\n", len(k), k)) == ":1\r\n" {
			keys = append(keys, k)
			want = 1 - want
		}
	}
	return keys
}

func send(port int, req string) string {
	c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port))
	check(err)
	defer c.Close()
	_, err = io.WriteString(c, req)
	check(err)
	line, err := bufio.NewReader(c).ReadString('\n')
	check(err)
	return line
}

func freePort() int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	check(err)
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func waitPort(port int) {
	for i := 0; i < 200; i++ {
		c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port))
		if err == nil {
			c.Close()
			return
		}
		time.Sleep(25 * time.Millisecond)
	}
	log.Fatalf("nothing listens on port %d", port)
}

// lookPath finds a program of scripts/programs.txt (make bench installs
// that list's bench group), in PATH or in the sbin directories where Debian
// puts nutcracker.
func lookPath(name string) string {
	for _, dir := range []string{"", "/usr/sbin/", "/sbin/"} {
		if p, err := exec.LookPath(dir + name); err == nil {
			return p
		}
	}
	log.Fatalf("%s not found", name)
	return ""
}

// raiseFileLimit lets this process and the proxies it starts hold the idle
// connections. Setting the limit explicitly also makes children inherit it.
func raiseFileLimit(n int) {
	var rl syscall.Rlimit
	check(syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl))
	if rl.Cur < uint64(n) {
		rl.Cur = min(uint64(n), rl.Max)
		check(syscall.Setrlimit(syscall.RLIMIT_NOFILE, &rl))
	}
}

func check(err error) {
	if err != nil {
		log.Fatal(err)
	}
}
