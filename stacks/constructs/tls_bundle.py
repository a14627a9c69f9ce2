"""A self-signed TLS bundle for EMR in-transit encryption, generated at deploy time.

SELF-SIGNED, for the default deployment only: a Lambda-backed custom resource writes EMR's
PEM zip (privateKey.pem, certificateChain.pem, trustedCertificates.pem) and the CA's
certificate to a KMS-encrypted bucket. The private key never exists in the template, the
cloud assembly or the CDK asset bucket. Production deployments set
``analytics.tls.certificate_bundle_s3_uri`` to a bundle issued by their own CA instead.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from aws_cdk import CfnResource, CustomResource, Duration, RemovalPolicy, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from constructs import Construct

from stacks.constructs.dependencies_layer import DependenciesLayer
from stacks.lambda_deps import TLS_BUNDLE

CODE = Path(__file__).resolve().parents[1] / "assets" / "tls_bundle"


class SelfSignedTlsBundle(Construct):
    """Generate a CA and a server certificate for ``dns_names``; expose ``bundle_uri`` and ``ca_uri``."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        bucket: s3.IBucket,
        key: kms.IKey,
        prefix: str,
        dns_names: Sequence[str],
        validity_days: int = 365,
    ) -> None:
        super().__init__(scope, construct_id)
        bundle_key, ca_key = f"{prefix}emr-tls-bundle.zip", f"{prefix}emr-tls-ca.pem"
        log_group = logs.LogGroup(
            self,
            "Logs",
            retention=logs.RetentionDays.ONE_MONTH,
            encryption_key=key,
            removal_policy=RemovalPolicy.DESTROY,
        )
        role = iam.Role(
            self,
            "Role",
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
            description="Writes the self-signed EMR TLS bundle to the artifacts bucket",
            inline_policies={
                "Bundle": iam.PolicyDocument(
                    statements=[
                        iam.PolicyStatement(
                            sid="WriteLogs",
                            actions=["logs:CreateLogStream", "logs:PutLogEvents"],
                            resources=[log_group.log_group_arn],
                        ),
                        iam.PolicyStatement(
                            sid="WriteBundle",
                            actions=["s3:PutObject", "s3:DeleteObject"],
                            resources=[bucket.arn_for_objects(bundle_key), bucket.arn_for_objects(ca_key)],
                        ),
                        iam.PolicyStatement(
                            sid="EncryptBundle",
                            actions=["kms:GenerateDataKey", "kms:Encrypt"],
                            resources=[key.key_arn],
                        ),
                    ]
                )
            },
        )
        # cryptography (compiled code) in a layer built for the function's runtime and architecture.
        dependencies = DependenciesLayer(self, "Dependencies", dependencies=TLS_BUNDLE)
        function = lambda_.Function(
            self,
            "Function",
            description="Generates a SELF-SIGNED TLS bundle for EMR in-transit encryption (replace for production)",
            runtime=dependencies.runtime,
            architecture=dependencies.architecture,
            layers=[dependencies.layer],
            handler="handler.handler",
            code=lambda_.Code.from_asset(str(CODE), exclude=["__pycache__", "*.pyc", "__init__.py"]),
            timeout=Duration.minutes(1),
            memory_size=256,  # two RSA 2048 keys from OpenSSL take well under a second
            role=role,
            log_group=log_group,
            reserved_concurrent_executions=1,
        )
        # The function reaches its role through Fn::GetAtt already; CDK's extra DependsOn only trips cfn-lint W3005.
        cfn_function = function.node.default_child
        assert isinstance(cfn_function, CfnResource)
        cfn_function.add_deletion_override("DependsOn")
        resource = CustomResource(
            self,
            "Bundle",
            service_token=function.function_arn,
            resource_type="Custom::SelfSignedTlsBundle",
            properties={
                "Bucket": bucket.bucket_name,
                "BundleKey": bundle_key,
                "CaKey": ca_key,
                "KmsKeyId": key.key_arn,
                "DnsNames": list(dns_names),
                "Organization": Stack.of(self).stack_name,
                "ValidityDays": str(validity_days),
            },
        )
        self.bundle_uri = resource.get_att_string("BundleUri")
        self.ca_uri = resource.get_att_string("CaUri")
        self.bundle_object_arn = bucket.arn_for_objects(bundle_key)
        self.ca_object_arn = bucket.arn_for_objects(ca_key)
