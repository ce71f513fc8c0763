package app

import "testing"

// TestPoolSize: a classic environment keeps today's pool of 10; a process
// serving many invocations at once gets one more connection per 8 of them,
// up to 64.
func TestPoolSize(t *testing.T) {
	t.Parallel()
	for n, want := range map[int]int{1: 10, 8: 10, 9: 11, 200: 34, 433: 64, 1000: 64, 1600: 64} {
		if got := PoolSize(n); got != want {
			t.Errorf("PoolSize(%d) = %d, want %d", n, got, want)
		}
	}
}
