package urlfn

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambdaurl"
)

func streamEvent() *events.LambdaFunctionURLRequest {
	req := &events.LambdaFunctionURLRequest{RawPath: "/sse/stream", RawQueryString: "ticket=t"}
	req.RequestContext.HTTP.Method = "GET"
	req.RequestContext.HTTP.SourceIP = "203.0.113.7"
	req.RequestContext.DomainName = "abc.lambda-url.eu-west-1.on.aws"
	return req
}

// TestStreamingMatchesLambdaURL: for the same handler, the response
// (prelude, NULs, body) is lambdaurl's byte for byte.
func TestStreamingMatchesLambdaURL(t *testing.T) {
	t.Parallel()
	for name, h := range map[string]http.HandlerFunc{
		"headers, cookies, status, writes": func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/event-stream")
			w.Header().Add("Vary", "Origin")
			w.Header().Add("Vary", "Accept")
			http.SetCookie(w, &http.Cookie{Name: "a", Value: "1"})
			http.SetCookie(w, &http.Cookie{Name: "b", Value: "2"})
			w.WriteHeader(http.StatusCreated)
			w.WriteHeader(http.StatusTeapot) // ignored, as by net/http
			_, _ = io.WriteString(w, "retry: 1000\n\n")
			_, _ = io.WriteString(w, "data: x\n\n")
		},
		"nothing written": func(w http.ResponseWriter, r *http.Request) {},
		"headers only":    func(w http.ResponseWriter, r *http.Request) { w.Header().Set("Cache-Control", "no-store") },
		"cookie only": func(w http.ResponseWriter, r *http.Request) {
			http.SetCookie(w, &http.Cookie{Name: "a", Value: "1"})
		},
		"status only": func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusTooManyRequests) },
		"binary body": func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write([]byte{0, 0xff, 0xfe}) },
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			want, wantResp := readAll(t, lambdaurl.Wrap(h))
			got, gotResp := readAll(t, Streaming(h))
			if !bytes.Equal(got, want) {
				t.Fatalf("payload\n got %q\nwant %q", got, want)
			}
			if gotResp.StatusCode != wantResp.StatusCode || len(gotResp.Headers) != len(wantResp.Headers) ||
				strings.Join(gotResp.Cookies, "|") != strings.Join(wantResp.Cookies, "|") {
				t.Fatalf("response %+v, lambdaurl's %+v", gotResp, wantResp)
			}
		})
	}
}

func readAll(t *testing.T, serve func(context.Context, *events.LambdaFunctionURLRequest) (*events.LambdaFunctionURLStreamingResponse, error)) ([]byte, *events.LambdaFunctionURLStreamingResponse) {
	t.Helper()
	resp, err := serve(context.Background(), streamEvent())
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(resp)
	if err != nil {
		t.Fatal(err)
	}
	if err := resp.Close(); err != nil {
		t.Fatal(err)
	}
	return b, resp
}

// TestStreamingRequest: the handler gets Buffered's request (cookies
// included); an event that is no request gets the 400.
func TestStreamingRequest(t *testing.T) {
	t.Parallel()
	var seen *http.Request
	h := Streaming(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { seen = r }))
	req := streamEvent()
	req.Headers = map[string]string{"last-event-id": "5"}
	req.Cookies = []string{"s=1"}
	if _, gotResp := readAll(t, h); gotResp.StatusCode != 200 {
		t.Fatalf("%+v", gotResp)
	}
	resp, err := h(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.ReadAll(resp)
	if seen.URL.Path != "/sse/stream" || seen.URL.Query().Get("ticket") != "t" || seen.Header.Get("Last-Event-Id") != "5" ||
		seen.Header.Get("Cookie") != "s=1" || seen.RemoteAddr != "203.0.113.7" {
		t.Fatalf("request %+v", seen)
	}
	bad := streamEvent()
	bad.Body, bad.IsBase64Encoded = "%%%", true
	resp, err = h(context.Background(), bad)
	if err != nil || resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("%v %+v", err, resp)
	}
	_, _ = io.ReadAll(resp)
}

// start serves h in the background: the response, and the body past the
// prelude.
func start(t *testing.T, h http.HandlerFunc) (*events.LambdaFunctionURLStreamingResponse, io.Reader) {
	t.Helper()
	resp, err := Streaming(h)(context.Background(), streamEvent())
	if err != nil {
		t.Fatal(err)
	}
	prelude := make([]byte, 512)
	n, err := resp.Read(prelude)
	if err != nil || !bytes.HasSuffix(prelude[:n], make([]byte, 8)) {
		t.Fatalf("prelude %q %v", prelude[:n], err)
	}
	return resp, resp.Body
}

// TestStreamingWritesDoNotWaitForTheReader: below the limit, writes return
// with nobody reading, and one Read takes them all. Nothing is left after
// the body ends (synctest fails on a goroutine left blocked).
func TestStreamingWritesDoNotWaitForTheReader(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		wrote, finish := make(chan error, 1), make(chan struct{})
		resp, body := start(t, func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(http.StatusOK)
			var err error
			for i := 0; i < 100 && err == nil; i++ {
				_, err = io.WriteString(w, "data: "+strconv.Itoa(i)+"\n\n")
			}
			wrote <- err
			<-finish
		})
		if err := <-wrote; err != nil {
			t.Fatal(err)
		}
		var want strings.Builder
		for i := range 100 {
			want.WriteString("data: " + strconv.Itoa(i) + "\n\n")
		}
		p := make([]byte, 32<<10)
		if n, err := body.Read(p); err != nil || string(p[:n]) != want.String() {
			t.Fatalf("one read: %d bytes %v, want the %d written", n, err, want.Len())
		}
		if b := resp.Body.(*streamBody); b.buf != nil {
			t.Fatalf("drained body still holds a buffer of %d", cap(*b.buf))
		}
		close(finish)
		if n, err := body.Read(p); n != 0 || err != io.EOF {
			t.Fatalf("after the handler returned: %d %v, want EOF", n, err)
		}
		_ = resp.Close()
	})
}

// TestStreamingWriteAboveTheLimit: past the limit a Write waits; a Read
// lets it go on; with nobody reading it fails at its deadline with
// os.ErrDeadlineExceeded (what a stream takes for a stalled write).
func TestStreamingWriteAboveTheLimit(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		big := bytes.Repeat([]byte("x"), streamLimit)
		type result struct {
			err error
			at  time.Time
		}
		results, next := make(chan result), make(chan struct{})
		var deadline time.Time
		resp, body := start(t, func(w http.ResponseWriter, r *http.Request) {
			rc := http.NewResponseController(w)
			deadline = time.Now().Add(10 * time.Second)
			if err := rc.SetWriteDeadline(deadline); err != nil {
				t.Error(err)
			}
			if err := rc.Flush(); err != nil {
				t.Error(err)
			}
			for range 3 {
				_, err := w.Write(big)
				results <- result{err, time.Now()}
				<-next
			}
		})
		if r := <-results; r.err != nil { // up to the limit: at once
			t.Fatal(r.err)
		}
		next <- struct{}{}
		synctest.Wait()
		select {
		case r := <-results:
			t.Fatalf("a write above the limit did not wait: %v", r.err)
		default:
		}
		p := make([]byte, 32<<10)
		if n, err := body.Read(p); n != len(p) || err != nil {
			t.Fatalf("read %d %v", n, err)
		}
		if r := <-results; r.err != nil || !r.at.Before(deadline) {
			t.Fatalf("the write after the read: %v at %v", r.err, r.at)
		}
		next <- struct{}{}
		if r := <-results; !errors.Is(r.err, os.ErrDeadlineExceeded) || r.at.Before(deadline) {
			t.Fatalf("a write with nobody reading: %v at %v, want deadline exceeded at %v", r.err, r.at, deadline)
		}
		close(next)
		_ = resp.Close()
	})
}

// TestStreamingWriteAfterTheClientClosed: once the Runtime API client has
// closed the body (its POST is over), a waiting Write and every later one
// fail instead of waiting forever.
func TestStreamingWriteAfterTheClientClosed(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		big := bytes.Repeat([]byte("x"), streamLimit)
		errs := make(chan error)
		resp, _ := start(t, func(w http.ResponseWriter, r *http.Request) {
			for range 3 { // no deadline: only the close ends the wait
				_, err := w.Write(big)
				errs <- err
			}
		})
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		_ = resp.Close()
		for range 2 {
			if err := <-errs; !errors.Is(err, io.ErrClosedPipe) {
				t.Fatalf("write after close: %v", err)
			}
		}
		if b := resp.Body.(*streamBody); b.buf != nil {
			t.Fatal("closed body still holds its buffer")
		}
	})
}

// TestStreamingConcurrentWriteAndRead: every byte arrives once, in order,
// with the writer and the reader racing (run with -race).
func TestStreamingConcurrentWriteAndRead(t *testing.T) {
	t.Parallel()
	var want bytes.Buffer
	for i := range 20000 {
		want.WriteString("id: " + strconv.Itoa(i) + "\ndata: " + strings.Repeat("y", i%300) + "\n\n")
	}
	resp, body := start(t, func(w http.ResponseWriter, r *http.Request) {
		rc := http.NewResponseController(w)
		src := want.Bytes()
		for len(src) > 0 {
			n := min(len(src), 1+len(src)%997)
			if _, err := w.Write(src[:n]); err != nil {
				t.Error(err)
				return
			}
			_ = rc.Flush()
			src = src[n:]
		}
	})
	var got bytes.Buffer
	var wg sync.WaitGroup
	wg.Go(func() {
		if _, err := io.Copy(&got, body); err != nil {
			t.Error(err)
		}
	})
	wg.Wait()
	_ = resp.Close()
	if !bytes.Equal(got.Bytes(), want.Bytes()) {
		t.Fatalf("got %d bytes, want %d (or out of order)", got.Len(), want.Len())
	}
}
