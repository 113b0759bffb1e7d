//go:build unix

package dnstest

import "syscall"

// sysProcAttr puts dnsmasq in a process group of its own so Stop reaches it
// whatever it forks; on Linux the kernel also kills it if the test binary
// dies without cleaning up.
func sysProcAttr() *syscall.SysProcAttr {
	a := &syscall.SysProcAttr{Setpgid: true}
	setPdeathsig(a)
	return a
}

func signalGroup(pid int, sig syscall.Signal) {
	_ = syscall.Kill(-pid, sig)
}
