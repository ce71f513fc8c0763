package loadbench

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// The private server's secrets: a throwaway server on loopback, never a deployed one.
const (
	accessSecret = "loadbench-access-token-secret-not-for-production"
	ticketSecret = "loadbench-stream-ticket-secret-not-for-production"
)

// buildHarness builds loadcmp into the work folder (the harness's README: keep the binary
// outside the repository).
func buildHarness(ctx context.Context, c Config) (string, error) {
	bin := filepath.Join(c.Work, "loadcmp")
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, ".")
	cmd.Dir = c.Harness
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("loadbench: building loadcmp in %s: %w\n%s", c.Harness, err, out)
	}
	return bin, nil
}

// resolve returns b's executable: the file itself, or ./functions/local built from the git
// revision's tree (git archive, so nothing outside the commit goes in, and no VCS stamp, as in
// a plain go build of an exported tree).
func resolve(ctx context.Context, c Config, b Binary) (string, error) {
	if st, err := os.Stat(b.Spec); err == nil && st.Mode().IsRegular() {
		if st.Mode()&0o111 == 0 {
			return "", fmt.Errorf("loadbench: %s: %s is not executable", b.Name, b.Spec)
		}
		return filepath.Abs(b.Spec)
	}
	out, err := exec.CommandContext(ctx, "git", "-C", c.Repo, "rev-parse", "--verify", b.Spec+"^{commit}").Output()
	if err != nil {
		return "", fmt.Errorf("loadbench: %s: %q is neither a file nor a git revision of %s", b.Name, b.Spec, c.Repo)
	}
	rev := strings.TrimSpace(string(out))
	src := filepath.Join(c.Work, "src-"+rev[:12])
	bin := filepath.Join(c.Work, "local-"+rev[:12])
	if _, err := os.Stat(bin); err == nil {
		return bin, nil
	}
	if err := os.MkdirAll(src, 0o755); err != nil {
		return "", err
	}
	archive := exec.CommandContext(ctx, "git", "-C", c.Repo, "archive", rev)
	untar := exec.CommandContext(ctx, "tar", "-x", "-C", src)
	pipe, err := archive.StdoutPipe()
	if err != nil {
		return "", err
	}
	untar.Stdin = pipe
	if err := archive.Start(); err != nil {
		return "", err
	}
	if out, err := untar.CombinedOutput(); err != nil {
		_ = archive.Wait()
		return "", fmt.Errorf("loadbench: unpacking %s: %w\n%s", rev, err, out)
	}
	if err := archive.Wait(); err != nil {
		return "", fmt.Errorf("loadbench: git archive %s: %w", rev, err)
	}
	build := exec.CommandContext(ctx, "go", "build", "-o", bin, "./functions/local")
	build.Dir = src
	if out, err := build.CombinedOutput(); err != nil {
		return "", fmt.Errorf("loadbench: building %s at %s: %w\n%s", b.Name, rev, err, out)
	}
	return bin, nil
}

// runOnce is one run from nothing: redis-server, seed, server, tickets, loadcmp.
func runOnce(ctx context.Context, c Config, loadcmp string, b Binary, k Kind, label string) (Result, error) {
	dir := filepath.Join(c.Work, "runs", label)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return Result{}, err
	}
	redisPort, err := freePort()
	if err != nil {
		return Result{}, err
	}
	rds, err := start(ctx, dir, "redis.log", nil, "redis-server", "--port", strconv.Itoa(redisPort),
		"--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", dir, "--daemonize", "no")
	if err != nil {
		return Result{}, err
	}
	defer rds.stop(10 * time.Second)
	redisAddr := fmt.Sprintf("127.0.0.1:%d", redisPort)
	if err := waitFor(ctx, rds, 10*time.Second, func() error { return redisPing(redisAddr) }); err != nil {
		return Result{}, fmt.Errorf("redis-server: %w (see %s)", err, filepath.Join(dir, "redis.log"))
	}
	if err := seed(ctx, c, redisPort); err != nil {
		return Result{}, err
	}

	srvPort, err := freePort()
	if err != nil {
		return Result{}, err
	}
	env := []string{
		"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME"),
		"REDIS_URL=redis://" + redisAddr + "/0",
		"ACCESS_TOKEN_SECRET=" + accessSecret, "STREAM_TICKET_SECRET=" + ticketSecret,
		"REALTIME_MIN_INTERVAL=0", "MAX_STREAMS_PER_IP=" + strconv.Itoa(max(5000, c.Streams)),
	}
	env = append(env, b.Env...) // later wins: a binary's own settings
	srvAddr := fmt.Sprintf("127.0.0.1:%d", srvPort)
	srv, err := start(ctx, dir, "server.log", env, b.path, "-addr", srvAddr, "-simulate=false")
	if err != nil {
		return Result{}, err
	}
	defer srv.stop(30 * time.Second)
	if err := waitFor(ctx, srv, 60*time.Second, func() error { return health(srvAddr) }); err != nil {
		return Result{}, fmt.Errorf("server: %w (see %s)", err, filepath.Join(dir, "server.log"))
	}
	tickets := filepath.Join(dir, "tickets")
	mint := exec.CommandContext(ctx, "python3", filepath.Join(c.Harness, "scripts", "tickets.py"),
		strconv.Itoa(c.Streams), "127.0.0.1", strconv.Itoa(srvPort), tickets)
	mint.Env = append(os.Environ(), "ACCESS_TOKEN_SECRET="+accessSecret)
	if out, err := mint.CombinedOutput(); err != nil {
		return Result{}, fmt.Errorf("tickets.py: %w\n%s", err, out)
	}

	rate, duration, warmup := k.Rate, c.Duration, c.Warmup
	if k.Name == KindSweep {
		duration, warmup = c.SweepDuration, c.SweepWarmup
	}
	args := []string{"run", "-target", "redis-sse",
		"-sub-url", "http://" + srvAddr + "/sse/stream?ticket={ticket}&deviceIds={devices}&includeStatus=false",
		"-ticket-cmd", "cat " + shellQuote(tickets) + "/{user}",
		"-redis", "redis://" + redisAddr + "/0", "-channel", "mqtt:realtime:processed", "-event", "realtime-update",
		"-server-pid", fmt.Sprintf("%d,%d", srv.cmd.Process.Pid, rds.cmd.Process.Pid),
		"-streams", strconv.Itoa(c.Streams), "-devices", strconv.Itoa(c.Devices), "-per-stream", strconv.Itoa(c.PerStream),
		"-rate", strconv.FormatFloat(rate, 'g', -1, 64), "-duration", duration.String(), "-warmup", warmup.String(),
		"-idle", c.Idle.String(), "-progress", "0",
	}
	// loadcmp ends its run by itself; the limit only keeps a hung run from blocking the rest.
	runCtx, cancel := context.WithTimeout(ctx, warmup+duration+c.Idle+3*time.Minute)
	defer cancel()
	lc := exec.CommandContext(runCtx, loadcmp, args...)
	var stdout bytes.Buffer
	lc.Stdout = &stdout
	errLog, err := os.Create(filepath.Join(dir, "loadcmp.err"))
	if err != nil {
		return Result{}, err
	}
	defer errLog.Close()
	lc.Stderr = errLog
	lc.SysProcAttr = procAttr()
	_, steal0, total0 := machineJiffies()
	if err := lc.Start(); err != nil {
		return Result{}, fmt.Errorf("loadcmp: %w", err)
	}
	serverLog := filepath.Join(dir, "server.log")
	stopSampling := make(chan struct{})
	sampled := sampleConnect(serverLog, []int{srv.cmd.Process.Pid, rds.cmd.Process.Pid, lc.Process.Pid}, stopSampling)
	runErr := lc.Wait()
	_, steal1, total1 := machineJiffies()
	close(stopSampling)
	samples := <-sampled
	_ = os.WriteFile(filepath.Join(dir, "loadcmp.out"), stdout.Bytes(), 0o644)
	if runErr != nil {
		return Result{}, fmt.Errorf("loadcmp: %w (see %s)", runErr, dir)
	}
	res, err := ParseResult(stdout.Bytes())
	if err != nil {
		return Result{}, err
	}
	res.StealCores = stealCores(steal0, total0, steal1, total1, runtime.NumCPU())
	if sl, err := endedLog(ctx, serverLog); err == nil {
		p50 := time.Duration(res.Connect.P50ms * float64(time.Millisecond))
		res.ConnectCPU = connectCPU(samples, sl.Opens, p50, res.Connect.OK, runtime.NumCPU())
		res.Coalesced, res.Dropped = sl.Coalesced, sl.Dropped
	}
	return res, appendResult(c, b, k, label, stdout.Bytes(), res.ConnectCPU)
}

// endedLog reads the server's log once every stream it opened has logged its end (loadcmp
// has closed them; the server sees each close on its own), or after 10 s with what is there.
func endedLog(ctx context.Context, path string) (serverLog, error) {
	deadline := time.Now().Add(10 * time.Second)
	for {
		sl, err := readServerLog(path)
		if err != nil || sl.Ends >= len(sl.Opens) || time.Now().After(deadline) || ctx.Err() != nil {
			return sl, err
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// appendResult adds the run's loadcmp JSON line, labelled, to Work/results.jsonl.
func appendResult(c Config, b Binary, k Kind, label string, stdout []byte, cpu ConnectCPU) error {
	lines := strings.Split(strings.TrimSpace(string(stdout)), "\n")
	line, err := json.Marshal(struct {
		Run        string          `json:"run"`
		Binary     string          `json:"binary"`
		Spec       string          `json:"spec"`
		Kind       string          `json:"kind"`
		Loadcmp    json.RawMessage `json:"loadcmp"`
		ConnectCPU ConnectCPU      `json:"connect_cpu"`
	}{label, b.Name, b.Spec, k.String(), json.RawMessage(lines[len(lines)-1]), cpu})
	if err != nil {
		return err
	}
	f, err := os.OpenFile(filepath.Join(c.Work, "results.jsonl"), os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	if _, err := f.Write(append(line, '\n')); err != nil {
		_ = f.Close()
		return err
	}
	return f.Close()
}

// seed gives user u the devices loadcmp's stream u asks for (the harness's seed.py).
func seed(ctx context.Context, c Config, redisPort int) error {
	gen := exec.CommandContext(ctx, "python3", filepath.Join(c.Harness, "scripts", "seed.py"),
		strconv.Itoa(c.Streams), strconv.Itoa(c.Devices), strconv.Itoa(c.PerStream))
	pipe := exec.CommandContext(ctx, "redis-cli", "-p", strconv.Itoa(redisPort), "--pipe")
	in, err := gen.StdoutPipe()
	if err != nil {
		return err
	}
	pipe.Stdin = in
	var genErr bytes.Buffer
	gen.Stderr = &genErr
	if err := gen.Start(); err != nil {
		return fmt.Errorf("seed.py: %w", err)
	}
	out, err := pipe.CombinedOutput()
	if werr := gen.Wait(); werr != nil {
		return fmt.Errorf("seed.py: %w: %s", werr, genErr.String())
	}
	if err != nil || !strings.Contains(string(out), "errors: 0") {
		return fmt.Errorf("redis-cli --pipe: %v: %s", err, out)
	}
	return nil
}

// proc is a started child process whose output goes to a log file.
type proc struct {
	cmd  *exec.Cmd
	done chan struct{}
}

func start(ctx context.Context, dir, logName string, env []string, name string, args ...string) (*proc, error) {
	log, err := os.Create(filepath.Join(dir, logName))
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(name, args...)
	cmd.Stdout, cmd.Stderr = log, log
	if env != nil {
		cmd.Env = env
	}
	cmd.SysProcAttr = procAttr()
	if err := cmd.Start(); err != nil {
		_ = log.Close()
		return nil, fmt.Errorf("starting %s: %w", name, err)
	}
	p := &proc{cmd: cmd, done: make(chan struct{})}
	go func() {
		_ = cmd.Wait()
		_ = log.Close()
		close(p.done)
	}()
	go func() {
		select {
		case <-ctx.Done():
			p.stop(5 * time.Second)
		case <-p.done:
		}
	}()
	return p, nil
}

// stop sends SIGTERM, then SIGKILL after grace, and waits for the exit.
func (p *proc) stop(grace time.Duration) {
	select {
	case <-p.done:
		return
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(grace):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// waitFor polls ready until it succeeds, p exits, or the limit passes.
func waitFor(ctx context.Context, p *proc, limit time.Duration, ready func() error) error {
	deadline := time.Now().Add(limit)
	for {
		err := ready()
		if err == nil {
			return nil
		}
		if p.exited() {
			return errors.New("exited before it was ready")
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("not ready after %s: %w", limit, err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func redisPing(addr string) error {
	conn, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return err
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(time.Second))
	if _, err := conn.Write([]byte("PING\r\n")); err != nil {
		return err
	}
	line, err := bufio.NewReader(conn).ReadString('\n')
	if err != nil {
		return err
	}
	if !strings.HasPrefix(line, "+PONG") {
		return fmt.Errorf("PING answered %q", strings.TrimSpace(line))
	}
	return nil
}

func health(addr string) error {
	client := http.Client{Timeout: time.Second}
	resp, err := client.Get("http://" + addr + "/health")
	if err != nil {
		return err
	}
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("/health answered %d", resp.StatusCode)
	}
	return nil
}

// freePort asks the kernel for a free loopback port. Another process may take it before the
// child binds it; the child then fails to start and the run reports it.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
