//go:build unix

package influxtest

import "syscall"

// sysProcAttr puts influxd in a process group of its own so Stop reaches every
// process it starts; on Linux the kernel also kills it if the test binary dies
// without cleaning up.
func sysProcAttr() *syscall.SysProcAttr {
	a := &syscall.SysProcAttr{Setpgid: true}
	setPdeathsig(a)
	return a
}

func signalGroup(pid int, sig syscall.Signal) {
	_ = syscall.Kill(-pid, sig)
}
