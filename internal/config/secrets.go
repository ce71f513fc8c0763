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
// and endpoint rules were 0.9 MiB of every bootstrap). What the service
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
	http     interface {
		Do(*http.Request) (*http.Response, error)
	}
}

// ErrSecretNotString is returned for a binary secret: every secret here is text.
var ErrSecretNotString = errors.New("config: secret has no string value")

// maxSecretResponse bounds the answer read: a secret's value is at most 64 KiB.
const maxSecretResponse = 1 << 20

// GetSecret returns the secret's current string value (GetSecretValue of
// the ARN's AWSCURRENT version). An error names the service's error code and
// message or the HTTP status, never a value.
func (s *SecretsManager) GetSecret(ctx context.Context, arn string) (string, error) {
	for attempt := 1; ; attempt++ {
		v, err := s.getSecretValue(ctx, arn)
		if err == nil || attempt >= s.retryer.MaxAttempts() || !s.retryer.IsErrorRetryable(err) {
			return v, err
		}
		delay, derr := s.retryer.RetryDelay(attempt, err)
		if derr != nil {
			return "", err
		}
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return "", fmt.Errorf("%w (retry cancelled: %w)", err, ctx.Err())
		case <-t.C:
		}
	}
}

// getSecretValue is one attempt of the call.
func (s *SecretsManager) getSecretValue(ctx context.Context, arn string) (string, error) {
	body, err := json.Marshal(struct{ SecretId string }{arn})
	if err != nil {
		return "", err
	}
	creds, err := s.creds.Retrieve(ctx)
	if err != nil {
		return "", fmt.Errorf("Secrets Manager GetSecretValue: credentials: %w", err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.endpoint, bytes.NewReader(body))
	if err != nil {
		return "", fmt.Errorf("Secrets Manager GetSecretValue: %w", err)
	}
	req.Header.Set("Content-Type", "application/x-amz-json-1.1")
	req.Header.Set("X-Amz-Target", "secretsmanager.GetSecretValue")
	sum := sha256.Sum256(body)
	if err := s.signer.SignHTTP(ctx, creds, req, hex.EncodeToString(sum[:]), "secretsmanager", s.region, time.Now()); err != nil {
		return "", fmt.Errorf("Secrets Manager GetSecretValue: signing: %w", err)
	}
	resp, err := s.http.Do(req)
	if err != nil {
		return "", fmt.Errorf("Secrets Manager GetSecretValue: %w", err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxSecretResponse))
	if err != nil {
		return "", fmt.Errorf("Secrets Manager GetSecretValue: reading the answer: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return "", newSecretsManagerError(resp, b)
	}
	var out struct{ SecretString *string }
	if err := json.Unmarshal(b, &out); err != nil {
		// Not the error itself: it could quote the answer, which holds the secret.
		return "", errors.New("Secrets Manager GetSecretValue: the answer is not JSON")
	}
	if out.SecretString == nil {
		return "", ErrSecretNotString
	}
	return *out.SecretString, nil
}

// SecretsManagerError is a failed GetSecretValue as the service answered
// it. ErrorCode and HTTPStatusCode are what the SDK's retryer classifies
// errors by (throttling codes, 5xx).
type SecretsManagerError struct {
	Status    int    // HTTP status
	Code      string // the error's __type without its namespace, e.g. ResourceNotFoundException
	Message   string
	RequestID string
}

func (e *SecretsManagerError) Error() string {
	s := fmt.Sprintf("Secrets Manager GetSecretValue: HTTP %d", e.Status)
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
func (e *SecretsManagerError) ErrorCode() string { return e.Code }

// HTTPStatusCode is the answer's status.
func (e *SecretsManagerError) HTTPStatusCode() int { return e.Status }

// newSecretsManagerError reads an error answer of the JSON 1.1 protocol:
// {"__type": "...#Code", "message": "..."}, the code also in X-Amzn-ErrorType.
func newSecretsManagerError(resp *http.Response, body []byte) *SecretsManagerError {
	// encoding/json matches keys without regard to case: "message" or "Message".
	var doc struct {
		Type    string `json:"__type"`
		Code    string `json:"code"`
		Message string `json:"message"`
	}
	_ = json.Unmarshal(body, &doc) // an answer that is not JSON keeps only its status
	code := cmp.Or(resp.Header.Get("X-Amzn-ErrorType"), doc.Type, doc.Code)
	// "ns#Code:http://..." -> "Code", as the SDK's deserializer sanitizes it.
	code, _, _ = strings.Cut(code, ":")
	if _, after, ok := strings.Cut(code, "#"); ok {
		code = after
	}
	return &SecretsManagerError{Status: resp.StatusCode, Code: code, Message: doc.Message, RequestID: resp.Header.Get("X-Amzn-RequestId")}
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
