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
		return 1
	}

	child := daemonChild()
	if opts.daemonize && child == nil {
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
		fmt.Fprintf(stderr, "shardproxy: %v\n", err)
		return 1
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
		if err := writePidFile(opts.pidFile); err != nil {
			return failStart(err)
		}
		undo = append(undo, func() { removePidFile(opts.pidFile, logger) })
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
	px, err := proxy.New(cfg, proxy.Options{
		Version: version, Logger: logger, BufSize: opts.mbufSize, SlowLog: slowLog,
		// A benchmark knob (make bench): latency histograms off.
		NoLatency: os.Getenv("SHARDPROXY_LATENCY") == "off",
	})
	if err != nil {
		return failStart(err)
	}
	// Subscribe before listening so that a signal sent as soon as the
	// listeners accept is never lost.
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGHUP, syscall.SIGTTIN, syscall.SIGTTOU, syscall.SIGINT, syscall.SIGTERM, syscall.SIGUSR1)
	defer signal.Stop(sigs)
	if err := px.Start(); err != nil {
		logger.Error("start failed", "err", err)
		return failStart(err)
	}
	statsSrv := stats.NewServer(stats.ServerConfig{
		Addr:     net.JoinHostPort(opts.statsAddr, strconv.Itoa(opts.statsPort)),
		Interval: time.Duration(opts.statsInterval) * time.Millisecond,
		Source:   px,
		Version:  version,
		SlowLog:  slowLog,
		Logger:   logger,
	})
	if err := statsSrv.Start(); err != nil {
		// As nutcracker: no stats port, no proxy.
		logger.Error("start failed", "err", err)
		_ = px.Shutdown(context.Background())
		return failStart(err)
	}
	defer statsSrv.Close()
	logging.Log(logger, logging.Notice, "shardproxy started",
		"version", version, "pid", os.Getpid(), "conf", opts.confFile, "pools", len(cfg.Pools), "verbosity", verbosity.Get())
	if child != nil {
		child.ready()
	}
	return serve(px, opts.confFile, sigs, logFile, verbosity, logger)
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

// serve handles signals until SIGINT or SIGTERM, then drains and stops px.
func serve(px *proxy.Proxy, confFile string, sigs <-chan os.Signal, logFile *logging.File, verbosity *logging.Verbosity, logger *slog.Logger) int {
	for sig := range sigs {
		switch sig {
		case syscall.SIGUSR1:
			reload(px, confFile, logger)
		case syscall.SIGHUP:
			if err := logFile.Reopen(); err != nil {
				logger.Error("reopening log file failed", "path", logFile.Path(), "err", err)
			} else {
				logging.Log(logger, logging.Notice, "log file reopened", "signal", "SIGHUP", "path", logFile.Path())
			}
		case syscall.SIGTTIN:
			v := verbosity.Add(1)
			logging.Log(logger, logging.Notice, "verbosity raised", "signal", "SIGTTIN", "verbosity", v)
		case syscall.SIGTTOU:
			v := verbosity.Add(-1)
			logging.Log(logger, logging.Notice, "verbosity lowered", "signal", "SIGTTOU", "verbosity", v)
		case syscall.SIGINT, syscall.SIGTERM:
			logging.Log(logger, logging.Notice, "shutting down", "signal", sig.String(), "drain_timeout", drainTimeout)
			ctx, cancel := context.WithTimeout(context.Background(), drainTimeout)
			go func() {
				// A second SIGINT / SIGTERM stops waiting for in-flight requests.
				for s := range sigs {
					if s == syscall.SIGINT || s == syscall.SIGTERM {
						cancel()
						return
					}
				}
			}()
			err := px.Shutdown(ctx)
			cancel()
			if err != nil {
				logging.Log(logger, logging.Warn, "drain incomplete; remaining connections closed", "err", err)
			}
			logging.Log(logger, logging.Notice, "shardproxy stopped")
			return 0
		}
	}
	return 0
}
