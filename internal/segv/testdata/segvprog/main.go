// Command segvprog runs segv.Handle for the package's tests, logging to
// standard error.
//
//	segvprog wait    says "ready" on standard output, then waits for signals
//	segvprog nilderef dereferences a nil pointer: a fault of its own
package main

import (
	"fmt"
	"os"
	"time"

	"github.com/shardproxy/shardproxy/internal/logging"
	"github.com/shardproxy/shardproxy/internal/segv"
)

func main() {
	logger := logging.NewLogger(os.Stderr, logging.NewVerbosity(logging.DefaultVerbosity))
	stop := segv.Handle(logger)
	defer stop()
	switch mode := os.Args[1]; mode {
	case "wait":
		fmt.Println("ready")
		time.Sleep(time.Minute)
	case "nilderef":
		var p *int
		fmt.Println(*p)
	default:
		fmt.Fprintf(os.Stderr, "segvprog: unknown mode %q\n", mode)
		os.Exit(1)
	}
}
