"""The wide part of the rule table: declarative entries for the mutating calls operators make by hand.

``iac.rules`` holds the hand-written rules for the calls whose attribute-level meaning we patch
precisely (tags, security-group rules, instance/RDS/Lambda attributes ...). This module adds, as
data, the rest of what people do in the console or CLI across IAM, S3, EC2/VPC, RDS, Lambda, KMS,
ELB, Auto Scaling, CloudWatch, SNS/SQS and a few more services:

- ``LIFECYCLE``: a call that creates or deletes one Terraform resource (the Terraform type comes
  from the AWS provider's documentation; the identifier is what Terraform's import takes). A create
  of an unmanaged resource becomes a new block + ``terraform import``; a delete of a managed one
  removes its block.
- ``SETTERS``: a call that sets one argument of a resource to a value read from the request.
- ``REVIEW``: a call that changes configuration we can name but not write exactly (NACL entries,
  lifecycle rules, ACLs, event selectors ...): the record becomes a proposal for a person that
  names the resource and what changed, never a silent drop.
- ``NO_CONFIG_EFFECT``: mutating calls that change no configuration a Terraform project holds, each
  with the reason (data plane, runtime membership, credentials, agent reporting).

Why data and not code: each entry is one fact from the AWS API reference and the provider's
resource docs; keeping them as rows makes the coverage auditable (``bench iac`` prints it against
real CloudTrail corpora).
"""

from __future__ import annotations

from typing import Any

from iac.models import Intent, TraceRecord
from iac.rules import RULES, _intent, as_bool, as_int, get, items, policy_json, tag_keys, tag_pairs


def _unwrap(value: Any) -> Any:
    """EC2's newer APIs log ``{"XRequest": {...}}`` and scalars as ``{"tag": 1, "content": v}``."""
    if isinstance(value, dict) and len(value) == 1:
        only = next(iter(value))
        if str(only).endswith(("Request", "Response")) and isinstance(value[only], dict):
            return value[only]
    if isinstance(value, dict) and "content" in value and set(value) <= {"tag", "content"}:
        return value["content"]
    if isinstance(value, dict) and any(k in value for k in ("items", "item", "member")) and len(value) <= 2:
        inner = items(value)
        return _unwrap(inner[0]) if inner else None
    if isinstance(value, list):
        return _unwrap(value[0]) if value else None
    return value


def dig(record: TraceRecord, spec: str) -> Any:
    """``request:a.b`` / ``response:a.b`` -> the value, case-insensitive, first element of lists."""
    where, _, dotted = spec.partition(":")
    value: Any = _unwrap(record.request if where == "request" else record.response)
    for part in dotted.split("."):
        value = _unwrap(value)
        if isinstance(value, dict) and get(value, part) is None and part == "item":
            continue
        value = get(value, part)
        if value is None:
            return None
    return _unwrap(value)


def _first(record: TraceRecord, specs: tuple[str, ...]) -> Any:
    for s in specs:
        v = dig(record, s)
        if v not in (None, "", [], {}):
            return v
    return None


def _ident(value: Any) -> str:
    """ARNs name the resource at their end for the types below (``...:trail/name``, ``...:key/id``)."""
    text = str(value or "")
    if text.startswith("arn:") and "/" in text and not text.startswith(("arn:aws:iam::", "arn:aws:sns:",
                                                                        "arn:aws:elasticloadbalancing:")):
        return text.rsplit("/", 1)[-1]
    return text


# (service, event) -> (kind, terraform type, identifier specs, {argument: spec} for creates)
LIFECYCLE: dict[tuple[str, str], tuple[str, str, tuple[str, ...], dict[str, str]]] = {}


def _life(service: str, event: str, kind: str, rtype: str, ids: tuple[str, ...], attrs: dict[str, str] | None = None) -> None:
    LIFECYCLE[(service, event)] = (kind, rtype, ids, attrs or {})


# IAM
_life("iam", "CreateUser", "create", "aws_iam_user", ("request:userName",), {"name": "request:userName", "path": "request:path"})
_life("iam", "DeleteUser", "delete", "aws_iam_user", ("request:userName",))
_life("iam", "CreateGroup", "create", "aws_iam_group", ("request:groupName",), {"name": "request:groupName"})
_life("iam", "DeleteGroup", "delete", "aws_iam_group", ("request:groupName",))
_life("iam", "CreateAccessKey", "create", "aws_iam_access_key", ("response:accessKey.accessKeyId",),
      {"user": "request:userName"})
_life("iam", "DeleteAccessKey", "delete", "aws_iam_access_key", ("request:accessKeyId",))
_life("iam", "CreateLoginProfile", "create", "aws_iam_user_login_profile", ("request:userName",), {"user": "request:userName"})
_life("iam", "DeleteLoginProfile", "delete", "aws_iam_user_login_profile", ("request:userName",))
_life("iam", "CreatePolicy", "create", "aws_iam_policy", ("response:policy.arn", "request:policyName"),
      {"name": "request:policyName", "policy": "request:policyDocument", "description": "request:description"})
_life("iam", "DeletePolicy", "delete", "aws_iam_policy", ("request:policyArn",))
_life("iam", "CreateInstanceProfile", "create", "aws_iam_instance_profile", ("request:instanceProfileName",),
      {"name": "request:instanceProfileName"})
_life("iam", "DeleteInstanceProfile", "delete", "aws_iam_instance_profile", ("request:instanceProfileName",))
_life("iam", "CreateServiceLinkedRole", "create", "aws_iam_service_linked_role", ("response:role.arn",),
      {"aws_service_name": "request:aWSServiceName"})
_life("iam", "DeleteAccountPasswordPolicy", "delete", "aws_iam_account_password_policy", ("request:__account__",))
_life("iam", "CreateVirtualMFADevice", "create", "aws_iam_virtual_mfa_device", ("response:virtualMFADevice.serialNumber",),
      {"virtual_mfa_device_name": "request:virtualMFADeviceName"})
_life("iam", "DeleteVirtualMFADevice", "delete", "aws_iam_virtual_mfa_device", ("request:serialNumber",))
_life("iam", "CreateSAMLProvider", "create", "aws_iam_saml_provider", ("response:sAMLProviderArn",), {"name": "request:name"})
_life("iam", "DeleteSAMLProvider", "delete", "aws_iam_saml_provider", ("request:sAMLProviderArn",))
_life("iam", "CreateOpenIDConnectProvider", "create", "aws_iam_openid_connect_provider",
      ("response:openIDConnectProviderArn",), {"url": "request:url"})
_life("iam", "DeleteOpenIDConnectProvider", "delete", "aws_iam_openid_connect_provider", ("request:openIDConnectProviderArn",))
# EC2 / VPC
_life("ec2", "CreateVpc", "create", "aws_vpc", ("response:vpc.vpcId",), {"cidr_block": "request:cidrBlock"})
_life("ec2", "CreateDefaultVpc", "create", "aws_default_vpc", ("response:vpc.vpcId",))
_life("ec2", "DeleteVpc", "delete", "aws_vpc", ("request:vpcId",))
_life("ec2", "CreateSubnet", "create", "aws_subnet", ("response:subnet.subnetId",),
      {"vpc_id": "request:vpcId", "cidr_block": "request:cidrBlock", "availability_zone": "request:availabilityZone"})
_life("ec2", "DeleteSubnet", "delete", "aws_subnet", ("request:subnetId",))
_life("ec2", "CreateInternetGateway", "create", "aws_internet_gateway", ("response:internetGateway.internetGatewayId",))
_life("ec2", "DeleteInternetGateway", "delete", "aws_internet_gateway", ("request:internetGatewayId",))
_life("ec2", "CreateRouteTable", "create", "aws_route_table", ("response:routeTable.routeTableId",), {"vpc_id": "request:vpcId"})
_life("ec2", "DeleteRouteTable", "delete", "aws_route_table", ("request:routeTableId",))
_life("ec2", "AssociateRouteTable", "create", "aws_route_table_association", ("response:associationId",),
      {"subnet_id": "request:subnetId", "route_table_id": "request:routeTableId"})
_life("ec2", "DisassociateRouteTable", "delete", "aws_route_table_association", ("request:associationId",))
_life("ec2", "CreateNatGateway", "create", "aws_nat_gateway", ("response:natGateway.natGatewayId",),
      {"subnet_id": "request:subnetId", "allocation_id": "request:allocationId"})
_life("ec2", "DeleteNatGateway", "delete", "aws_nat_gateway", ("request:natGatewayId",))
_life("ec2", "AllocateAddress", "create", "aws_eip", ("response:allocationId",), {"domain": "request:domain"})
_life("ec2", "ReleaseAddress", "delete", "aws_eip", ("request:allocationId", "request:publicIp"))
_life("ec2", "CreateFlowLogs", "create", "aws_flow_log", ("response:flowLogIdSet.item", "response:flowLogIdSet"),
      {"traffic_type": "request:trafficType", "log_destination": "request:logDestination"})
_life("ec2", "DeleteFlowLogs", "delete", "aws_flow_log", ("request:flowLogId.item", "request:flowLogId", "request:flowLogIds"))
_life("ec2", "CreateVolume", "create", "aws_ebs_volume", ("response:volumeId",),
      {"availability_zone": "request:availabilityZone", "size": "request:size", "type": "request:volumeType"})
_life("ec2", "DeleteVolume", "delete", "aws_ebs_volume", ("request:volumeId",))
_life("ec2", "RegisterImage", "create", "aws_ami", ("response:imageId",), {"name": "request:name"})
_life("ec2", "DeregisterImage", "delete", "aws_ami", ("request:imageId",))
_life("ec2", "DeleteSnapshot", "delete", "aws_ebs_snapshot", ("request:snapshotId",))
_life("ec2", "CreateNetworkAcl", "create", "aws_network_acl", ("response:networkAcl.networkAclId",), {"vpc_id": "request:vpcId"})
_life("ec2", "DeleteNetworkAcl", "delete", "aws_network_acl", ("request:networkAclId",))
_life("ec2", "CreateKeyPair", "create", "aws_key_pair", ("request:keyName",), {"key_name": "request:keyName"})
_life("ec2", "ImportKeyPair", "create", "aws_key_pair", ("request:keyName",), {"key_name": "request:keyName"})
_life("ec2", "DeleteKeyPair", "delete", "aws_key_pair", ("request:keyName",))
_life("ec2", "CreateLaunchTemplate", "create", "aws_launch_template", ("response:launchTemplate.launchTemplateId",),
      {"name": "request:launchTemplateName"})
_life("ec2", "DeleteLaunchTemplate", "delete", "aws_launch_template", ("request:launchTemplateId", "request:launchTemplateName"))
_life("ec2", "CreateVpcEndpoint", "create", "aws_vpc_endpoint", ("response:vpcEndpoint.vpcEndpointId",),
      {"vpc_id": "request:vpcId", "service_name": "request:serviceName"})
_life("ec2", "DeleteVpcEndpoints", "delete", "aws_vpc_endpoint", ("request:vpcEndpointId.item", "request:vpcEndpointId"))
_life("ec2", "CreateVpcPeeringConnection", "create", "aws_vpc_peering_connection",
      ("response:vpcPeeringConnection.vpcPeeringConnectionId",), {"vpc_id": "request:vpcId", "peer_vpc_id": "request:peerVpcId"})
_life("ec2", "DeleteVpcPeeringConnection", "delete", "aws_vpc_peering_connection", ("request:vpcPeeringConnectionId",))
_life("ec2", "CreateTransitGateway", "create", "aws_ec2_transit_gateway", ("response:transitGateway.transitGatewayId",))
_life("ec2", "DeleteTransitGateway", "delete", "aws_ec2_transit_gateway", ("request:transitGatewayId",))
_life("ec2", "CreateCustomerGateway", "create", "aws_customer_gateway", ("response:customerGateway.customerGatewayId",))
_life("ec2", "DeleteCustomerGateway", "delete", "aws_customer_gateway", ("request:customerGatewayId",))
_life("ec2", "CreateVpnConnection", "create", "aws_vpn_connection", ("response:vpnConnection.vpnConnectionId",))
_life("ec2", "DeleteVpnConnection", "delete", "aws_vpn_connection", ("request:vpnConnectionId",))
# S3 settings that live in their own resource since provider v4 (bound to the bucket)
_life("s3", "DeleteBucketEncryption", "delete", "aws_s3_bucket_server_side_encryption_configuration", ("request:bucketName",))
_life("s3", "DeleteBucketPublicAccessBlock", "delete", "aws_s3_bucket_public_access_block", ("request:bucketName",))
_life("s3", "DeletePublicAccessBlock", "delete", "aws_s3_bucket_public_access_block", ("request:bucketName",))
_life("s3", "DeleteBucketLifecycle", "delete", "aws_s3_bucket_lifecycle_configuration", ("request:bucketName",))
_life("s3", "DeleteBucketCors", "delete", "aws_s3_bucket_cors_configuration", ("request:bucketName",))
_life("s3", "DeleteBucketWebsite", "delete", "aws_s3_bucket_website_configuration", ("request:bucketName",))
_life("s3", "DeleteBucketReplication", "delete", "aws_s3_bucket_replication_configuration", ("request:bucketName",))
_life("s3", "DeleteBucketOwnershipControls", "delete", "aws_s3_bucket_ownership_controls", ("request:bucketName",))
# RDS
_life("rds", "CreateDBInstance", "create", "aws_db_instance", ("request:dBInstanceIdentifier",),
      {"identifier": "request:dBInstanceIdentifier", "instance_class": "request:dBInstanceClass", "engine": "request:engine",
       "allocated_storage": "request:allocatedStorage"})
_life("rds", "CreateDBCluster", "create", "aws_rds_cluster", ("request:dBClusterIdentifier",),
      {"cluster_identifier": "request:dBClusterIdentifier", "engine": "request:engine", "engine_version": "request:engineVersion"})
_life("rds", "DeleteDBCluster", "delete", "aws_rds_cluster", ("request:dBClusterIdentifier",))
_life("rds", "CreateDBSubnetGroup", "create", "aws_db_subnet_group", ("request:dBSubnetGroupName",),
      {"name": "request:dBSubnetGroupName", "description": "request:dBSubnetGroupDescription"})
_life("rds", "DeleteDBSubnetGroup", "delete", "aws_db_subnet_group", ("request:dBSubnetGroupName",))
_life("rds", "CreateDBParameterGroup", "create", "aws_db_parameter_group", ("request:dBParameterGroupName",),
      {"name": "request:dBParameterGroupName", "family": "request:dBParameterGroupFamily"})
_life("rds", "DeleteDBParameterGroup", "delete", "aws_db_parameter_group", ("request:dBParameterGroupName",))
_life("rds", "CreateDBClusterParameterGroup", "create", "aws_rds_cluster_parameter_group",
      ("request:dBClusterParameterGroupName",), {"name": "request:dBClusterParameterGroupName",
                                                 "family": "request:dBParameterGroupFamily"})
_life("rds", "DeleteDBClusterParameterGroup", "delete", "aws_rds_cluster_parameter_group", ("request:dBClusterParameterGroupName",))
_life("rds", "DeleteDBSnapshot", "delete", "aws_db_snapshot", ("request:dBSnapshotIdentifier",))
_life("rds", "DeleteDBClusterSnapshot", "delete", "aws_db_cluster_snapshot", ("request:dBClusterSnapshotIdentifier",))
# Lambda
_life("lambda", "CreateFunction", "create", "aws_lambda_function", ("request:functionName",),
      {"function_name": "request:functionName", "runtime": "request:runtime", "handler": "request:handler",
       "role": "request:role", "memory_size": "request:memorySize", "timeout": "request:timeout"})
_life("lambda", "AddPermission", "create", "aws_lambda_permission", ("request:statementId",),
      {"statement_id": "request:statementId", "function_name": "request:functionName", "action": "request:action",
       "principal": "request:principal", "source_arn": "request:sourceArn"})
_life("lambda", "RemovePermission", "delete", "aws_lambda_permission", ("request:statementId",))
_life("lambda", "CreateEventSourceMapping", "create", "aws_lambda_event_source_mapping", ("response:uUID",),
      {"event_source_arn": "request:eventSourceArn", "function_name": "request:functionName"})
_life("lambda", "DeleteEventSourceMapping", "delete", "aws_lambda_event_source_mapping", ("request:uUID",))
_life("lambda", "CreateAlias", "create", "aws_lambda_alias", ("response:aliasArn",),
      {"name": "request:name", "function_name": "request:functionName", "function_version": "request:functionVersion"})
_life("lambda", "DeleteAlias", "delete", "aws_lambda_alias", ("request:name",))
_life("lambda", "CreateFunctionUrlConfig", "create", "aws_lambda_function_url", ("request:functionName",),
      {"function_name": "request:functionName", "authorization_type": "request:authType"})
_life("lambda", "DeleteFunctionUrlConfig", "delete", "aws_lambda_function_url", ("request:functionName",))
_life("lambda", "PublishLayerVersion", "create", "aws_lambda_layer_version", ("response:layerVersionArn",),
      {"layer_name": "request:layerName"})
_life("lambda", "DeleteLayerVersion", "delete", "aws_lambda_layer_version", ("request:layerName",))
# KMS
_life("kms", "CreateKey", "create", "aws_kms_key", ("response:keyMetadata.keyId",), {"description": "request:description"})
_life("kms", "ScheduleKeyDeletion", "delete", "aws_kms_key", ("request:keyId",))
_life("kms", "CreateAlias", "create", "aws_kms_alias", ("request:aliasName",), {"name": "request:aliasName",
                                                                                 "target_key_id": "request:targetKeyId"})
_life("kms", "DeleteAlias", "delete", "aws_kms_alias", ("request:aliasName",))
# ELB / ALB
_life("elasticloadbalancing", "CreateLoadBalancer", "create", "aws_lb", ("response:loadBalancers.loadBalancerArn",),
      {"name": "request:name", "load_balancer_type": "request:type", "internal": "request:scheme"})
_life("elasticloadbalancing", "DeleteLoadBalancer", "delete", "aws_lb", ("request:loadBalancerArn", "request:loadBalancerName"))
_life("elasticloadbalancing", "CreateTargetGroup", "create", "aws_lb_target_group", ("response:targetGroups.targetGroupArn",),
      {"name": "request:name", "port": "request:port", "protocol": "request:protocol", "vpc_id": "request:vpcId"})
_life("elasticloadbalancing", "DeleteTargetGroup", "delete", "aws_lb_target_group", ("request:targetGroupArn",))
_life("elasticloadbalancing", "CreateListener", "create", "aws_lb_listener", ("response:listeners.listenerArn",),
      {"load_balancer_arn": "request:loadBalancerArn", "port": "request:port", "protocol": "request:protocol"})
_life("elasticloadbalancing", "CreateRule", "create", "aws_lb_listener_rule", ("response:rules.ruleArn",),
      {"listener_arn": "request:listenerArn", "priority": "request:priority"})
_life("elasticloadbalancing", "DeleteRule", "delete", "aws_lb_listener_rule", ("request:ruleArn",))
# Auto Scaling
_life("autoscaling", "CreateAutoScalingGroup", "create", "aws_autoscaling_group", ("request:autoScalingGroupName",),
      {"name": "request:autoScalingGroupName", "min_size": "request:minSize", "max_size": "request:maxSize"})
_life("autoscaling", "DeleteAutoScalingGroup", "delete", "aws_autoscaling_group", ("request:autoScalingGroupName",))
_life("autoscaling", "CreateLaunchConfiguration", "create", "aws_launch_configuration", ("request:launchConfigurationName",),
      {"name": "request:launchConfigurationName", "image_id": "request:imageId", "instance_type": "request:instanceType"})
_life("autoscaling", "DeleteLaunchConfiguration", "delete", "aws_launch_configuration", ("request:launchConfigurationName",))
_life("autoscaling", "PutScalingPolicy", "create", "aws_autoscaling_policy", ("request:policyName",),
      {"name": "request:policyName", "autoscaling_group_name": "request:autoScalingGroupName",
       "policy_type": "request:policyType"})
_life("autoscaling", "DeletePolicy", "delete", "aws_autoscaling_policy", ("request:policyName",))
_life("autoscaling", "PutScheduledUpdateGroupAction", "create", "aws_autoscaling_schedule", ("request:scheduledActionName",),
      {"scheduled_action_name": "request:scheduledActionName", "autoscaling_group_name": "request:autoScalingGroupName"})
_life("autoscaling", "DeleteScheduledAction", "delete", "aws_autoscaling_schedule", ("request:scheduledActionName",))
_life("autoscaling", "PutLifecycleHook", "create", "aws_autoscaling_lifecycle_hook", ("request:lifecycleHookName",),
      {"name": "request:lifecycleHookName", "autoscaling_group_name": "request:autoScalingGroupName",
       "lifecycle_transition": "request:lifecycleTransition"})
_life("autoscaling", "DeleteLifecycleHook", "delete", "aws_autoscaling_lifecycle_hook", ("request:lifecycleHookName",))
# CloudWatch (alarms and dashboards), logs
_life("monitoring", "DeleteAlarms", "delete", "aws_cloudwatch_metric_alarm", ("request:alarmNames",))
_life("monitoring", "PutDashboard", "create", "aws_cloudwatch_dashboard", ("request:dashboardName",),
      {"dashboard_name": "request:dashboardName", "dashboard_body": "request:dashboardBody"})
_life("monitoring", "DeleteDashboards", "delete", "aws_cloudwatch_dashboard", ("request:dashboardNames",))
_life("logs", "CreateLogGroup", "create", "aws_cloudwatch_log_group", ("request:logGroupName",), {"name": "request:logGroupName"})
_life("logs", "PutSubscriptionFilter", "create", "aws_cloudwatch_log_subscription_filter", ("request:filterName",),
      {"name": "request:filterName", "log_group_name": "request:logGroupName", "destination_arn": "request:destinationArn",
       "filter_pattern": "request:filterPattern"})
_life("logs", "DeleteSubscriptionFilter", "delete", "aws_cloudwatch_log_subscription_filter", ("request:filterName",))
_life("logs", "PutMetricFilter", "create", "aws_cloudwatch_log_metric_filter", ("request:filterName",),
      {"name": "request:filterName", "log_group_name": "request:logGroupName", "pattern": "request:filterPattern"})
_life("logs", "DeleteMetricFilter", "delete", "aws_cloudwatch_log_metric_filter", ("request:filterName",))
# SNS / SQS
_life("sns", "CreateTopic", "create", "aws_sns_topic", ("response:topicArn",), {"name": "request:name"})
_life("sns", "DeleteTopic", "delete", "aws_sns_topic", ("request:topicArn",))
_life("sns", "Subscribe", "create", "aws_sns_topic_subscription", ("response:subscriptionArn",),
      {"topic_arn": "request:topicArn", "protocol": "request:protocol", "endpoint": "request:endpoint"})
_life("sns", "Unsubscribe", "delete", "aws_sns_topic_subscription", ("request:subscriptionArn",))
_life("sqs", "CreateQueue", "create", "aws_sqs_queue", ("response:queueUrl", "request:queueName"), {"name": "request:queueName"})
_life("sqs", "DeleteQueue", "delete", "aws_sqs_queue", ("request:queueUrl",))
# other services seen in real trails
_life("cloudtrail", "CreateTrail", "create", "aws_cloudtrail", ("request:name",),
      {"name": "request:name", "s3_bucket_name": "request:s3BucketName"})
_life("cloudtrail", "DeleteTrail", "delete", "aws_cloudtrail", ("request:name",))
_life("dynamodb", "CreateTable", "create", "aws_dynamodb_table", ("request:tableName",), {"name": "request:tableName"})
_life("dynamodb", "DeleteTable", "delete", "aws_dynamodb_table", ("request:tableName",))
_life("cloudfront", "CreateDistribution", "create", "aws_cloudfront_distribution", ("response:distribution.id",))
_life("cloudfront", "DeleteDistribution", "delete", "aws_cloudfront_distribution", ("request:id",))
_life("ecr", "CreateRepository", "create", "aws_ecr_repository", ("request:repositoryName",), {"name": "request:repositoryName"})
_life("ecr", "DeleteRepository", "delete", "aws_ecr_repository", ("request:repositoryName",))
_life("ecs", "CreateCluster", "create", "aws_ecs_cluster", ("request:clusterName",), {"name": "request:clusterName"})
_life("ecs", "DeleteCluster", "delete", "aws_ecs_cluster", ("request:cluster",))
_life("ecs", "CreateService", "create", "aws_ecs_service", ("request:serviceName",), {"name": "request:serviceName"})
_life("ecs", "DeleteService", "delete", "aws_ecs_service", ("request:service",))
_life("eks", "CreateCluster", "create", "aws_eks_cluster", ("request:name",), {"name": "request:name", "role_arn": "request:roleArn"})
_life("eks", "DeleteCluster", "delete", "aws_eks_cluster", ("request:name",))
_life("eks", "CreateNodegroup", "create", "aws_eks_node_group", ("request:nodegroupName",),
      {"node_group_name": "request:nodegroupName", "cluster_name": "request:name"})
_life("eks", "DeleteNodegroup", "delete", "aws_eks_node_group", ("request:nodegroupName",))
_life("elasticache", "CreateCacheCluster", "create", "aws_elasticache_cluster", ("request:cacheClusterId",),
      {"cluster_id": "request:cacheClusterId", "engine": "request:engine", "node_type": "request:cacheNodeType"})
_life("elasticache", "DeleteCacheCluster", "delete", "aws_elasticache_cluster", ("request:cacheClusterId",))
_life("elasticache", "CreateReplicationGroup", "create", "aws_elasticache_replication_group", ("request:replicationGroupId",),
      {"replication_group_id": "request:replicationGroupId", "description": "request:replicationGroupDescription"})
_life("elasticache", "DeleteReplicationGroup", "delete", "aws_elasticache_replication_group", ("request:replicationGroupId",))
_life("elasticmapreduce", "RunJobFlow", "create", "aws_emr_cluster", ("response:jobFlowId",), {"name": "request:name"})
_life("elasticmapreduce", "TerminateJobFlows", "delete", "aws_emr_cluster", ("request:jobFlowIds",))
_life("es", "CreateDomain", "create", "aws_opensearch_domain", ("request:domainName",), {"domain_name": "request:domainName"})
_life("es", "CreateElasticsearchDomain", "create", "aws_elasticsearch_domain", ("request:domainName",),
      {"domain_name": "request:domainName"})
_life("es", "DeleteDomain", "delete", "aws_opensearch_domain", ("request:domainName",))
_life("es", "DeleteElasticsearchDomain", "delete", "aws_elasticsearch_domain", ("request:domainName",))
_life("kafka", "CreateClusterV2", "create", "aws_msk_cluster", ("response:clusterArn",), {"cluster_name": "request:clusterName"})
_life("kafka", "CreateCluster", "create", "aws_msk_cluster", ("response:clusterArn",), {"cluster_name": "request:clusterName"})
_life("kafka", "DeleteCluster", "delete", "aws_msk_cluster", ("request:clusterArn",))
_life("redshift", "CreateCluster", "create", "aws_redshift_cluster", ("request:clusterIdentifier",),
      {"cluster_identifier": "request:clusterIdentifier", "node_type": "request:nodeType"})
_life("redshift", "DeleteCluster", "delete", "aws_redshift_cluster", ("request:clusterIdentifier",))
_life("rolesanywhere", "CreateProfile", "create", "aws_rolesanywhere_profile", ("response:profile.profileId",),
      {"name": "request:name"})
_life("rolesanywhere", "DeleteProfile", "delete", "aws_rolesanywhere_profile", ("request:profileId",))
_life("rolesanywhere", "CreateTrustAnchor", "create", "aws_rolesanywhere_trust_anchor", ("response:trustAnchor.trustAnchorId",),
      {"name": "request:name"})
_life("rolesanywhere", "DeleteTrustAnchor", "delete", "aws_rolesanywhere_trust_anchor", ("request:trustAnchorId",))
_life("route53resolver", "DeleteResolverQueryLogConfig", "delete", "aws_route53_resolver_query_log_config",
      ("request:resolverQueryLogConfigId",))
_life("secretsmanager", "CreateSecret", "create", "aws_secretsmanager_secret", ("response:aRN", "request:name"),
      {"name": "request:name"})
_life("secretsmanager", "DeleteSecret", "delete", "aws_secretsmanager_secret", ("request:secretId",))
_life("ssm", "PutParameter", "create", "aws_ssm_parameter", ("request:name",), {"name": "request:name", "type": "request:type"})
_life("ssm", "DeleteParameter", "delete", "aws_ssm_parameter", ("request:name",))
_life("ssm", "DeleteParameters", "delete", "aws_ssm_parameter", ("request:names",))
_life("guardduty", "CreateDetector", "create", "aws_guardduty_detector", ("response:detectorId",), {"enable": "request:enable"})
_life("guardduty", "DeleteDetector", "delete", "aws_guardduty_detector", ("request:detectorId",))
_life("config", "DeleteConfigurationRecorder", "delete", "aws_config_configuration_recorder", ("request:configurationRecorderName",))
_life("config", "DeleteDeliveryChannel", "delete", "aws_config_delivery_channel", ("request:deliveryChannelName",))
_life("config", "DeleteConfigRule", "delete", "aws_config_config_rule", ("request:configRuleName",))
_life("airflow", "CreateEnvironment", "create", "aws_mwaa_environment", ("request:name",), {"name": "request:name"})
_life("airflow", "DeleteEnvironment", "delete", "aws_mwaa_environment", ("request:name",))
_life("apigateway", "CreateRestApi", "create", "aws_api_gateway_rest_api", ("response:id",), {"name": "request:name"})
_life("apigateway", "DeleteRestApi", "delete", "aws_api_gateway_rest_api", ("request:restApiId",))
_life("route53", "CreateHostedZone", "create", "aws_route53_zone", ("response:hostedZone.id",), {"name": "request:name"})
_life("route53", "DeleteHostedZone", "delete", "aws_route53_zone", ("request:id",))


# (service, event) -> [(terraform type, identifier specs, argument, value spec, converter)]
SETTERS: dict[tuple[str, str], list[tuple[str, tuple[str, ...], str, Any, Any]]] = {
    ("cloudtrail", "StartLogging"): [("aws_cloudtrail", ("request:name",), "enable_logging", True, None)],
    ("cloudtrail", "StopLogging"): [("aws_cloudtrail", ("request:name",), "enable_logging", False, None)],
    ("kms", "EnableKey"): [("aws_kms_key", ("request:keyId",), "is_enabled", True, None)],
    ("kms", "DisableKey"): [("aws_kms_key", ("request:keyId",), "is_enabled", False, None)],
    ("kms", "EnableKeyRotation"): [("aws_kms_key", ("request:keyId",), "enable_key_rotation", True, None)],
    ("kms", "DisableKeyRotation"): [("aws_kms_key", ("request:keyId",), "enable_key_rotation", False, None)],
    ("kms", "PutKeyPolicy"): [("aws_kms_key", ("request:keyId",), "policy", "request:policy", policy_json)],
    ("kms", "UpdateKeyDescription"): [("aws_kms_key", ("request:keyId",), "description", "request:description", None)],
    ("kms", "UpdateAlias"): [("aws_kms_alias", ("request:aliasName",), "target_key_id", "request:targetKeyId", None)],
    ("iam", "UpdateAccessKey"): [("aws_iam_access_key", ("request:accessKeyId",), "status", "request:status", None)],
    ("iam", "AddRoleToInstanceProfile"): [("aws_iam_instance_profile", ("request:instanceProfileName",), "role",
                                           "request:roleName", None)],
    ("iam", "RemoveRoleFromInstanceProfile"): [("aws_iam_instance_profile", ("request:instanceProfileName",), "role",
                                                None, None)],
    ("iam", "UpdateUser"): [("aws_iam_user", ("request:userName",), "name", "request:newUserName", None)],
    ("ec2", "AttachInternetGateway"): [("aws_internet_gateway", ("request:internetGatewayId",), "vpc_id", "request:vpcId", None)],
    ("ec2", "DetachInternetGateway"): [("aws_internet_gateway", ("request:internetGatewayId",), "vpc_id", None, None)],
    ("ec2", "ModifyInstanceMetadataOptions"): [("aws_instance", ("request:instanceId",), "metadata_options.http_tokens",
                                                "request:httpTokens", None)],
    ("ec2", "EnableEbsEncryptionByDefault"): [("aws_ebs_encryption_by_default", ("request:__account__",), "enabled", True, None)],
    ("ec2", "DisableEbsEncryptionByDefault"): [("aws_ebs_encryption_by_default", ("request:__account__",), "enabled", False, None)],
    ("ec2", "EnableSerialConsoleAccess"): [("aws_ec2_serial_console_access", ("request:__account__",), "enabled", True, None)],
    ("ec2", "DisableSerialConsoleAccess"): [("aws_ec2_serial_console_access", ("request:__account__",), "enabled", False, None)],
    ("ec2", "ModifyLaunchTemplate"): [("aws_launch_template", ("request:launchTemplateId", "request:launchTemplateName"),
                                       "default_version", "request:SetDefaultVersion", as_int)],
    ("rds", "ModifyDBCluster"): [
        ("aws_rds_cluster", ("request:dBClusterIdentifier",), "backup_retention_period", "request:backupRetentionPeriod", as_int),
        ("aws_rds_cluster", ("request:dBClusterIdentifier",), "deletion_protection", "request:deletionProtection", as_bool),
        ("aws_rds_cluster", ("request:dBClusterIdentifier",), "engine_version", "request:engineVersion", None),
        ("aws_rds_cluster", ("request:dBClusterIdentifier",), "iam_database_authentication_enabled",
         "request:enableIAMDatabaseAuthentication", as_bool),
        ("aws_rds_cluster", ("request:dBClusterIdentifier",), "preferred_backup_window", "request:preferredBackupWindow", None)],
    ("monitoring", "EnableAlarmActions"): [("aws_cloudwatch_metric_alarm", ("request:alarmNames",), "actions_enabled", True, None)],
    ("monitoring", "DisableAlarmActions"): [("aws_cloudwatch_metric_alarm", ("request:alarmNames",), "actions_enabled", False,
                                             None)],
    ("guardduty", "UpdateDetector"): [
        ("aws_guardduty_detector", ("request:detectorId",), "enable", "request:enable", as_bool),
        ("aws_guardduty_detector", ("request:detectorId",), "finding_publishing_frequency",
         "request:findingPublishingFrequency", None)],
    ("config", "StopConfigurationRecorder"): [("aws_config_configuration_recorder_status",
                                               ("request:configurationRecorderName",), "is_enabled", False, None)],
    ("config", "StartConfigurationRecorder"): [("aws_config_configuration_recorder_status",
                                                ("request:configurationRecorderName",), "is_enabled", True, None)],
    ("ecs", "UpdateService"): [("aws_ecs_service", ("request:service",), "desired_count", "request:desiredCount", as_int)],
    ("logs", "AssociateKmsKey"): [("aws_cloudwatch_log_group", ("request:logGroupName",), "kms_key_id", "request:kmsKeyId", None)],
    ("logs", "DisassociateKmsKey"): [("aws_cloudwatch_log_group", ("request:logGroupName",), "kms_key_id", None, None)],
    ("elasticloadbalancing", "SetSecurityGroups"): [("aws_lb", ("request:loadBalancerArn",), "security_groups",
                                                     "request:securityGroups", None)],
    ("elasticloadbalancing", "SetSubnets"): [("aws_lb", ("request:loadBalancerArn",), "subnets", "request:subnets", None)],
}

# (service, event) -> (terraform type, identifier specs, what changed: shown to the person)
REVIEW: dict[tuple[str, str], tuple[str, tuple[str, ...], str]] = {
    ("ec2", "CreateNetworkAclEntry"): ("aws_network_acl", ("request:networkAclId",), "network ACL entry added"),
    ("ec2", "DeleteNetworkAclEntry"): ("aws_network_acl", ("request:networkAclId",), "network ACL entry removed"),
    ("ec2", "ReplaceNetworkAclEntry"): ("aws_network_acl", ("request:networkAclId",), "network ACL entry replaced"),
    ("ec2", "ReplaceNetworkAclAssociation"): ("aws_network_acl", ("response:newAssociationId",), "subnet moved to another NACL"),
    ("ec2", "CreateRoute"): ("aws_route_table", ("request:routeTableId",), "route added"),
    ("ec2", "DeleteRoute"): ("aws_route_table", ("request:routeTableId",), "route removed"),
    ("ec2", "ReplaceRoute"): ("aws_route_table", ("request:routeTableId",), "route target replaced"),
    ("ec2", "ModifySecurityGroupRules"): ("aws_security_group", ("request:groupId",), "rules modified in place by rule id"),
    ("ec2", "UpdateSecurityGroupRuleDescriptionsIngress"): ("aws_security_group", ("request:groupId",),
                                                            "ingress rule descriptions changed"),
    ("ec2", "UpdateSecurityGroupRuleDescriptionsEgress"): ("aws_security_group", ("request:groupId",),
                                                           "egress rule descriptions changed"),
    ("ec2", "ModifyImageAttribute"): ("aws_ami", ("request:imageId",), "launch permissions changed (AMI shared)"),
    ("ec2", "ModifySnapshotAttribute"): ("aws_ebs_snapshot", ("request:snapshotId",),
                                         "create-volume permissions changed (snapshot shared)"),
    ("ec2", "CreateLaunchTemplateVersion"): ("aws_launch_template", ("request:launchTemplateId", "request:launchTemplateName"),
                                             "new launch template version"),
    ("ec2", "AssociateAddress"): ("aws_eip", ("request:allocationId", "request:publicIp"), "EIP associated"),
    ("ec2", "DisassociateAddress"): ("aws_eip", ("request:associationId", "request:publicIp"), "EIP disassociated"),
    ("ec2", "ModifyVpcEndpoint"): ("aws_vpc_endpoint", ("request:vpcEndpointId",), "VPC endpoint modified"),
    ("ec2", "AcceptVpcPeeringConnection"): ("aws_vpc_peering_connection", ("request:vpcPeeringConnectionId",),
                                            "peering accepted"),
    ("ec2", "ReplaceIamInstanceProfileAssociation"): ("aws_instance", ("request:associationId",), "instance profile replaced"),
    ("ec2", "AssociateIamInstanceProfile"): ("aws_instance", ("request:instanceId",), "instance profile associated"),
    ("ec2", "DisassociateIamInstanceProfile"): ("aws_instance", ("request:associationId",), "instance profile removed"),
    ("s3", "PutBucketLifecycle"): ("aws_s3_bucket_lifecycle_configuration", ("request:bucketName",), "lifecycle rules set"),
    ("s3", "PutBucketLifecycleConfiguration"): ("aws_s3_bucket_lifecycle_configuration", ("request:bucketName",),
                                                "lifecycle rules set"),
    ("s3", "PutBucketLogging"): ("aws_s3_bucket_logging", ("request:bucketName",), "access logging changed"),
    ("s3", "PutBucketAcl"): ("aws_s3_bucket_acl", ("request:bucketName",), "bucket ACL changed"),
    ("s3", "PutBucketCors"): ("aws_s3_bucket_cors_configuration", ("request:bucketName",), "CORS rules set"),
    ("s3", "PutBucketWebsite"): ("aws_s3_bucket_website_configuration", ("request:bucketName",), "website configuration set"),
    ("s3", "PutBucketReplication"): ("aws_s3_bucket_replication_configuration", ("request:bucketName",),
                                     "replication rules set"),
    ("s3", "PutBucketOwnershipControls"): ("aws_s3_bucket_ownership_controls", ("request:bucketName",),
                                           "object ownership changed"),
    ("s3", "PutBucketNotification"): ("aws_s3_bucket_notification", ("request:bucketName",), "event notifications set"),
    ("s3", "PutBucketNotificationConfiguration"): ("aws_s3_bucket_notification", ("request:bucketName",),
                                                   "event notifications set"),
    ("s3", "PutBucketObjectLockConfiguration"): ("aws_s3_bucket_object_lock_configuration", ("request:bucketName",),
                                                 "object lock changed"),
    ("s3", "PutAccelerateConfiguration"): ("aws_s3_bucket_accelerate_configuration", ("request:bucketName",),
                                           "transfer acceleration changed"),
    ("s3", "PutBucketRequestPayment"): ("aws_s3_bucket_request_payment_configuration", ("request:bucketName",),
                                        "request payer changed"),
    ("iam", "PutUserPolicy"): ("aws_iam_user", ("request:userName",), "inline user policy written"),
    ("iam", "DeleteUserPolicy"): ("aws_iam_user", ("request:userName",), "inline user policy removed"),
    ("iam", "PutGroupPolicy"): ("aws_iam_group", ("request:groupName",), "inline group policy written"),
    ("iam", "DeleteGroupPolicy"): ("aws_iam_group", ("request:groupName",), "inline group policy removed"),
    ("iam", "DeleteRolePolicy"): ("aws_iam_role", ("request:roleName",), "inline role policy removed"),
    ("iam", "AttachUserPolicy"): ("aws_iam_user", ("request:userName",), "managed policy attached to the user"),
    ("iam", "DetachUserPolicy"): ("aws_iam_user", ("request:userName",), "managed policy detached from the user"),
    ("iam", "AttachGroupPolicy"): ("aws_iam_group", ("request:groupName",), "managed policy attached to the group"),
    ("iam", "DetachGroupPolicy"): ("aws_iam_group", ("request:groupName",), "managed policy detached from the group"),
    ("iam", "AddUserToGroup"): ("aws_iam_group", ("request:groupName",), "user added to the group"),
    ("iam", "RemoveUserFromGroup"): ("aws_iam_group", ("request:groupName",), "user removed from the group"),
    ("iam", "SetDefaultPolicyVersion"): ("aws_iam_policy", ("request:policyArn",), "default policy version switched"),
    ("iam", "PutUserPermissionsBoundary"): ("aws_iam_user", ("request:userName",), "permissions boundary set"),
    ("iam", "PutRolePermissionsBoundary"): ("aws_iam_role", ("request:roleName",), "permissions boundary set"),
    ("iam", "UpdateAccountPasswordPolicy"): ("aws_iam_account_password_policy", ("request:__account__",),
                                             "account password policy changed"),
    ("rds", "ModifyDBParameterGroup"): ("aws_db_parameter_group", ("request:dBParameterGroupName",), "parameters changed"),
    ("rds", "ResetDBParameterGroup"): ("aws_db_parameter_group", ("request:dBParameterGroupName",), "parameters reset"),
    ("rds", "ModifyDBClusterParameterGroup"): ("aws_rds_cluster_parameter_group", ("request:dBClusterParameterGroupName",),
                                               "parameters changed"),
    ("rds", "ModifyDBSubnetGroup"): ("aws_db_subnet_group", ("request:dBSubnetGroupName",), "subnets changed"),
    ("rds", "ModifyDBSnapshotAttribute"): ("aws_db_snapshot", ("request:dBSnapshotIdentifier",),
                                           "snapshot restore permissions changed (snapshot shared)"),
    ("rds", "ModifyDBClusterSnapshotAttribute"): ("aws_db_cluster_snapshot", ("request:dBClusterSnapshotIdentifier",),
                                                  "snapshot restore permissions changed (snapshot shared)"),
    ("lambda", "UpdateFunctionCode"): ("aws_lambda_function", ("request:functionName",),
                                       "code deployed out of band (the configured package no longer matches)"),
    ("lambda", "UpdateEventSourceMapping"): ("aws_lambda_event_source_mapping", ("request:uUID",), "mapping changed"),
    ("lambda", "UpdateAlias"): ("aws_lambda_alias", ("request:name",), "alias moved"),
    ("lambda", "PutFunctionEventInvokeConfig"): ("aws_lambda_function_event_invoke_config", ("request:functionName",),
                                                 "async invoke config set"),
    ("lambda", "UpdateFunctionUrlConfig"): ("aws_lambda_function_url", ("request:functionName",), "function URL changed"),
    ("kms", "CancelKeyDeletion"): ("aws_kms_key", ("request:keyId",), "scheduled deletion cancelled (key disabled)"),
    ("cloudtrail", "UpdateTrail"): ("aws_cloudtrail", ("request:name",), "trail settings changed"),
    ("cloudtrail", "PutEventSelectors"): ("aws_cloudtrail", ("request:trailName",), "event selectors changed"),
    ("cloudtrail", "PutInsightSelectors"): ("aws_cloudtrail", ("request:trailName",), "insight selectors changed"),
    ("elasticloadbalancing", "ModifyLoadBalancerAttributes"): ("aws_lb", ("request:loadBalancerArn",), "attributes changed"),
    ("elasticloadbalancing", "ModifyTargetGroup"): ("aws_lb_target_group", ("request:targetGroupArn",), "health check changed"),
    ("elasticloadbalancing", "ModifyTargetGroupAttributes"): ("aws_lb_target_group", ("request:targetGroupArn",),
                                                              "attributes changed"),
    ("elasticloadbalancing", "ModifyRule"): ("aws_lb_listener_rule", ("request:ruleArn",), "rule changed"),
    ("autoscaling", "SuspendProcesses"): ("aws_autoscaling_group", ("request:autoScalingGroupName",), "processes suspended"),
    ("autoscaling", "ResumeProcesses"): ("aws_autoscaling_group", ("request:autoScalingGroupName",), "processes resumed"),
    ("autoscaling", "AttachLoadBalancerTargetGroups"): ("aws_autoscaling_group", ("request:autoScalingGroupName",),
                                                        "target groups attached"),
    ("autoscaling", "DetachLoadBalancerTargetGroups"): ("aws_autoscaling_group", ("request:autoScalingGroupName",),
                                                        "target groups detached"),
    ("autoscaling", "CreateOrUpdateTags"): ("aws_autoscaling_group", ("request:tags.resourceId",), "tags changed"),
    ("autoscaling", "DeleteTags"): ("aws_autoscaling_group", ("request:tags.resourceId",), "tags removed"),
    ("autoscaling", "PutNotificationConfiguration"): ("aws_autoscaling_group", ("request:autoScalingGroupName",),
                                                      "notifications set"),
    ("monitoring", "PutMetricAlarm"): ("aws_cloudwatch_metric_alarm", ("request:alarmName",), "alarm definition written"),
    ("sqs", "SetQueueAttributes"): ("aws_sqs_queue", ("request:queueUrl",), "queue attributes changed"),
    ("sqs", "AddPermission"): ("aws_sqs_queue_policy", ("request:queueUrl",), "queue permission added"),
    ("sqs", "RemovePermission"): ("aws_sqs_queue_policy", ("request:queueUrl",), "queue permission removed"),
    ("sns", "AddPermission"): ("aws_sns_topic_policy", ("request:topicArn",), "topic permission added"),
    ("sns", "RemovePermission"): ("aws_sns_topic_policy", ("request:topicArn",), "topic permission removed"),
    ("ecs", "RegisterTaskDefinition"): ("aws_ecs_task_definition", ("request:family",), "new task definition revision"),
    ("ecs", "UpdateCluster"): ("aws_ecs_cluster", ("request:cluster",), "cluster settings changed"),
    ("eks", "UpdateClusterConfig"): ("aws_eks_cluster", ("request:name",), "cluster config changed"),
    ("eks", "UpdateNodegroupConfig"): ("aws_eks_node_group", ("request:nodegroupName",), "node group config changed"),
    ("elasticache", "ModifyCacheCluster"): ("aws_elasticache_cluster", ("request:cacheClusterId",), "cluster modified"),
    ("elasticache", "ModifyReplicationGroup"): ("aws_elasticache_replication_group", ("request:replicationGroupId",),
                                                "replication group modified"),
    ("es", "UpdateDomainConfig"): ("aws_opensearch_domain", ("request:domainName",), "domain config changed"),
    ("es", "UpdateElasticsearchDomainConfig"): ("aws_elasticsearch_domain", ("request:domainName",), "domain config changed"),
    ("route53", "ChangeResourceRecordSets"): ("aws_route53_zone", ("request:hostedZoneId",), "records changed"),
    ("secretsmanager", "UpdateSecret"): ("aws_secretsmanager_secret", ("request:secretId",), "secret settings changed"),
    ("secretsmanager", "PutResourcePolicy"): ("aws_secretsmanager_secret_policy", ("request:secretId",), "secret policy set"),
    ("secretsmanager", "DeleteResourcePolicy"): ("aws_secretsmanager_secret_policy", ("request:secretId",),
                                                 "secret policy removed"),
    ("secretsmanager", "RotateSecret"): ("aws_secretsmanager_secret_rotation", ("request:secretId",), "rotation set"),
    ("ssm", "LabelParameterVersion"): ("aws_ssm_parameter", ("request:name",), "parameter version labelled"),
    ("config", "PutConfigurationRecorder"): ("aws_config_configuration_recorder", ("request:configurationRecorder.name",),
                                             "recorder changed"),
    ("config", "PutConfigRule"): ("aws_config_config_rule", ("request:configRule.configRuleName",), "rule written"),
    ("config", "PutDeliveryChannel"): ("aws_config_delivery_channel", ("request:deliveryChannel.name",),
                                       "delivery channel changed"),
    ("guardduty", "CreateIPSet"): ("aws_guardduty_ipset", ("request:name",), "trusted IP list created"),
    ("guardduty", "UpdateIPSet"): ("aws_guardduty_ipset", ("request:ipSetId",), "trusted IP list changed"),
    ("guardduty", "DeleteIPSet"): ("aws_guardduty_ipset", ("request:ipSetId",), "trusted IP list removed"),
    ("guardduty", "CreateFilter"): ("aws_guardduty_filter", ("request:name",), "findings filter created"),
    ("guardduty", "UpdateFilter"): ("aws_guardduty_filter", ("request:filterName",), "findings filter changed"),
    ("guardduty", "DeleteFilter"): ("aws_guardduty_filter", ("request:filterName",), "findings filter removed"),
    ("guardduty", "DeleteThreatIntelSet"): ("aws_guardduty_threatintelset", ("request:threatIntelSetId",),
                                            "threat list removed"),
    ("guardduty", "DisassociateFromMasterAccount"): ("aws_guardduty_member", ("request:detectorId",),
                                                     "member left the administrator account"),
    ("guardduty", "DeleteMembers"): ("aws_guardduty_member", ("request:detectorId",), "members removed"),
    ("guardduty", "StopMonitoringMembers"): ("aws_guardduty_member", ("request:detectorId",), "member monitoring stopped"),
    ("organizations", "LeaveOrganization"): ("aws_organizations_account", ("request:__account__",),
                                             "account left its organization"),
}

# Mutating calls with no configuration effect, and why (keyed by event name: the reason holds for any service
# that has the call).
NO_CONFIG_EFFECT: dict[str, str] = {
    "PutSecretValue": "secret value rotated: data, CloudTrail never carries the value",
    "StartSecretVersionDelete": "internal version cleanup done by Secrets Manager",
    "EndSecretVersionDelete": "internal version cleanup done by Secrets Manager",
    "PutInventory": "SSM agent reporting the instance's inventory",
    "PutComplianceItems": "SSM agent reporting compliance data",
    "UpdateInstanceInformation": "SSM agent heartbeat",
    "UpdateInstanceAssociationStatus": "SSM agent reporting an association run",
    "TerminateSession": "interactive session ended",
    "ResumeSession": "interactive session resumed",
    "CheckMfa": "sign-in step",
    "SharedSnapshotVolumeCreated": "service event: a volume was made from a shared snapshot in another account",
    "SharedSnapshotCopyInitiated": "service event: a shared snapshot was copied by another account",
    "DetachNetworkInterface": "ENI attachments are made and removed by services at runtime",
    "DetachVolume": "volume attachment changed at runtime (aws_volume_attachment is rarely how it was made)",
    "AttachVolume": "volume attachment changed at runtime (aws_volume_attachment is rarely how it was made)",
    "UpdateLoginProfile": "password change: a credential, Terraform keeps only the initial generated password",
    "ChangePassword": "password change: a credential",
    "DeletePolicyVersion": "a non-default policy version removed: the effective policy is unchanged",
    "EnableMFADevice": "MFA device bound to a user: a credential",
    "DeactivateMFADevice": "MFA device unbound from a user: a credential",
    "ResyncMFADevice": "MFA device resynchronised: a credential",
    "PublishVersion": "an immutable snapshot of the current function; the function's configuration is unchanged",
    "RegisterTargets": "target membership is runtime state (Auto Scaling / ECS / EKS register targets continuously)",
    "DeregisterTargets": "target membership is runtime state (Auto Scaling / ECS / EKS deregister targets continuously)",
    "RegisterInstancesWithLoadBalancer": "instance membership is runtime state (Auto Scaling registers instances)",
    "DeregisterInstancesFromLoadBalancer": "instance membership is runtime state (Auto Scaling deregisters instances)",
    "SetInstanceProtection": "per-instance scale-in protection: runtime state of one instance",
    "TerminateInstanceInAutoScalingGroup": "one instance replaced: the group's configuration is unchanged",
    "EnterStandby": "one instance moved to standby: runtime state",
    "ExitStandby": "one instance back in service: runtime state",
    "DetachInstances": "instances removed from a group: runtime membership",
    "AttachInstances": "instances added to a group: runtime membership",
    "ExecutePolicy": "a scaling policy run by hand: capacity, not configuration",
    "SetAlarmState": "alarm state set by hand (testing): state, not configuration",
    "PutMetricData": "metric data points",
    "CreateGrant": "KMS grants are made at runtime by AWS services (EBS, RDS, Lambda) for each use",
    "RetireGrant": "KMS grants are retired at runtime by the services that made them",
    "RevokeGrant": "KMS grant revoked: runtime authorisation created by a service",
    "Encrypt": "cryptographic operation (data plane)",
    "Decrypt": "cryptographic operation (data plane)",
    "ReEncrypt": "cryptographic operation (data plane)",
    "GenerateDataKey": "cryptographic operation (data plane)",
    "GenerateDataKeyWithoutPlaintext": "cryptographic operation (data plane)",
    "Sign": "cryptographic operation (data plane)",
    "SendMessage": "queue data", "DeleteMessage": "queue data", "PurgeQueue": "queue data",
    "ChangeMessageVisibility": "queue data", "ReceiveMessage": "queue data", "Publish": "topic data",
    "PutItem": "table data", "UpdateItem": "table data", "DeleteItem": "table data", "BatchWriteItem": "table data",
    "PutObjectAcl": "object-level ACL: object data, not bucket configuration",
    "PutObjectTagging": "object tags: object data", "DeleteObjects": "object data", "RestoreObject": "object data",
    "DeleteLogStream": "log data", "CreateExportTask": "log data export", "FilterLogEvents": "log data read",
    "StartQuery": "log query", "StopQuery": "log query",
    "StartDBCluster": "power state", "StopDBCluster": "power state", "RebootDBCluster": "power state",
    "FailoverDBCluster": "role switch between cluster members: runtime state",
    "CreateDBClusterSnapshot": "a backup: data", "CopyDBSnapshot": "a backup copy: data", "CopySnapshot": "a backup copy: data",
    "CopyImage": "an image copy: data", "CreateImage": "an image of an instance: data",
    "CreateStore": "backup vault data", "StartBackupJob": "a backup run",
    "StartTask": "a task run", "RunTask": "a task run", "StopTask": "a task run",
    "DeregisterTaskDefinition": "an old revision marked inactive: the service's configuration is unchanged",
    "StartBuild": "a build run", "StartExecution": "a workflow run", "StartPipelineExecution": "a pipeline run",
    "StartJobRun": "a job run", "StartQueryExecution": "a query run",
    "CreateFoundationModelAgreement": "model EULA accepted: an account entitlement, no Terraform resource",
    "PutFoundationModelEntitlement": "model entitlement: an account entitlement, no Terraform resource",
    "PutUseCaseForModelAccess": "model access request form: an account entitlement, no Terraform resource",
    "CreateCase": "support case", "AddCommunicationToCase": "support case",
    "StartImageScan": "an image scan run", "BatchDeleteImage": "image data", "PutImage": "image data",
    "CompleteLayerUpload": "image data", "InitiateLayerUpload": "image data", "UploadLayerPart": "image data",
    "CreateDBSnapshot": "a backup: data", "ModifyInstancePlacement": "placement of one instance: runtime state",
}


def _catalog_rule(record: TraceRecord) -> list[Intent]:
    key = (record.service, record.event_name)
    account = str(record.raw.get("recipientAccountId") or "")
    if key in LIFECYCLE:
        kind, rtype, ids, attrs = LIFECYCLE[key]
        ident = _first(record, ids) if ids != ("request:__account__",) else (account or "account")
        values: dict[str, Any] = {}
        for arg, spec in attrs.items():
            v = dig(record, spec)
            if v not in (None, ""):
                values[arg] = policy_json(v) if arg.endswith("policy") else v
        if key == ("elasticloadbalancing", "CreateLoadBalancer") and "internal" in values:
            values["internal"] = values["internal"] == "internal"
        if ident is None:
            return [_intent(record, "review", rtype, "", "", f"{record.event_name}: no identifier in the record")]
        return [_intent(record, kind, rtype, _ident(ident), "", values if kind == "create" else None)]
    if key in SETTERS:
        out = []
        for rtype, ids, arg, spec, conv in SETTERS[key]:
            ident = _first(record, ids) if ids != ("request:__account__",) else (account or "account")
            if isinstance(spec, str) and spec.startswith(("request:", "response:")):
                value = dig(record, spec)
                if value is None:
                    continue
                value = conv(value) if conv else value
            else:
                value = spec
            out.append(_intent(record, "set", rtype, _ident(ident), arg, value))
        return out
    if key in REVIEW:
        rtype, ids, what = REVIEW[key]
        ident = _first(record, ids) if ids != ("request:__account__",) else (account or "account")
        return [_intent(record, "review", rtype, _ident(ident), "", f"{what} ({record.event_name})")]
    return []  # NO_CONFIG_EFFECT


# IAM/SNS/SQS calls whose argument is named inside the request
SNS_ATTRS = {"Policy": "policy", "DisplayName": "display_name", "KmsMasterKeyId": "kms_master_key_id",
             "DeliveryPolicy": "delivery_policy"}


def _sns_attr(record: TraceRecord) -> list[Intent]:
    name = str(get(record.request, "attributeName") or "")
    value = get(record.request, "attributeValue")
    arn = str(get(record.request, "topicArn") or "")
    if name not in SNS_ATTRS:
        return [_intent(record, "review", "aws_sns_topic", arn, "", f"topic attribute {name} changed (SetTopicAttributes)")]
    return [_intent(record, "set", "aws_sns_topic", arn, SNS_ATTRS[name], policy_json(value) if "olicy" in name else value)]


def _user_tags(record: TraceRecord) -> list[Intent]:
    """TagUser/UntagUser, TagPolicy, TagInstanceProfile ...: the same shape for every IAM entity."""
    spec = {"User": ("aws_iam_user", "userName"), "Policy": ("aws_iam_policy", "policyArn"),
            "InstanceProfile": ("aws_iam_instance_profile", "instanceProfileName"),
            "OpenIDConnectProvider": ("aws_iam_openid_connect_provider", "openIDConnectProviderArn"),
            "SAMLProvider": ("aws_iam_saml_provider", "sAMLProviderArn")}
    entity = record.event_name.removeprefix("Untag").removeprefix("Tag")
    rtype, field_ = spec[entity]
    ident = str(get(record.request, field_) or "")
    if record.event_name.startswith("Tag"):
        return [_intent(record, "tag_set", rtype, ident, "tags", (k, v)) for k, v in tag_pairs(get(record.request, "tags"))]
    return [_intent(record, "tag_unset", rtype, ident, "tags", (k, None)) for k in tag_keys(get(record.request, "tagKeys"))]


def _generic_tags(rtype: str, id_field: str) -> Any:
    def fn(record: TraceRecord) -> list[Intent]:
        ident = _ident(get(record.request, id_field))
        if record.event_name.startswith(("Tag", "Add", "Create")):
            pairs = tag_pairs(get(record.request, "tags", "Tags"))
            return [_intent(record, "tag_set", rtype, ident, "tags", (k, v)) for k, v in pairs]
        keys = tag_keys(get(record.request, "tagKeys", "TagKeys", "tags"))
        return [_intent(record, "tag_unset", rtype, ident, "tags", (k, None)) for k in keys]
    return fn


def _register() -> None:
    for key in (*LIFECYCLE, *SETTERS, *REVIEW):
        RULES.setdefault(key, _catalog_rule)
    RULES[("sns", "SetTopicAttributes")] = _sns_attr
    for entity in ("User", "Policy", "InstanceProfile", "OpenIDConnectProvider", "SAMLProvider"):
        RULES.setdefault(("iam", f"Tag{entity}"), _user_tags)
        RULES.setdefault(("iam", f"Untag{entity}"), _user_tags)
    RULES.setdefault(("kms", "TagResource"), _generic_tags("aws_kms_key", "keyId"))
    RULES.setdefault(("kms", "UntagResource"), _generic_tags("aws_kms_key", "keyId"))
    RULES.setdefault(("sqs", "TagQueue"), _generic_tags("aws_sqs_queue", "queueUrl"))
    RULES.setdefault(("sqs", "UntagQueue"), _generic_tags("aws_sqs_queue", "queueUrl"))
    RULES.setdefault(("sns", "TagResource"), _generic_tags("aws_sns_topic", "resourceArn"))
    RULES.setdefault(("sns", "UntagResource"), _generic_tags("aws_sns_topic", "resourceArn"))
    RULES.setdefault(("monitoring", "TagResource"), _generic_tags("aws_cloudwatch_metric_alarm", "resourceARN"))
    RULES.setdefault(("monitoring", "UntagResource"), _generic_tags("aws_cloudwatch_metric_alarm", "resourceARN"))


_register()


def no_config_reason(event_name: str) -> str | None:
    """Why a mutating call changes no configuration, or None when it might."""
    return NO_CONFIG_EFFECT.get(event_name)


__all__ = ["LIFECYCLE", "NO_CONFIG_EFFECT", "REVIEW", "SETTERS", "as_int", "no_config_reason"]
