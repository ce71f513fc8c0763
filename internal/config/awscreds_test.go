package config

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/machinedash/sse/internal/awstest"
)

const testARN = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:ticket"

// TestSecretsManagerEnvCredentials: the call is signed (awstest.Verify checks the signature) with
// the environment's key and session token for the region; signed with another secret key, it is
// refused, and the error says why.
func TestSecretsManagerEnvCredentials(t *testing.T) {
	t.Parallel()
	fake := awstest.NewSecretsManager(t, "eu-west-1", []awstest.Key{{ID: "AKIDENV", Secret: "secret", SessionToken: "session"}},
		map[string]string{testARN: "the-value"})
	environment := map[string]string{
		"AWS_REGION": "eu-west-1", "AWS_ACCESS_KEY_ID": "AKIDENV", "AWS_SECRET_ACCESS_KEY": "secret",
		"AWS_SESSION_TOKEN": "session", "AWS_ENDPOINT_URL_SECRETS_MANAGER": fake.URL,
	}
	sm, err := NewSecretsManager(env(environment))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	v, err := sm.GetSecret(ctx, testARN)
	if err != nil || v != "the-value" || fake.SignedBy() != "AKIDENV" {
		t.Fatalf("GetSecret = %q, %v, signed by %q (refused: %s)", v, err, fake.SignedBy(), fake.Refused())
	}
	if _, err := sm.GetSecret(ctx, "arn:aws:secretsmanager:eu-west-1:123456789012:secret:missing"); err == nil ||
		!strings.Contains(err.Error(), "ResourceNotFoundException") {
		t.Fatalf("a missing secret: %v", err)
	}

	environment["AWS_SECRET_ACCESS_KEY"] = "not-the-secret"
	wrong, err := NewSecretsManager(env(environment))
	if err != nil {
		t.Fatal(err)
	}
	if v, err := wrong.GetSecret(ctx, testARN); err == nil || v != "" ||
		!strings.Contains(err.Error(), "HTTP 400, InvalidSignatureException: The request signature we calculated does not match") {
		t.Fatalf("signed with the wrong secret key: %q, %v", v, err)
	}
}

func TestSecretsManagerContainerCredentials(t *testing.T) {
	t.Parallel()
	fake := awstest.NewSecretsManager(t, "eu-west-1", []awstest.Key{{ID: "AKIDCONTAINER", Secret: "s", SessionToken: "container-session"}},
		map[string]string{testARN: "from-container-role"})
	var tokenSeen atomic.Value
	var credsCalls atomic.Int32
	creds := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		credsCalls.Add(1)
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
		tc.env["AWS_ENDPOINT_URL"] = fake.URL
		sm, err := NewSecretsManager(env(tc.env))
		if err != nil {
			t.Fatal(tc.name, err)
		}
		credsCalls.Store(0)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		for range 2 { // the credentials are asked for once, for both
			v, err := sm.GetSecret(ctx, testARN)
			if err != nil || v != "from-container-role" {
				t.Fatalf("%s: GetSecret = %q, %v", tc.name, v, err)
			}
		}
		cancel()
		if n := credsCalls.Load(); n != 1 {
			t.Errorf("%s: %d calls of the credentials endpoint for 2 secrets, want 1", tc.name, n)
		}
		if by := fake.SignedBy(); by != "AKIDCONTAINER" {
			t.Fatalf("%s: signed by %q (refused: %s)", tc.name, by, fake.Refused())
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

// TestSecretsManagerEndpoint: the regional endpoint is the one the SDK's rules give, for a
// region of each of the SDK's partitions (its partitions.json, of the version in go.mod) and
// for one of none.
func TestSecretsManagerEndpoint(t *testing.T) {
	t.Parallel()
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", "github.com/aws/aws-sdk-go-v2").Output()
	if err != nil {
		t.Fatalf("go list -m github.com/aws/aws-sdk-go-v2: %v", err)
	}
	b, err := os.ReadFile(filepath.Join(strings.TrimSpace(string(out)), "internal", "endpoints", "awsrulesfn", "partitions.json"))
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Partitions []struct {
			ID      string
			Regions map[string]json.RawMessage
			Outputs struct{ DNSSuffix string }
		}
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, p := range doc.Partitions {
		for region := range p.Regions {
			if strings.HasSuffix(region, "-global") {
				continue // a pseudo-region of the global endpoints, no Lambda region
			}
			n++
			if got, want := secretsManagerEndpoint(region), "https://secretsmanager."+region+"."+p.Outputs.DNSSuffix+"/"; got != want {
				t.Errorf("%s (%s): %s, want %s", region, p.ID, got, want)
			}
		}
	}
	if n < 30 {
		t.Fatalf("only %d regions in partitions.json", n)
	}
	if got := secretsManagerEndpoint("xx-nowhere-1"); got != "https://secretsmanager.xx-nowhere-1.amazonaws.com/" {
		t.Errorf("a region of no partition: %s", got)
	}
}

// testSecretsManager is a client of srv with the environment's credentials (awstest.Key
// testKey), retrying without waiting.
func testSecretsManager(t *testing.T, srv *httptest.Server) *SecretsManager {
	t.Helper()
	sm, err := NewSecretsManager(env(map[string]string{
		"AWS_REGION": "eu-west-1", "AWS_ACCESS_KEY_ID": "AKID", "AWS_SECRET_ACCESS_KEY": "s",
		"AWS_ENDPOINT_URL_SECRETS_MANAGER": srv.URL,
	}))
	if err != nil {
		t.Fatal(err)
	}
	sm.backoff = noWait
	return sm
}

var testKey = awstest.Key{ID: "AKID", Secret: "s"}

func noWait(int) time.Duration { return 0 }

// TestSecretsManagerAnswers: what GetSecret makes of the service's answers: the request it
// sends (signed: awstest.Verify), errors with the service's code and message, retries of
// throttling and 5xx (as many as the SDK's), and never a value in an error.
func TestSecretsManagerAnswers(t *testing.T) {
	t.Parallel()
	const secret = "s3cr3t-value"
	var calls atomic.Int32
	var answer atomic.Value // func(w) for the next calls
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		body, _ := io.ReadAll(r.Body)
		if r.Method != http.MethodPost || r.URL.Path != "/" || r.Header.Get("Content-Type") != "application/x-amz-json-1.1" ||
			r.Header.Get("X-Amz-Target") != "secretsmanager.GetSecretValue" || string(body) != `{"SecretId":"`+testARN+`"}` {
			t.Errorf("request %s %s %v %s", r.Method, r.URL, r.Header, body)
		}
		if _, refusal := awstest.Verify(r, body, "secretsmanager", "eu-west-1", []awstest.Key{testKey}); refusal != nil {
			t.Errorf("request refused: %v", refusal)
		}
		answer.Load().(func(http.ResponseWriter))(w)
	}))
	t.Cleanup(srv.Close)
	sm := testSecretsManager(t, srv)
	status := func(code int, body string) func(http.ResponseWriter) {
		return func(w http.ResponseWriter) {
			w.Header().Set("X-Amzn-RequestId", "req-1")
			w.WriteHeader(code)
			_, _ = io.WriteString(w, body)
		}
	}
	for _, tc := range []struct {
		name    string
		answer  func(http.ResponseWriter)
		calls   int32
		want    string // the value, or what the error says
		wantErr bool
	}{
		{"value", status(200, `{"ARN":"a","Name":"n","SecretString":"`+secret+`","VersionId":"v"}`), 1, secret, false},
		{"not found", status(400, `{"__type":"ResourceNotFoundException","message":"Secrets Manager can't find the specified secret."}`), 1,
			"Secrets Manager GetSecretValue: HTTP 400, ResourceNotFoundException: Secrets Manager can't find the specified secret. (request id req-1)", true},
		{"access denied, namespaced code", status(400, `{"__type":"com.amazonaws.secretsmanager#AccessDeniedException:http://internal","Message":"not allowed"}`), 1,
			"Secrets Manager GetSecretValue: HTTP 400, AccessDeniedException: not allowed (request id req-1)", true},
		{"throttled, retried", status(400, `{"__type":"ThrottlingException","message":"Rate exceeded"}`), 3, "ThrottlingException: Rate exceeded", true},
		{"5xx, retried", status(503, `not json`), 3, "Secrets Manager GetSecretValue: HTTP 503 (request id req-1)", true},
		{"binary secret", status(200, `{"ARN":"a","SecretBinary":"AAEC"}`), 1, ErrSecretNotString.Error(), true},
		{"answer not JSON", status(200, `{"SecretString":"`+secret+`"`), 1, "the answer is not JSON", true},
		{"connection cut, retried", func(http.ResponseWriter) { panic(http.ErrAbortHandler) }, 3, "Secrets Manager GetSecretValue: Post", true},
	} {
		calls.Store(0)
		answer.Store(tc.answer)
		v, err := sm.GetSecret(context.Background(), testARN)
		switch {
		case tc.wantErr && (err == nil || !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), secret)):
			t.Errorf("%s: GetSecret = %q, %v; want an error with %q and without the value", tc.name, v, err, tc.want)
		case !tc.wantErr && (err != nil || v != tc.want):
			t.Errorf("%s: GetSecret = %q, %v; want %q", tc.name, v, err, tc.want)
		}
		if got := calls.Load(); got != tc.calls {
			t.Errorf("%s: %d calls, want %d", tc.name, got, tc.calls)
		}
	}

	// A retry that the context ends says so, with the error it retried.
	answer.Store(status(500, `{"__type":"InternalServiceError","message":"boom"}`))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	sm.backoff = func(int) time.Duration {
		cancel() // while waiting to retry
		return time.Hour
	}
	if _, err := sm.GetSecret(ctx, testARN); err == nil || !strings.Contains(err.Error(), "InternalServiceError: boom") || !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled retry: %v", err)
	}
}

func TestSecretsManagerEndpointSetting(t *testing.T) {
	t.Parallel()
	base := map[string]string{"AWS_REGION": "cn-north-1", "AWS_ACCESS_KEY_ID": "a", "AWS_SECRET_ACCESS_KEY": "b"}
	for _, tc := range []struct {
		env  map[string]string
		want string
	}{
		{nil, "https://secretsmanager.cn-north-1.amazonaws.com.cn/"},
		{map[string]string{"AWS_ENDPOINT_URL": "http://127.0.0.1:4566"}, "http://127.0.0.1:4566/"},
		{map[string]string{"AWS_ENDPOINT_URL": "http://x", "AWS_ENDPOINT_URL_SECRETS_MANAGER": "https://vpce.example/base/"}, "https://vpce.example/base/"},
	} {
		e := maps.Clone(base)
		maps.Copy(e, tc.env)
		sm, err := NewSecretsManager(env(e))
		if err != nil || sm.endpoint != tc.want {
			t.Errorf("%v: endpoint %v, %v; want %s", tc.env, sm, err, tc.want)
		}
	}
	e := maps.Clone(base)
	e["AWS_ENDPOINT_URL_SECRETS_MANAGER"] = "localhost:4566"
	if _, err := NewSecretsManager(env(e)); err == nil || !strings.Contains(err.Error(), "AWS_ENDPOINT_URL_SECRETS_MANAGER") {
		t.Errorf("a URL without scheme: %v", err)
	}
}

// TestContainerCredentialsAnswers: what the credentials of the container endpoint make of its
// answers: the keys and their expiry, errors with the endpoint's code and message, retries of
// 5xx and 429, and never a key in an error.
func TestContainerCredentialsAnswers(t *testing.T) {
	t.Parallel()
	var calls atomic.Int32
	var answer atomic.Value // func(w)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		if r.Method != http.MethodGet || r.Header.Get("Accept") != "application/json" || r.Header.Get("Authorization") != "tok" {
			t.Errorf("request %s %v", r.Method, r.Header)
		}
		answer.Load().(func(http.ResponseWriter))(w)
	}))
	t.Cleanup(srv.Close)
	c := &containerCredentials{uri: srv.URL, token: "tok", backoff: noWait}
	answerWith := func(code int, contentType, body string) func(http.ResponseWriter) {
		return func(w http.ResponseWriter) {
			w.Header().Set("Content-Type", contentType)
			w.WriteHeader(code)
			_, _ = io.WriteString(w, body)
		}
	}
	const key = "wJalrXUtnFEMI-secret-key"
	for _, tc := range []struct {
		name   string
		answer func(http.ResponseWriter)
		calls  int32
		want   string // what the error says; "" for success
	}{
		{"credentials", answerWith(200, "application/json", `{"AccessKeyId":"AKID","SecretAccessKey":"`+key+`","Token":"tk","AccountId":"123456789012","Expiration":"2030-01-02T03:04:05Z"}`), 1, ""},
		{"json error", answerWith(403, "application/json", `{"code":"AccessDenied","message":"bad token"}`), 1, "container credentials endpoint: HTTP 403, AccessDenied: bad token"},
		{"text error", answerWith(400, "text/plain", "no role\n"), 1, "container credentials endpoint: HTTP 400: no role"},
		{"5xx, retried", answerWith(500, "text/plain", "down"), 3, "HTTP 500: down"},
		{"429, retried", answerWith(429, "text/plain", "slow down"), 3, "HTTP 429: slow down"},
		{"not JSON", answerWith(200, "application/json", `{"AccessKeyId":"AKID","SecretAccessKey":"`+key+`"`), 1, "not JSON of credentials"},
		{"no keys", answerWith(200, "application/json", `{"Token":"x"}`), 1, "no AccessKeyId or SecretAccessKey"},
	} {
		calls.Store(0)
		answer.Store(tc.answer)
		creds, err := c.Retrieve(context.Background())
		switch {
		case tc.want == "" && (err != nil || creds.AccessKeyID != "AKID" || creds.SecretAccessKey != key || creds.SessionToken != "tk" ||
			!creds.Expires.Equal(time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC))):
			t.Errorf("%s: %+v, %v", tc.name, creds, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), key)):
			t.Errorf("%s: error %v, want one with %q and without the key", tc.name, err, tc.want)
		}
		if got := calls.Load(); got != tc.calls {
			t.Errorf("%s: %d calls, want %d", tc.name, got, tc.calls)
		}
	}
	calls.Store(0)
	bad := &containerCredentials{uri: srv.URL, token: "tok\r\nX-Injected: 1", backoff: noWait}
	if _, err := bad.Retrieve(context.Background()); err == nil || !strings.Contains(err.Error(), "newline") || calls.Load() != 0 {
		t.Errorf("a token with a newline: %v after %d calls", err, calls.Load())
	}
}

// TestJitteredBackoff: the pause before the second attempt is under 200 ms, before the third
// under 400 ms, and not always the same (jitter).
func TestJitteredBackoff(t *testing.T) {
	t.Parallel()
	for attempt, bound := range map[int]time.Duration{1: 200 * time.Millisecond, 2: 400 * time.Millisecond} {
		seen := map[time.Duration]bool{}
		for range 100 {
			d := jitteredBackoff(attempt)
			if d < 0 || d >= bound {
				t.Fatalf("attempt %d: pause %v, want [0, %v)", attempt, d, bound)
			}
			seen[d] = true
		}
		if len(seen) < 50 {
			t.Errorf("attempt %d: %d distinct pauses of 100", attempt, len(seen))
		}
	}
}
