//go:build unix && !linux

package influxtest

import "syscall"

func setPdeathsig(*syscall.SysProcAttr) {}
