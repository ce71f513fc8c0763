//go:build !linux

package redistest

import "syscall"

func deathSignal() *syscall.SysProcAttr { return nil }
