package proxy

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"syscall"

	"github.com/shardproxy/shardproxy/internal/config"
)

// listen opens a listening socket for addr with the pool's backlog. Go's
// net.Listen always uses the kernel's somaxconn, so the socket is made by
// hand to honour twemproxy's `backlog` key. A unix socket path left over
// from an earlier run is removed first, as nutcracker does, and the socket
// gets the configured mode.
func listen(addr config.Address, backlog int) (net.Listener, error) {
	var (
		family int
		sa     syscall.Sockaddr
	)
	switch addr.Network {
	case "unix":
		if err := removeStaleSocket(addr.Path); err != nil {
			return nil, err
		}
		family, sa = syscall.AF_UNIX, &syscall.SockaddrUnix{Name: addr.Path}
	default:
		tcp, err := net.ResolveTCPAddr("tcp", addr.String())
		if err != nil {
			return nil, err
		}
		if ip4 := tcp.IP.To4(); ip4 != nil || tcp.IP == nil {
			s := &syscall.SockaddrInet4{Port: tcp.Port}
			copy(s.Addr[:], ip4)
			family, sa = syscall.AF_INET, s
		} else {
			s := &syscall.SockaddrInet6{Port: tcp.Port}
			copy(s.Addr[:], tcp.IP.To16())
			if tcp.Zone != "" {
				if ifi, err := net.InterfaceByName(tcp.Zone); err == nil {
					s.ZoneId = uint32(ifi.Index)
				}
			}
			family, sa = syscall.AF_INET6, s
		}
	}

	fd, err := syscall.Socket(family, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC|syscall.SOCK_NONBLOCK, 0)
	if err != nil {
		return nil, os.NewSyscallError("socket", err)
	}
	file := os.NewFile(uintptr(fd), "listener "+addr.String())
	defer file.Close() // net.FileListener holds its own duplicate
	if family != syscall.AF_UNIX {
		if err := syscall.SetsockoptInt(fd, syscall.SOL_SOCKET, syscall.SO_REUSEADDR, 1); err != nil {
			return nil, os.NewSyscallError("setsockopt", err)
		}
	}
	if err := syscall.Bind(fd, sa); err != nil {
		return nil, os.NewSyscallError("bind", err)
	}
	if family == syscall.AF_UNIX && addr.Mode != 0 {
		if err := os.Chmod(addr.Path, addr.Mode); err != nil {
			return nil, err
		}
	}
	if backlog <= 0 {
		backlog = syscall.SOMAXCONN
	}
	if err := syscall.Listen(fd, backlog); err != nil {
		return nil, os.NewSyscallError("listen", err)
	}
	ln, err := net.FileListener(file)
	if err != nil {
		return nil, err
	}
	if ul, ok := ln.(*net.UnixListener); ok {
		// We bound the path ourselves, so Close must remove it.
		ul.SetUnlinkOnClose(true)
	}
	return ln, nil
}

// removeStaleSocket removes path if it is a unix socket; any other kind of
// file is left alone and reported, so a typo cannot delete a regular file.
func removeStaleSocket(path string) error {
	fi, err := os.Lstat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if fi.Mode().Type() != fs.ModeSocket {
		return fmt.Errorf("%s exists and is not a unix socket", path)
	}
	return os.Remove(path)
}
