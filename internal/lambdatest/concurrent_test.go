package lambdatest_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/machinedash/sse/internal/lambdatest"
)

// TestConcurrent runs the real aws-lambda-go with
// AWS_LAMBDA_MAX_CONCURRENCY=3 against the fake, as on Lambda Managed
// Instances: three invocations stream at the same time, each with its own
// request id and deadline, and breaking one response leaves the others.
func TestConcurrent(t *testing.T) {
	t.Parallel()
	bin := lambdatest.Build(t, "./testdata/fn")
	const n = 3
	rt := lambdatest.Start(t, lambdatest.MaxConcurrency(n))
	g := newGate(t)
	lambdatest.Run(t, bin, rt)
	ctx := lambdatest.Within(t, 20*time.Second)

	invs := make([]*lambdatest.Invocation, n)
	for i := range invs {
		// Distinct deadlines, whole milliseconds apart.
		deadline := time.Now().Add(time.Duration(30+i) * time.Second)
		parts := fmt.Sprintf("a%d,b%d,c%d", i, i, i)
		invs[i] = rt.Invoke(request(t, "/stream", "parts="+parts, map[string]string{"x-gate": g.URL() + "/" + strconv.Itoa(i)}), deadline)
	}
	// Every invocation has its prelude and first chunk while none has
	// gone on: they run at once, not one after the other.
	ids := map[string]bool{}
	for i, inv := range invs {
		p, err := inv.Prelude(ctx)
		if err != nil {
			t.Fatalf("invocation %d: %v", i, err)
		}
		if got, want := p.Headers["X-Request-Id"], inv.ID; got != want {
			t.Errorf("invocation %d: handler saw request id %q, want %q", i, got, want)
		}
		if got, want := p.Headers["X-Deadline-Ms"], strconv.FormatInt(inv.Deadline.UnixMilli(), 10); got != want {
			t.Errorf("invocation %d: handler saw deadline %s, want %s", i, got, want)
		}
		ids[inv.ID] = true
		c, err := inv.Next(ctx)
		if err != nil || string(c.Data) != "a"+strconv.Itoa(i) {
			t.Fatalf("invocation %d: first chunk %q, %v", i, c.Data, err)
		}
	}
	if len(ids) != n {
		t.Errorf("%d distinct request ids, want %d", len(ids), n)
	}

	// Break the response of invocation 0; 1 and 2 go on to their end.
	if err := invs[0].Cut(); err != nil {
		t.Fatal(err)
	}
	if _, err := invs[0].Next(ctx); !errors.Is(err, lambdatest.ErrBrokenOff) {
		t.Errorf("cut invocation: %v, want ErrBrokenOff", err)
	}
	for i := 1; i < n; i++ {
		g.Open(strconv.Itoa(i) + "/0")
		g.Open(strconv.Itoa(i) + "/1")
	}
	for i := 1; i < n; i++ {
		res, err := invs[i].Wait(ctx)
		if err != nil {
			t.Fatal(err)
		}
		want := fmt.Sprintf("a%db%dc%d", i, i, i)
		if string(res.Body()) != want || res.ReadErr != nil || res.Err != nil {
			t.Errorf("invocation %d: body %q (%v, %v), want %q", i, res.Body(), res.ReadErr, res.Err, want)
		}
	}
}

// TestConcurrencyLimit: more runtime loops busy at once than the
// concurrency (here two GET next against a classic API) is misuse the
// fake reports at the test's end.
func TestConcurrencyLimit(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		n, gets int
		misuse  bool
	}{
		{1, 1, false},
		{1, 2, true},
		{3, 3, false},
		{3, 4, true},
	} {
		rec := &recorder{}
		t.Run(fmt.Sprintf("concurrency %d, %d GET next", tc.n, tc.gets), func(t *testing.T) {
			rec.TB = t
			rt := lambdatest.Start(rec, lambdatest.MaxConcurrency(tc.n))
			ctx, cancel := context.WithCancel(context.Background())
			var wg sync.WaitGroup
			for range tc.gets {
				wg.Add(1)
				go func() {
					defer wg.Done()
					req, _ := http.NewRequestWithContext(ctx, http.MethodGet, rt.URL()+"/2018-06-01/runtime/invocation/next", nil)
					if resp, err := http.DefaultClient.Do(req); err == nil {
						resp.Body.Close()
					}
				}()
			}
			// Every GET has reached the fake when invocations are taken:
			// queue one each and wait until all are fetched.
			invs := make([]*lambdatest.Invocation, tc.gets)
			for i := range invs {
				invs[i] = rt.Invoke([]byte(`{}`), time.Now().Add(time.Minute))
			}
			for _, inv := range invs {
				for inv.Result().Fetched.IsZero() {
					select {
					case <-time.After(10 * time.Millisecond):
					case <-lambdatest.Within(t, 5*time.Second).Done():
						t.Fatal("GET next never took its invocation")
					}
				}
			}
			cancel()
			wg.Wait()
		})
		got := strings.Join(rec.errs, "\n")
		if misuse := strings.Contains(got, "runtime loops busy"); misuse != tc.misuse {
			t.Errorf("concurrency %d, %d GET next: misuse reported %v, want %v (%q)", tc.n, tc.gets, misuse, tc.misuse, got)
		}
	}
}

// recorder keeps the errors a Runtime reports instead of failing the test.
type recorder struct {
	testing.TB
	mu   sync.Mutex
	errs []string
}

func (r *recorder) Errorf(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.errs = append(r.errs, fmt.Sprintf(format, args...))
}
