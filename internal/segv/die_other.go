//go:build !linux

package segv

import (
	"errors"
	"syscall"
)

// dieBy would end the process with sig by the kernel's default action; only
// the Linux version is written (it needs the raw rt_sigaction system call).
// Elsewhere Handle falls back to exit status 128+sig.
func dieBy(sig syscall.Signal) error {
	return errors.ErrUnsupported
}
