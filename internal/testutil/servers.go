package testutil

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// writeFile writes a generated configuration file, failing the test on error.
func writeFile(t testing.TB, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// redisConf returns the configuration common to redis-server and
// redis-sentinel: loopback only, no persistence, logging to stdout (which
// Log captures), followed by extra, so that later lines override it.
func redisConf(port int, dir string, extra []string) string {
	lines := []string{
		"port " + strconv.Itoa(port),
		"bind 127.0.0.1",
		"protected-mode no",
		"daemonize no",
		`logfile ""`,
		"dir " + strconv.Quote(dir),
	}
	return strings.Join(append(lines, extra...), "\n") + "\n"
}

// StartRedis starts redis-server on a free port of 127.0.0.1 with a
// generated redis.conf in its temp dir: no RDB or AOF persistence,
// protected mode off, DEBUG allowed from local connections (for DEBUG
// SLEEP in timeout tests), and "hz 100", because redis acts on SIGTERM in
// its cron, which the default hz 10 runs only every 100 ms. extraConfLines
// are appended, so they can add to or override these, e.g.
// "requirepass secret" or "replicaof 127.0.0.1 6379".
//
// A port that something outside the tests' port reservations already
// listens on is logged with its holder, and another port is tried.
func StartRedis(t testing.TB, extraConfLines ...string) *Server {
	t.Helper()
	bin := Binary(t, "redis-server")
	s := newServer(t, bin)
	for attempt := 1; ; attempt++ {
		port := FreePort(t)
		s.setAddr(net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
		err := tryStartRedis(t, s, port, extraConfLines)
		var held *portHeldError
		if errors.As(err, &held) && attempt < portAttempts {
			t.Logf("%v; trying another port", err)
			continue
		}
		if err != nil {
			t.Fatalf("starting %s %s: %v\n--- log ---\n%s", s.Name, strings.Join(s.args, " "), err, tail(s.Log(), logTail))
		}
		return s
	}
}

// portAttempts is how many ports StartRedis tries when the ones it is given
// turn out to be held by another process.
const portAttempts = 3

// StartRedisUnix starts redis-server listening only on a unix socket, which
// becomes Addr (Network "unix", Port 0). The socket lives in a short
// directory under os.TempDir, because t.TempDir paths can exceed the
// 108-byte limit of a socket path; it is removed when the test ends.
func StartRedisUnix(t testing.TB, extraConfLines ...string) *Server {
	t.Helper()
	bin := Binary(t, "redis-server")
	sockDir, err := os.MkdirTemp("", "sp")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(sockDir) }) // runs after the server stops
	s := newServer(t, bin)
	sock := filepath.Join(sockDir, "redis.sock")
	s.setAddr(sock)
	lines := append([]string{"unixsocket " + strconv.Quote(sock), "unixsocketperm 700"}, extraConfLines...)
	startRedis(t, s, 0, lines)
	return s
}

// startRedis writes s.Dir/redis.conf and starts the server on it.
func startRedis(t testing.TB, s *Server, port int, extra []string) {
	t.Helper()
	if err := tryStartRedis(t, s, port, extra); err != nil {
		t.Fatalf("starting %s %s: %v\n--- log ---\n%s", s.Name, strings.Join(s.args, " "), err, tail(s.Log(), logTail))
	}
}

// tryStartRedis writes s.Dir/redis.conf and starts the server on it.
func tryStartRedis(t testing.TB, s *Server, port int, extra []string) error {
	t.Helper()
	lines := append([]string{
		`save ""`,
		"appendonly no",
		"enable-debug-command local",
		"hz 100",
	}, extra...)
	s.ConfPath = filepath.Join(s.Dir, "redis.conf")
	writeFile(t, s.ConfPath, redisConf(port, s.Dir, lines))
	s.args = []string{s.ConfPath}
	s.waitAddrs = []string{s.Addr}
	return s.start()
}

// StartSentinel starts redis-sentinel on a free port of 127.0.0.1 with a
// writable sentinel.conf in its temp dir (sentinel rewrites it, and a
// Restart reads the rewritten file), with "hz 100" as for StartRedis.
// confLines are appended, typically
// "sentinel monitor mymaster 127.0.0.1 PORT 1" and
// "sentinel down-after-milliseconds mymaster 1000".
func StartSentinel(t testing.TB, confLines ...string) *Server {
	t.Helper()
	return startSentinel(t, FreePort(t), confLines)
}

// startSentinel is StartSentinel on a port from FreePort, chosen by a
// caller that must write it into other sentinels' configurations first.
func startSentinel(t testing.TB, port int, confLines []string) *Server {
	t.Helper()
	bin := Binary(t, "redis-sentinel")
	s := newServer(t, bin)
	s.setAddr(net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
	s.ConfPath = filepath.Join(s.Dir, "sentinel.conf")
	writeFile(t, s.ConfPath, redisConf(port, s.Dir, append([]string{"hz 100"}, confLines...)))
	// The Debian binary is redis-server under another name: it becomes a
	// sentinel by its name, or by --sentinel, passed here to be sure.
	s.args = []string{s.ConfPath, "--sentinel"}
	s.waitAddrs = []string{s.Addr}
	s.startOrFail(t)
	return s
}

// StartMemcached starts memcached on a free port of 127.0.0.1 with UDP
// disabled, followed by args (e.g. "-m", "8"). When the tests run as root
// it adds "-u root", without which memcached refuses to start, unless args
// already name a user.
func StartMemcached(t testing.TB, args ...string) *Server {
	t.Helper()
	return startMemcached(t, FreePort(t), args)
}

// StartMemcachedOnPort is StartMemcached on a given port, such as 11211 for
// tests of the ketama naming rule, which omits the default port. It fails
// the test at once, naming the port, if the port is busy.
func StartMemcachedOnPort(t testing.TB, port int, args ...string) *Server {
	t.Helper()
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	l, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatalf("StartMemcachedOnPort: port %d is busy (%v); stop whatever listens on it (a system memcached? systemctl stop memcached)", port, err)
	}
	l.Close()
	claimPort(port)
	return startMemcached(t, port, args)
}

func startMemcached(t testing.TB, port int, args []string) *Server {
	t.Helper()
	bin := Binary(t, "memcached")
	s := newServer(t, bin)
	s.setAddr(net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
	s.args = []string{"-l", "127.0.0.1", "-p", strconv.Itoa(port), "-U", "0"}
	if os.Geteuid() == 0 && !namesUser(args) {
		s.args = append(s.args, "-u", "root")
	}
	s.args = append(s.args, args...)
	s.waitAddrs = []string{s.Addr}
	s.wakeOnStop = true
	s.startOrFail(t)
	return s
}

// namesUser reports whether memcached args include -u / --user.
func namesUser(args []string) bool {
	for _, a := range args {
		if strings.HasPrefix(a, "-u") || a == "--user" || strings.HasPrefix(a, "--user=") {
			return true
		}
	}
	return false
}

// listenRE matches the listen: lines of a nutcracker YAML configuration.
// A unix socket is written "listen: /path/to/sock 0666"; only the first
// word is the address.
var listenRE = regexp.MustCompile(`(?m)^\s*listen\s*:\s*["']?([^\s"'#]+)`)

// listenAddrs returns the listen addresses of every pool in a nutcracker
// YAML configuration, in order.
func listenAddrs(yaml string) []string {
	var addrs []string
	for _, m := range listenRE.FindAllStringSubmatch(yaml, -1) {
		addrs = append(addrs, m[1])
	}
	return addrs
}

// StartNutcracker starts twemproxy with yaml written to nutcracker.yml in its
// temp dir, its log in nutcracker.log (included in Log), its pid file there
// too, and its stats server on a free port of 127.0.0.1 (StatsAddr); the
// Debian build's defaults point at /var/log and /run, so these are always
// passed. extraArgs follow, e.g. "-v", "11" or "-i", "100".
//
// It waits until every pool's listen address, found by matching the
// "listen:" lines of yaml, and the stats port accept. Addr is the first
// pool's address.
func StartNutcracker(t testing.TB, yaml string, extraArgs ...string) *Server {
	t.Helper()
	bin := Binary(t, "nutcracker")
	listens := listenAddrs(yaml)
	if len(listens) == 0 {
		t.Fatalf("StartNutcracker: no listen: line in the configuration:\n%s", yaml)
	}
	s := newServer(t, bin)
	s.setAddr(listens[0])
	s.StatsAddr = net.JoinHostPort("127.0.0.1", strconv.Itoa(FreePort(t)))
	s.ConfPath = filepath.Join(s.Dir, "nutcracker.yml")
	s.logPath = filepath.Join(s.Dir, "nutcracker.log")
	writeFile(t, s.ConfPath, yaml)
	_, statsPort, _ := net.SplitHostPort(s.StatsAddr)
	s.args = append([]string{
		"-c", s.ConfPath,
		"-o", s.logPath,
		"-s", statsPort,
		"-a", "127.0.0.1",
		"-p", filepath.Join(s.Dir, "nutcracker.pid"),
	}, extraArgs...)
	s.waitAddrs = append(listens, s.StatsAddr)
	s.startOrFail(t)
	return s
}

// StartProcess starts any program, such as the binary BuildShardproxy
// returns, and waits until every address in waitAddrs accepts: a
// "host:port", or a unix socket path (any address containing a slash).
// Addr is the first of them, if any. name is a path, or a program looked up
// as by Binary (so it must be in ProgramsFile). The process inherits the test's environment and working
// directory; it must not daemonize, as its exit would count as stopping.
func StartProcess(t testing.TB, name string, args []string, waitAddrs ...string) *Server {
	t.Helper()
	bin := name
	if !strings.Contains(name, "/") {
		bin = Binary(t, name)
	}
	s := newServer(t, bin)
	if len(waitAddrs) > 0 {
		s.setAddr(waitAddrs[0])
	}
	s.args = append([]string(nil), args...)
	s.waitAddrs = append([]string(nil), waitAddrs...)
	s.startOrFail(t)
	return s
}

// String describes the server for failure messages.
func (s *Server) String() string {
	return fmt.Sprintf("%s %s (pid %d)", s.Name, s.Addr, s.PID())
}
