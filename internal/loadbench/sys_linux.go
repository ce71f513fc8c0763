package loadbench

import "syscall"

// procAttr makes a child die with this process, so an interrupted run leaves no redis-server,
// server or harness behind.
func procAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
