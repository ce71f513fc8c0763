//go:build !linux

package loadbench

import "syscall"

func procAttr() *syscall.SysProcAttr { return nil }
