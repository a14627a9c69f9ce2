"""OpenLDAP on EC2: a private, SSM-managed host that serves LDAPS only.

The host boots Ubuntu (its archive has slapd; Amazon Linux 2023 does not), downloads
stacks/assets/ldap/ldap-bootstrap.sh from the CDK asset bucket and runs it. The script reads
every password from Secrets Manager itself: user data holds secret ARNs, never a value.
The stack waits for the host's completion signal before anything that needs the directory.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

from aws_cdk import Aws, CfnCreationPolicy, CfnResourceSignal, Duration, Stack
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_route53 as route53
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_s3_assets as s3_assets
from aws_cdk import aws_secretsmanager as secretsmanager
from constructs import Construct

from mlhpc.config.analytics import LdapConfig
from stacks.constructs.emr_configs import LDAPS_PORT
from stacks.constructs.nag import acknowledge

SCRIPT = Path(__file__).resolve().parents[1] / "assets" / "ldap" / "ldap-bootstrap.sh"
UBUNTU_AMI = "/aws/service/canonical/ubuntu/server/24.04/stable/current/amd64/hvm/ebs-gp3/ami-id"


class LdapServer(Construct):
    """One OpenLDAP host at ``hostname`` (an A record in ``zone``), LDAPS on 636 from allowed peers only."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        vpc: ec2.IVpc,
        subnet: ec2.ISubnet,
        config: LdapConfig,
        key: kms.IKey,
        zone: route53.IPrivateHostedZone,
        hostname: str,
        user_secrets: Mapping[str, secretsmanager.ISecret],
        ca_bucket: s3.IBucket,
        ca_object_key: str,
    ) -> None:
        super().__init__(scope, construct_id)
        self.hostname = hostname
        self.url = f"ldaps://{hostname}:{LDAPS_PORT}"
        self.ca_uri = f"s3://{ca_bucket.bucket_name}/{ca_object_key}"
        self._add_admin_secret(config, key)
        self._add_security_group(vpc)
        script = s3_assets.Asset(self, "Bootstrap", path=str(SCRIPT))
        role = self._add_role()
        self._add_instance(config, vpc=vpc, subnet=subnet, key=key, role=role)
        self._add_policy(
            role, secrets=[self.admin_secret, *user_secrets.values()], key=key, script=script,
            ca_object_arn=ca_bucket.arn_for_objects(ca_object_key),
        )  # fmt: skip
        self._add_user_data(config, user_secrets=user_secrets, script=script)
        acknowledge(
            self.instance,
            "AwsSolutions-EC29",
            "The directory is rebuilt from config and Secrets Manager by its bootstrap; termination protection "
            "would only make `cdk destroy` fail.",
        )
        route53.ARecord(
            self,
            "DnsRecord",
            zone=zone,
            record_name=hostname,
            target=route53.RecordTarget.from_ip_addresses(self.instance.instance_private_ip),
            ttl=Duration.minutes(5),
        )

    def _add_admin_secret(self, config: LdapConfig, key: kms.IKey) -> None:
        """Create the directory manager's secret (a generated password, never typed)."""
        self.admin_secret = secretsmanager.Secret(
            self,
            "AdminSecret",
            description=f"LDAP directory manager (cn=admin,{config.base_dn}); generated, never typed",
            encryption_key=key,
            generate_secret_string=secretsmanager.SecretStringGenerator(
                secret_string_template=f'{{"username": "cn=admin,{config.base_dn}"}}',
                generate_string_key="password",
                password_length=32,
                exclude_punctuation=True,
            ),
        )
        acknowledge(
            self.admin_secret,
            "AwsSolutions-SMG4",
            "Rotation-ready (a JSON secret with a generated password) but not rotated automatically: a "
            "rotation function must also change the hash in slapd (ldappasswd over LDAPS); re-run the bootstrap.",
        )

    def _add_security_group(self, vpc: ec2.IVpc) -> None:
        """Create the host's group: no ingress until allow_ldaps_from, HTTPS and HTTP out."""
        self.security_group = ec2.SecurityGroup(
            self,
            "SecurityGroup",
            vpc=vpc,
            description="OpenLDAP host: LDAPS from EMR only",
            allow_all_outbound=False,
        )
        # Package mirrors (Ubuntu's are plain HTTP, packages are signed) and AWS APIs over HTTPS.
        self.security_group.add_egress_rule(
            ec2.Peer.any_ipv4(), ec2.Port.tcp(443), "HTTPS: AWS APIs, snap store"
        )
        self.security_group.add_egress_rule(
            ec2.Peer.any_ipv4(), ec2.Port.tcp(80), "HTTP: signed apt packages"
        )

    def _add_role(self) -> iam.Role:
        """Create the host's role with Session Manager access (its own statements come in _add_policy)."""
        role = iam.Role(
            self,
            "Role",
            assumed_by=iam.ServicePrincipal("ec2.amazonaws.com"),
            description="OpenLDAP host: SSM sessions, its secrets, its bootstrap script, publish its CA",
            managed_policies=[iam.ManagedPolicy.from_aws_managed_policy_name("AmazonSSMManagedInstanceCore")],
        )
        acknowledge(
            role,
            "AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/AmazonSSMManagedInstanceCore]",
            "The AWS-maintained policy for Session Manager (the host has no SSH); it follows SSM API changes.",
        )
        return role

    def _add_instance(
        self, config: LdapConfig, *, vpc: ec2.IVpc, subnet: ec2.ISubnet, key: kms.IKey, role: iam.IRole
    ) -> None:
        """Create the Ubuntu host (IMDSv2, encrypted root volume) that CloudFormation waits 30 minutes for."""
        self.instance = ec2.Instance(
            self,
            "Instance",
            vpc=vpc,
            vpc_subnets=ec2.SubnetSelection(subnets=[subnet]),
            instance_type=ec2.InstanceType(config.instance_type),
            machine_image=ec2.MachineImage.from_ssm_parameter(UBUNTU_AMI),
            security_group=self.security_group,
            role=role,
            require_imdsv2=True,
            detailed_monitoring=True,
            ssm_session_permissions=False,
            block_devices=[
                ec2.BlockDevice(
                    device_name="/dev/sda1",
                    volume=ec2.BlockDeviceVolume.ebs(
                        16, encrypted=True, kms_key=key, volume_type=ec2.EbsDeviceVolumeType.GP3
                    ),
                )
            ],
            user_data=ec2.UserData.for_linux(),
        )
        self.instance.instance.cfn_options.creation_policy = CfnCreationPolicy(
            resource_signal=CfnResourceSignal(count=1, timeout="PT30M")
        )

    def _add_policy(
        self,
        role: iam.IRole,
        *,
        secrets: Sequence[secretsmanager.ISecret],
        key: kms.IKey,
        script: s3_assets.Asset,
        ca_object_arn: str,
    ) -> None:
        """Let the host read its secrets and script, publish its CA and signal CloudFormation."""
        role.attach_inline_policy(
            iam.Policy(
                self,
                "Policy",
                statements=[
                    iam.PolicyStatement(
                        sid="ReadLdapSecrets",
                        actions=["secretsmanager:GetSecretValue", "secretsmanager:DescribeSecret"],
                        resources=[s.secret_arn for s in secrets],
                    ),
                    iam.PolicyStatement(
                        sid="DecryptLdapSecrets", actions=["kms:Decrypt"], resources=[key.key_arn]
                    ),
                    iam.PolicyStatement(
                        sid="ReadBootstrapScript",
                        actions=["s3:GetObject"],
                        resources=[
                            f"arn:{Aws.PARTITION}:s3:::{script.s3_bucket_name}/{script.s3_object_key}"
                        ],
                    ),
                    iam.PolicyStatement(
                        sid="PublishCaCertificate", actions=["s3:PutObject"], resources=[ca_object_arn]
                    ),
                    iam.PolicyStatement(
                        sid="EncryptCaCertificate", actions=["kms:GenerateDataKey"], resources=[key.key_arn]
                    ),
                    iam.PolicyStatement(
                        sid="SignalCompletion",
                        actions=["cloudformation:SignalResource"],
                        resources=[Stack.of(self).stack_id],
                    ),
                ],
            )
        )

    def _add_user_data(
        self,
        config: LdapConfig,
        *,
        user_secrets: Mapping[str, secretsmanager.ISecret],
        script: s3_assets.Asset,
    ) -> None:
        """Write the boot script: fetch and run ldap-bootstrap.sh, then signal how boot ended."""
        stack = Stack.of(self)
        logical_id = stack.get_logical_id(self.instance.instance)
        users = " ".join(f"{u.name}:{','.join(u.groups)}" for u in config.users)
        env = {
            "LDAP_BASE_DN": config.base_dn,
            "LDAP_HOSTNAME": self.hostname,
            "LDAP_GROUPS": " ".join(config.groups),
            "LDAP_USERS": users,
            "LDAP_USER_SECRETS": " ".join(f"{name}={s.secret_arn}" for name, s in user_secrets.items()),
            "LDAP_ADMIN_SECRET": self.admin_secret.secret_arn,
            "LDAP_CA_UPLOAD_URI": self.ca_uri,
            "LDAP_INSTALL": "1",
            "LDAP_SERVICE": "systemd",
            "AWS_DEFAULT_REGION": stack.region,
        }
        self.instance.user_data.add_commands(
            "set -euo pipefail",
            # Tell CloudFormation how boot ended, success or not, so a failure surfaces in minutes.
            "token=$(curl -sS -X PUT http://169.254.169.254/latest/api/token "
            "-H 'X-aws-ec2-metadata-token-ttl-seconds: 300')",
            'instance_id=$(curl -sS -H "X-aws-ec2-metadata-token: $token" '
            "http://169.254.169.254/latest/meta-data/instance-id)",
            "signal() { /snap/bin/aws cloudformation signal-resource --region "
            f"{stack.region} --stack-name {stack.stack_name} --logical-resource-id {logical_id} "
            '--unique-id "$instance_id" --status "$1" || true; }',
            "trap 'signal FAILURE' ERR",
            "snap install aws-cli --classic",
            f"/snap/bin/aws s3 cp --only-show-errors s3://{script.s3_bucket_name}/{script.s3_object_key} "
            "/root/ldap-bootstrap.sh",
            "export PATH=/snap/bin:$PATH",
            *[f"export {name}='{value}'" for name, value in env.items()],
            "bash /root/ldap-bootstrap.sh",
            "signal SUCCESS",
        )

    def allow_ldaps_from(self, peer: ec2.ISecurityGroup, description: str) -> None:
        """Admit LDAPS (636) from one security group."""
        self.security_group.add_ingress_rule(peer, ec2.Port.tcp(LDAPS_PORT), description)
