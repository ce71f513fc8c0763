package main

import (
	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awscertificatemanager"
	"github.com/aws/aws-cdk-go/awscdk/v2/awscloudfront"
	"github.com/aws/aws-cdk-go/awscdk/v2/awscloudfrontorigins"
	"github.com/aws/aws-cdk-go/awscdk/v2/awslambda"
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

// GetOnly reports whether every route of a function is GET-only: those
// functions sit behind origin access control (function URL auth AWS_IAM).
// The others (POST /sse/stream-ticket) keep auth NONE and the origin
// secret: with AWS_IAM a POST must carry the SHA-256 of its body, which a
// browser does not send.
func GetOnly(fn string) bool {
	found := false
	for _, r := range Routes() {
		if r.Function != fn {
			continue
		}
		found = true
		for _, m := range *r.Methods.Methods() {
			if *m != "GET" && *m != "HEAD" && *m != "OPTIONS" {
				return false
			}
		}
	}
	return found
}

// urlAuth is the auth type of a function's URL (see GetOnly).
func urlAuth(fn string) awslambda.FunctionUrlAuthType {
	if GetOnly(fn) {
		return awslambda.FunctionUrlAuthType_AWS_IAM
	}
	return awslambda.FunctionUrlAuthType_NONE
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
	origin := s.functionOrigins()
	dist := awscloudfront.NewDistribution(s.st, jsii.String("Distribution"), s.distributionProps(origin))
	s.suppressDistributionFindings(dist)
	// AddBehavior keeps the order; a Go map in DistributionProps would not.
	for _, r := range Routes() {
		dist.AddBehavior(jsii.String(r.Path), origin(r.Function), behavior(r.Methods))
	}
	return dist
}

// functionOrigins returns the origin of each function's URL, made once per
// function: signed (origin access control) for the GET-only functions,
// plain for the others, all carrying the origin secret.
func (s *stack) functionOrigins() func(fn string) awscloudfront.IOrigin {
	origins := map[string]awscloudfront.IOrigin{}
	return func(fn string) awscloudfront.IOrigin {
		if o, ok := origins[fn]; ok {
			return o
		}
		// Between two bytes from the origin; the stream sends a heartbeat
		// every HEARTBEAT_INTERVAL (Validate keeps it <= half).
		read := awscdk.Duration_Seconds(jsii.Number(OriginReadTimeout.Seconds()))
		connect := awscdk.Duration_Seconds(jsii.Number(5))
		headers := &map[string]*string{
			// Resolved by CloudFormation at deploy time (a dynamic
			// reference); the template never holds the value. Kept on the
			// signed origins too: the functions check it everywhere.
			OriginVerifyHeader: s.originVerifySecret.SecretValue().UnsafeUnwrap(),
		}
		var o awscloudfront.IOrigin
		if GetOnly(fn) {
			// Origin access control: CloudFront signs each request and the
			// URL (AWS_IAM) answers nothing else, so a flood sent straight
			// to the URL is refused by Lambda before any execution starts.
			o = awscloudfrontorigins.FunctionUrlOrigin_WithOriginAccessControl(s.functions[fn].url, &awscloudfrontorigins.FunctionUrlOriginWithOACProps{
				ReadTimeout: read, ConnectionTimeout: connect, ConnectionAttempts: jsii.Number(3), CustomHeaders: headers,
			})
		} else {
			o = awscloudfrontorigins.NewFunctionUrlOrigin(s.functions[fn].url, &awscloudfrontorigins.FunctionUrlOriginProps{
				ReadTimeout: read, ConnectionTimeout: connect, ConnectionAttempts: jsii.Number(3), CustomHeaders: headers,
			})
		}
		origins[fn] = o
		return o
	}
}

// behavior is every route's behaviour: nothing cached, nothing compressed,
// the viewer's request passed on whole but for Host.
func behavior(methods awscloudfront.AllowedMethods) *awscloudfront.AddBehaviorOptions {
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

// defaultBehavior serves every path that is not a route: the edge answers
// it with a 404 (notFoundCode); the health origin is only there because a
// behaviour needs one.
func (s *stack) defaultBehavior(origin func(fn string) awscloudfront.IOrigin) *awscloudfront.BehaviorOptions {
	notFound := awscloudfront.NewFunction(s.st, jsii.String("NotFound"), &awscloudfront.FunctionProps{
		Comment: jsii.String("404 for paths that are not SSE routes"),
		Runtime: awscloudfront.FunctionRuntime_JS_2_0(),
		Code:    awscloudfront.FunctionCode_FromInline(jsii.String(notFoundCode)),
	})
	def := behavior(awscloudfront.AllowedMethods_ALLOW_GET_HEAD())
	return &awscloudfront.BehaviorOptions{
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
}

// distributionProps are the distribution's settings: the default
// behaviour, uncached errors, HTTP/2 and 3, and the custom domain and web
// ACL when given.
func (s *stack) distributionProps(origin func(fn string) awscloudfront.IOrigin) *awscloudfront.DistributionProps {
	var errorResponses []*awscloudfront.ErrorResponse
	defaultBehavior := s.defaultBehavior(origin)
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
		// Legacy standard logs would record every ?ticket= in clear; the
		// edge stack's v2 logs leave it out (AwsSolutions-CFR3 below).
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
	return props
}

// suppressDistributionFindings records why the distribution's cdk-nag
// findings do not apply, each with its reason.
func (s *stack) suppressDistributionFindings(dist awscloudfront.Distribution) {
	suppress(dist, "AwsSolutions-CFR3", "Standard logging (legacy), the only kind a distribution's Logging "+
		"property turns on, writes every request's query string, which carries the stream ticket (a bearer "+
		"credential valid up to an hour), and cannot leave it out. Standard logging v2 can, but its delivery "+
		"source must live in us-east-1, outside this region-agnostic stack: the MachineSseEdge stack "+
		"(distributionId) sets it up with every field but the query string and cookies. The functions also log "+
		"every request with the query redacted.")
	suppress(dist, "AwsSolutions-CFR1", "A machine dashboard used wherever the operator's staff are: no country "+
		"to block; access needs an access token or a signed ticket.")
	if s.props.DomainName == "" {
		suppress(dist, "AwsSolutions-CFR4", "The default *.cloudfront.net certificate: CloudFront fixes its "+
			"security policy at TLSv1 and it cannot be changed. Browsers negotiate TLS 1.3 or 1.2 anyway; set "+
			"domainName and certificateArn to enforce TLSv1.2_2021 (the stack then does).")
	}
	if s.props.WebACLArn == "" {
		suppress(dist, "AwsSolutions-CFR2", "No web ACL unless webAclArn names one (a CLOUDFRONT-scope ACL must live "+
			"in us-east-1, outside this region-agnostic stack: waf=true creates one in the MachineSseWaf "+
			"stack). Without it the GET origins still answer only CloudFront-signed requests (origin access control), the POST origin only requests with the origin "+
			"secret, and the stream function's concurrency is reserved. An ACL with a per-IP rate-based rule and "+
			"the AWS managed common rule set costs about 7 USD a month plus 0.60 USD per million requests.")
	}
}

// baseURL is the public https URL of the service, without a trailing slash.
func (s *stack) baseURL(dist awscloudfront.Distribution) *string {
	if s.props.DomainName != "" {
		return jsii.String("https://" + s.props.DomainName)
	}
	return awscdk.Fn_Join(jsii.String(""), &[]*string{jsii.String("https://"), dist.DistributionDomainName()})
}
