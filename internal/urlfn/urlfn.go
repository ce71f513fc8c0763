// Package urlfn serves an http.Handler on a Lambda function URL: Buffered
// on a BUFFERED one, Streaming (stream.go) on a RESPONSE_STREAM one.
//
// lambdaurl speaks only the streaming payload (prelude, NULs, body), which a
// BUFFERED URL cannot read; Buffered returns the one JSON response object a
// BUFFERED URL expects. Invariants of both: the handler sees the request as
// the function URL received it (method, path, query, headers, cookies,
// body, source IP as RemoteAddr), and an event that is not a request is
// answered with the 400 of web.ErrMalformedRequest; Set-Cookie headers
// become the response's cookies. Buffered sends a body that is not valid
// UTF-8 base64-encoded.
package urlfn

import (
	"bytes"
	"context"
	"encoding/base64"
	"net/http"
	"strings"
	"unicode/utf8"

	"github.com/aws/aws-lambda-go/events"

	"github.com/machinedash/sse/internal/web"
)

// Handler is what lambda.Start takes for a BUFFERED function URL.
type Handler func(ctx context.Context, req events.LambdaFunctionURLRequest) (events.LambdaFunctionURLResponse, error)

// Buffered adapts h.
func Buffered(h http.Handler) Handler {
	return func(ctx context.Context, req events.LambdaFunctionURLRequest) (events.LambdaFunctionURLResponse, error) {
		w := &recorder{header: http.Header{}}
		r, serve := prepare(ctx, req, h)
		serve.ServeHTTP(w, r)
		return w.response(), nil
	}
}

// prepare is the request h is to serve for req, or, for an event that is
// no request, the table's 400 in h's place.
func prepare(ctx context.Context, req events.LambdaFunctionURLRequest, h http.Handler) (*http.Request, http.Handler) {
	r, err := request(ctx, req)
	if err != nil {
		// No request to hand on: the 400 is answered for the event itself
		// (a 4xx, so Fail logs nothing).
		return new(http.Request).WithContext(ctx), http.HandlerFunc(malformed)
	}
	return r, h
}

func malformed(w http.ResponseWriter, r *http.Request) {
	web.Fail(w, r, nil, web.ErrMalformedRequest)
}

func request(ctx context.Context, req events.LambdaFunctionURLRequest) (*http.Request, error) {
	body := []byte(req.Body)
	if req.IsBase64Encoded {
		b, err := base64.StdEncoding.DecodeString(req.Body)
		if err != nil {
			return nil, err
		}
		body = b
	}
	u := req.RawPath
	if u == "" {
		u = "/"
	}
	if req.RawQueryString != "" {
		u += "?" + req.RawQueryString
	}
	method := req.RequestContext.HTTP.Method
	if method == "" {
		method = http.MethodGet
	}
	r, err := http.NewRequestWithContext(ctx, method, u, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	for k, v := range req.Headers {
		r.Header.Set(k, v)
	}
	if len(req.Cookies) > 0 {
		r.Header.Set("Cookie", strings.Join(req.Cookies, "; "))
	}
	r.RemoteAddr = req.RequestContext.HTTP.SourceIP
	r.Host = req.RequestContext.DomainName
	r.RequestURI = u
	return r, nil
}

// recorder collects the handler's response in memory.
type recorder struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func (w *recorder) Header() http.Header { return w.header }

func (w *recorder) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
}

func (w *recorder) Write(p []byte) (int, error) {
	w.WriteHeader(http.StatusOK)
	return w.body.Write(p)
}

func (w *recorder) response() events.LambdaFunctionURLResponse {
	w.WriteHeader(http.StatusOK)
	resp := events.LambdaFunctionURLResponse{StatusCode: w.status, Headers: map[string]string{}}
	for k, v := range w.header {
		if k == "Set-Cookie" {
			resp.Cookies = append(resp.Cookies, v...)
			continue
		}
		resp.Headers[k] = strings.Join(v, ", ")
	}
	if utf8.Valid(w.body.Bytes()) {
		resp.Body = w.body.String()
	} else {
		resp.Body = base64.StdEncoding.EncodeToString(w.body.Bytes())
		resp.IsBase64Encoded = true
	}
	return resp
}
