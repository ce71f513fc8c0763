package config

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/credentials/endpointcreds"
)

// NewSecretsManager returns the Secrets Manager client that Resolve reads *_SECRET_ARN with,
// built from what a Lambda execution environment provides instead of the SDK's whole default
// configuration chain (shared config files, SSO, STS, IMDS: 1.75 MiB of the stream bootstrap, none
// of which a function uses) and without the SDK's service client (0.9 MiB more; SecretsManager
// says what it keeps of it):
//
//   - the region: AWS_REGION (set by Lambda in both compute modes);
//   - the execution role's credentials: AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and
//     AWS_SESSION_TOKEN, which Lambda sets for the runtime; or else the container credentials
//     endpoint AWS_CONTAINER_CREDENTIALS_FULL_URI (with AWS_CONTAINER_AUTHORIZATION_TOKEN or
//     _FILE), the other way Lambda hands a runtime its role (SnapStart). These are the first two
//     sources of the SDK's own chain, in its order, so whichever of them an execution
//     environment uses (classic or Lambda Managed Instances), the client finds the same
//     credentials LoadDefaultConfig would. The secrets are read once at start-up, so
//     credentials that expire later do not matter;
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
		creds:    aws.NewCredentialsCache(creds),
		signer:   v4.NewSigner(),
		retryer:  retry.NewStandard(),
		http:     awshttp.NewBuildableClient(),
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

// lambdaCredentials is the execution role's credentials provider (see NewSecretsManager).
func lambdaCredentials(getenv func(string) string) (aws.CredentialsProvider, error) {
	if id, secret := getenv("AWS_ACCESS_KEY_ID"), getenv("AWS_SECRET_ACCESS_KEY"); id != "" && secret != "" {
		return credentials.NewStaticCredentialsProvider(id, secret, getenv("AWS_SESSION_TOKEN")), nil
	}
	uri := strings.TrimSpace(getenv("AWS_CONTAINER_CREDENTIALS_FULL_URI"))
	if uri == "" {
		return nil, errors.New("*_SECRET_ARN: no AWS credentials: neither AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY nor AWS_CONTAINER_CREDENTIALS_FULL_URI is set (Lambda sets them from the execution role)")
	}
	if err := checkCredentialsURI(uri); err != nil {
		return nil, err
	}
	token := getenv("AWS_CONTAINER_AUTHORIZATION_TOKEN")
	if file := getenv("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE"); file != "" {
		// The file wins, as in the SDK; it is read at every refresh, since it may rotate.
		return endpointcreds.New(uri, func(o *endpointcreds.Options) {
			o.AuthorizationTokenProvider = endpointcreds.TokenProviderFunc(func() (string, error) {
				b, err := os.ReadFile(file)
				if err != nil {
					return "", fmt.Errorf("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE: %w", err)
				}
				return strings.TrimSpace(string(b)), nil
			})
		}), nil
	}
	return endpointcreds.New(uri, func(o *endpointcreds.Options) { o.AuthorizationToken = token }), nil
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
