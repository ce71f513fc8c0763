//go:build !linux

package redistest

import (
	"net"
	"syscall"
)

func deathSignal() *syscall.SysProcAttr { return nil }

// reserveDead falls back to a port that was free a moment ago (there is a
// small race: something else may bind it).
func reserveDead() (addr string, release func(), err error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	addr = l.Addr().String()
	_ = l.Close()
	return addr, func() {}, nil
}
