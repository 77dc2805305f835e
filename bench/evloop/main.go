//go:build linux

// Command evloop is the event-loop prototype of issue 16: a Redis proxy
// for GET, SET and PING over one ketama pool, whose I/O is N epoll loops
// that each own their clients and their server connections, with no
// goroutine per connection. It exists to be measured against nutcracker
// and shardproxy (go run ./bench -evloop, bench/README.md); it is not part
// of shardproxy.
package main

import (
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"runtime"
	"runtime/pprof"
	"strings"
	"syscall"
)

func main() {
	cfg := DefaultConfig()
	flag.StringVar(&cfg.Listen, "listen", cfg.Listen, "host:port to serve clients on")
	servers := flag.String("servers", "", "the pool's Redis servers, host:port[:weight], comma-separated, in ring order")
	flag.StringVar(&cfg.Hash, "hash", cfg.Hash, "hash function, as a pool's hash:")
	flag.StringVar(&cfg.Distribution, "distribution", cfg.Distribution, "ketama, modula or random")
	flag.IntVar(&cfg.Loops, "loops", runtime.GOMAXPROCS(0), "event loops (default GOMAXPROCS)")
	flag.Parse()
	cfg.Servers = strings.FieldsFunc(*servers, func(r rune) bool { return r == ',' || r == ' ' })
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))

	px, err := New(cfg, logger)
	if err != nil {
		fmt.Fprintln(os.Stderr, "evloop:", err)
		os.Exit(1)
	}
	// The same switch as shardproxy's, so the benchmark profiles both
	// alike: a CPU profile from start to exit.
	if path := os.Getenv("SHARDPROXY_CPUPROFILE"); path != "" {
		f, err := os.Create(path)
		if err == nil {
			err = pprof.StartCPUProfile(f)
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "evloop: cpu profile:", err)
			os.Exit(1)
		}
		defer func() {
			pprof.StopCPUProfile()
			f.Close()
		}()
	}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
	px.Start()
	<-sig
	px.Close()
}
