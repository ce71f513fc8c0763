package app

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambda"

	"github.com/machinedash/sse/internal/urlfn"
)

// shutdownGrace bounds the wait, after SIGTERM, for the open responses to
// reach the Runtime API. The platform's SIGKILL comes soon after SIGTERM
// anyway; this only keeps a stuck response from holding the exit longer.
const shutdownGrace = 5 * time.Second

// StartStream serves h on a RESPONSE_STREAM function URL and never
// returns. One process may serve many invocations at once
// (AWS_LAMBDA_MAX_CONCURRENCY on Lambda Managed Instances): on SIGTERM,
// which the platform sends before it ends an environment when it does,
// every open stream ends with a soft retry (Drain), and the process exits
// once each response has been handed to the Runtime API in full, so that
// no browser sees a stream break off without a retry.
func (a *App) StartStream(h http.Handler) {
	var open responses
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM)
	go func() {
		<-sig
		n := open.count()
		if a.Streams != nil {
			a.Streams.Drain()
		}
		sent := open.wait(shutdownGrace)
		a.Log.Info("shutdown", slog.Int("responses", n), slog.Bool("allSent", sent))
		a.Metrics.Flush() // the figures since the last line, before the process goes
		os.Exit(0)
	}()
	serve := urlfn.Streaming(h)
	lambda.Start(func(ctx context.Context, req *events.LambdaFunctionURLRequest) (*events.LambdaFunctionURLStreamingResponse, error) {
		done := open.begin()
		resp, err := serve(ctx, req)
		if err != nil || resp == nil {
			done()
			return resp, err
		}
		// aws-lambda-go closes the response after its POST to the
		// Runtime API has ended: only then is the response out.
		resp.Body = &sentBody{Reader: resp.Body, done: done}
		return resp, nil
	})
}

// responses counts the responses not yet handed to the Runtime API.
type responses struct {
	mu   sync.Mutex
	n    int
	zero chan struct{} // closed (and replaced) when n drops to 0
}

// begin counts one response; the returned func, safe to call more than
// once, ends it.
func (r *responses) begin() func() {
	r.mu.Lock()
	r.n++
	r.mu.Unlock()
	var once sync.Once
	return func() {
		once.Do(func() {
			r.mu.Lock()
			defer r.mu.Unlock()
			r.n--
			if r.n == 0 && r.zero != nil {
				close(r.zero)
				r.zero = nil
			}
		})
	}
}

func (r *responses) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.n
}

// wait reports whether every response ended within d.
func (r *responses) wait(d time.Duration) bool {
	r.mu.Lock()
	if r.n == 0 {
		r.mu.Unlock()
		return true
	}
	if r.zero == nil {
		r.zero = make(chan struct{})
	}
	zero := r.zero
	r.mu.Unlock()
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-zero:
		return true
	case <-t.C:
		return false
	}
}

// sentBody is a response body whose Close marks the response sent.
type sentBody struct {
	io.Reader
	done func()
}

func (b *sentBody) Close() error {
	defer b.done()
	if c, ok := b.Reader.(io.Closer); ok {
		return c.Close()
	}
	return nil
}
