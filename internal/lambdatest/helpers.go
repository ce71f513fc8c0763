package lambdatest

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/machinedash/sse/internal/config"
)

// Event reads the fixture events/<name> of this module (found from the
// test's working directory up to go.mod), replacing old/new pairs as
// Fixture does.
func Event(t testing.TB, name string, oldnew ...string) []byte {
	t.Helper()
	return Fixture(t, filepath.Join(moduleRoot(t), "events", name), oldnew...)
}

// moduleRoot is the directory of this module's go.mod, found from the test's working directory up.
func moduleRoot(t testing.TB) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatalf("lambdatest: no go.mod above the test's directory")
		}
		dir = parent
	}
}

// Within returns a context that ends after d or with the test.
func Within(t testing.TB, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// KeyEnv returns the NAME=value settings that give a function these keys,
// so a test's binary works under the test's own key prefix.
func KeyEnv(keys config.Keys) []string {
	var out []string
	for name, v := range keys.Env() {
		out = append(out, name+"="+v)
	}
	return out
}
