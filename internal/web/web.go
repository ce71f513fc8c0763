// Package web holds the HTTP plumbing every function shares: the one
// table from errors to the seed's JSON error answers, bounded body reads,
// CORS, the origin-secret check and the client IP.
//
// Invariants: an error body is exactly {statusCode, message, error} (plus
// the extra fields its row names, such as the 429's currentConnections);
// its message is one of the table's or an endpoint's own, never an
// internal error's text. Only 5xx answers are logged. Every response,
// errors included, carries the CORS headers of an allowed origin.
package web

import (
	"crypto/subtle"
	"encoding/json"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"slices"
	"strings"
)

// writeError writes the seed's error body plus extra top-level fields;
// Fail is its one caller, so every error answer comes from the table.
func writeError(w http.ResponseWriter, status int, message string, extra map[string]any) {
	body := map[string]any{}
	for k, v := range extra {
		body[k] = v
	}
	body["statusCode"] = status
	body["message"] = message
	body["error"] = http.StatusText(status)
	JSON(w, status, body)
}

// JSON writes v as a JSON response with the status.
func JSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		// The table's 500, whose body (strings only) always marshals.
		status = internal.status
		b, _ = json.Marshal(map[string]any{"statusCode": status, "message": internal.message, "error": http.StatusText(status)})
	}
	h := w.Header()
	h.Set("Content-Type", "application/json; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write(append(b, '\n'))
}

// Method reports whether r uses method. Otherwise it answers 405 with an
// Allow header and the seed's error body, and the handler should return.
func Method(w http.ResponseWriter, r *http.Request, method string) bool {
	if r.Method == method {
		return true
	}
	w.Header().Set("Allow", method)
	Fail(w, r, nil, ErrMethod)
	return false
}

// Options configure Wrap.
type Options struct {
	AllowedOrigins []string // CORS; empty: no CORS headers
	OriginSecret   string   // when set, requests must carry it in X-Origin-Verify
	Log            *slog.Logger
}

// OriginHeader carries the secret CloudFront adds to every origin request.
const OriginHeader = "X-Origin-Verify"

// MaxHeaderBytes bounds a request's line and headers. Wrap answers larger
// ones with the seed's 431 body; a server should read up to more than this
// (the local server reads 4 MiB), since past its own limit net/http answers
// a plain-text 431 before any handler runs.
const MaxHeaderBytes = 64 << 10

// Wrap adds CORS (answering preflights itself), the header-size bound, the
// origin-secret check and a panic guard that logs and answers 500 without
// details.
func Wrap(h http.Handler, o Options) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		cors(w, r, o.AllowedOrigins)
		if headerBytes(r) > MaxHeaderBytes {
			Fail(w, r, o.Log, ErrHeadersTooLarge)
			return
		}
		if o.OriginSecret != "" && subtle.ConstantTimeCompare([]byte(r.Header.Get(OriginHeader)), []byte(o.OriginSecret)) != 1 {
			Fail(w, r, o.Log, ErrOrigin)
			return
		}
		if r.Method == http.MethodOptions && r.Header.Get("Access-Control-Request-Method") != "" {
			w.WriteHeader(http.StatusNoContent)
			return
		}
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				// No row: a 500 without details, logged with the value.
				Fail(w, r, o.Log, fmt.Errorf("handler panic: %v", v))
			}
		}()
		h.ServeHTTP(w, r)
	})
}

// headerBytes is about what the request line and headers took on the wire.
func headerBytes(r *http.Request) int {
	n := len(r.Method) + len(r.URL.Path) + len(r.URL.RawQuery) + len(r.Proto) + 4
	for k, vs := range r.Header {
		for _, v := range vs {
			n += len(k) + len(v) + 4
		}
	}
	return n
}

func cors(w http.ResponseWriter, r *http.Request, allowed []string) {
	origin := r.Header.Get("Origin")
	h := w.Header()
	h.Add("Vary", "Origin")
	if origin == "" || !slices.Contains(allowed, origin) {
		return
	}
	h.Set("Access-Control-Allow-Origin", origin)
	h.Set("Access-Control-Allow-Credentials", "true")
	if r.Method == http.MethodOptions {
		h.Set("Access-Control-Allow-Methods", "GET, POST, OPTIONS")
		h.Set("Access-Control-Allow-Headers", "Authorization, Content-Type, Last-Event-ID")
		h.Set("Access-Control-Max-Age", "600")
	}
}

// ClientIP returns the client's address: the right-most address in the
// trusted header when one is configured, else the peer address. Right-most,
// because a proxy appends the address it saw to whatever the client sent
// (X-Forwarded-For: "<client's choice>, <what the proxy saw>"); a header
// that a proxy sets whole (CloudFront-Viewer-Address, "ip:port") has one.
// A client-sent header never counts otherwise.
func ClientIP(r *http.Request, trustedHeader string) string {
	if trustedHeader != "" {
		v := strings.Join(r.Header.Values(trustedHeader), ",")
		if i := strings.LastIndexByte(v, ','); i >= 0 {
			v = v[i+1:]
		}
		v = strings.TrimSpace(v)
		// CloudFront-Viewer-Address is "ip:port", IPv6 without brackets.
		if i := strings.LastIndexByte(v, ':'); i > 0 && strings.Contains(v[:i], ":") && !strings.HasPrefix(v, "[") {
			if a, err := netip.ParseAddr(v[:i]); err == nil {
				return a.String()
			}
		}
		if ip := parseIP(v); ip != "" {
			return ip
		}
	}
	if ip := parseIP(r.RemoteAddr); ip != "" {
		return ip
	}
	return "unknown"
}

func parseIP(v string) string {
	if v == "" {
		return ""
	}
	if ap, err := netip.ParseAddrPort(v); err == nil {
		return ap.Addr().Unmap().String()
	}
	if host, _, err := net.SplitHostPort(v); err == nil {
		v = host
	}
	if a, err := netip.ParseAddr(v); err == nil {
		return a.Unmap().String()
	}
	return ""
}

// Bounds of a request URL in logs.
const (
	maxLoggedURL   = 512 // bytes of path and query, then "..."
	maxLoggedValue = 64  // bytes of one kept query value
)

// harmlessParams are the query parameters whose values may be logged: they
// name devices or a flag, never a credential.
var harmlessParams = map[string]bool{"deviceId": true, "deviceIds": true, "includeStatus": true}

// RedactURL returns the request's path and query for logs: every query
// value is replaced by REDACTED except those of harmlessParams, a kept
// value is cut at 64 bytes and the whole at 512 bytes, so a ticket, token
// or a megabyte of query never reaches a log line.
func RedactURL(r *http.Request) string { return RedactQuery(r.URL.Path, r.URL.Query()) }

// RedactQuery is RedactURL of a path and its query as the handler parsed
// it (q is left as it is), for a handler that has the query already. The
// query is written as url.Values.Encode writes it (keys sorted, escaped).
func RedactQuery(path string, q url.Values) string {
	var b strings.Builder
	b.WriteString(path)
	sep := byte('?')
keys:
	for _, k := range slices.Sorted(maps.Keys(q)) {
		key := url.QueryEscape(k)
		for _, v := range q[k] {
			switch {
			case !harmlessParams[k]:
				v = "REDACTED"
			case len(v) > maxLoggedValue:
				v = v[:maxLoggedValue] + "..."
			}
			b.WriteByte(sep)
			sep = '&'
			b.WriteString(key)
			b.WriteByte('=')
			b.WriteString(url.QueryEscape(v))
			if b.Len() > maxLoggedURL {
				break keys // the rest would be cut
			}
		}
	}
	out := b.String()
	if len(out) > maxLoggedURL {
		out = out[:maxLoggedURL] + "..."
	}
	return out
}
