package lambdatest_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/machinedash/sse/internal/lambdatest"
)

// TestRuntime runs a function built with the real aws-lambda-go against
// the fake, so the fake is checked against what the library really sends.
func TestRuntime(t *testing.T) {
	bin := lambdatest.Build(t, "./testdata/fn")

	t.Run("streams each write as its own chunk while the response is open", func(t *testing.T) {
		t.Parallel()
		rt := lambdatest.Start(t)
		g := newGate(t)
		lambdatest.Run(t, bin, rt)
		deadline := time.Now().Add(30 * time.Second)
		inv := rt.Invoke(request(t, "/stream", "parts=one,two,three", map[string]string{"x-gate": g.URL()}), deadline)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()

		p, err := inv.Prelude(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if p.StatusCode != http.StatusOK || p.Headers["Content-Type"] != "text/plain" {
			t.Errorf("prelude = %d %v, want 200 text/plain", p.StatusCode, p.Headers)
		}
		// The library hands the handler what the fake sent.
		for k, want := range map[string]string{
			"X-Deadline-Ms":  strconv.FormatInt(deadline.UnixMilli(), 10),
			"X-Request-Id":   inv.ID,
			"X-Function-Arn": lambdatest.FunctionARN,
			"X-Remote-Addr":  "198.51.100.1",
		} {
			if got := p.Headers[k]; got != want {
				t.Errorf("prelude header %s = %q, want %q", k, got, want)
			}
		}

		for i, want := range []string{"one", "two", "three"} {
			c, err := inv.Next(ctx)
			if err != nil {
				t.Fatalf("chunk %d: %v", i, err)
			}
			if string(c.Data) != want {
				t.Fatalf("chunk %d = %q, want %q", i, c.Data, want)
			}
			if i < 2 {
				select {
				case <-inv.Done():
					t.Fatalf("chunk %d: response already complete; it must still be open", i)
				default:
				}
				g.Release(i)
			}
		}
		if _, err := inv.Next(ctx); err != io.EOF {
			t.Fatalf("after the last chunk: %v, want io.EOF", err)
		}
		res, err := inv.Wait(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if !res.Streaming || res.Header.Get("Content-Type") != lambdatest.StreamingContentType {
			t.Errorf("Content-Type = %q, want %q", res.Header.Get("Content-Type"), lambdatest.StreamingContentType)
		}
		if len(res.TransferEncoding) != 1 || res.TransferEncoding[0] != "chunked" {
			t.Errorf("Transfer-Encoding = %v, want chunked", res.TransferEncoding)
		}
		if want := []string{lambdatest.TrailerErrorBody, lambdatest.TrailerErrorType}; strings.Join(res.DeclaredTrailer, ",") != strings.Join(want, ",") {
			t.Errorf("declared trailers = %v, want %v", res.DeclaredTrailer, want)
		}
		// aws-lambda-go v1.55.1 does not send the response-mode header; the
		// content type alone marks the stream.
		t.Logf("%s: %q", lambdatest.HeaderResponseMode, res.Header.Get(lambdatest.HeaderResponseMode))
		if res.Err != nil || res.ReadErr != nil {
			t.Errorf("errors: %v, %v", res.Err, res.ReadErr)
		}
		if string(res.Body()) != "onetwothree" || len(res.Chunks) != 3 {
			t.Errorf("body = %q in %d chunks, want onetwothree in 3", res.Body(), len(res.Chunks))
		}
	})

	t.Run("error endpoint", func(t *testing.T) {
		t.Parallel()
		rt := lambdatest.Start(t)
		lambdatest.Run(t, bin, rt)
		inv := rt.Invoke(request(t, "/error", "", nil), time.Now().Add(30*time.Second))
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if _, err := inv.Prelude(ctx); !errors.Is(err, lambdatest.ErrFunction) {
			t.Errorf("Prelude: %v, want ErrFunction", err)
		}
		res, err := inv.Wait(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if res.Err == nil || res.Err.Message != "boom" || res.Err.Type != "errorString" || res.Err.Via != "error endpoint" {
			t.Errorf("function error = %+v, want errorString boom via the error endpoint", res.Err)
		}
		if !strings.HasSuffix(res.Path, "/"+inv.ID+"/error") {
			t.Errorf("path = %q", res.Path)
		}
	})

	t.Run("mid-stream failure arrives as trailers", func(t *testing.T) {
		t.Parallel()
		rt := lambdatest.Start(t)
		lambdatest.Run(t, bin, rt)
		inv := rt.Invoke(request(t, "/broken", "", nil), time.Now().Add(30*time.Second))
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		c, err := inv.Next(ctx)
		if err != nil || string(c.Data) != "partial" {
			t.Fatalf("first chunk = %q, %v; want partial", c.Data, err)
		}
		if _, err := inv.Next(ctx); !errors.Is(err, lambdatest.ErrFunction) {
			t.Fatalf("after the body: %v, want ErrFunction", err)
		}
		res := inv.Result()
		if res.Err == nil || res.Err.Via != "trailer" || res.Err.Type != "errorString" || res.Err.Message != "stream broke" {
			t.Errorf("function error = %+v, want errorString \"stream broke\" via trailer", res.Err)
		}
	})

	t.Run("a warm process serves the next invocation", func(t *testing.T) {
		t.Parallel()
		rt := lambdatest.Start(t)
		proc := lambdatest.Run(t, bin, rt)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		for i := range 3 {
			inv := rt.Invoke(request(t, "/stream", "parts=x"+strconv.Itoa(i), nil), time.Now().Add(30*time.Second))
			res, err := inv.Wait(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if got := string(res.Body()); got != "x"+strconv.Itoa(i) {
				t.Errorf("invocation %d body = %q", i, got)
			}
		}
		m, err := proc.Memory()
		if err != nil {
			t.Skip(err)
		}
		t.Logf("peak RSS %d KiB, now %d KiB", m.Peak>>10, m.Current>>10)
	})

	t.Run("buffered reading of a streamed payload fails", func(t *testing.T) {
		t.Parallel()
		rt := lambdatest.Start(t)
		lambdatest.Run(t, bin, rt)
		inv := rt.Invoke(request(t, "/stream", "parts=%7B%7D", nil), time.Now().Add(30*time.Second))
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		res, err := inv.Wait(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := res.Buffered(); !errors.Is(err, lambdatest.ErrNotBuffered) {
			t.Errorf("Buffered: %v, want ErrNotBuffered", err)
		}
	})
}

// TestInitError posts to init/error as a runtime that fails its start does
// (aws-lambda-go never does: its mains exit instead).
func TestInitError(t *testing.T) {
	t.Parallel()
	rt := lambdatest.Start(t)
	body := `{"errorMessage":"REDIS_URL: required","errorType":"Runtime.ConfigError"}`
	req, err := http.NewRequest(http.MethodPost, rt.URL()+"/2018-06-01/runtime/init/error", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set(lambdatest.TrailerErrorType, "Runtime.ConfigError")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	got := make(chan lambdatest.FunctionError, 1)
	go func() {
		fe, err := rt.InitError(ctx)
		if err != nil {
			t.Error(err)
		}
		got <- fe
	}()
	resp, err := http.DefaultClient.Do(req.WithContext(ctx))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		t.Errorf("status = %d, want 202", resp.StatusCode)
	}
	fe := <-got
	if fe.Type != "Runtime.ConfigError" || fe.Message != "REDIS_URL: required" {
		t.Errorf("init error = %+v", fe)
	}
	if n := len(rt.InitErrors()); n != 1 {
		t.Errorf("%d init errors, want 1", n)
	}
}

// TestNextBlocks: with nothing queued, GET next waits; an Invoke answers it.
func TestNextBlocks(t *testing.T) {
	t.Parallel()
	rt := lambdatest.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	type answer struct {
		h    http.Header
		body []byte
		err  error
	}
	got := make(chan answer, 1)
	go func() {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, rt.URL()+"/2018-06-01/runtime/invocation/next", nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			got <- answer{err: err}
			return
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		got <- answer{resp.Header, b, err}
	}()
	select {
	case a := <-got:
		t.Fatalf("next answered with nothing queued: %+v", a)
	case <-time.After(100 * time.Millisecond):
		// Not a wait for a timer: a bounded look for a wrong early answer.
	}
	deadline := time.UnixMilli(time.Now().Add(time.Minute).UnixMilli())
	inv := rt.Invoke([]byte(`{"k":1}`), deadline)
	a := <-got
	if a.err != nil {
		t.Fatal(a.err)
	}
	if !bytes.Equal(a.body, []byte(`{"k":1}`)) {
		t.Errorf("body = %s", a.body)
	}
	for k, want := range map[string]string{
		lambdatest.HeaderRequestID:   inv.ID,
		lambdatest.HeaderDeadline:    strconv.FormatInt(deadline.UnixMilli(), 10),
		lambdatest.HeaderFunctionARN: lambdatest.FunctionARN,
		lambdatest.HeaderTraceID:     inv.TraceID,
	} {
		if got := a.h.Get(k); got != want {
			t.Errorf("%s = %q, want %q", k, got, want)
		}
	}
	if !strings.HasPrefix(inv.TraceID, "Root=1-") {
		t.Errorf("trace id %q", inv.TraceID)
	}
	if inv.Result().Fetched.IsZero() {
		t.Error("Fetched not recorded")
	}
}

func request(t *testing.T, path, query string, headers map[string]string) []byte {
	t.Helper()
	if headers == nil {
		headers = map[string]string{}
	}
	b, err := json.Marshal(events.LambdaFunctionURLRequest{
		Version:        "2.0",
		RawPath:        path,
		RawQueryString: query,
		Headers:        headers,
		RequestContext: events.LambdaFunctionURLRequestContext{
			DomainName: "abc.lambda-url.eu-west-1.on.aws",
			RequestID:  "req",
			TimeEpoch:  time.Now().UnixMilli(),
			HTTP:       events.LambdaFunctionURLRequestContextHTTPDescription{Method: http.MethodGet, Path: path, Protocol: "HTTP/1.1", SourceIP: "198.51.100.1"},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// gate lets the test function go on only when the test says so: GET
// <URL>/<i> blocks until Release(i).
type gate struct {
	srv  *httptest.Server
	mu   sync.Mutex
	open map[string]chan struct{}
	done chan struct{}
}

func newGate(t *testing.T) *gate {
	g := &gate{open: make(map[string]chan struct{}), done: make(chan struct{})}
	g.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-g.ch(strings.TrimPrefix(r.URL.Path, "/")):
		case <-r.Context().Done():
		case <-g.done:
		}
	}))
	t.Cleanup(func() {
		close(g.done)
		g.srv.Close()
	})
	return g
}

func (g *gate) URL() string { return g.srv.URL }

func (g *gate) ch(name string) chan struct{} {
	g.mu.Lock()
	defer g.mu.Unlock()
	c, ok := g.open[name]
	if !ok {
		c = make(chan struct{})
		g.open[name] = c
	}
	return c
}

func (g *gate) Release(i int) { g.Open(strconv.Itoa(i)) }

// Open releases the waits on <URL>/<name>.
func (g *gate) Open(name string) { close(g.ch(name)) }
