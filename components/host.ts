/**
 * What every EC2 host of realtime-edge shares — nginx proxies and server nodes alike: the Amazon
 * Linux 2023 AMI for the instance type's architecture, IMDSv2 only, an encrypted gp3 root volume,
 * an instance role with SSM core (Session Manager instead of SSH: no key pair, no port 22) plus
 * read access to exactly the parameters and secrets the host fetches at boot, and user data
 * delivery. NginxProxy and ServerCluster each create one HostGroup.
 */
import { gunzipSync, gzipSync } from 'zlib';
import * as pulumi from '@pulumi/pulumi';
import * as aws from '@pulumi/aws';
import { architectureOfInstanceType, type Ec2Architecture as CpuArchitecture } from '../config/instance-types';

export { architectureOfInstanceType, type CpuArchitecture };

/** The newest Amazon Linux 2023 AMI (standard, not minimal) for an architecture. */
export function amazonLinux2023Ami(
  architecture: CpuArchitecture,
  opts?: pulumi.InvokeOutputOptions,
): pulumi.Output<string> {
  return aws.ec2
    .getAmiOutput(
      {
        owners: ['amazon'],
        mostRecent: true,
        filters: [
          { name: 'name', values: [`al2023-ami-2023.*-kernel-*-${architecture}`] },
          { name: 'architecture', values: [architecture] },
          { name: 'virtualization-type', values: ['hvm'] },
          { name: 'state', values: ['available'] },
        ],
      },
      opts,
    )
    .apply((ami) => ami.id);
}

/** The ARN of an SSM parameter in this stack's account and region (for names given by config). */
export function ssmParameterArn(parameterName: pulumi.Input<string>, opts?: pulumi.InvokeOutputOptions): pulumi.Output<string> {
  const region = aws.getRegionOutput({}, opts).region;
  const identity = aws.getCallerIdentityOutput({}, opts);
  const partition = aws.getPartitionOutput({}, opts).partition;
  return pulumi
    .all([parameterName, region, identity.accountId, partition])
    .apply(([name, r, account, p]) => `arn:${p}:ssm:${r}:${account}:parameter/${name.replace(/^\//, '')}`);
}

/** EC2 accepts at most 16 KB of user data before base64. */
export const USER_DATA_LIMIT_BYTES = 16 * 1024;

/** How a script reaches EC2: as is when it fits, gzip-compressed otherwise (cloud-init recognises
 * gzip by its magic bytes). `mtime` is zero in Node's gzip header, so the encoding is stable and
 * an unchanged script never shows up as a diff. */
export function encodeUserData(script: string): { userData?: string; userDataBase64?: string } {
  if (Buffer.byteLength(script, 'utf8') <= USER_DATA_LIMIT_BYTES) return { userData: script };
  const compressed = gzipSync(Buffer.from(script, 'utf8'), { level: 9 });
  if (compressed.length > USER_DATA_LIMIT_BYTES) {
    throw new Error(
      `user data: ${compressed.length} bytes even gzip-compressed; EC2 allows ${USER_DATA_LIMIT_BYTES}. ` +
        'Move large files to SSM parameters or S3.',
    );
  }
  return { userDataBase64: compressed.toString('base64') };
}

/** The script a host runs at first boot, recovered from what `encodeUserData` produced. */
export function decodeUserData(encoded: { userData?: string; userDataBase64?: string }): string {
  if (encoded.userData !== undefined) return encoded.userData;
  if (encoded.userDataBase64 !== undefined) {
    return gunzipSync(Buffer.from(encoded.userDataBase64, 'base64')).toString('utf8');
  }
  throw new Error('user data: neither userData nor userDataBase64 is set');
}

export interface HostSpec {
  /** Resource name of the instance; also its `Name` tag. */
  readonly name: string;
  readonly subnetId: pulumi.Input<string>;
  /** The complete first-boot script (from a renderer). */
  readonly userData: pulumi.Input<string>;
}

export interface HostGroupArgs {
  /** EC2 instance type of every host; its family decides the AMI architecture. */
  readonly instanceType: string;
  readonly hosts: readonly HostSpec[];
  readonly securityGroupIds: pulumi.Input<pulumi.Input<string>[]>;
  /** SSM parameters the hosts read at boot; the role may read exactly these. @default [] */
  readonly readableParameterArns?: readonly pulumi.Input<string>[];
  /** Secrets Manager secrets the hosts read at boot; exactly these. @default [] */
  readonly readableSecretArns?: readonly pulumi.Input<string>[];
  /** A customer-managed KMS key that encrypts those parameters. Unset means the AWS-managed
   * `aws/ssm` key, whose key policy already admits every principal of the account through SSM, so
   * no `kms:Decrypt` grant is needed. @default undefined */
  readonly parameterKmsKeyArn?: pulumi.Input<string>;
  /** Root volume size. @default 20 */
  readonly rootVolumeSizeGiB?: number;
  /** Pin an AMI; changing it replaces every host. Unset, a host is created from the newest Amazon
   * Linux 2023 AMI for the instance type's architecture and keeps it: a newer AMI neither replaces
   * the host nor reaches it when the host is replaced for another reason (Pulumi reuses the
   * recorded value of an ignored input). To move hosts to a newer AMI, pin it here
   * (`latestAmiId` shows the newest). @default the newest Amazon Linux 2023 AMI at each host's creation */
  readonly amiId?: pulumi.Input<string>;
  /** Public address on the primary interface. @default the subnet's setting */
  readonly associatePublicIpAddress?: boolean;
  readonly tags?: Readonly<Record<string, string>>;
}

/** Defaults of HostGroupArgs, decided here once. */
export const HOST_DEFAULTS = {
  rootVolumeSizeGiB: 20,
} as const;

/**
 * A set of EC2 hosts with one role. Type token `realtime-edge:host:HostGroup`.
 */
export class HostGroup extends pulumi.ComponentResource {
  readonly role: aws.iam.Role;
  readonly instanceProfile: aws.iam.InstanceProfile;
  readonly instances: aws.ec2.Instance[];
  readonly instanceIds: pulumi.Output<string[]>;
  readonly privateIps: pulumi.Output<string[]>;
  /** The AMI each host runs, in `hosts` order, as the instances report it. */
  readonly amiIds: pulumi.Output<string[]>;
  /** The pinned `amiId`, or the newest Amazon Linux 2023 AMI today; hosts created earlier may run
   * an older one (see `amiIds`). */
  readonly latestAmiId: pulumi.Output<string>;

  constructor(name: string, args: HostGroupArgs, opts?: pulumi.ComponentResourceOptions) {
    super('realtime-edge:host:HostGroup', name, {}, opts);
    const parent = { parent: this };
    const architecture = architectureOfInstanceType(args.instanceType);
    const tags = args.tags ?? {};

    this.role = new aws.iam.Role(
      `${name}-role`,
      {
        description: `realtime-edge host role of ${name}`,
        assumeRolePolicy: JSON.stringify({
          Version: '2012-10-17',
          Statement: [{ Effect: 'Allow', Principal: { Service: 'ec2.amazonaws.com' }, Action: 'sts:AssumeRole' }],
        }),
        tags,
      },
      parent,
    );
    const partition = aws.getPartitionOutput({}, parent).partition;
    const ssmCore = new aws.iam.RolePolicyAttachment(
      `${name}-ssm-core`,
      { role: this.role.name, policyArn: pulumi.interpolate`arn:${partition}:iam::aws:policy/AmazonSSMManagedInstanceCore` },
      parent,
    );
    const policy = bootSecretsPolicy(args, aws.getRegionOutput({}, parent).region);
    const bootSecrets = policy ? new aws.iam.RolePolicy(`${name}-boot-secrets`, { role: this.role.id, policy }, parent) : undefined;
    this.instanceProfile = new aws.iam.InstanceProfile(`${name}-profile`, { role: this.role.name, tags }, parent);

    const lookedUp = args.amiId === undefined;
    this.latestAmiId = lookedUp ? amazonLinux2023Ami(architecture, parent) : pulumi.output(args.amiId!);

    this.instances = args.hosts.map((host) => {
      const encoded = pulumi.output(host.userData).apply(encodeUserData);
      return new aws.ec2.Instance(
        host.name,
        {
          ami: this.latestAmiId,
          instanceType: args.instanceType,
          subnetId: host.subnetId,
          vpcSecurityGroupIds: args.securityGroupIds,
          iamInstanceProfile: this.instanceProfile.name,
          associatePublicIpAddress: args.associatePublicIpAddress,
          // IMDSv2 only; a hop limit of 1 keeps the token away from anything behind a bridge.
          metadataOptions: { httpEndpoint: 'enabled', httpTokens: 'required', httpPutResponseHopLimit: 1 },
          rootBlockDevice: {
            volumeType: 'gp3',
            volumeSize: args.rootVolumeSizeGiB ?? HOST_DEFAULTS.rootVolumeSizeGiB,
            encrypted: true,
            deleteOnTermination: true,
          },
          userData: encoded.apply((e) => e.userData),
          userDataBase64: encoded.apply((e) => e.userDataBase64),
          // cloud-init runs user data once, at first boot. Changing it on a running instance would
          // only stop and start it and leave the old setup in place, so a changed boot script
          // means a new host. Anything that must change in place (the proxy's nginx.conf) is kept
          // out of user data and delivered by SSM instead.
          userDataReplaceOnChange: true,
          tags: { ...tags, Name: host.name },
          volumeTags: { ...tags, Name: host.name },
        },
        {
          parent: this,
          // A newer AMI from the lookup must not replace running hosts. Pulumi then keeps the
          // recorded AMI even when a host is replaced for another reason, so a host leaves its
          // first AMI only when `amiId` is pinned.
          ignoreChanges: lookedUp ? ['ami'] : [],
          // The SSM agent registers, and the boot script reads its parameters, as soon as the
          // host starts: the role must already carry those permissions, not merely exist.
          dependsOn: [ssmCore, ...(bootSecrets ? [bootSecrets] : [])],
        },
      );
    });
    this.instanceIds = pulumi.all(this.instances.map((i) => i.id));
    this.privateIps = pulumi.all(this.instances.map((i) => i.privateIp));
    this.amiIds = pulumi.all(this.instances.map((i) => i.ami));
    this.registerOutputs({
      roleArn: this.role.arn,
      instanceIds: this.instanceIds,
      privateIps: this.privateIps,
      amiIds: this.amiIds,
    });
  }
}

/** Least privilege for what a host fetches at boot: the exact parameter and secret ARNs; with a
 * customer-managed key, `kms:Decrypt` only under the encryption context SSM sets for those
 * parameters (`PARAMETER_ARN`). `undefined` when the host reads nothing. */
function bootSecretsPolicy(args: HostGroupArgs, region: pulumi.Output<string>): pulumi.Output<string> | undefined {
  const parameters = args.readableParameterArns ?? [];
  const secrets = args.readableSecretArns ?? [];
  if (parameters.length === 0 && secrets.length === 0) return undefined;
  return pulumi
    .all([pulumi.all([...parameters]), pulumi.all([...secrets]), args.parameterKmsKeyArn, region])
    .apply(([parameterArns, secretArns, kmsKeyArn, r]) => {
      const statements: Record<string, unknown>[] = [];
      if (parameterArns.length > 0) {
        statements.push({
          Sid: 'ReadBootParameters',
          Effect: 'Allow',
          Action: ['ssm:GetParameter', 'ssm:GetParameters'],
          Resource: parameterArns,
        });
        if (kmsKeyArn) {
          statements.push({
            Sid: 'DecryptBootParameters',
            Effect: 'Allow',
            Action: 'kms:Decrypt',
            Resource: kmsKeyArn,
            Condition: {
              StringEquals: {
                'kms:ViaService': `ssm.${r}.amazonaws.com`,
                'kms:EncryptionContext:PARAMETER_ARN': parameterArns,
              },
            },
          });
        }
      }
      if (secretArns.length > 0) {
        statements.push({
          Sid: 'ReadBootSecrets',
          Effect: 'Allow',
          Action: 'secretsmanager:GetSecretValue',
          Resource: secretArns,
        });
      }
      return JSON.stringify({ Version: '2012-10-17', Statement: statements });
    });
}
