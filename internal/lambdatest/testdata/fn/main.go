// Command fn is a function for lambdatest's own tests: it answers by path.
//
//	/stream?parts=a,b,c  streams each part as its own write (lambdaurl),
//	                     waiting before each next part for GET <x-gate>/<i>
//	/error               returns an error (the error endpoint)
//	/broken              streams "partial", then its body fails (trailers)
package main

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-lambda-go/lambdacontext"
	"github.com/aws/aws-lambda-go/lambdaurl"
)

func main() {
	stream := lambdaurl.Wrap(http.HandlerFunc(serveStream))
	lambda.Start(func(ctx context.Context, req *events.LambdaFunctionURLRequest) (*events.LambdaFunctionURLStreamingResponse, error) {
		switch req.RawPath {
		case "/error":
			return nil, errors.New("boom")
		case "/broken":
			return &events.LambdaFunctionURLStreamingResponse{
				StatusCode: http.StatusOK,
				Headers:    map[string]string{"Content-Type": "text/plain"},
				Body:       io.MultiReader(strings.NewReader("partial"), failing{}),
			}, nil
		}
		return stream(ctx, req)
	})
}

func serveStream(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Content-Type", "text/plain")
	if dl, ok := r.Context().Deadline(); ok {
		h.Set("X-Deadline-Ms", strconv.FormatInt(dl.UnixMilli(), 10))
	}
	if lc, ok := lambdacontext.FromContext(r.Context()); ok {
		h.Set("X-Request-Id", lc.AwsRequestID)
		h.Set("X-Function-Arn", lc.InvokedFunctionArn)
	}
	h.Set("X-Remote-Addr", r.RemoteAddr)
	w.WriteHeader(http.StatusOK)
	gate := r.Header.Get("X-Gate")
	parts := strings.Split(r.URL.Query().Get("parts"), ",")
	for i, part := range parts {
		if _, err := io.WriteString(w, part); err != nil {
			return
		}
		if i == len(parts)-1 || gate == "" {
			continue
		}
		resp, err := http.Get(gate + "/" + strconv.Itoa(i))
		if err != nil {
			return
		}
		resp.Body.Close()
	}
}

type failing struct{}

func (failing) Read([]byte) (int, error) { return 0, errors.New("stream broke") }
