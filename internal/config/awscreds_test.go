package config

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// fakeSecretsManager answers GetSecretValue as Secrets Manager's JSON protocol does, and
// records the Authorization header, so a test sees which credentials signed the call.
func fakeSecretsManager(t *testing.T, values map[string]string) (*httptest.Server, *atomic.Value) {
	t.Helper()
	var auth atomic.Value
	auth.Store("")
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("X-Amz-Target") != "secretsmanager.GetSecretValue" {
			http.Error(w, "unexpected target", http.StatusBadRequest)
			return
		}
		auth.Store(r.Header.Get("Authorization") + " token=" + r.Header.Get("X-Amz-Security-Token"))
		var in struct{ SecretId string }
		body, _ := io.ReadAll(r.Body)
		_ = json.Unmarshal(body, &in)
		v, ok := values[in.SecretId]
		w.Header().Set("Content-Type", "application/x-amz-json-1.1")
		if !ok {
			w.WriteHeader(http.StatusBadRequest)
			_, _ = io.WriteString(w, `{"__type":"ResourceNotFoundException","message":"no such secret"}`)
			return
		}
		_ = json.NewEncoder(w).Encode(map[string]string{"ARN": in.SecretId, "SecretString": v})
	}))
	t.Cleanup(srv.Close)
	return srv, &auth
}

const testARN = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:ticket"

func TestSecretsManagerEnvCredentials(t *testing.T) {
	t.Parallel()
	srv, auth := fakeSecretsManager(t, map[string]string{testARN: "the-value"})
	sm, err := NewSecretsManager(env(map[string]string{
		"AWS_REGION": "eu-west-1", "AWS_ACCESS_KEY_ID": "AKIDENV", "AWS_SECRET_ACCESS_KEY": "secret",
		"AWS_SESSION_TOKEN": "session", "AWS_ENDPOINT_URL_SECRETS_MANAGER": srv.URL,
	}))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	v, err := sm.GetSecret(ctx, testARN)
	if err != nil || v != "the-value" {
		t.Fatalf("GetSecret = %q, %v", v, err)
	}
	a := auth.Load().(string)
	if !strings.Contains(a, "AWS4-HMAC-SHA256 Credential=AKIDENV/") || !strings.Contains(a, "/eu-west-1/secretsmanager/") ||
		!strings.HasSuffix(a, "token=session") {
		t.Fatalf("request signed as %q: want the environment's key, region and session token", a)
	}
	if _, err := sm.GetSecret(ctx, "arn:aws:secretsmanager:eu-west-1:123456789012:secret:missing"); err == nil {
		t.Fatal("a missing secret was read")
	}
}

func TestSecretsManagerContainerCredentials(t *testing.T) {
	t.Parallel()
	srv, auth := fakeSecretsManager(t, map[string]string{testARN: "from-container-role"})
	var tokenSeen atomic.Value
	creds := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tokenSeen.Store(r.Header.Get("Authorization"))
		_ = json.NewEncoder(w).Encode(map[string]string{
			"AccessKeyId": "AKIDCONTAINER", "SecretAccessKey": "s", "Token": "container-session",
			"Expiration": time.Now().Add(time.Hour).UTC().Format(time.RFC3339),
		})
	}))
	defer creds.Close()
	tokenFile := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(tokenFile, []byte("file-token\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name      string
		env       map[string]string
		wantToken string
	}{
		{"token", map[string]string{"AWS_CONTAINER_AUTHORIZATION_TOKEN": "env-token"}, "env-token"},
		{"token file", map[string]string{"AWS_CONTAINER_AUTHORIZATION_TOKEN": "env-token", "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE": tokenFile}, "file-token"},
	} {
		tc.env["AWS_REGION"] = "eu-west-1"
		tc.env["AWS_CONTAINER_CREDENTIALS_FULL_URI"] = creds.URL + "/2021-04-23/credentials"
		tc.env["AWS_ENDPOINT_URL"] = srv.URL
		sm, err := NewSecretsManager(env(tc.env))
		if err != nil {
			t.Fatal(tc.name, err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		v, err := sm.GetSecret(ctx, testARN)
		cancel()
		if err != nil || v != "from-container-role" {
			t.Fatalf("%s: GetSecret = %q, %v", tc.name, v, err)
		}
		if a := auth.Load().(string); !strings.Contains(a, "Credential=AKIDCONTAINER/") || !strings.HasSuffix(a, "token=container-session") {
			t.Fatalf("%s: signed as %q", tc.name, a)
		}
		if got := tokenSeen.Load(); got != tc.wantToken {
			t.Fatalf("%s: credentials endpoint got Authorization %q, want %q", tc.name, got, tc.wantToken)
		}
	}
}

func TestSecretsManagerRefusals(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		env  map[string]string
		want string
	}{
		{map[string]string{"AWS_ACCESS_KEY_ID": "a", "AWS_SECRET_ACCESS_KEY": "b"}, "AWS_REGION"},
		{map[string]string{"AWS_REGION": "eu-west-1"}, "no AWS credentials"},
		{map[string]string{"AWS_REGION": "eu-west-1", "AWS_ACCESS_KEY_ID": "only-the-id"}, "no AWS credentials"},
		{map[string]string{"AWS_REGION": "eu-west-1", "AWS_CONTAINER_CREDENTIALS_FULL_URI": "http://169.254.1.1/creds"}, "loopback"},
		{map[string]string{"AWS_REGION": "eu-west-1", "AWS_CONTAINER_CREDENTIALS_FULL_URI": "http://example.com/creds"}, "loopback"},
		{map[string]string{"AWS_REGION": "eu-west-1", "AWS_CONTAINER_CREDENTIALS_FULL_URI": "ftp://127.0.0.1/creds"}, "scheme"},
		{map[string]string{"AWS_REGION": "eu-west-1", "AWS_CONTAINER_CREDENTIALS_FULL_URI": "not a url"}, "not a URL"},
	} {
		_, err := NewSecretsManager(env(tc.env))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: err = %v, want it to mention %q", tc.env, err, tc.want)
		}
	}
	for _, ok := range []string{"http://127.0.0.1:9001/creds", "http://[::1]:9001/creds", "http://localhost/creds", "https://creds.example.com/x"} {
		if err := checkCredentialsURI(ok); err != nil {
			t.Errorf("%s refused: %v", ok, err)
		}
	}
}
