package config

import (
	"context"
	"errors"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
)

// SecretsManagerAPI is the one Secrets Manager call Resolve needs;
// *secretsmanager.Client satisfies it, and tests pass a fake.
type SecretsManagerAPI interface {
	GetSecretValue(ctx context.Context, in *secretsmanager.GetSecretValueInput, opts ...func(*secretsmanager.Options)) (*secretsmanager.GetSecretValueOutput, error)
}

// SecretsManager adapts a Secrets Manager client to SecretGetter.
type SecretsManager struct{ API SecretsManagerAPI }

// ErrSecretNotString is returned for a binary secret: every secret here is text.
var ErrSecretNotString = errors.New("config: secret has no string value")

// GetSecret returns the secret's current string value.
func (s SecretsManager) GetSecret(ctx context.Context, arn string) (string, error) {
	out, err := s.API.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String(arn)})
	if err != nil {
		return "", err
	}
	if out.SecretString == nil {
		return "", ErrSecretNotString
	}
	return *out.SecretString, nil
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
