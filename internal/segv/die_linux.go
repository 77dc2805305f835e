package segv

import (
	"fmt"
	"runtime"
	"strings"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// dieBy ends the process with sig by the kernel's default action (for
// SIGSEGV: terminate and dump core), so that the parent sees a death by sig.
// It returns only if that failed.
//
// signal.Reset would give sig back to the Go runtime's handler, not to the
// kernel, so the disposition is set to SIG_DFL with rt_sigaction itself.
// Then sig is unblocked on this thread and sent to this thread: the kernel
// delivers it on the way back from tgkill.
func dieBy(sig syscall.Signal) error {
	runtime.LockOSThread() // the mask and tgkill must name the same thread

	// All zeros is SIG_DFL, no flags and an empty mask in every
	// architecture's struct sigaction, none of which is larger than this.
	var act [64]byte
	_, _, errno := unix.RawSyscall6(unix.SYS_RT_SIGACTION, uintptr(sig),
		uintptr(unsafe.Pointer(&act)), 0, kernelSigsetSize(), 0, 0)
	if errno != 0 {
		return fmt.Errorf("rt_sigaction(%d, SIG_DFL): %w", int(sig), errno)
	}

	var set unix.Sigset_t
	bits := uint(unsafe.Sizeof(set.Val[0]) * 8)
	n := uint(sig) - 1 // signal 1 is bit 0
	set.Val[n/bits] |= 1 << (n % bits)
	if err := unix.PthreadSigmask(unix.SIG_UNBLOCK, &set, nil); err != nil {
		return fmt.Errorf("unblocking signal %d: %w", int(sig), err)
	}

	if err := unix.Tgkill(unix.Getpid(), unix.Gettid(), sig); err != nil {
		return fmt.Errorf("tgkill(%d): %w", int(sig), err)
	}
	return fmt.Errorf("still running after signal %d", int(sig))
}

// kernelSigsetSize is the kernel's sizeof(sigset_t), the only size
// rt_sigaction accepts: 64 signals, 128 on MIPS.
func kernelSigsetSize() uintptr {
	if strings.HasPrefix(runtime.GOARCH, "mips") {
		return 16
	}
	return 8
}
