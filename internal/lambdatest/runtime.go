// Package lambdatest runs a function's real bootstrap against a fake Lambda
// Runtime API, so a test can watch a response stream arrive chunk by chunk
// (the official emulator buffers the whole response, so it cannot).
//
// The fake speaks what aws-lambda-go v1.55.1 speaks: GET
// /2018-06-01/runtime/invocation/next answers an event with the
// Lambda-Runtime-Aws-Request-Id, -Deadline-Ms, -Invoked-Function-Arn and
// -Trace-Id headers; POST .../invocation/<id>/response carries the result,
// chunked, and for a streamed function URL response (Content-Type
// application/vnd.awslambda.http-integration-response) a JSON prelude, 8
// NUL bytes, then the body, with a mid-stream failure in the
// Lambda-Runtime-Function-Error-Type/-Body trailers; POST
// .../invocation/<id>/error and POST /2018-06-01/runtime/init/error report
// failures.
//
// With MaxConcurrency(n) it serves as the API of a Lambda Managed Instances
// environment does with AWS_LAMBDA_MAX_CONCURRENCY=n (which Run then sets):
// up to n GET next outstanding at once, each answered with its own
// invocation, request id and deadline, and the responses streamed
// concurrently. Without it n is 1, the classic one-at-a-time environment.
//
// Invariants: a response body is read as it arrives and every Read is handed
// to the test at once with its arrival time, never held until the response
// ends; GET next blocks while nothing is queued, until the test ends; every
// wait of the API takes a context; anything the function sends that the
// real API would refuse (among it more invocations at once, outstanding GET
// next included, than its concurrency) fails the test at its end.
package lambdatest

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
)

const (
	// StreamingContentType marks a streamed function URL response: a JSON
	// prelude, 8 NUL bytes, then the raw body.
	StreamingContentType = "application/vnd.awslambda.http-integration-response"
	// FunctionARN is the ARN every invocation carries.
	FunctionARN = "arn:aws:lambda:eu-west-1:123456789012:function:lambdatest"

	// Header and trailer names of the Runtime API.
	HeaderRequestID    = "Lambda-Runtime-Aws-Request-Id"
	HeaderDeadline     = "Lambda-Runtime-Deadline-Ms"
	HeaderFunctionARN  = "Lambda-Runtime-Invoked-Function-Arn"
	HeaderTraceID      = "Lambda-Runtime-Trace-Id"
	HeaderResponseMode = "Lambda-Runtime-Function-Response-Mode"
	TrailerErrorType   = "Lambda-Runtime-Function-Error-Type"
	TrailerErrorBody   = "Lambda-Runtime-Function-Error-Body"

	api        = "/2018-06-01/runtime/"
	maxQueued  = 4096    // invocations waiting for a GET next
	maxPrelude = 1 << 20 // a prelude is headers and cookies; more is a broken stream
	maxError   = 1 << 20
)

var preludeEnd = make([]byte, 8) // the 8 NUL bytes after the prelude

var (
	// ErrNotStreamed is returned by Prelude when the function answered
	// with another content type than StreamingContentType.
	ErrNotStreamed = errors.New("lambdatest: response is not a streamed function URL response")
	// ErrFunction is wrapped by Prelude and Next when the function reported
	// an error (error endpoint or error trailers).
	ErrFunction = errors.New("lambdatest: function reported an error")
	// ErrBrokenOff is wrapped by Next when the response body ended without
	// its final chunk (the process died or the connection broke).
	ErrBrokenOff = errors.New("lambdatest: response broke off")
	// ErrNotBuffered is returned by Result.Buffered for a payload that a
	// BUFFERED function URL cannot read as a response.
	ErrNotBuffered = errors.New("lambdatest: payload is not a function URL response object")
)

// Runtime is a fake Lambda Runtime API on a loopback port.
type Runtime struct {
	t           testing.TB
	srv         *httptest.Server
	queue       chan *Invocation
	done        chan struct{}
	concurrency int

	// busy counts the function's runtime loops that are not free: those
	// waiting in GET next and those holding an invocation without a
	// complete result. A runtime honouring its concurrency never has more
	// than that many.
	busy atomic.Int64

	mu       sync.Mutex
	invs     map[string]*Invocation
	initErrs []FunctionError
	changed  chan struct{} // closed and replaced when initErrs grows
	problems []string
}

// Option configures a Runtime.
type Option func(*Runtime)

// MaxConcurrency makes the fake the Runtime API of a Lambda Managed
// Instances environment whose function runs n invocations at once
// (AWS_LAMBDA_MAX_CONCURRENCY=n): n GET next may be outstanding, and as
// many responses stream at the same time.
func MaxConcurrency(n int) Option {
	return func(rt *Runtime) { rt.concurrency = max(n, 1) }
}

// Start serves a fake Runtime API until the test ends. Start it before the
// process that uses it (Run), so that the process is stopped first.
func Start(t testing.TB, opts ...Option) *Runtime {
	t.Helper()
	rt := &Runtime{
		t:           t,
		queue:       make(chan *Invocation, maxQueued),
		done:        make(chan struct{}),
		concurrency: 1,
		invs:        make(map[string]*Invocation),
		changed:     make(chan struct{}),
	}
	for _, o := range opts {
		o(rt)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+api+"invocation/next", rt.next)
	mux.HandleFunc("POST "+api+"invocation/{id}/response", rt.response)
	mux.HandleFunc("POST "+api+"invocation/{id}/error", rt.invocationError)
	mux.HandleFunc("POST "+api+"init/error", rt.initError)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		rt.problem("unexpected request %s %s", r.Method, r.URL.Path)
		apiError(w, http.StatusNotFound, "UnknownPath", "no such Runtime API path")
	})
	rt.srv = httptest.NewUnstartedServer(mux)
	// Each request knows its connection, so that a test can break one
	// response (Invocation.Cut) and no other.
	rt.srv.Config.ConnContext = func(ctx context.Context, c net.Conn) context.Context {
		return context.WithValue(ctx, connKey{}, c)
	}
	rt.srv.Start()
	t.Cleanup(rt.close)
	return rt
}

// Addr is the host:port to give the function as AWS_LAMBDA_RUNTIME_API.
func (rt *Runtime) Addr() string { return strings.TrimPrefix(rt.srv.URL, "http://") }

// URL is the API's base URL ("http://host:port").
func (rt *Runtime) URL() string { return rt.srv.URL }

// Concurrency is the number of invocations the API hands out at once.
func (rt *Runtime) Concurrency() int { return rt.concurrency }

// Busy is the number of the function's runtime loops that are waiting in
// GET next or hold an invocation without a complete result. A process
// that has started and is idle has Concurrency of them, all waiting.
func (rt *Runtime) Busy() int { return int(rt.busy.Load()) }

type connKey struct{}

// Invoke queues an event for the function; its deadline is what
// ctx.Deadline() says inside the handler. The next GET next takes it.
func (rt *Runtime) Invoke(event []byte, deadline time.Time) *Invocation {
	rt.t.Helper()
	if !json.Valid(event) {
		rt.t.Fatalf("lambdatest: Invoke: event is not valid JSON:\n%s", event)
	}
	inv := &Invocation{
		ID:       newRequestID(),
		TraceID:  newTraceID(),
		Deadline: deadline,
		Event:    bytes.Clone(event),
		changed:  make(chan struct{}),
		done:     make(chan struct{}),
	}
	inv.res.Queued = time.Now()
	rt.mu.Lock()
	rt.invs[inv.ID] = inv
	rt.mu.Unlock()
	select {
	case rt.queue <- inv:
	default:
		rt.t.Fatalf("lambdatest: Invoke: more than %d invocations queued", maxQueued)
	}
	return inv
}

// InitError waits for the function's next POST to init/error.
func (rt *Runtime) InitError(ctx context.Context) (FunctionError, error) {
	rt.mu.Lock()
	seen := len(rt.initErrs)
	rt.mu.Unlock()
	for {
		rt.mu.Lock()
		if len(rt.initErrs) > seen {
			e := rt.initErrs[seen]
			rt.mu.Unlock()
			return e, nil
		}
		ch := rt.changed
		rt.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return FunctionError{}, fmt.Errorf("lambdatest: waiting for init/error: %w", ctx.Err())
		}
	}
}

// InitErrors returns every init error reported so far.
func (rt *Runtime) InitErrors() []FunctionError {
	rt.mu.Lock()
	defer rt.mu.Unlock()
	return slices.Clone(rt.initErrs)
}

func (rt *Runtime) close() {
	close(rt.done)
	// A response still being read (a stream the test did not wait for)
	// would hold Close forever: cut it.
	rt.srv.CloseClientConnections()
	rt.srv.Close()
	rt.mu.Lock()
	problems := rt.problems
	for _, inv := range rt.invs {
		inv.abandon()
	}
	rt.mu.Unlock()
	for _, p := range problems {
		rt.t.Errorf("lambdatest: Runtime API misuse: %s", p)
	}
}

func (rt *Runtime) problem(format string, args ...any) {
	rt.mu.Lock()
	defer rt.mu.Unlock()
	rt.problems = append(rt.problems, fmt.Sprintf(format, args...))
}

func (rt *Runtime) lookup(w http.ResponseWriter, r *http.Request) *Invocation {
	id := r.PathValue("id")
	rt.mu.Lock()
	inv := rt.invs[id]
	rt.mu.Unlock()
	if inv == nil {
		rt.problem("%s for unknown request id %q", r.URL.Path, id)
		apiError(w, http.StatusBadRequest, "InvalidRequestID", "unknown request id")
		return nil
	}
	if !inv.post(r, r.Context().Value(connKey{}).(net.Conn)) {
		rt.problem("second result for request id %q (%s)", id, r.URL.Path)
		apiError(w, http.StatusBadRequest, "InvalidStateTransition", "invocation already has a result")
		return nil
	}
	return inv
}

// next hands out the next queued event, blocking while there is none.
// A GET next also says that the loop calling it finished its previous
// invocation, so loops waiting here plus invocations without a complete
// result never exceed the concurrency.
func (rt *Runtime) next(w http.ResponseWriter, r *http.Request) {
	if n := rt.busy.Add(1); n > int64(rt.concurrency) {
		rt.problem("%d runtime loops busy at once (GET next outstanding or invocations without a result), concurrency is %d", n, rt.concurrency)
	}
	var inv *Invocation
	select {
	case inv = <-rt.queue:
	case <-r.Context().Done():
		rt.busy.Add(-1)
		return
	case <-rt.done:
		rt.busy.Add(-1)
		// The library exits on a failed next: what a test's end should do.
		apiError(w, http.StatusInternalServerError, "ServiceException", "runtime API stopped")
		return
	}
	// The loop stays busy: with this invocation until its result is in.
	inv.fetched(&rt.busy)
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set(HeaderRequestID, inv.ID)
	h.Set(HeaderDeadline, strconv.FormatInt(inv.Deadline.UnixMilli(), 10))
	h.Set(HeaderFunctionARN, FunctionARN)
	h.Set(HeaderTraceID, inv.TraceID)
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(inv.Event)
}

// response reads the function's result as it arrives.
func (rt *Runtime) response(w http.ResponseWriter, r *http.Request) {
	inv := rt.lookup(w, r)
	if inv == nil {
		return
	}
	buf := make([]byte, 64<<10)
	var readErr error
	for {
		n, err := r.Body.Read(buf)
		at := time.Now()
		if n > 0 {
			if msg := inv.received(buf[:n], at); msg != "" {
				rt.problem("request id %q: %s", inv.ID, msg)
			}
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			readErr = err
			break
		}
	}
	// Trailers are filled in once the body has been read to its end.
	fe := trailerError(r.Trailer)
	inv.finish(r.Trailer.Clone(), fe, readErr)
	if readErr != nil {
		return
	}
	accepted(w)
}

// accepted is the Runtime API's answer to a response or an error it took.
func accepted(w http.ResponseWriter) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusAccepted)
	_, _ = io.WriteString(w, `{"status":"OK"}`)
}

func (rt *Runtime) invocationError(w http.ResponseWriter, r *http.Request) {
	inv := rt.lookup(w, r)
	if inv == nil {
		return
	}
	fe, err := readError(r, "error endpoint")
	inv.finish(nil, &fe, err)
	if err != nil {
		return
	}
	accepted(w)
}

func (rt *Runtime) initError(w http.ResponseWriter, r *http.Request) {
	fe, err := readError(r, "init error endpoint")
	if err != nil {
		rt.problem("init/error: %v", err)
		return
	}
	rt.mu.Lock()
	rt.initErrs = append(rt.initErrs, fe)
	close(rt.changed)
	rt.changed = make(chan struct{})
	rt.mu.Unlock()
	accepted(w)
}

func apiError(w http.ResponseWriter, status int, typ, msg string) {
	b, _ := json.Marshal(map[string]string{"errorType": typ, "errorMessage": msg})
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

// FunctionError is a failure the function reported.
type FunctionError struct {
	Type    string // errorType (or the Lambda-Runtime-Function-Error-Type header/trailer)
	Message string // errorMessage
	Raw     []byte // the JSON document as sent
	Via     string // "error endpoint", "init error endpoint" or "trailer"
}

func (e FunctionError) Error() string {
	return fmt.Sprintf("%s (via %s): %s", e.Type, e.Via, e.Message)
}

type errorDoc struct {
	Message string `json:"errorMessage"`
	Type    string `json:"errorType"`
}

func readError(r *http.Request, via string) (FunctionError, error) {
	raw, err := io.ReadAll(io.LimitReader(r.Body, maxError))
	if err != nil {
		return FunctionError{}, err
	}
	fe := FunctionError{Raw: raw, Via: via, Type: r.Header.Get(TrailerErrorType)}
	var doc errorDoc
	if json.Unmarshal(raw, &doc) == nil {
		fe.Message = doc.Message
		if fe.Type == "" {
			fe.Type = doc.Type
		}
	}
	return fe, nil
}

// trailerError decodes a mid-stream failure from the response trailers:
// the type, and the body as base64 of the error JSON.
func trailerError(tr http.Header) *FunctionError {
	typ := tr.Get(TrailerErrorType)
	if typ == "" {
		return nil
	}
	fe := &FunctionError{Type: typ, Via: "trailer"}
	if raw, err := base64.StdEncoding.DecodeString(tr.Get(TrailerErrorBody)); err == nil {
		fe.Raw = raw
		var doc errorDoc
		if json.Unmarshal(raw, &doc) == nil {
			fe.Message = doc.Message
		}
	}
	return fe
}

// Prelude is the status line of a streamed function URL response.
type Prelude struct {
	StatusCode int               `json:"statusCode"`
	Headers    map[string]string `json:"headers"`
	Cookies    []string          `json:"cookies"`
	At         time.Time         `json:"-"` // when its last byte arrived
}

// Chunk is the body bytes one Read of the response returned.
type Chunk struct {
	Data []byte
	At   time.Time // when the Read returned
}

// Result is what the fake saw of one invocation.
type Result struct {
	Queued   time.Time // Invoke
	Fetched  time.Time // the function took the event (GET next)
	Posted   time.Time // the function began its result (POST response or error)
	Finished time.Time // the result was complete

	Path             string      // the POST's path
	Header           http.Header // the POST's headers
	TransferEncoding []string    // the POST's transfer encoding ("chunked")
	DeclaredTrailer  []string    // names the POST announced in its Trailer header
	Trailer          http.Header // trailer values after the body

	Streaming  bool    // Content-Type was StreamingContentType
	Prelude    Prelude // when Streaming and HasPrelude
	HasPrelude bool
	Chunks     []Chunk // the body after the prelude; the whole payload when not Streaming

	Err     *FunctionError // reported through the error endpoint or the trailers
	ReadErr error          // the body broke off (the process died or the connection broke)
}

// Body returns the body bytes of every chunk, in order.
func (r Result) Body() []byte {
	var b []byte
	for _, c := range r.Chunks {
		b = append(b, c.Data...)
	}
	return b
}

// Buffered reads the payload as a BUFFERED function URL does: the whole
// payload must be one JSON value; an object with a statusCode is the
// response itself; any other JSON is a 200 whose body is that JSON. A
// payload that is not JSON (such as a streamed prelude and body) returns
// ErrNotBuffered.
func (r Result) Buffered() (events.LambdaFunctionURLResponse, error) {
	payload := r.Body()
	if r.Streaming {
		payload = r.rawStreamed()
	}
	if !json.Valid(payload) {
		return events.LambdaFunctionURLResponse{}, ErrNotBuffered
	}
	var probe map[string]json.RawMessage
	if json.Unmarshal(payload, &probe) == nil {
		if _, ok := probe["statusCode"]; ok {
			var resp events.LambdaFunctionURLResponse
			if err := json.Unmarshal(payload, &resp); err != nil {
				return resp, fmt.Errorf("%w: %v", ErrNotBuffered, err)
			}
			if resp.IsBase64Encoded {
				b, err := base64.StdEncoding.DecodeString(resp.Body)
				if err != nil {
					return resp, fmt.Errorf("%w: body: %v", ErrNotBuffered, err)
				}
				resp.Body, resp.IsBase64Encoded = string(b), false
			}
			return resp, nil
		}
	}
	return events.LambdaFunctionURLResponse{
		StatusCode: http.StatusOK,
		Headers:    map[string]string{"Content-Type": "application/json"},
		Body:       string(payload),
	}, nil
}

// rawStreamed rebuilds the bytes a streamed response carried.
func (r Result) rawStreamed() []byte {
	var b []byte
	if r.HasPrelude {
		b, _ = json.Marshal(r.Prelude)
		b = append(b, preludeEnd...)
	}
	return append(b, r.Body()...)
}

// Invocation is one queued event and what the function answered.
type Invocation struct {
	ID       string
	TraceID  string
	Deadline time.Time
	Event    []byte

	mu       sync.Mutex
	changed  chan struct{} // closed and replaced at every change
	done     chan struct{}
	res      Result
	posted   bool
	errPost  bool // the result came to the error endpoint
	ended    bool
	pending  []byte        // prelude bytes so far
	badPre   error         // the prelude did not parse
	consumed int           // chunks handed out by Next
	busy     *atomic.Int64 // the runtime's busy loops, once fetched
	conn     net.Conn      // the connection the result arrives on
}

// Cut breaks the connection this invocation's result is arriving on, as
// when the far end of one response goes away: the body read ends with an
// error (ReadErr, and Next's ErrBrokenOff), and the function's POST fails.
// Other invocations, on their own connections, are not touched. It fails
// when the function has not begun its result yet.
func (inv *Invocation) Cut() error {
	inv.mu.Lock()
	c := inv.conn
	inv.mu.Unlock()
	if c == nil {
		return fmt.Errorf("lambdatest: Cut %s: no result arriving yet", inv.ID)
	}
	return c.Close()
}

// Done is closed when the result is complete (or the test ended).
func (inv *Invocation) Done() <-chan struct{} { return inv.done }

// Result returns what has been seen so far; after Done, all of it.
func (inv *Invocation) Result() Result {
	inv.mu.Lock()
	defer inv.mu.Unlock()
	r := inv.res
	r.Chunks = slices.Clone(r.Chunks)
	return r
}

// Wait waits for the result to be complete.
func (inv *Invocation) Wait(ctx context.Context) (Result, error) {
	select {
	case <-inv.done:
		return inv.Result(), nil
	case <-ctx.Done():
		return inv.Result(), fmt.Errorf("lambdatest: waiting for invocation %s to end: %w", inv.ID, ctx.Err())
	}
}

// Prelude waits for a streamed response's prelude.
func (inv *Invocation) Prelude(ctx context.Context) (Prelude, error) {
	var p Prelude
	var err error
	werr := inv.wait(ctx, func() bool {
		switch {
		case inv.res.HasPrelude:
			p = inv.res.Prelude
		case inv.badPre != nil:
			err = inv.badPre
		case inv.res.Err != nil:
			err = fmt.Errorf("%w: %v", ErrFunction, *inv.res.Err)
		case inv.posted && !inv.res.Streaming && !inv.errPost:
			err = fmt.Errorf("%w: Content-Type %q", ErrNotStreamed, inv.res.Header.Get("Content-Type"))
		case inv.ended:
			err = fmt.Errorf("%w before its prelude: %v", ErrBrokenOff, inv.res.ReadErr)
		default:
			return false
		}
		return true
	})
	if werr != nil {
		return p, fmt.Errorf("lambdatest: waiting for the prelude of %s: %w", inv.ID, werr)
	}
	return p, err
}

// Response waits for a streamed response to end and returns what a
// RESPONSE_STREAM function URL sends the client: the prelude's status and
// headers, and the body.
//
// A payload that is not streamed is read as a BUFFERED function URL reads
// it (see Result.Buffered), so the same call serves both kinds of function.
func (inv *Invocation) Response(ctx context.Context) (Prelude, []byte, error) {
	res, err := inv.Wait(ctx)
	if err != nil {
		return Prelude{}, nil, err
	}
	if !res.Streaming && res.Err == nil {
		b, err := res.Buffered()
		if err != nil {
			return Prelude{}, nil, err
		}
		return Prelude{StatusCode: b.StatusCode, Headers: b.Headers, Cookies: b.Cookies, At: res.Finished}, []byte(b.Body), nil
	}
	p, err := inv.Prelude(ctx)
	if err != nil {
		return p, nil, err
	}
	switch {
	case res.Err != nil:
		return p, nil, fmt.Errorf("%w: %v", ErrFunction, *res.Err)
	case res.ReadErr != nil:
		return p, nil, fmt.Errorf("%w: %v", ErrBrokenOff, res.ReadErr)
	}
	return p, res.Body(), nil
}

// Next returns the next body chunk, waiting for it to arrive. After the
// last one it returns io.EOF when the response ended normally, or an error
// wrapping ErrFunction or ErrBrokenOff.
func (inv *Invocation) Next(ctx context.Context) (Chunk, error) {
	var c Chunk
	var err error
	werr := inv.wait(ctx, func() bool {
		switch {
		case inv.consumed < len(inv.res.Chunks):
			c = inv.res.Chunks[inv.consumed]
			inv.consumed++
		case !inv.ended:
			return false
		case inv.res.Err != nil:
			err = fmt.Errorf("%w: %v", ErrFunction, *inv.res.Err)
		case inv.res.ReadErr != nil:
			err = fmt.Errorf("%w: %v", ErrBrokenOff, inv.res.ReadErr)
		default:
			err = io.EOF
		}
		return true
	})
	if werr != nil {
		return c, fmt.Errorf("lambdatest: waiting for a chunk of %s: %w", inv.ID, werr)
	}
	return c, err
}

// wait calls cond, under the lock, at every change until it returns true.
func (inv *Invocation) wait(ctx context.Context, cond func() bool) error {
	for {
		inv.mu.Lock()
		if cond() {
			inv.mu.Unlock()
			return nil
		}
		ch := inv.changed
		inv.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// notify wakes every waiter; the lock is held.
func (inv *Invocation) notify() {
	close(inv.changed)
	inv.changed = make(chan struct{})
}

func (inv *Invocation) fetched(busy *atomic.Int64) {
	inv.mu.Lock()
	defer inv.mu.Unlock()
	inv.res.Fetched = time.Now()
	inv.busy = busy
	inv.notify()
}

// post starts the result; false if there already is one.
func (inv *Invocation) post(r *http.Request, conn net.Conn) bool {
	inv.mu.Lock()
	defer inv.mu.Unlock()
	if inv.posted {
		return false
	}
	inv.posted = true
	inv.conn = conn
	inv.res.Posted = time.Now()
	inv.res.Path = r.URL.Path
	inv.errPost = strings.HasSuffix(r.URL.Path, "/error")
	inv.res.Header = r.Header.Clone()
	inv.res.TransferEncoding = slices.Clone(r.TransferEncoding)
	for k := range r.Trailer {
		inv.res.DeclaredTrailer = append(inv.res.DeclaredTrailer, k)
	}
	slices.Sort(inv.res.DeclaredTrailer)
	ct, _, _ := strings.Cut(r.Header.Get("Content-Type"), ";")
	inv.res.Streaming = strings.TrimSpace(ct) == StreamingContentType
	inv.notify()
	return true
}

// received takes the bytes of one Read; it returns a protocol problem, if
// any.
func (inv *Invocation) received(p []byte, at time.Time) string {
	inv.mu.Lock()
	defer inv.mu.Unlock()
	defer inv.notify()
	if !inv.res.Streaming || inv.res.HasPrelude || inv.badPre != nil {
		inv.res.Chunks = append(inv.res.Chunks, Chunk{Data: bytes.Clone(p), At: at})
		return ""
	}
	inv.pending = append(inv.pending, p...)
	i := bytes.Index(inv.pending, preludeEnd)
	if i < 0 {
		if len(inv.pending) > maxPrelude {
			inv.badPre = fmt.Errorf("lambdatest: no prelude end in the first %d bytes", maxPrelude)
			return inv.badPre.Error()
		}
		return ""
	}
	var pre Prelude
	if err := json.Unmarshal(inv.pending[:i], &pre); err != nil {
		inv.badPre = fmt.Errorf("lambdatest: prelude %q: %w", inv.pending[:i], err)
		return inv.badPre.Error()
	}
	pre.At = at
	inv.res.Prelude, inv.res.HasPrelude = pre, true
	if rest := inv.pending[i+len(preludeEnd):]; len(rest) > 0 {
		inv.res.Chunks = append(inv.res.Chunks, Chunk{Data: bytes.Clone(rest), At: at})
	}
	inv.pending = nil
	return ""
}

func (inv *Invocation) finish(trailer http.Header, fe *FunctionError, readErr error) {
	inv.mu.Lock()
	defer inv.mu.Unlock()
	if inv.ended {
		return
	}
	inv.ended = true
	if inv.busy != nil {
		inv.busy.Add(-1) // its loop is free once the result is in
	}
	inv.res.Finished = time.Now()
	inv.res.Trailer = trailer
	inv.res.Err = fe
	inv.res.ReadErr = readErr
	if inv.res.Streaming && !inv.res.HasPrelude && inv.badPre == nil && readErr == nil && fe == nil {
		inv.badPre = fmt.Errorf("lambdatest: streamed response ended without a complete prelude (%d bytes)", len(inv.pending))
	}
	close(inv.done)
	inv.notify()
}

// abandon ends an invocation the test is over for; the lock of its
// runtime is held, not its own.
func (inv *Invocation) abandon() {
	inv.finish(nil, nil, errors.New("lambdatest: test ended"))
}

func newRequestID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b[:])
	return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

// newTraceID returns an X-Ray trace header as Lambda sends it.
func newTraceID() string {
	var b [20]byte
	_, _ = rand.Read(b[:])
	h := hex.EncodeToString(b[:])
	return fmt.Sprintf("Root=1-%08x-%s;Parent=%s;Sampled=0", time.Now().Unix(), h[:24], h[24:40])
}
