package web

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/machinedash/sse/internal/registry"
	"github.com/machinedash/sse/internal/ticket"
)

func TestErrorBody(t *testing.T) {
	t.Parallel()
	rec := httptest.NewRecorder()
	Fail(rec, httptest.NewRequest("GET", "/", nil), nil, ticket.ErrMissing)
	if rec.Code != 401 || rec.Header().Get("Content-Type") != "application/json; charset=utf-8" {
		t.Fatal(rec.Code, rec.Header())
	}
	want := `{"error":"Unauthorized","message":"Stream authentication required","statusCode":401}` + "\n"
	if rec.Body.String() != want {
		t.Fatalf("%s", rec.Body)
	}
	rec = httptest.NewRecorder()
	Fail(rec, httptest.NewRequest("GET", "/", nil), nil, &Error{Err: registry.ErrUserLimit, Args: []any{"Data"}, Fields: map[string]any{"limits": map[string]int{"alerts": 1, "data": 1}}})
	var m map[string]any
	_ = json.Unmarshal(rec.Body.Bytes(), &m)
	if m["error"] != "Too Many Requests" || m["statusCode"] != 429.0 || m["limits"] == nil {
		t.Fatal(m)
	}
}

func TestWrapCORSAndOriginSecret(t *testing.T) {
	t.Parallel()
	ok := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { Fail(w, r, nil, ErrBadRequest) })
	h := Wrap(ok, Options{AllowedOrigins: []string{"https://dash.example.com"}, OriginSecret: "s3"})

	for _, tc := range []struct {
		name, origin, secret, method string
		code                         int
		acao                         string
	}{
		{"allowed origin gets CORS on errors", "https://dash.example.com", "s3", "GET", 400, "https://dash.example.com"},
		{"other origin gets none", "https://evil.example", "s3", "GET", 400, ""},
		{"missing secret is 403, still with CORS", "https://dash.example.com", "", "GET", 403, "https://dash.example.com"},
		{"wrong secret", "", "nope", "GET", 403, ""},
		{"preflight", "https://dash.example.com", "s3", "OPTIONS", 204, "https://dash.example.com"},
	} {
		r := httptest.NewRequest(tc.method, "/sse/stream", nil)
		if tc.origin != "" {
			r.Header.Set("Origin", tc.origin)
		}
		if tc.secret != "" {
			r.Header.Set(OriginHeader, tc.secret)
		}
		if tc.method == "OPTIONS" {
			r.Header.Set("Access-Control-Request-Method", "POST")
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, r)
		if rec.Code != tc.code || rec.Header().Get("Access-Control-Allow-Origin") != tc.acao {
			t.Errorf("%s: %d %q", tc.name, rec.Code, rec.Header().Get("Access-Control-Allow-Origin"))
		}
		if tc.acao != "" && rec.Header().Get("Access-Control-Allow-Credentials") != "true" {
			t.Errorf("%s: credentials not allowed", tc.name)
		}
	}
}

func TestWrapRecoversWithoutDetails(t *testing.T) {
	t.Parallel()
	h := Wrap(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { panic("secret detail") }), Options{})
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/", nil))
	if rec.Code != 500 || strings.Contains(rec.Body.String(), "secret detail") {
		t.Fatal(rec.Code, rec.Body)
	}
}

func TestClientIP(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		remote, header, trusted, want string
	}{
		{"10.0.0.1:5000", "", "", "10.0.0.1"},
		{"10.0.0.1:5000", "1.2.3.4", "", "10.0.0.1"},                                       // untrusted header ignored
		{"10.0.0.1:5000", "1.2.3.4:443", "CloudFront-Viewer-Address", "1.2.3.4"},           // trusted
		{"10.0.0.1:5000", "2001:db8::1:443", "CloudFront-Viewer-Address", "2001:db8::1"},   // CloudFront v6 form
		{"10.0.0.1:5000", "[2001:db8::1]:443", "CloudFront-Viewer-Address", "2001:db8::1"}, // bracketed v6
		{"10.0.0.1:5000", "garbage", "CloudFront-Viewer-Address", "10.0.0.1"},
		{"203.0.113.9", "", "", "203.0.113.9"}, // lambdaurl gives a bare source IP
	} {
		r := httptest.NewRequest("GET", "/", nil)
		r.RemoteAddr = tc.remote
		if tc.header != "" {
			r.Header.Set("CloudFront-Viewer-Address", tc.header)
		}
		if got := ClientIP(r, tc.trusted); got != tc.want {
			t.Errorf("%+v: got %s", tc, got)
		}
	}
}

func TestRedactURL(t *testing.T) {
	t.Parallel()
	r := httptest.NewRequest("GET", "/sse/stream?ticket=eyJsecret&deviceId=C02", nil)
	if got := RedactURL(r); got != "/sse/stream?deviceId=C02&ticket=REDACTED" {
		t.Fatal(got)
	}
}

func TestMethod(t *testing.T) {
	t.Parallel()
	rec := httptest.NewRecorder()
	if Method(rec, httptest.NewRequest("DELETE", "/", nil), "POST") || rec.Code != 405 || rec.Header().Get("Allow") != "POST" ||
		strings.TrimSpace(rec.Body.String()) != `{"error":"Method Not Allowed","message":"Method not allowed","statusCode":405}` {
		t.Fatalf("%d %v %s", rec.Code, rec.Header(), rec.Body)
	}
	rec = httptest.NewRecorder()
	if !Method(rec, httptest.NewRequest("POST", "/", nil), "POST") || rec.Body.Len() != 0 {
		t.Fatal("POST refused")
	}
}

func TestClientIPTakesTheRightMostForwardedAddress(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		values []string
		want   string
	}{
		{[]string{"1.2.3.4"}, "1.2.3.4"},
		// The client wrote the first one; the trusted proxy appended the last.
		{[]string{"6.6.6.6, 1.2.3.4"}, "1.2.3.4"},
		{[]string{"6.6.6.6", "7.7.7.7, 1.2.3.4"}, "1.2.3.4"}, // several header lines
		{[]string{"6.6.6.6,2001:db8::1"}, "2001:db8::1"},
		{[]string{"6.6.6.6, garbage"}, "10.0.0.1"}, // never the client's choice
	} {
		r := httptest.NewRequest("GET", "/", nil)
		r.RemoteAddr = "10.0.0.1:5000"
		for _, v := range tc.values {
			r.Header.Add("X-Forwarded-For", v)
		}
		if got := ClientIP(r, "X-Forwarded-For"); got != tc.want {
			t.Errorf("%q: got %s, want %s", tc.values, got, tc.want)
		}
	}
}

func TestRedactURLKeepsOnlyHarmlessValuesAndIsBounded(t *testing.T) {
	t.Parallel()
	r := httptest.NewRequest("GET", "/sse/stream?ticket=eyJsecret&deviceIds=C01,C02&includeStatus=false&access_token=tok&lastEventId=abc&x=y", nil)
	want := "/sse/stream?access_token=REDACTED&deviceIds=C01%2CC02&includeStatus=false&lastEventId=REDACTED&ticket=REDACTED&x=REDACTED"
	if got := RedactURL(r); got != want {
		t.Fatalf("got  %s\nwant %s", got, want)
	}
	huge := httptest.NewRequest("GET", "/sse/stream?deviceId="+strings.Repeat("C", 900<<10)+"&"+strings.Repeat("k=v&", 1000), nil)
	if got := RedactURL(huge); len(got) > 520 || strings.Contains(got, strings.Repeat("C", 65)) {
		t.Fatalf("%d bytes logged", len(got))
	}
	long := "/" + strings.Repeat("p", 600)
	if got := RedactURL(httptest.NewRequest("GET", long, nil)); got != long[:512]+"..." {
		t.Fatalf("a 601-byte path without query logged as %d bytes", len(got))
	}
	// The handler's own parsed query is left as it was.
	q := r.URL.Query()
	if got := RedactQuery(r.URL.Path, q); got != want || q.Get("ticket") != "eyJsecret" {
		t.Fatalf("RedactQuery: %s, and the query's ticket is now %q", got, q.Get("ticket"))
	}
}

func TestOversizedHeadersGetTheSeedsBody(t *testing.T) {
	t.Parallel()
	h := Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(204) }), Options{AllowedOrigins: []string{"https://dash.example.com"}})
	r := httptest.NewRequest("GET", "/sse/stream", nil)
	r.Header.Set("Origin", "https://dash.example.com")
	r.Header.Set("X-Junk", strings.Repeat("j", MaxHeaderBytes))
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, r)
	if rec.Code != 431 || strings.TrimSpace(rec.Body.String()) != `{"error":"Request Header Fields Too Large","message":"Request headers too large","statusCode":431}` ||
		rec.Header().Get("Access-Control-Allow-Origin") == "" {
		t.Fatalf("%d %s %v", rec.Code, rec.Body, rec.Header())
	}
	r.Header.Set("X-Junk", strings.Repeat("j", 8<<10)) // a large but normal cookie-sized header
	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, r)
	if rec.Code != 204 {
		t.Fatal(rec.Code)
	}
}
