package config

import (
	"bytes"
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/aws/smithy-go/aws-http-auth/credentials"
	"github.com/aws/smithy-go/aws-http-auth/sigv4"
)

// SecretsManager reads secrets with Secrets Manager's GetSecretValue: one
// SigV4-signed POST of its JSON 1.1 protocol, the one call a function makes,
// without the AWS SDK (its service client, smithy stack, schemas and endpoint
// rules were 0.6 MiB of every bootstrap; its signer, retryer, HTTP client and
// credentials cache 0.2 MiB more). AWS's standalone signer module
// (smithy-go's aws-http-auth, sigv4) signs the call. What the SDK's client
// did around it is kept: up to maxAttempts attempts on throttling, 5xx and
// connection errors with a short jittered pause (retried), each attempt
// bounded (attemptTimeout), and the credentials kept between calls until
// they come near their expiry. NewSecretsManager builds it.
type SecretsManager struct {
	endpoint string // the URL the call is POSTed to
	region   string // the signing region
	creds    credentialsCache
	signer   *sigv4.Signer
	backoff  func(attempt int) time.Duration // the pause after the attempt's failure
}

// attemptTimeout bounds one attempt of a call, from dialling to the end of
// the answer: Secrets Manager and the credentials endpoint answer in tens of
// milliseconds, so 3 attempts of a stuck connection still fit Lambda's
// 10-second init. Dial and TLS handshake keep net/http's default timeouts
// (30 s, 10 s: the SDK's client copied them) inside this bound.
const attemptTimeout = 3 * time.Second

// awsHTTP sends both calls. It is no field of SecretsManager: Resolve takes
// the client as an interface value (SecretGetter), and the linker keeps the
// methods of every type such a value's type reaches, which through an
// http.Client's cookie jar are net/http's cookie formatting (4 KiB of every
// bootstrap).
var awsHTTP = &http.Client{Timeout: attemptTimeout}

// ErrSecretNotString is returned for a binary secret: every secret here is text.
var ErrSecretNotString = errors.New("config: secret has no string value")

// maxSecretResponse bounds the answer read: a secret's value is at most 64 KiB.
const maxSecretResponse = 1 << 20

// GetSecret returns the secret's current string value (GetSecretValue of
// the ARN's AWSCURRENT version). An error names the service's error code and
// message or the HTTP status, never a value.
func (s *SecretsManager) GetSecret(ctx context.Context, arn string) (string, error) {
	var v string
	err := retried(ctx, s.backoff, func(ctx context.Context) (err error) {
		v, err = s.getSecretValue(ctx, arn)
		return err
	})
	return v, err
}

// maxAttempts is how many times a call is made at most, as the SDK's
// standard retryer did.
const maxAttempts = 3

// jitteredBackoff is the pause after a failed attempt (1, 2): a random part
// of 200 ms, then of 400 ms ("full jitter", so that the environments of a
// cold-start burst spread their retries). The SDK's were of 2 s and 4 s;
// this is init time, where a shorter pause leaves more of Lambda's 10 s.
func jitteredBackoff(attempt int) time.Duration {
	return rand.N(200 * time.Millisecond << (attempt - 1))
}

// retried makes call until it succeeds, it fails in a way not worth another
// try (retryable), maxAttempts attempts were made, or ctx ends; backoff
// gives the pause between attempts. (Not generic: each instantiation
// would be code of its own in every bootstrap.)
func retried(ctx context.Context, backoff func(int) time.Duration, call func(context.Context) error) error {
	for attempt := 1; ; attempt++ {
		err := call(ctx)
		if err == nil || attempt >= maxAttempts || !retryable(err) || ctx.Err() != nil {
			return err
		}
		t := time.NewTimer(backoff(attempt))
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("%w (retry cancelled: %w)", err, ctx.Err())
		case <-t.C:
		}
	}
}

// retryable reports whether a failed attempt is worth another, by the SDK
// standard retryer's rules: a connection error (no answer, or the answer cut
// off); a 500, 502, 503, 504 or 429 answer; a throttling or timeout error
// code, whatever the status (Secrets Manager throttles with HTTP 400
// ThrottlingException).
func retryable(err error) bool {
	if errors.As(err, new(transportError)) {
		return true
	}
	var e *AWSError
	if !errors.As(err, &e) {
		return false // the answer was read and is wrong: the same next time
	}
	switch e.Status {
	case 500, 502, 503, 504, http.StatusTooManyRequests:
		return true
	}
	switch e.Code {
	case "Throttling", "ThrottlingException", "ThrottledException", "RequestThrottledException",
		"TooManyRequestsException", "ProvisionedThroughputExceededException", "TransactionInProgressException",
		"RequestLimitExceeded", "BandwidthLimitExceeded", "LimitExceededException", "RequestThrottled",
		"SlowDown", "PriorRequestNotComplete", "EC2ThrottledException", "RequestTimeout", "RequestTimeoutException":
		return true
	}
	return false
}

// transportError is a failure to send a request or to read its answer.
type transportError struct{ error }

func (e transportError) Unwrap() error { return e.error }

// do sends req and reads at most limit bytes of the answer.
func do(req *http.Request, limit int64) (status int, header http.Header, body []byte, err error) {
	resp, err := awsHTTP.Do(req)
	if err != nil {
		return 0, nil, nil, transportError{err}
	}
	defer resp.Body.Close()
	body, err = io.ReadAll(io.LimitReader(resp.Body, limit))
	if err != nil {
		return 0, nil, nil, transportError{fmt.Errorf("reading the answer: %w", err)}
	}
	return resp.StatusCode, resp.Header, body, nil
}

// credentialsCache keeps the credentials a source gave until a minute
// before they expire: the secrets are read one after the other at init, and
// the container endpoint is asked once for all of them.
type credentialsCache struct {
	source func(context.Context) (credentials.Credentials, error)
	mu     sync.Mutex
	creds  credentials.Credentials
}

func (c *credentialsCache) get(ctx context.Context) (credentials.Credentials, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.creds.AccessKeyID == "" || !c.creds.Expires.IsZero() && time.Until(c.creds.Expires) < time.Minute {
		creds, err := c.source(ctx)
		if err != nil {
			return credentials.Credentials{}, err
		}
		c.creds = creds
	}
	return c.creds, nil
}

// getSecretValue is one attempt of the call.
func (s *SecretsManager) getSecretValue(ctx context.Context, arn string) (string, error) {
	const op = "Secrets Manager GetSecretValue"
	body, err := json.Marshal(struct{ SecretId string }{arn})
	if err != nil {
		return "", err
	}
	creds, err := s.creds.get(ctx)
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
	if err := s.signer.SignRequest(&sigv4.SignRequestInput{
		Request: req, PayloadHash: sum[:], Credentials: creds, Service: "secretsmanager", Region: s.region,
	}); err != nil {
		return "", fmt.Errorf("%s: signing: %w", op, err)
	}
	status, header, b, err := do(req, maxSecretResponse)
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
