// Package awstest is a fake AWS for the tests: Verify checks a request's Signature Version 4
// as AWS does, and SecretsManager is a Secrets Manager endpoint that answers GetSecretValue
// only to a caller who signed with a key it knows.
//
// The signature is recomputed with the AWS SDK's own signer (aws-sdk-go-v2's aws/signer/v4),
// an implementation independent of the one the functions sign with (smithy-go's
// aws-http-auth): a request passes only if the two agree. The SDK is a dependency of the tests
// only; no function links it (TestFunctionsDoNotLinkTheSDK).
package awstest

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
)

// Key is an access key that the fake accepts: its id and secret and, for temporary
// credentials (an execution role's), the session token that must come with it.
type Key struct{ ID, Secret, SessionToken string }

// Error is a refusal as an AWS JSON-protocol service answers it.
type Error struct {
	Status  int
	Code    string // __type
	Message string
}

func (e *Error) Error() string { return e.Code + ": " + e.Message }

// Write answers the refusal on w.
func (e *Error) Write(w http.ResponseWriter) {
	w.Header().Set("Content-Type", "application/x-amz-json-1.1")
	w.Header().Set("X-Amzn-RequestId", "awstest-refusal")
	w.WriteHeader(e.Status)
	_ = json.NewEncoder(w).Encode(map[string]string{"__type": e.Code, "message": e.Message})
}

// maxClockSkew is how far a request's X-Amz-Date may be from the service's clock.
const maxClockSkew = 5 * time.Minute

// Verify checks that r, whose body was read into body, carries a valid Signature Version 4
// (Authorization header) for service and region, made with one of keys, with that key's
// session token, at most maxClockSkew from now, and that it signs the host, its date and
// every X-Amz-* header it carries (its target, its token). It returns the key that signed r,
// or the refusal the service would answer.
func Verify(r *http.Request, body []byte, service, region string, keys []Key) (Key, *Error) {
	refuse := func(code, msg string) (Key, *Error) { return Key{}, &Error{http.StatusBadRequest, code, msg} }
	alg, params, _ := strings.Cut(r.Header.Get("Authorization"), " ")
	if alg != "AWS4-HMAC-SHA256" {
		return refuse("MissingAuthenticationTokenException", "Missing Authentication Token: no AWS4-HMAC-SHA256 Authorization header")
	}
	fields := map[string]string{}
	for f := range strings.SplitSeq(params, ",") {
		k, v, _ := strings.Cut(strings.TrimSpace(f), "=")
		fields[k] = v
	}
	id, _, _ := strings.Cut(fields["Credential"], "/")
	i := slices.IndexFunc(keys, func(k Key) bool { return k.ID == id })
	if i < 0 || keys[i].SessionToken != r.Header.Get("X-Amz-Security-Token") {
		return refuse("UnrecognizedClientException", "The security token included in the request is invalid.")
	}
	key := keys[i]
	at, err := time.Parse("20060102T150405Z", r.Header.Get("X-Amz-Date"))
	if err != nil {
		return refuse("IncompleteSignatureException", "no valid X-Amz-Date")
	}
	if d := time.Since(at); d > maxClockSkew || d < -maxClockSkew {
		return refuse("InvalidSignatureException", "Signature expired: "+at.Format(time.RFC3339)+" is not within 5 minutes of now")
	}
	signed := strings.Split(fields["SignedHeaders"], ";")
	for name := range r.Header {
		if h := strings.ToLower(name); (h == "host" || strings.HasPrefix(h, "x-amz-")) && !slices.Contains(signed, h) {
			return refuse("InvalidSignatureException", "header "+h+" is not signed")
		}
	}
	if !slices.Contains(signed, "host") {
		return refuse("InvalidSignatureException", "header host is not signed")
	}

	// The same request as received, with only its signed headers, signed again by the SDK with
	// the key, the body's hash and the request's own signing time.
	again, err := http.NewRequest(r.Method, "http://"+r.Host+r.URL.RequestURI(), nil)
	if err != nil {
		return refuse("InvalidSignatureException", err.Error())
	}
	for _, h := range signed {
		switch h {
		case "host":
		case "content-length":
			again.ContentLength = int64(len(body)) // the SDK signs the length, not the header
		default:
			again.Header[http.CanonicalHeaderKey(h)] = r.Header.Values(h)
		}
	}
	sum := sha256.Sum256(body)
	creds := aws.Credentials{AccessKeyID: key.ID, SecretAccessKey: key.Secret, SessionToken: key.SessionToken}
	if err := v4.NewSigner().SignHTTP(context.Background(), creds, again, hex.EncodeToString(sum[:]), service, region, at); err != nil {
		return refuse("InvalidSignatureException", err.Error())
	}
	if again.Header.Get("Authorization") != r.Header.Get("Authorization") {
		return refuse("InvalidSignatureException", "The request signature we calculated does not match the signature you provided. "+
			"Check your AWS Secret Access Key and signing method.")
	}
	return key, nil
}

// SecretsManager is a fake Secrets Manager: the JSON 1.1 protocol's GetSecretValue, for the
// secrets it holds, answered to a call that Verify accepts for "secretsmanager" in its region.
type SecretsManager struct {
	URL      string // the endpoint: AWS_ENDPOINT_URL_SECRETS_MANAGER
	region   string
	keys     []Key
	secrets  map[string]string // ARN -> SecretString
	signedBy atomic.Value      // string: the key id of the last call answered
	refused  atomic.Value      // string: the last refusal
}

// NewSecretsManager starts a fake Secrets Manager of region that knows keys and holds
// secrets (ARN -> value); it stops at the end of the test.
func NewSecretsManager(t testing.TB, region string, keys []Key, secrets map[string]string) *SecretsManager {
	t.Helper()
	s := &SecretsManager{region: region, keys: keys, secrets: secrets}
	s.signedBy.Store("")
	s.refused.Store("")
	srv := httptest.NewServer(http.HandlerFunc(s.serve))
	t.Cleanup(srv.Close)
	s.URL = srv.URL
	return s
}

// SignedBy is the access key id of the last call answered (its signature was valid).
func (s *SecretsManager) SignedBy() string { return s.signedBy.Load().(string) }

// Refused is the last refusal of a call's signature ("" if none).
func (s *SecretsManager) Refused() string { return s.refused.Load().(string) }

func (s *SecretsManager) serve(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return
	}
	if r.Method != http.MethodPost || r.Header.Get("X-Amz-Target") != "secretsmanager.GetSecretValue" {
		(&Error{http.StatusBadRequest, "UnknownOperationException", r.Method + " " + r.Header.Get("X-Amz-Target")}).Write(w)
		return
	}
	key, refusal := Verify(r, body, "secretsmanager", s.region, s.keys)
	if refusal != nil {
		s.refused.Store(refusal.Error())
		refusal.Write(w)
		return
	}
	s.signedBy.Store(key.ID)
	var in struct{ SecretId string }
	_ = json.Unmarshal(body, &in)
	v, ok := s.secrets[in.SecretId]
	if !ok {
		(&Error{http.StatusBadRequest, "ResourceNotFoundException", "Secrets Manager can't find the specified secret."}).Write(w)
		return
	}
	w.Header().Set("Content-Type", "application/x-amz-json-1.1")
	_ = json.NewEncoder(w).Encode(map[string]string{"ARN": in.SecretId, "Name": "n", "SecretString": v, "VersionId": "v1"})
}
