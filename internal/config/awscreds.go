package config

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/aws/smithy-go/aws-http-auth/credentials"
	"github.com/aws/smithy-go/aws-http-auth/sigv4"
)

// NewSecretsManager returns the Secrets Manager client that Resolve reads *_SECRET_ARN with,
// built from what a Lambda execution environment provides instead of the SDK's whole default
// configuration chain (shared config files, SSO, STS, IMDS: 1.75 MiB of the stream bootstrap,
// none of which a function uses) and without the rest of the SDK (0.8 MiB more;
// SecretsManager says what it keeps of what the SDK did):
//
//   - the region: AWS_REGION (set by Lambda in both compute modes);
//   - the execution role's credentials: AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and
//     AWS_SESSION_TOKEN, which Lambda sets for the runtime; or else the container credentials
//     endpoint AWS_CONTAINER_CREDENTIALS_FULL_URI (with AWS_CONTAINER_AUTHORIZATION_TOKEN or
//     _FILE; containerCredentials), the other way Lambda hands a runtime its role
//     (SnapStart). These are the first two sources of the SDK's own chain, in its order, so
//     whichever of them an execution environment uses (classic or Lambda Managed Instances),
//     the client finds the same credentials LoadDefaultConfig would. The secrets are read once
//     at start-up, so credentials that expire later do not matter;
//   - the endpoint: AWS_ENDPOINT_URL_SECRETS_MANAGER or AWS_ENDPOINT_URL when set (as the SDK
//     reads them; the bootstrap tests point it at a fake), else the service's regional endpoint
//     (secretsManagerEndpoint).
//
// getenv is the environment, as for Load. Errors name the setting, never a value.
func NewSecretsManager(getenv func(string) string) (*SecretsManager, error) {
	region := getenv("AWS_REGION")
	if region == "" {
		region = getenv("AWS_DEFAULT_REGION")
	}
	if region == "" {
		return nil, errors.New("*_SECRET_ARN: AWS_REGION is not set (Lambda sets it)")
	}
	creds, err := lambdaCredentials(getenv)
	if err != nil {
		return nil, err
	}
	endpoint := secretsManagerEndpoint(region)
	for _, name := range []string{"AWS_ENDPOINT_URL_SECRETS_MANAGER", "AWS_ENDPOINT_URL"} {
		if v := strings.TrimSpace(getenv(name)); v != "" {
			u, err := url.Parse(v)
			if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
				return nil, fmt.Errorf("%s: not an http(s) URL", name)
			}
			// The JSON protocol POSTs to the endpoint's path joined with "/", as the SDK does.
			u.Path = strings.TrimSuffix(u.Path, "/") + "/"
			endpoint = u.String()
			break
		}
	}
	return &SecretsManager{
		endpoint: endpoint,
		region:   region,
		creds:    credentialsCache{source: creds},
		signer:   sigv4.New(),
		backoff:  jitteredBackoff,
	}, nil
}

// secretsManagerEndpoint is the service's regional endpoint, as the SDK's endpoint rules
// resolve it without FIPS or dual-stack (which no function asks for): secretsmanager.<region>.
// and the DNS suffix of the region's partition. The partitions are the SDK's
// (internal/endpoints/awsrulesfn/partitions.json, which TestSecretsManagerEndpoint checks this
// against); a region of no known partition is in "aws", as there.
func secretsManagerEndpoint(region string) string {
	suffix := "amazonaws.com" // aws and aws-us-gov
	for _, p := range []struct{ prefix, suffix string }{
		{"cn-", "amazonaws.com.cn"},
		{"eusc-", "amazonaws.eu"},
		{"us-iso-", "c2s.ic.gov"},
		{"us-isob-", "sc2s.sgov.gov"},
		{"us-isof-", "csp.hci.ic.gov"},
		{"eu-isoe-", "cloud.adc-e.uk"},
	} {
		if strings.HasPrefix(region, p.prefix) {
			suffix = p.suffix
			break
		}
	}
	return "https://secretsmanager." + region + "." + suffix + "/"
}

// lambdaCredentials is the source of the execution role's credentials (see NewSecretsManager).
func lambdaCredentials(getenv func(string) string) (func(context.Context) (credentials.Credentials, error), error) {
	if id, secret := getenv("AWS_ACCESS_KEY_ID"), getenv("AWS_SECRET_ACCESS_KEY"); id != "" && secret != "" {
		creds := credentials.Credentials{AccessKeyID: id, SecretAccessKey: secret, SessionToken: getenv("AWS_SESSION_TOKEN")}
		return func(context.Context) (credentials.Credentials, error) { return creds, nil }, nil
	}
	uri := strings.TrimSpace(getenv("AWS_CONTAINER_CREDENTIALS_FULL_URI"))
	if uri == "" {
		return nil, errors.New("*_SECRET_ARN: no AWS credentials: neither AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY nor AWS_CONTAINER_CREDENTIALS_FULL_URI is set (Lambda sets them from the execution role)")
	}
	if err := checkCredentialsURI(uri); err != nil {
		return nil, err
	}
	c := &containerCredentials{
		uri: uri, token: getenv("AWS_CONTAINER_AUTHORIZATION_TOKEN"), tokenFile: getenv("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE"),
		backoff: jitteredBackoff,
	}
	return c.Retrieve, nil
}

// containerCredentials reads the execution role's credentials from the container credentials
// endpoint, in the protocol of the SDK's credentials/endpointcreds (whose smithy client stack
// was 250 KiB of every bootstrap, for one GET): GET uri with Accept: application/json and
// Authorization: the token, where AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE's content, read at
// every call since it may rotate, wins over AWS_CONTAINER_AUTHORIZATION_TOKEN; the answer is
// {"AccessKeyId", "SecretAccessKey", "Token", "Expiration"}, an error {"code", "message"}
// (or text). Retried as GetSecretValue is; SecretsManager's credentialsCache keeps the answer
// until it comes near its expiry.
type containerCredentials struct {
	uri, token, tokenFile string
	backoff               func(attempt int) time.Duration
}

// maxCredentialsResponse bounds the answer read: a few hundred bytes of keys.
const maxCredentialsResponse = 64 << 10

func (c *containerCredentials) Retrieve(ctx context.Context) (credentials.Credentials, error) {
	var creds credentials.Credentials
	err := retried(ctx, c.backoff, func(ctx context.Context) (err error) {
		creds, err = c.retrieve(ctx)
		return err
	})
	return creds, err
}

func (c *containerCredentials) retrieve(ctx context.Context) (credentials.Credentials, error) {
	const op = "container credentials endpoint"
	token := c.token
	if c.tokenFile != "" {
		b, err := os.ReadFile(c.tokenFile)
		if err != nil {
			return credentials.Credentials{}, fmt.Errorf("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE: %w", err)
		}
		token = strings.TrimSpace(string(b))
	}
	if strings.ContainsAny(token, "\r\n") {
		return credentials.Credentials{}, errors.New("AWS_CONTAINER_AUTHORIZATION_TOKEN: a newline in the token")
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.uri, nil)
	if err != nil {
		return credentials.Credentials{}, fmt.Errorf("%s: %w", op, err)
	}
	req.Header.Set("Accept", "application/json")
	if token != "" {
		req.Header.Set("Authorization", token)
	}
	status, header, body, err := do(req, maxCredentialsResponse)
	if err != nil {
		return credentials.Credentials{}, fmt.Errorf("%s: %w", op, err)
	}
	if status < 200 || status > 299 {
		e := &AWSError{Op: op, Status: status}
		var doc struct{ Code, Message string }
		if header.Get("Content-Type") == "application/json" && json.Unmarshal(body, &doc) == nil {
			e.Code, e.Message = doc.Code, doc.Message
		} else {
			e.Message = strings.TrimSpace(string(body[:min(len(body), 200)]))
		}
		return credentials.Credentials{}, e
	}
	var out struct {
		AccessKeyID     string `json:"AccessKeyId"`
		SecretAccessKey string
		Token           string
		Expiration      *time.Time
	}
	// Not the decoder's error itself: it could quote the answer, which holds the keys.
	if json.Unmarshal(body, &out) != nil {
		return credentials.Credentials{}, errors.New(op + ": the answer is not JSON of credentials")
	}
	if out.AccessKeyID == "" || out.SecretAccessKey == "" {
		return credentials.Credentials{}, errors.New(op + ": the answer has no AccessKeyId or SecretAccessKey")
	}
	creds := credentials.Credentials{AccessKeyID: out.AccessKeyID, SecretAccessKey: out.SecretAccessKey, SessionToken: out.Token}
	if out.Expiration != nil {
		creds.Expires = *out.Expiration
	}
	return creds, nil
}

// checkCredentialsURI refuses a credentials endpoint that would send the authorization token
// in the clear off the machine: plain HTTP only to a loopback address, as the SDK requires.
func checkCredentialsURI(raw string) error {
	u, err := url.Parse(raw)
	if err != nil || u.Hostname() == "" {
		return errors.New("AWS_CONTAINER_CREDENTIALS_FULL_URI: not a URL with a host")
	}
	switch u.Scheme {
	case "https":
		return nil
	case "http":
		if h := u.Hostname(); h == "localhost" || net.ParseIP(h) != nil && net.ParseIP(h).IsLoopback() {
			return nil
		}
		return errors.New("AWS_CONTAINER_CREDENTIALS_FULL_URI: plain http only to a loopback host")
	}
	return errors.New("AWS_CONTAINER_CREDENTIALS_FULL_URI: scheme must be http or https")
}
