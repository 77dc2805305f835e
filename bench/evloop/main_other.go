//go:build !linux

// Command evloop is the event-loop prototype of issue 16; it uses epoll
// and so runs on Linux only.
package main

import (
	"fmt"
	"os"
)

func main() {
	fmt.Fprintln(os.Stderr, "evloop: Linux only (epoll)")
	os.Exit(1)
}
