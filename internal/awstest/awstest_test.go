package awstest

import (
	"bytes"
	"crypto/sha256"
	"io"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/aws/smithy-go/aws-http-auth/credentials"
	"github.com/aws/smithy-go/aws-http-auth/sigv4"
)

// TestVerify: a request signed by the functions' signer (aws-http-auth) passes Verify, and the
// same request fails it once anything that the signature covers differs.
func TestVerify(t *testing.T) {
	t.Parallel()
	key := Key{ID: "AKIDTEST", Secret: "right-secret", SessionToken: "session"}
	const body = `{"SecretId":"arn:aws:secretsmanager:eu-west-1:123456789012:secret:x"}`
	type request struct {
		key            Key
		region, target string
		at             time.Time
	}
	good := request{key, "eu-west-1", "secretsmanager.GetSecretValue", time.Now()}
	for _, tc := range []struct {
		name   string
		req    request
		change func(*http.Request, *[]byte) // after signing
		want   string                       // the refusal's code; "" to pass
	}{
		{"signed right", good, nil, ""},
		{"wrong secret key", request{Key{key.ID, "wrong-secret", key.SessionToken}, good.region, good.target, good.at}, nil, "InvalidSignatureException"},
		{"other region", request{key, "us-east-1", good.target, good.at}, nil, "InvalidSignatureException"},
		{"unknown key", request{Key{"AKIDOTHER", key.Secret, key.SessionToken}, good.region, good.target, good.at}, nil, "UnrecognizedClientException"},
		{"no session token", request{Key{key.ID, key.Secret, ""}, good.region, good.target, good.at}, nil, "UnrecognizedClientException"},
		{"too old", request{key, good.region, good.target, time.Now().Add(-6 * time.Minute)}, nil, "InvalidSignatureException"},
		{"body changed", good, func(_ *http.Request, b *[]byte) { *b = bytes.Replace(*b, []byte(":x"), []byte(":y"), 1) }, "InvalidSignatureException"},
		{"target changed", good, func(r *http.Request, _ *[]byte) { r.Header.Set("X-Amz-Target", "secretsmanager.DeleteSecret") }, "InvalidSignatureException"},
		{"unsigned x-amz header", good, func(r *http.Request, _ *[]byte) { r.Header.Set("X-Amz-Extra", "1") }, "InvalidSignatureException"},
		{"no signature", good, func(r *http.Request, _ *[]byte) { r.Header.Del("Authorization") }, "MissingAuthenticationTokenException"},
	} {
		r := httptest.NewRequest(http.MethodPost, "http://127.0.0.1:4566/", strings.NewReader(body))
		r.Header.Set("Content-Type", "application/x-amz-json-1.1")
		r.Header.Set("X-Amz-Target", tc.req.target)
		sum := sha256.Sum256([]byte(body))
		creds := credentials.Credentials{AccessKeyID: tc.req.key.ID, SecretAccessKey: tc.req.key.Secret, SessionToken: tc.req.key.SessionToken}
		if err := sigv4.New().SignRequest(&sigv4.SignRequestInput{
			Request: r, PayloadHash: sum[:], Credentials: creds, Service: "secretsmanager", Region: tc.req.region, Time: tc.req.at,
		}); err != nil {
			t.Fatal(err)
		}
		r.Header.Del("Host") // a server's request has it in r.Host
		b, _ := io.ReadAll(r.Body)
		if tc.change != nil {
			tc.change(r, &b)
		}
		got, refusal := Verify(r, b, "secretsmanager", "eu-west-1", []Key{{ID: "AKIDOTHERKNOWN", Secret: "x"}, key})
		switch {
		case tc.want == "" && (refusal != nil || got != key):
			t.Errorf("%s: %v, %v; want the key", tc.name, got, refusal)
		case tc.want != "" && (refusal == nil || refusal.Code != tc.want):
			t.Errorf("%s: %v, %v; want %s", tc.name, got, refusal, tc.want)
		}
	}
}

// TestFunctionsDoNotLinkTheSDK: the AWS SDK is in go.mod for this package (the tests' signature
// check) and the endpoint test's partitions.json; no function's binary may import it.
func TestFunctionsDoNotLinkTheSDK(t *testing.T) {
	t.Parallel()
	out, err := exec.Command("go", "list", "-deps", "-f", "{{.ImportPath}}", "../../functions/...").Output()
	if err != nil {
		t.Fatalf("go list -deps: %v", err)
	}
	if strings.Count(string(out), "\n") < 100 {
		t.Fatalf("go list -deps listed only %q", out)
	}
	for p := range strings.SplitSeq(string(out), "\n") {
		if strings.HasPrefix(p, "github.com/aws/aws-sdk-go-v2") || p == "github.com/machinedash/sse/internal/awstest" {
			t.Errorf("a function imports %s", p)
		}
	}
}
