package main

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/machinedash/sse/internal/awstest"
	"github.com/machinedash/sse/internal/lambdatest"
	"github.com/machinedash/sse/internal/redistest"
)

// TestSecretByARN runs the real bootstrap with ORIGIN_VERIFY_SECRET_ARN: it reads the secret
// from (a fake) Secrets Manager at init, signed with the execution role's credentials as
// Lambda hands them over (the environment, or the container credentials endpoint), and then
// admits only requests that carry that value. The fake checks the call's signature; no AWS SDK is
// involved in the function.
func TestSecretByARN(t *testing.T) {
	url := redistest.URL(t)
	bin := lambdatest.Build(t, ".")
	const arn = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:origin"
	const secret = "origin-secret-from-secrets-manager"
	// The fake answers only a call signed with one of these keys and its token (awstest.Verify).
	sm := awstest.NewSecretsManager(t, "eu-west-1", []awstest.Key{
		{ID: "AKIDENVIRONMENT", Secret: "s-env", SessionToken: "t-env"},
		{ID: "AKIDCONTAINER", Secret: "s-container", SessionToken: "t-container"},
	}, map[string]string{arn: secret})
	creds := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "container-token" {
			http.Error(w, "bad token", http.StatusForbidden)
			return
		}
		_ = json.NewEncoder(w).Encode(map[string]string{
			"AccessKeyId": "AKIDCONTAINER", "SecretAccessKey": "s-container", "Token": "t-container",
			"Expiration": time.Now().Add(time.Hour).UTC().Format(time.RFC3339),
		})
	}))
	defer creds.Close()

	for _, tc := range []struct {
		name, key string
		env       []string
	}{
		{"environment credentials", "AKIDENVIRONMENT", []string{
			"AWS_ACCESS_KEY_ID=AKIDENVIRONMENT", "AWS_SECRET_ACCESS_KEY=s-env", "AWS_SESSION_TOKEN=t-env"}},
		{"container credentials endpoint", "AKIDCONTAINER", []string{
			"AWS_CONTAINER_CREDENTIALS_FULL_URI=" + creds.URL + "/2021-04-23/credentials",
			"AWS_CONTAINER_AUTHORIZATION_TOKEN=container-token"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rt := lambdatest.Start(t)
			env := append([]string{"REDIS_URL=" + url, "ORIGIN_VERIFY_SECRET_ARN=" + arn, "AWS_ENDPOINT_URL_SECRETS_MANAGER=" + sm.URL}, tc.env...)
			lambdatest.Run(t, bin, rt, env...)
			for _, c := range []struct {
				header string
				status int
			}{{"", http.StatusForbidden}, {`"x-origin-verify": "` + secret + `",`, http.StatusOK}} {
				event := lambdatest.Event(t, "health-request.json", `"accept": "*/*",`, `"accept": "*/*",`+c.header)
				p, _, err := rt.Invoke(event, time.Now().Add(10*time.Second)).Response(lambdatest.Within(t, 10*time.Second))
				if err != nil {
					t.Fatal(err)
				}
				if p.StatusCode != c.status {
					t.Errorf("with header %q: status %d, want %d", c.header, p.StatusCode, c.status)
				}
			}
			if by := sm.SignedBy(); by != tc.key {
				t.Errorf("GetSecretValue signed by %q, want the key %s (refused: %s)", by, tc.key, sm.Refused())
			}
		})
	}
}
