package main

import (
	"fmt"
	"net"
	"net/url"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsec2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awselasticache"
	"github.com/aws/aws-cdk-go/awscdk/v2/awslogs"
	"github.com/aws/aws-cdk-go/awscdk/v2/awssecretsmanager"
	"github.com/aws/jsii-runtime-go"
)

// addNetwork creates a VPC over 2 AZs with isolated subnets only: no
// internet gateway, no NAT gateway. The functions reach Redis inside the VPC
// and Secrets Manager through an interface endpoint; nothing else.
func (s *stack) addNetwork() {
	vpc := awsec2.NewVpc(s.st, jsii.String("Vpc"), &awsec2.VpcProps{
		IpAddresses: awsec2.IpAddresses_Cidr(jsii.String("10.42.0.0/16")),
		MaxAzs:      jsii.Number(2),
		NatGateways: jsii.Number(0),
		SubnetConfiguration: &[]*awsec2.SubnetConfiguration{{
			Name:       jsii.String("isolated"),
			SubnetType: awsec2.SubnetType_PRIVATE_ISOLATED,
			CidrMask:   jsii.Number(24),
		}},
		// Restricting the default security group needs a custom resource
		// (a Lambda with an AWS managed policy); nothing uses that group.
		RestrictDefaultSecurityGroup: jsii.Bool(false),
	})
	// Flow logs of rejected traffic only: they show what the security groups
	// stop (a misconfigured client, a probe) at a fraction of ALL's volume.
	flowLogs := awslogs.NewLogGroup(s.st, jsii.String("VpcFlowLogs"), &awslogs.LogGroupProps{
		Retention:     logRetention[s.props.LogRetentionDays],
		RemovalPolicy: awscdk.RemovalPolicy_DESTROY,
	})
	vpc.AddFlowLog(jsii.String("RejectedTraffic"), &awsec2.FlowLogOptions{
		Destination: awsec2.FlowLogDestination_ToCloudWatchLogs(flowLogs, nil),
		TrafficType: awsec2.FlowLogTrafficType_REJECT,
	})

	s.vpcID = vpc.VpcId()
	s.subnets = &awsec2.SubnetSelection{SubnetType: awsec2.SubnetType_PRIVATE_ISOLATED}
	for _, sn := range *vpc.IsolatedSubnets() {
		s.subnetIDs = append(s.subnetIDs, sn.SubnetId())
		s.subnetList = append(s.subnetList, sn)
	}
	s.functionSG = awsec2.NewSecurityGroup(s.st, jsii.String("FunctionsSecurityGroup"), &awsec2.SecurityGroupProps{
		Vpc:              vpc,
		Description:      jsii.String("SSE functions: no inbound; outbound only to Redis and the Secrets Manager endpoint"),
		AllowAllOutbound: jsii.Bool(false),
	})
	s.addSecretsEndpoint(vpc)
	s.vpc = vpc
}

// addExistingNetwork imports the given VPC, subnets and security group by id
// (no lookups). The security group is used as is: it must already reach
// Redis and Secrets Manager.
func (s *stack) addExistingNetwork() {
	e := s.props.Existing
	var subnets []awsec2.ISubnet
	for i, id := range e.SubnetIDs {
		sn := awsec2.Subnet_FromSubnetId(s.st, jsii.String(fmt.Sprintf("Subnet%d", i)), jsii.String(id))
		awscdk.Annotations_Of(sn).AcknowledgeWarning(jsii.String("@aws-cdk/aws-ec2:noSubnetRouteTableId"),
			jsii.String("Only the subnet id is used (Lambda VPC config, endpoint); never its route table."))
		subnets = append(subnets, sn)
		s.subnetIDs = append(s.subnetIDs, jsii.String(id))
	}
	s.subnets = &awsec2.SubnetSelection{Subnets: &subnets}
	s.subnetList = subnets
	s.vpcID = jsii.String(e.VpcID)
	s.vpc = awsec2.Vpc_FromVpcAttributes(s.st, jsii.String("Vpc"), &awsec2.VpcAttributes{
		VpcId: jsii.String(e.VpcID),
		// Only the explicit subnets above are ever selected; the AZ list is
		// required by the import but not used.
		AvailabilityZones: awscdk.Fn_GetAzs(nil),
	})
	awscdk.Annotations_Of(s.vpc).AcknowledgeWarning(jsii.String("@aws-cdk/aws-ec2:vpcAttributeIsListTokenavailabilityZones"),
		jsii.String("Nothing selects subnets from this VPC by AZ; the functions get explicit subnets."))
	s.functionSG = awsec2.SecurityGroup_FromSecurityGroupId(s.st, jsii.String("FunctionsSecurityGroup"),
		jsii.String(e.SecurityGroupID), &awsec2.SecurityGroupImportOptions{Mutable: jsii.Bool(false)})
	if e.SecretsEndpoint {
		s.addSecretsEndpoint(s.vpc)
	}

	host, port, _ := net.SplitHostPort(e.RedisEndpoint) // validated
	scheme := "rediss"
	if e.RedisPlaintext {
		scheme = "redis"
	}
	// An RBAC user name goes in the URL (its password is the AUTH secret,
	// which overrides the URL's); the functions' REDIS_URL parser reads it.
	user := ""
	if e.RedisUsername != "" {
		user = url.User(e.RedisUsername).String() + "@"
	}
	s.redisURL = jsii.String(scheme + "://" + user + net.JoinHostPort(host, port))
	if e.RedisAuthSecretArn != "" {
		s.redisAuthSecret = awssecretsmanager.Secret_FromSecretCompleteArn(s.st, jsii.String("RedisAuthToken"),
			jsii.String(e.RedisAuthSecretArn))
	}
}

// addSecretsEndpoint adds the Secrets Manager interface endpoint the
// functions read their secrets through; only the functions may connect.
func (s *stack) addSecretsEndpoint(vpc awsec2.IVpc) {
	s.addEndpoint(vpc, "Secrets", "SecretsManagerEndpoint", "secretsmanager", "Secrets Manager")
	if s.props.managed() {
		// Managed instances ship the stream function's logs from inside the
		// VPC (a classic function's logs leave through Lambda itself).
		s.addEndpoint(vpc, "Logs", "CloudWatchLogsEndpoint", "logs", "CloudWatch Logs")
	}
}

// addEndpoint adds an interface endpoint of an AWS service (com.amazonaws.
// <region>.<service>) with private DNS, that only the functions' security
// group may reach, on HTTPS. sgID and id are the construct ids of its
// security group (<sgID>EndpointSecurityGroup) and of the endpoint.
func (s *stack) addEndpoint(vpc awsec2.IVpc, sgID, id, service, title string) {
	sg := awsec2.NewSecurityGroup(s.st, jsii.String(sgID+"EndpointSecurityGroup"), &awsec2.SecurityGroupProps{
		Vpc:              vpc,
		Description:      jsii.String(title + " endpoint: HTTPS from the SSE functions only"),
		AllowAllOutbound: jsii.Bool(false),
	})
	sg.AddIngressRule(s.functionSG, awsec2.Port_Tcp(jsii.Number(443)), jsii.String("HTTPS from the SSE functions"), nil)
	s.functionSG.AddEgressRule(sg, awsec2.Port_Tcp(jsii.Number(443)), jsii.String("HTTPS to the "+title+" endpoint"), nil)
	subnetIDs := make([]any, len(s.subnetIDs))
	for i, id := range s.subnetIDs {
		subnetIDs[i] = id
	}
	// L1 on purpose: the L2 endpoint needs each subnet's AZ, which imported
	// subnets do not have without a lookup.
	awsec2.NewCfnVPCEndpoint(s.st, jsii.String(id), &awsec2.CfnVPCEndpointProps{
		VpcId:             s.vpcID,
		ServiceName:       awscdk.Fn_Sub(jsii.String("com.amazonaws.${AWS::Region}."+service), nil),
		VpcEndpointType:   jsii.String("Interface"),
		PrivateDnsEnabled: jsii.Bool(true),
		SubnetIds:         &subnetIDs,
		SecurityGroupIds:  &[]any{sg.SecurityGroupId()},
	})
}

// addRedis creates a Valkey replication group (cluster mode disabled, as
// pub/sub wants) with TLS in transit, encryption at rest and an AUTH token
// from Secrets Manager. Only the functions (and the optional extra client
// groups) may connect.
func (s *stack) addRedis() {
	sg := awsec2.NewSecurityGroup(s.st, jsii.String("RedisSecurityGroup"), &awsec2.SecurityGroupProps{
		Vpc:              s.vpc,
		Description:      jsii.String("Redis: port 6379 from the SSE functions only"),
		AllowAllOutbound: jsii.Bool(false),
	})
	port := awsec2.Port_Tcp(jsii.Number(RedisPort))
	sg.AddIngressRule(s.functionSG, port, jsii.String("Redis from the SSE functions"), nil)
	s.functionSG.AddEgressRule(sg, port, jsii.String("Redis"), nil)
	for i, id := range s.props.RedisClientSecurityGroupIDs {
		sg.AddIngressRule(awsec2.Peer_SecurityGroupId(jsii.String(id), nil), port,
			jsii.String(fmt.Sprintf("Redis from extra client group %d", i)), nil)
	}
	s.redisSG = sg

	// AUTH token rules: 16-128 printable characters, restricted punctuation;
	// the generated value is alphanumeric only.
	auth := s.generatedSecret("RedisAuthToken", "AUTH token of the SSE Redis (ElastiCache)", 64,
		"ElastiCache has no managed rotation for AUTH tokens: a change is a ROTATE-then-SET modification of the "+
			"replication group, coordinated with every client (the functions read the token at init, the ingest "+
			"too). It is rotated by hand (README, Secrets).")
	s.redisAuthSecret = auth

	subnetIDs := make([]any, len(s.subnetIDs))
	for i, id := range s.subnetIDs {
		subnetIDs[i] = id
	}
	group := awselasticache.NewCfnSubnetGroup(s.st, jsii.String("RedisSubnetGroup"), &awselasticache.CfnSubnetGroupProps{
		Description: jsii.String("SSE Redis: the isolated subnets"),
		SubnetIds:   &subnetIDs,
	})
	multiAZ := !s.props.RedisSingleNode
	nodes := 2.0
	if !multiAZ {
		nodes = 1
	}
	rg := awselasticache.NewCfnReplicationGroup(s.st, jsii.String("Redis"), &awselasticache.CfnReplicationGroupProps{
		ReplicationGroupDescription: jsii.String("SSE pub/sub, tickets and connection leases"),
		Engine:                      jsii.String("valkey"),
		EngineVersion:               jsii.String("8.0"),
		CacheNodeType:               jsii.String(s.props.RedisNodeType),
		NumCacheClusters:            jsii.Number(nodes),
		AutomaticFailoverEnabled:    jsii.Bool(multiAZ),
		MultiAzEnabled:              jsii.Bool(multiAZ),
		Port:                        jsii.Number(RedisPort),
		CacheSubnetGroupName:        group.Ref(),
		SecurityGroupIds:            &[]*string{sg.SecurityGroupId()},
		TransitEncryptionEnabled:    jsii.Bool(true),
		TransitEncryptionMode:       jsii.String("required"),
		AtRestEncryptionEnabled:     jsii.Bool(true),
		AuthToken:                   auth.SecretValue().UnsafeUnwrap(),
		AutoMinorVersionUpgrade:     jsii.Bool(true),
		SnapshotRetentionLimit:      jsii.Number(1),
	})
	s.redisGroup = rg
	if !multiAZ {
		suppress(rg, "AwsSolutions-AEC4", "redisSingleNode was chosen for a demo: one node halves the Redis cost; "+
			"a node failure loses pub/sub and leases until ElastiCache replaces the node (browsers get soft "+
			"refusals and retry).")
	}
	s.redisURL = awscdk.Fn_Join(jsii.String(""), &[]*string{
		jsii.String("rediss://"), rg.AttrPrimaryEndPointAddress(), jsii.String(":"), rg.AttrPrimaryEndPointPort(),
	})
}
