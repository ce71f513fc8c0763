package urlfn

import (
	"context"
	"encoding/base64"
	"io"
	"net/http"
	"testing"

	"github.com/aws/aws-lambda-go/events"
)

func TestBufferedRoundTrip(t *testing.T) {
	t.Parallel()
	var seen *http.Request
	var seenBody string
	h := Buffered(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen = r
		b, _ := io.ReadAll(r.Body)
		seenBody = string(b)
		w.Header().Set("Content-Type", "application/json")
		w.Header().Add("Vary", "Origin")
		w.Header().Add("Vary", "Accept")
		http.SetCookie(w, &http.Cookie{Name: "a", Value: "1"})
		w.WriteHeader(201)
		_, _ = w.Write([]byte(`{"ok":true}`))
	}))
	req := events.LambdaFunctionURLRequest{
		RawPath: "/sse/stream-ticket", RawQueryString: "x=1&y=2",
		Headers: map[string]string{"authorization": "Bearer t", "content-type": "application/json"},
		Cookies: []string{"s=1", "t=2"},
		Body:    base64.StdEncoding.EncodeToString([]byte(`{"purpose":"data"}`)), IsBase64Encoded: true,
	}
	req.RequestContext.HTTP.Method = "POST"
	req.RequestContext.HTTP.SourceIP = "203.0.113.7"
	req.RequestContext.DomainName = "abc.lambda-url.eu-west-1.on.aws"
	resp, err := h(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	if seen.Method != "POST" || seen.URL.Path != "/sse/stream-ticket" || seen.URL.Query().Get("y") != "2" ||
		seen.Header.Get("Authorization") != "Bearer t" || seen.Header.Get("Cookie") != "s=1; t=2" ||
		seen.RemoteAddr != "203.0.113.7" || seenBody != `{"purpose":"data"}` {
		t.Fatalf("request %+v body %q", seen, seenBody)
	}
	if resp.StatusCode != 201 || resp.Body != `{"ok":true}` || resp.Headers["Vary"] != "Origin, Accept" ||
		len(resp.Cookies) != 1 || resp.IsBase64Encoded {
		t.Fatalf("%+v", resp)
	}
}

func TestBufferedBinaryAndDefaults(t *testing.T) {
	t.Parallel()
	h := Buffered(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write([]byte{0xff, 0xfe})
	}))
	resp, _ := h(context.Background(), events.LambdaFunctionURLRequest{})
	if resp.StatusCode != 200 || !resp.IsBase64Encoded || resp.Body != "//4=" {
		t.Fatalf("%+v", resp)
	}
	bad := events.LambdaFunctionURLRequest{Body: "%%%", IsBase64Encoded: true}
	if resp, _ := h(context.Background(), bad); resp.StatusCode != 400 {
		t.Fatalf("%+v", resp)
	}
}
