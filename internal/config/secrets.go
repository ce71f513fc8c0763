package config

import (
	"bytes"
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
)

// SecretsManager reads secrets with Secrets Manager's GetSecretValue: one
// SigV4-signed POST of its JSON 1.1 protocol, the one call a function
// makes, instead of the SDK's service client (its smithy stack, schemas
// and endpoint rules were 0.6 MiB of every bootstrap). What the service
// client did around the call is kept, with the SDK's own pieces: the
// signer (aws/signer/v4), the credentials cache, the standard retryer (3
// attempts, throttling, 5xx and connection errors, jittered backoff) and
// the HTTP client with its timeouts (aws/transport/http). NewSecretsManager
// builds it.
type SecretsManager struct {
	endpoint string // the URL the call is POSTed to
	region   string // the signing region
	creds    aws.CredentialsProvider
	signer   *v4.Signer
	retryer  aws.Retryer
	http     httpDoer
}

// httpDoer sends a request: the SDK's HTTP client, as its service clients take it.
type httpDoer interface {
	Do(*http.Request) (*http.Response, error)
}

// ErrSecretNotString is returned for a binary secret: every secret here is text.
var ErrSecretNotString = errors.New("config: secret has no string value")

// maxSecretResponse bounds the answer read: a secret's value is at most 64 KiB.
const maxSecretResponse = 1 << 20

// GetSecret returns the secret's current string value (GetSecretValue of
// the ARN's AWSCURRENT version). An error names the service's error code and
// message or the HTTP status, never a value.
func (s *SecretsManager) GetSecret(ctx context.Context, arn string) (string, error) {
	return retried(ctx, s.retryer, func(ctx context.Context) (string, error) { return s.getSecretValue(ctx, arn) })
}

// retried makes call until it succeeds, for as many attempts and with the
// delays that the SDK's retryer gives the errors (as the SDK's retry
// middleware does) or until ctx ends.
func retried[T any](ctx context.Context, r aws.Retryer, call func(context.Context) (T, error)) (T, error) {
	for attempt := 1; ; attempt++ {
		v, err := call(ctx)
		if err == nil || attempt >= r.MaxAttempts() || !r.IsErrorRetryable(err) {
			return v, err
		}
		delay, derr := r.RetryDelay(attempt, err)
		if derr != nil {
			return v, err
		}
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return v, fmt.Errorf("%w (retry cancelled: %w)", err, ctx.Err())
		case <-t.C:
		}
	}
}

// do sends req and reads at most limit bytes of the answer.
func do(client httpDoer, req *http.Request, limit int64) (status int, header http.Header, body []byte, err error) {
	resp, err := client.Do(req)
	if err != nil {
		return 0, nil, nil, err
	}
	defer resp.Body.Close()
	body, err = io.ReadAll(io.LimitReader(resp.Body, limit))
	if err != nil {
		return 0, nil, nil, fmt.Errorf("reading the answer: %w", err)
	}
	return resp.StatusCode, resp.Header, body, nil
}

// getSecretValue is one attempt of the call.
func (s *SecretsManager) getSecretValue(ctx context.Context, arn string) (string, error) {
	const op = "Secrets Manager GetSecretValue"
	body, err := json.Marshal(struct{ SecretId string }{arn})
	if err != nil {
		return "", err
	}
	creds, err := s.creds.Retrieve(ctx)
	if err != nil {
		return "", fmt.Errorf("%s: credentials: %w", op, err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.endpoint, bytes.NewReader(body))
	if err != nil {
		return "", fmt.Errorf("%s: %w", op, err)
	}
	req.Header.Set("Content-Type", "application/x-amz-json-1.1")
	req.Header.Set("X-Amz-Target", "secretsmanager.GetSecretValue")
	sum := sha256.Sum256(body)
	if err := s.signer.SignHTTP(ctx, creds, req, hex.EncodeToString(sum[:]), "secretsmanager", s.region, time.Now()); err != nil {
		return "", fmt.Errorf("%s: signing: %w", op, err)
	}
	status, header, b, err := do(s.http, req, maxSecretResponse)
	if err != nil {
		return "", fmt.Errorf("%s: %w", op, err)
	}
	if status != http.StatusOK {
		return "", jsonError(op, status, header, b)
	}
	var out struct{ SecretString *string }
	if err := json.Unmarshal(b, &out); err != nil {
		// Not the error itself: it could quote the answer, which holds the secret.
		return "", errors.New(op + ": the answer is not JSON")
	}
	if out.SecretString == nil {
		return "", ErrSecretNotString
	}
	return *out.SecretString, nil
}

// AWSError is a failed call to AWS as the other side answered it.
// ErrorCode and HTTPStatusCode are what the SDK's retryer classifies errors
// by (throttling codes, 5xx, 429).
type AWSError struct {
	Op        string // the call: "Secrets Manager GetSecretValue", "container credentials endpoint"
	Status    int    // HTTP status
	Code      string // the error's code, e.g. ResourceNotFoundException
	Message   string
	RequestID string
}

func (e *AWSError) Error() string {
	s := fmt.Sprintf("%s: HTTP %d", e.Op, e.Status)
	if e.Code != "" {
		s += ", " + e.Code
	}
	if e.Message != "" {
		s += ": " + e.Message
	}
	if e.RequestID != "" {
		s += " (request id " + e.RequestID + ")"
	}
	return s
}

// ErrorCode is the service's error code.
func (e *AWSError) ErrorCode() string { return e.Code }

// HTTPStatusCode is the answer's status.
func (e *AWSError) HTTPStatusCode() int { return e.Status }

// jsonError reads an error answer of the JSON 1.1 protocol:
// {"__type": "...#Code", "message": "..."}, the code also in X-Amzn-ErrorType.
func jsonError(op string, status int, header http.Header, body []byte) *AWSError {
	// encoding/json matches keys without regard to case: "message" or "Message".
	var doc struct {
		Type    string `json:"__type"`
		Code    string `json:"code"`
		Message string `json:"message"`
	}
	_ = json.Unmarshal(body, &doc) // an answer that is not JSON keeps only its status
	code := cmp.Or(header.Get("X-Amzn-ErrorType"), doc.Type, doc.Code)
	// "ns#Code:http://..." -> "Code", as the SDK's deserializer sanitizes it.
	code, _, _ = strings.Cut(code, ":")
	if _, after, ok := strings.Cut(code, "#"); ok {
		code = after
	}
	return &AWSError{Op: op, Status: status, Code: code, Message: doc.Message, RequestID: header.Get("X-Amzn-RequestId")}
}

// NeedsSecretsManager reports whether any secret is given by ARN, so a main
// only builds an AWS client when one is needed.
func (c Config) NeedsSecretsManager() bool {
	for _, s := range []Secret{c.RedisAuth, c.AccessTokenSecret, c.StreamTicketSecret, c.OriginVerifySecret} {
		if s.Value == "" && s.ARN != "" {
			return true
		}
	}
	return false
}
