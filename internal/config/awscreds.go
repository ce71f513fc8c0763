package config

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/credentials/endpointcreds"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
)

// NewSecretsManager returns the Secrets Manager client that Resolve reads *_SECRET_ARN with,
// built from what a Lambda execution environment provides instead of the SDK's whole default
// configuration chain (shared config files, SSO, STS, IMDS: 1.75 MiB of the stream bootstrap, none
// of which a function uses):
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
//     reads them; the bootstrap tests point it at a fake).
//
// getenv is the environment, as for Load. Errors name the setting, never a value.
func NewSecretsManager(getenv func(string) string) (SecretsManager, error) {
	region := getenv("AWS_REGION")
	if region == "" {
		region = getenv("AWS_DEFAULT_REGION")
	}
	if region == "" {
		return SecretsManager{}, errors.New("*_SECRET_ARN: AWS_REGION is not set (Lambda sets it)")
	}
	creds, err := lambdaCredentials(getenv)
	if err != nil {
		return SecretsManager{}, err
	}
	var endpoint *string
	for _, name := range []string{"AWS_ENDPOINT_URL_SECRETS_MANAGER", "AWS_ENDPOINT_URL"} {
		if v := strings.TrimSpace(getenv(name)); v != "" {
			endpoint = aws.String(v)
			break
		}
	}
	client := secretsmanager.New(secretsmanager.Options{
		Region:       region,
		Credentials:  aws.NewCredentialsCache(creds),
		BaseEndpoint: endpoint,
	})
	return SecretsManager{API: client}, nil
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
