// Package jsclient serves the service's own browser client: GET
// /sse/client.js (an ES module without dependencies) and its type
// definitions at /sse/client.d.ts, as Socket.IO serves /socket.io/socket.io.js.
//
// Invariants: the files are embedded, so the client served is the one the
// binary was built and tested with; each carries a strong ETag of its
// content and is revalidated, never served stale after a deploy.
package jsclient

import (
	"crypto/sha256"
	_ "embed"
	"encoding/base64"
	"net/http"
	"strings"

	"github.com/machinedash/sse/internal/web"
)

var (
	//go:embed client.js
	clientJS []byte
	//go:embed client.d.ts
	clientDTS []byte
)

// Paths are the URLs the client is served at.
const (
	PathJS  = "/sse/client.js"
	PathDTS = "/sse/client.d.ts"
)

type file struct {
	body        []byte
	contentType string
	etag        string
}

func newFile(body []byte, contentType string) file {
	sum := sha256.Sum256(body)
	return file{body, contentType, `"` + base64.RawURLEncoding.EncodeToString(sum[:12]) + `"`}
}

// Handler serves one of the Paths.
func Handler(path string) http.Handler {
	f := newFile(clientJS, "text/javascript; charset=utf-8")
	if path == PathDTS {
		f = newFile(clientDTS, "application/typescript; charset=utf-8")
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !web.Method(w, r, http.MethodGet) {
			return
		}
		h := w.Header()
		h.Set("ETag", f.etag)
		// Cached, but revalidated every time: a deploy is seen at once
		// and an unchanged file costs a 304.
		h.Set("Cache-Control", "public, no-cache")
		h.Set("X-Content-Type-Options", "nosniff")
		if match(r.Header.Get("If-None-Match"), f.etag) {
			w.WriteHeader(http.StatusNotModified)
			return
		}
		h.Set("Content-Type", f.contentType)
		_, _ = w.Write(f.body)
	})
}

// match implements If-None-Match's weak comparison for one ETag.
func match(header, etag string) bool {
	for _, v := range strings.Split(header, ",") {
		v = strings.TrimPrefix(strings.TrimSpace(v), "W/")
		if v == etag || v == "*" {
			return true
		}
	}
	return false
}
