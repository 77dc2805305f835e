// Command shardproxy is a fast, lightweight proxy for the Redis and
// Memcached protocols: a drop-in replacement for twemproxy (nutcracker).
//
// It takes nutcracker's flags and configuration file; see the README.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"runtime"
	"strconv"
	"syscall"
	"time"

	"github.com/shardproxy/shardproxy/internal/config"
	"github.com/shardproxy/shardproxy/internal/logging"
	"github.com/shardproxy/shardproxy/internal/proxy"
	"github.com/shardproxy/shardproxy/internal/segv"
	"github.com/shardproxy/shardproxy/internal/stats"
)

// version is the release; `make build` sets it with -ldflags "-X main.version=…".
var version = "0.1.0-dev"

// drainTimeout bounds how long SIGINT / SIGTERM wait for in-flight requests.
const drainTimeout = 5 * time.Second

func main() {
	setDefaultProcs()
	os.Exit(run(os.Args[1:], os.Stderr))
}

// setDefaultProcs runs the proxy on half the machine's cores unless
// GOMAXPROCS says otherwise. A proxy's work is mostly system calls and
// hand-offs between goroutines; every extra P adds spinning threads and
// cross-core wake-ups per request. Measured with make bench on a 2-core
// machine that also runs the clients and servers, one P gave the lowest CPU
// per request and the highest throughput in every workload (bench/README.md).
func setDefaultProcs() {
	if os.Getenv("GOMAXPROCS") == "" {
		runtime.GOMAXPROCS(max(1, runtime.NumCPU()/2))
	}
}

func banner(w io.Writer) {
	fmt.Fprintf(w, "This is shardproxy-%s\n%s %s/%s (nutcracker-0.5.0 compatible)\n\n",
		version, runtime.Version(), runtime.GOOS, runtime.GOARCH)
}

// run is the whole program; it returns the exit status.
func run(args []string, stderr io.Writer) int {
	opts, err := parseArgs(args)
	if err != nil {
		fmt.Fprintf(stderr, "shardproxy: %s\n", err)
		fmt.Fprint(stderr, usageText())
		return 1
	}
	switch {
	case opts.help:
		banner(stderr)
		fmt.Fprint(stderr, usageText())
		return 0
	case opts.version:
		banner(stderr)
		return 0
	case opts.describeStats:
		banner(stderr)
		stats.Describe(stderr)
		return 0
	}

	// Resolved before anything else: the file at this path may be replaced
	// while the process runs, and SIGUSR2 starts the new one.
	exe, exeErr := programPath()
	// A process started by a binary upgrade reports every failure, a bad
	// configuration included, to the process it is to replace.
	ho := inheritedHandover()

	cfg, err := config.Load(opts.confFile)
	if opts.testConf {
		if err != nil {
			fmt.Fprintln(stderr, err)
			fmt.Fprintf(stderr, "shardproxy: configuration file '%s' syntax is invalid\n", opts.confFile)
			return 1
		}
		fmt.Fprintf(stderr, "shardproxy: configuration file '%s' syntax is ok\n", opts.confFile)
		return 0
	}
	if err != nil {
		fmt.Fprintln(stderr, err)
		fmt.Fprintf(stderr, "shardproxy: configuration file '%s' syntax is invalid\n", opts.confFile)
		if ho != nil {
			ho.fail(fmt.Errorf("configuration file '%s' syntax is invalid:\n%w", opts.confFile, err))
		}
		return 1
	}

	child := daemonChild()
	// The successor of a daemon is detached already (see startSuccessor).
	if opts.daemonize && child == nil && ho == nil {
		return daemonize(stderr)
	}
	// Undo what start-up did (pid file, log file) in reverse order, before
	// a daemon tells its parent that it failed: the parent exits as soon as
	// it hears, and must not find a stale pid file.
	var undo []func()
	cleanup := func() {
		for i := len(undo) - 1; i >= 0; i-- {
			undo[i]()
		}
		undo = nil
	}
	defer cleanup()
	failStart := func(err error) int {
		cleanup()
		if child != nil {
			child.fail(err)
		}
		if ho != nil {
			ho.fail(err)
		}
		fmt.Fprintf(stderr, "shardproxy: %v\n", err)
		return 1
	}
	if ho != nil && ho.err != nil {
		return failStart(ho.err)
	}

	logFile, err := logging.OpenFile(opts.output)
	if err != nil {
		return failStart(err)
	}
	undo = append(undo, func() { logFile.Close() })
	verbosity := logging.NewVerbosity(opts.verbosity)
	logger := logging.NewLogger(logFile, verbosity)
	// kill -SEGV: logged, then a death by SIGSEGV with a core, as nutcracker.
	stopSegv := segv.Handle(logger)
	defer stopSegv()

	if opts.pidFile != "" {
		// The successor of an upgrade writes it once it serves (below):
		// until then the pid file names the process that does.
		if ho == nil {
			if err := writePidFile(opts.pidFile); err != nil {
				return failStart(err)
			}
		}
		undo = append(undo, func() { removePidFile(opts.pidFile, logger) })
	}
	timeout, err := upgradeTimeout(os.Getenv(upgradeTimeoutEnv))
	if err != nil {
		logger.Warn("upgrade timeout", "err", err)
	}

	if path := os.Getenv("SHARDPROXY_CPUPROFILE"); path != "" {
		// For `make bench` investigations: profile until the process exits.
		if stop, err := startCPUProfile(path); err == nil {
			undo = append(undo, stop)
		} else {
			logger.Warn("cpu profile not started", "err", err)
		}
	}

	// Always there, though only pools with slowlog_slower_than add to it:
	// a reload may turn it on.
	slowLog := stats.NewSlowLog(stats.DefaultSlowLogCapacity)
	var inherited map[string]*os.File
	if ho != nil {
		inherited = ho.listeners
	}
	px, err := proxy.New(cfg, proxy.Options{
		Version: version, Logger: logger, BufSize: opts.mbufSize, SlowLog: slowLog,
		// A benchmark knob (make bench): latency histograms off.
		NoLatency: os.Getenv("SHARDPROXY_LATENCY") == "off",
		Inherited: inherited,
		Grace:     proxy.DefaultGrace,
	})
	if err != nil {
		return failStart(err)
	}
	// Subscribe before listening so that a signal sent as soon as the
	// listeners accept is never lost.
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGHUP, syscall.SIGTTIN, syscall.SIGTTOU, syscall.SIGINT, syscall.SIGTERM, syscall.SIGUSR1, syscall.SIGUSR2)
	defer signal.Stop(sigs)
	if err := px.Start(); err != nil {
		logger.Error("start failed", "err", err)
		return failStart(err)
	}
	stopProxy := func() {
		if ho != nil {
			// The sockets are still the old process's: leave unix socket
			// paths in place for it.
			px.StopAccepting()
		}
		_ = px.Shutdown(context.Background())
	}
	statsCfg := stats.ServerConfig{
		Addr:     net.JoinHostPort(opts.statsAddr, strconv.Itoa(opts.statsPort)),
		Interval: time.Duration(opts.statsInterval) * time.Millisecond,
		Source:   px,
		Version:  version,
		SlowLog:  slowLog,
		Logger:   logger,
	}
	if ho != nil {
		if statsCfg.Listener, err = ho.statsListener(); err != nil {
			logger.Error("start failed", "err", err)
			stopProxy()
			return failStart(err)
		}
	}
	statsSrv := stats.NewServer(statsCfg)
	if err := statsSrv.Start(); err != nil {
		// As nutcracker: no stats port, no proxy.
		logger.Error("start failed", "err", err)
		stopProxy()
		return failStart(err)
	}
	defer statsSrv.Close()
	if ho != nil && opts.pidFile != "" {
		if err := writePidFile(opts.pidFile); err != nil {
			logger.Error("start failed", "err", err)
			statsSrv.Close()
			stopProxy()
			return failStart(err)
		}
	}
	started := []any{"version", version, "pid", os.Getpid(), "conf", opts.confFile, "pools", len(cfg.Pools), "verbosity", verbosity.Get()}
	if ho != nil {
		started = append(started, "upgraded_from", os.Getppid())
	}
	logging.Log(logger, logging.Notice, "shardproxy started", started...)
	if child != nil {
		child.ready()
	}
	if ho != nil {
		ho.ready()
	}
	in := &instance{
		px: px, stats: statsSrv,
		confFile: opts.confFile, pidFile: opts.pidFile, daemon: opts.daemonize,
		exe: exe, exeErr: exeErr, upgradeTimeout: timeout, grace: proxy.DefaultGrace,
		logFile: logFile, verbosity: verbosity, logger: logger,
	}
	return in.serve(sigs)
}

// reload reads confFile again and applies it (SIGUSR1). A file with any
// problem changes nothing: each problem is logged as -t prints it, and
// the failed-reload counter goes up.
func reload(px *proxy.Proxy, confFile string, logger *slog.Logger) {
	logging.Log(logger, logging.Notice, "reloading configuration", "signal", "SIGUSR1", "conf", confFile)
	cfg, err := config.Load(confFile)
	if err != nil {
		px.ReloadFailed()
		var errs config.Errors
		if errors.As(err, &errs) {
			for _, e := range errs {
				logger.Error("reload refused: configuration invalid, the running one is kept", "problem", e.Error())
			}
		} else {
			logger.Error("reload refused: configuration invalid, the running one is kept", "problem", err.Error())
		}
		return
	}
	if err := px.Reload(cfg); err != nil {
		logger.Error("reload failed, the running configuration is kept", "conf", confFile, "err", err)
		return
	}
	logging.Log(logger, logging.Notice, "configuration reloaded", "conf", confFile, "pools", len(cfg.Pools))
}

// instance is a started proxy and what serve needs to run it: reload its
// configuration, reopen its log, hand it over to a new binary, stop it.
// Every field is set by run and immutable after.
type instance struct {
	px       *proxy.Proxy
	stats    *stats.Server
	confFile string
	pidFile  string // "" without -p
	daemon   bool   // started with -d

	exe            string // the program file SIGUSR2 starts, resolved at start-up
	exeErr         error  // why exe is unknown
	upgradeTimeout time.Duration
	grace          time.Duration // how long clients are served after a hand-over

	logFile   *logging.File
	verbosity *logging.Verbosity
	logger    *slog.Logger
}

// serve handles signals until SIGINT or SIGTERM, or until a binary upgrade
// has handed over, then drains and stops the proxy.
func (in *instance) serve(sigs <-chan os.Signal) int {
	var (
		up     *upgrade     // the upgrade under way, if any
		upDone <-chan error // up.done, or nil
	)
	for {
		select {
		case sig := <-sigs:
			switch sig {
			case syscall.SIGUSR2:
				if up != nil {
					logging.Log(in.logger, logging.Warn, "upgrade already in progress: SIGUSR2 ignored", "new_pid", up.pid)
					continue
				}
				if up = in.startUpgrade(); up != nil {
					upDone = up.done
				}
			case syscall.SIGUSR1:
				if up != nil {
					// The new process reads the file anyway, and a reload
					// could close a socket it was handed.
					in.px.ReloadFailed()
					in.logger.Error("reload refused: an upgrade is in progress", "signal", "SIGUSR1", "new_pid", up.pid)
					continue
				}
				reload(in.px, in.confFile, in.logger)
			case syscall.SIGINT, syscall.SIGTERM:
				if up != nil {
					// Both stop: the new process must not take over from
					// a process told to stop.
					logging.Log(in.logger, logging.Notice, "upgrade aborted: stopping the new process", "signal", sig.String(), "new_pid", up.pid)
					up.abort()
				}
				logging.Log(in.logger, logging.Notice, "shutting down", "signal", sig.String(), "drain_timeout", drainTimeout)
				in.shutdown(sigs)
				return 0
			default:
				in.handleAside(sig)
			}
		case err := <-upDone:
			if err == nil {
				return in.handOver(up.pid, sigs)
			}
			in.logger.Error("upgrade failed: this process goes on serving", "new_pid", up.pid, "exe", in.exe, "err", err.Error())
			in.reclaimPidFile()
			up, upDone = nil, nil
		}
	}
}

// handleAside handles the signals that change nothing but the logging:
// SIGHUP reopens the log file, SIGTTIN and SIGTTOU raise and lower the
// verbosity, as in nutcracker.
func (in *instance) handleAside(sig os.Signal) {
	switch sig {
	case syscall.SIGHUP:
		if err := in.logFile.Reopen(); err != nil {
			in.logger.Error("reopening log file failed", "path", in.logFile.Path(), "err", err)
		} else {
			logging.Log(in.logger, logging.Notice, "log file reopened", "signal", "SIGHUP", "path", in.logFile.Path())
		}
	case syscall.SIGTTIN:
		v := in.verbosity.Add(1)
		logging.Log(in.logger, logging.Notice, "verbosity raised", "signal", "SIGTTIN", "verbosity", v)
	case syscall.SIGTTOU:
		v := in.verbosity.Add(-1)
		logging.Log(in.logger, logging.Notice, "verbosity lowered", "signal", "SIGTTOU", "verbosity", v)
	}
}

// shutdown drains and stops the proxy; a further SIGINT or SIGTERM stops
// waiting for in-flight requests.
func (in *instance) shutdown(sigs <-chan os.Signal) {
	ctx, cancel := context.WithTimeout(context.Background(), drainTimeout)
	defer cancel()
	go func() {
		for {
			select {
			case s := <-sigs:
				if s == syscall.SIGINT || s == syscall.SIGTERM {
					cancel()
					return
				}
			case <-ctx.Done():
				return
			}
		}
	}()
	if err := in.px.Shutdown(ctx); err != nil {
		logging.Log(in.logger, logging.Warn, "drain incomplete; remaining connections closed", "err", err)
	}
	logging.Log(in.logger, logging.Notice, "shardproxy stopped", "pid", os.Getpid())
}
