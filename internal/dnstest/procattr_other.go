//go:build unix && !linux

package dnstest

import "syscall"

func setPdeathsig(*syscall.SysProcAttr) {}
