// Package segv answers a SIGSEGV sent by another process (kill -SEGV,
// pkill -SEGV) as nutcracker does: it logs "signal 11 (SIGSEGV) received,
// core dumping" at notice level, and the process then dies by SIGSEGV with
// the kernel's default action, dumping core where the limits allow
// (twemproxy src/nc_signal.c; twemproxy's test_signal relies on the log
// line).
//
// A fault inside the program is not affected: the Go runtime never passes a
// synchronous SIGSEGV to os/signal, so a nil dereference still ends in Go's
// panic and crash report.
package segv

import (
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/shardproxy/shardproxy/internal/logging"
)

// Handle starts waiting for a SIGSEGV sent from outside; when one comes it
// is logged and the process dies by it. stop ends the wait. Without Handle
// the Go runtime would treat such a signal as a crash of its own: a
// goroutine dump and exit status 2.
func Handle(logger *slog.Logger) (stop func()) {
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGSEGV)
	done := make(chan struct{})
	go func() {
		select {
		case <-sigs:
		case <-done:
			return
		}
		sig := syscall.SIGSEGV
		// nutcracker's wording, which log watchers and its tests know.
		logging.Log(logger, logging.Notice,
			fmt.Sprintf("signal %d (SIGSEGV) received, core dumping", int(sig)), "signal", "SIGSEGV")
		err := dieBy(sig)
		// Only if the kernel would not let the process die by the signal:
		// exit with the status a shell shows for a death by it.
		logging.Log(logger, logging.Crit, "cannot die by signal; exiting", "signal", "SIGSEGV", "err", err)
		os.Exit(128 + int(sig))
	}()
	return func() {
		signal.Stop(sigs)
		close(done)
	}
}
