package main

import (
	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awscertificatemanager"
	"github.com/aws/aws-cdk-go/awscdk/v2/awscloudfront"
	"github.com/aws/aws-cdk-go/awscdk/v2/awscloudfrontorigins"
	"github.com/aws/jsii-runtime-go"
)

// Route is one CloudFront path behaviour: which function serves it and which
// methods it accepts.
type Route struct {
	Path     string
	Function string
	Methods  awscloudfront.AllowedMethods
}

// Routes are the public paths of the seed, in CloudFront's order of
// evaluation (first match wins): /sse/stream-ticket must come before
// /sse/stream*, which would match it too.
func Routes() []Route {
	get := awscloudfront.AllowedMethods_ALLOW_GET_HEAD_OPTIONS()
	return []Route{
		// POST needs ALLOW_ALL: CloudFront has no narrower set with POST.
		{"/sse/stream-ticket", "ticket", awscloudfront.AllowedMethods_ALLOW_ALL()},
		{"/sse/close", "ticket", awscloudfront.AllowedMethods_ALLOW_ALL()},
		{"/sse/stream*", "stream", get},
		{"/sse/alerts*", "stream", get},
		{"/sse/status", "status", get},
		{"/sse/client.*", "status", get}, // the browser client (client.js, client.d.ts)
		{"/health", "health", get},
	}
}

// CloudFront can cache these error statuses on its own (the error caching
// minimum TTL, 10 s by default), and the cache key here is the path alone:
// one user's 403 must never reach another. The TTL is set to 0 for each.
var cloudFrontCachedErrors = []float64{400, 403, 404, 405, 414, 416, 500, 501, 502, 503, 504}

// notFoundCode answers every path that is not a route, at the edge: no
// function runs for scanners and typos.
const notFoundCode = `function handler(event) {
  return {
    statusCode: 404,
    statusDescription: 'Not Found',
    headers: { 'content-type': { value: 'application/json' }, 'cache-control': { value: 'no-store' } },
    body: { encoding: 'text', data: '{"statusCode":404,"message":"Cannot ' + event.request.method + ' ' + event.request.uri.replace(/[^A-Za-z0-9\/._-]/g, '') + '","error":"Not Found"}' }
  };
}`

// addDistribution creates the one public origin: CloudFront in front of the
// function URLs, caching disabled, HTTPS only.
func (s *stack) addDistribution() awscloudfront.Distribution {
	origins := map[string]awscloudfront.IOrigin{}
	origin := func(fn string) awscloudfront.IOrigin {
		if o, ok := origins[fn]; ok {
			return o
		}
		o := awscloudfrontorigins.NewFunctionUrlOrigin(s.functions[fn].url, &awscloudfrontorigins.FunctionUrlOriginProps{
			// Between two bytes from the origin; the stream sends a
			// heartbeat every HEARTBEAT_INTERVAL (Validate keeps it <= half).
			ReadTimeout:        awscdk.Duration_Seconds(jsii.Number(OriginReadTimeout.Seconds())),
			ConnectionTimeout:  awscdk.Duration_Seconds(jsii.Number(5)),
			ConnectionAttempts: jsii.Number(3),
			CustomHeaders: &map[string]*string{
				// Resolved by CloudFormation at deploy time (a dynamic
				// reference); the template never holds the value.
				OriginVerifyHeader: s.originVerifySecret.SecretValue().UnsafeUnwrap(),
			},
		})
		origins[fn] = o
		return o
	}
	behavior := func(methods awscloudfront.AllowedMethods) *awscloudfront.AddBehaviorOptions {
		return &awscloudfront.AddBehaviorOptions{
			// https-only rather than redirect: a redirect would already have
			// sent the ticket (query) or the access token (header) in clear.
			ViewerProtocolPolicy: awscloudfront.ViewerProtocolPolicy_HTTPS_ONLY,
			AllowedMethods:       methods,
			CachedMethods:        awscloudfront.CachedMethods_CACHE_GET_HEAD(),
			CachePolicy:          awscloudfront.CachePolicy_CACHING_DISABLED(),
			// Every viewer header (Last-Event-ID, Authorization, Origin,
			// Content-Type), every query string and the CloudFront headers
			// (CloudFront-Viewer-Address), but not Host: a function URL only
			// answers to its own host name.
			OriginRequestPolicy: awscloudfront.OriginRequestPolicy_ALL_VIEWER_EXCEPT_HOST_HEADER(),
			// Compression would buffer the event stream.
			Compress: jsii.Bool(false),
		}
	}

	notFound := awscloudfront.NewFunction(s.st, jsii.String("NotFound"), &awscloudfront.FunctionProps{
		Comment: jsii.String("404 for paths that are not SSE routes"),
		Runtime: awscloudfront.FunctionRuntime_JS_2_0(),
		Code:    awscloudfront.FunctionCode_FromInline(jsii.String(notFoundCode)),
	})
	def := behavior(awscloudfront.AllowedMethods_ALLOW_GET_HEAD())
	defaultBehavior := &awscloudfront.BehaviorOptions{
		Origin:               origin("health"),
		ViewerProtocolPolicy: def.ViewerProtocolPolicy,
		AllowedMethods:       def.AllowedMethods,
		CachedMethods:        def.CachedMethods,
		CachePolicy:          def.CachePolicy,
		OriginRequestPolicy:  def.OriginRequestPolicy,
		Compress:             def.Compress,
		FunctionAssociations: &[]*awscloudfront.FunctionAssociation{{
			EventType: awscloudfront.FunctionEventType_VIEWER_REQUEST,
			Function:  notFound,
		}},
	}

	var errorResponses []*awscloudfront.ErrorResponse
	for _, code := range cloudFrontCachedErrors {
		errorResponses = append(errorResponses, &awscloudfront.ErrorResponse{
			HttpStatus: jsii.Number(code),
			Ttl:        awscdk.Duration_Seconds(jsii.Number(0)),
		})
	}

	props := &awscloudfront.DistributionProps{
		Comment:         jsii.String("Machine dashboard SSE"),
		DefaultBehavior: defaultBehavior,
		ErrorResponses:  &errorResponses,
		// HTTP/2 lets a browser hold many event streams on one connection
		// (HTTP/1.1 allows 6 per host).
		HttpVersion: awscloudfront.HttpVersion_HTTP2_AND_3,
		EnableIpv6:  jsii.Bool(true),
		PriceClass:  awscloudfront.PriceClass_PRICE_CLASS_100,
		// Standard logs would record every ?ticket= in clear: see the
		// AwsSolutions-CFR3 suppression.
		EnableLogging: jsii.Bool(false),
	}
	if s.props.DomainName != "" {
		props.DomainNames = jsii.Strings(s.props.DomainName)
		props.Certificate = awscertificatemanager.Certificate_FromCertificateArn(s.st, jsii.String("Certificate"),
			jsii.String(s.props.CertificateArn))
		props.MinimumProtocolVersion = awscloudfront.SecurityPolicyProtocol_TLS_V1_2_2021
		props.SslSupportMethod = awscloudfront.SSLMethod_SNI
	}
	if s.props.WebACLArn != "" {
		props.WebAclId = jsii.String(s.props.WebACLArn)
	}
	dist := awscloudfront.NewDistribution(s.st, jsii.String("Distribution"), props)
	suppress(dist, "AwsSolutions-CFR3", "Standard logs would store every request's query string, which carries "+
		"the stream ticket (a bearer credential valid up to an hour); they cannot leave that field out. The "+
		"functions log each request with the query redacted.")
	suppress(dist, "AwsSolutions-CFR1", "A machine dashboard used wherever the operator's staff are: no country "+
		"to block; access needs an access token or a signed ticket.")
	if s.props.DomainName == "" {
		suppress(dist, "AwsSolutions-CFR4", "The default *.cloudfront.net certificate: CloudFront fixes its "+
			"security policy at TLSv1 and it cannot be changed. Browsers negotiate TLS 1.3 or 1.2 anyway; set "+
			"domainName and certificateArn to enforce TLSv1.2_2021 (the stack then does).")
	}
	if s.props.WebACLArn == "" {
		suppress(dist, "AwsSolutions-CFR2", "AWS WAF costs more per month than the rest of the demo; every route "+
			"needs an access token or a signed ticket and the stream function's concurrency is capped. Set "+
			"webAclArn to attach a web ACL.")
	}
	// AddBehavior keeps the order; a Go map in DistributionProps would not.
	for _, r := range Routes() {
		dist.AddBehavior(jsii.String(r.Path), origin(r.Function), behavior(r.Methods))
	}
	return dist
}

// baseURL is the public https URL of the service, without a trailing slash.
func (s *stack) baseURL(dist awscloudfront.Distribution) *string {
	if s.props.DomainName != "" {
		return jsii.String("https://" + s.props.DomainName)
	}
	return awscdk.Fn_Join(jsii.String(""), &[]*string{jsii.String("https://"), dist.DistributionDomainName()})
}
