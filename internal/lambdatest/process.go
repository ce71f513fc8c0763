package lambdatest

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// BuildFlags returns the production build flags: the Makefile's GOFLAGS_FN, read from the
// Makefile at the module's root, their one owner (the same flags give the same code: the
// build tags select it, and -trimpath changes cache keys).
func BuildFlags(t testing.TB) []string {
	t.Helper()
	return makeVar(t, "GOFLAGS_FN")
}

// TargetEnv returns the production build's environment: the Makefile's GOENV_FN
// (linux/arm64 and its CPU level, no cgo).
func TargetEnv(t testing.TB) []string {
	t.Helper()
	return makeVar(t, "GOENV_FN")
}

// makeVar returns the words of the Makefile's `name := ...` line.
func makeVar(t testing.TB, name string) []string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(moduleRoot(t), "Makefile"))
	if err != nil {
		t.Fatalf("lambdatest: %v", err)
	}
	m := regexp.MustCompile(`(?m)^` + name + `\s*:=\s*(.*)$`).FindSubmatch(b)
	if m == nil {
		t.Fatalf("lambdatest: no %s := line in the Makefile", name)
	}
	words, err := splitWords(strings.TrimSpace(string(m[1])))
	if err != nil {
		t.Fatalf("lambdatest: Makefile %s: %v", name, err)
	}
	return words
}

// splitWords splits a shell command line as sh would, for the quoting that GOFLAGS_FN uses:
// words apart by blanks, '...' quoting. Anything else that sh or make would interpret (double
// quotes, backslashes, $) is refused rather than split differently from make's shell.
func splitWords(s string) ([]string, error) {
	var words []string
	var w strings.Builder
	inWord, quoted := false, false
	for _, r := range s {
		switch {
		case quoted && r == '\'':
			quoted = false
		case quoted:
			w.WriteRune(r)
		case r == '\'':
			quoted, inWord = true, true
		case r == ' ' || r == '\t':
			if inWord {
				words, inWord = append(words, w.String()), false
				w.Reset()
			}
		case r == '"' || r == '\\' || r == '$':
			return nil, fmt.Errorf("%q: only '...' quoting is understood", s)
		default:
			w.WriteRune(r)
			inWord = true
		}
	}
	if quoted {
		return nil, fmt.Errorf("%q: unterminated quote", s)
	}
	if inWord {
		words = append(words, w.String())
	}
	return words, nil
}

// Build compiles the function in package directory pkg ("." for the test's
// own package) for the host, with CGO_ENABLED=0 and BuildFlags, into
// t.TempDir(), and returns the binary's path. Even from a warm cache a
// build takes a second or two: build once per package, in a top-level test
// whose subtests run the binary.
func Build(t testing.TB, pkg string) string {
	t.Helper()
	return build(t, pkg, "CGO_ENABLED=0", "GOOS="+runtime.GOOS, "GOARCH="+runtime.GOARCH)
}

// BuildTarget compiles pkg as `make build` does, for Lambda (TargetEnv and
// BuildFlags), to be measured, not run. A cold build for another
// architecture takes minutes.
func BuildTarget(t testing.TB, pkg string) string {
	t.Helper()
	return build(t, pkg, TargetEnv(t)...)
}

func build(t testing.TB, pkg string, env ...string) string {
	t.Helper()
	gocmd, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("lambdatest: Build: no go command on PATH: %v", err)
	}
	out := filepath.Join(t.TempDir(), "bootstrap")
	args := append(append([]string{"build"}, BuildFlags(t)...), "-o", out, pkg)
	cmd := exec.Command(gocmd, args...)
	cmd.Env = append(os.Environ(), env...)
	start := time.Now()
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("lambdatest: go %s: %v\n%s", strings.Join(args, " "), err, b)
	}
	t.Logf("lambdatest: built %s in %s", pkg, time.Since(start).Round(time.Millisecond))
	return out
}

// Fixture reads a JSON fixture (an event or a message), replaces each
// old/new pair, and fails the test when a {{PLACEHOLDER}} is left or the
// result is not JSON. Surrounding white space is trimmed.
func Fixture(t testing.TB, path string, oldnew ...string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("lambdatest: fixture: %v", err)
	}
	s := strings.TrimSpace(strings.NewReplacer(oldnew...).Replace(string(b)))
	if i := strings.Index(s, "{{"); i >= 0 {
		t.Fatalf("lambdatest: fixture %s: placeholder left at %q", path, s[i:min(len(s), i+24)])
	}
	if !json.Valid([]byte(s)) {
		t.Fatalf("lambdatest: fixture %s: not JSON after substitution", path)
	}
	return []byte(s)
}

// Process is a running function binary.
type Process struct {
	cmd    *exec.Cmd
	logs   logBuffer
	exited chan struct{}
	err    error // from Wait, once exited is closed
}

// Run starts bin as the Lambda service would, with the environment of a
// provided.al2023 function whose Runtime API is rt, plus env ("KEY=value",
// later entries win). Nothing else of the test's environment is passed on.
// Its stdout and stderr are kept (Logs); it is killed when the test ends,
// and its logs are printed then if the test failed.
func Run(t testing.TB, bin string, rt *Runtime, env ...string) *Process {
	t.Helper()
	p := &Process{exited: make(chan struct{})}
	p.cmd = exec.Command(bin)
	p.cmd.Dir = filepath.Dir(bin)
	p.cmd.Env = append(lambdaEnv(rt.Addr(), p.cmd.Dir), env...)
	if n := rt.Concurrency(); n > 1 {
		// What Lambda Managed Instances sets: aws-lambda-go then runs n
		// runtime loops in the process.
		p.cmd.Env = append(p.cmd.Env, "AWS_LAMBDA_MAX_CONCURRENCY="+strconv.Itoa(n))
	}
	p.cmd.Stdout = &p.logs
	p.cmd.Stderr = &p.logs
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("lambdatest: start %s: %v", bin, err)
	}
	go func() {
		p.err = p.cmd.Wait()
		close(p.exited)
	}()
	t.Cleanup(func() {
		if _, err := p.Stop(); err != nil {
			t.Error(err)
		}
		if t.Failed() {
			t.Logf("lambdatest: logs of %s (pid %d):\n%s", filepath.Base(bin), p.cmd.Process.Pid, p.Logs())
		}
	})
	return p
}

// lambdaEnv is the environment Lambda gives a provided.al2023 function
// (without credentials: nothing here may reach AWS).
func lambdaEnv(api, taskRoot string) []string {
	return []string{
		"AWS_LAMBDA_RUNTIME_API=" + api,
		"AWS_LAMBDA_FUNCTION_NAME=lambdatest",
		"AWS_LAMBDA_FUNCTION_VERSION=$LATEST",
		"AWS_LAMBDA_FUNCTION_MEMORY_SIZE=128",
		"AWS_LAMBDA_INITIALIZATION_TYPE=on-demand",
		"AWS_LAMBDA_LOG_GROUP_NAME=/aws/lambda/lambdatest",
		"AWS_LAMBDA_LOG_STREAM_NAME=2026/01/27/[$LATEST]lambdatest",
		"AWS_REGION=eu-west-1",
		"AWS_DEFAULT_REGION=eu-west-1",
		"AWS_EXECUTION_ENV=AWS_Lambda_provided.al2023",
		"LAMBDA_TASK_ROOT=" + taskRoot,
		"LAMBDA_RUNTIME_DIR=" + taskRoot,
		"_HANDLER=bootstrap",
		"LANG=en_US.UTF-8",
		"TZ=:UTC",
		"PATH=/usr/local/bin:/usr/bin/:/bin",
	}
}

// Pid is the process id.
func (p *Process) Pid() int { return p.cmd.Process.Pid }

// Logs returns everything the process wrote to stdout and stderr so far,
// interleaved as it arrived.
func (p *Process) Logs() string { return p.logs.String() }

// WaitLogs waits until the logs contain substr. Logs travel through a pipe,
// so a line written before a response ended may arrive after it.
func (p *Process) WaitLogs(ctx context.Context, substr string) error {
	for {
		b := &p.logs
		b.mu.Lock()
		found := strings.Contains(b.buf.String(), substr)
		if b.changed == nil {
			b.changed = make(chan struct{})
		}
		ch := b.changed
		b.mu.Unlock()
		if found {
			return nil
		}
		select {
		case <-ch:
		case <-p.exited:
			if strings.Contains(p.Logs(), substr) {
				return nil
			}
			return fmt.Errorf("lambdatest: process %d exited without logging %q", p.Pid(), substr)
		case <-ctx.Done():
			return fmt.Errorf("lambdatest: waiting for %q in the logs: %w", substr, ctx.Err())
		}
	}
}

// Stop kills the process (SIGKILL, as Lambda ends an environment), waits
// for it and returns its complete logs: check logs for what must never be
// there after Stop, since output travels through a pipe.
func (p *Process) Stop() (string, error) {
	_ = p.cmd.Process.Kill()
	select {
	case <-p.exited:
		return p.Logs(), nil
	case <-time.After(10 * time.Second):
		return p.Logs(), fmt.Errorf("lambdatest: process %d did not exit after SIGKILL", p.Pid())
	}
}

// Signal sends sig to the process (syscall.SIGTERM: what Lambda sends
// before it ends an environment, when it does).
func (p *Process) Signal(sig os.Signal) error { return p.cmd.Process.Signal(sig) }

// userHZ is the unit of the CPU times in /proc/<pid>/stat: fixed at 100
// for user space on Linux, whatever the kernel's own tick.
const userHZ = 100

// CPU returns the CPU time (user + system, every thread) the process has
// used so far, from /proc (Linux only), in steps of 10 ms.
func (p *Process) CPU() (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", p.Pid()))
	if err != nil {
		return 0, fmt.Errorf("lambdatest: cpu: %w", err)
	}
	// The command name (field 2) may hold spaces: count fields after ")".
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, fmt.Errorf("lambdatest: cpu: unexpected stat %q", b)
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return 0, fmt.Errorf("lambdatest: cpu: unexpected stat %q", b)
	}
	// After ")": state is field 3, so utime (14) and stime (15) are f[11], f[12].
	var ticks int64
	for _, s := range f[11:13] {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("lambdatest: cpu: %q: %w", s, err)
		}
		ticks += n
	}
	return time.Duration(ticks) * time.Second / userHZ, nil
}

// Exited is closed when the process has exited.
func (p *Process) Exited() <-chan struct{} { return p.exited }

// Wait waits for the process to exit by itself and returns its exit code.
func (p *Process) Wait(ctx context.Context) (int, error) {
	select {
	case <-p.exited:
		return p.cmd.ProcessState.ExitCode(), nil
	case <-ctx.Done():
		return -1, fmt.Errorf("lambdatest: waiting for process %d to exit: %w", p.Pid(), ctx.Err())
	}
}

// Memory is the resident memory of a process, in bytes.
type Memory struct {
	Peak    int64 // VmHWM: the high-water mark since start
	Current int64 // VmRSS
}

// Memory reads the process's resident memory from /proc (Linux only). The
// process must still be running.
func (p *Process) Memory() (Memory, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", p.Pid()))
	if err != nil {
		return Memory{}, fmt.Errorf("lambdatest: memory: %w", err)
	}
	defer f.Close()
	var m Memory
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		name, val, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		var dst *int64
		switch name {
		case "VmHWM":
			dst = &m.Peak
		case "VmRSS":
			dst = &m.Current
		default:
			continue
		}
		kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(val), "kB")), 10, 64)
		if err != nil {
			return Memory{}, fmt.Errorf("lambdatest: memory: %s: %q", name, val)
		}
		*dst = kb << 10
	}
	if err := sc.Err(); err != nil {
		return Memory{}, fmt.Errorf("lambdatest: memory: %w", err)
	}
	if m.Peak == 0 {
		return Memory{}, fmt.Errorf("lambdatest: memory: no VmHWM for pid %d (exited?)", p.Pid())
	}
	return m, nil
}

// logBuffer collects a process's output; written by exec's copying
// goroutines while the test reads it.
type logBuffer struct {
	mu      sync.Mutex
	buf     bytes.Buffer
	changed chan struct{} // closed and replaced (or nil) at every Write
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.changed != nil {
		close(b.changed)
		b.changed = nil
	}
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
