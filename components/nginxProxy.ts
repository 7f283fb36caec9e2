/**
 * nginx proxy hosts: EC2 instances that compile nginx from verified source at first boot, each with
 * an Elastic IP, behind a security group open only on the listener ports.
 *
 * The live nginx.conf is NOT part of the user data. The boot script depends only on what needs a
 * new host anyway (nginx version and checksum, file limits, the installed helper scripts); the
 * config — node addresses, mode, balancing, timeouts, TLS — reaches the hosts through an SSM
 * Command document and a State Manager association whose parameters carry the rendered config.
 * A changed config changes the association, which SSM re-runs at once: `nginx -t` on the new text,
 * then an atomic swap and a graceful reload. The instances, their addresses and their open
 * WebSockets stay. See docs/components.md.
 */
import * as pulumi from '@pulumi/pulumi';
import * as aws from '@pulumi/aws';
import * as tls from '@pulumi/tls';
import { keys as configKeys, type ProxyMode } from '../config/schema';
import {
  NGINX_SERVICE_NAME,
  NGINX_STABLE_VERSION,
  renderNginxApplyConfigScript,
  renderNginxBuildScript,
} from '../nginx/build';
import { ERROR_PAGE_FILE, nginxCapacity, renderErrorPage, renderNginxConf, validateNginxSpec } from '../nginx/conf';
import {
  NGINX_APPLY_DOCUMENT_PARAMETERS,
  NGINX_HOST_TLS_FILES,
  renderNginxApplyCommands,
  renderNginxTlsFetchScript,
  renderRunScriptStep,
} from '../nginx/host-scripts';
import {
  NGINX_HOST_ERROR_PAGE_ROOT,
  proxyBackendPrefix,
  proxyHostDeployment,
  proxyListenerPorts,
  proxyNginxSpec,
  proxyStreamPort,
} from '../nginx/proxy-spec';
import type { BalanceSpec, NginxSpec, NginxTimeouts } from '../nginx/spec';
import { renderBootstrapScript } from '../servers/bootstrap';
import type { RenderedFile, ServerProfile } from '../servers/profile';
import type { RenderedArtifact } from './artifacts';
import { HostGroup, ssmParameterArn } from './host';
import { HTTPS_PORT, allowEgress, clientFacingSecurityGroup, type CidrLists } from './network';
import { clientUrl } from './urls';

/** Where the boot script installs its helpers on a proxy host. */
export const NGINX_HOST_SCRIPTS = {
  build: '/usr/local/sbin/realtime-edge-build-nginx',
  applyConfig: '/usr/local/sbin/realtime-edge-apply-nginx-conf',
  fetchTls: '/usr/local/sbin/realtime-edge-nginx-tls',
} as const;

export { NGINX_HOST_ERROR_PAGE_ROOT } from '../nginx/proxy-spec';

/** TEST-NET-1 (RFC 5737): stands in for node addresses when the settings are checked up front. */
const SPEC_CHECK_ADDRESS = '192.0.2.1';

/** SSM documents count their runtime parameters against a 64 KB limit; leave room for the rest. */
const MAX_CONF_BASE64_BYTES = 48 * 1024;

export interface NginxProxyBackend {
  readonly profile: ServerProfile;
  /** Private addresses of the backend's nodes (they may change: the config follows in place). */
  readonly nodeAddresses: pulumi.Input<pulumi.Input<string>[]>;
  /** The nodes' security group: the proxy may send to it on the profile's port, nothing else. */
  readonly securityGroupId: pulumi.Input<string>;
  /** http mode: mount the routes under this prefix, stripped before proxying.
   * @default `mountPrefix`: the first backend at the root, every other under `/<name>` */
  readonly prefix?: string;
  /** stream mode: the TCP/TLS listener port of this backend. @default profile.port */
  readonly streamPort?: number;
}

/** Where nginx's certificate comes from. */
export type NginxTlsSource =
  | {
      /** Generated with @pulumi/tls (ECDSA P-256) for `domain`, or for the proxies' public DNS
       * names and addresses when no domain is set; stored as SSM SecureStrings. For development. */
      readonly source: 'self-signed';
    }
  | {
      /** Two SecureString parameters: PEM certificate chain (leaf first) and PEM key. */
      readonly source: 'ssm';
      readonly certificateParameter: string;
      readonly keyParameter: string;
    }
  | {
      /** A secret whose SecretString is JSON `{"certificate": PEM, "privateKey": PEM}`. */
      readonly source: 'secrets-manager';
      readonly secretId: string;
    };

export interface NginxProxyArgs {
  readonly vpcId: pulumi.Input<string>;
  /** Public subnets; host i goes to subnet i mod length. */
  readonly subnetIds: pulumi.Input<pulumi.Input<string>[]>;
  readonly backends: readonly NginxProxyBackend[];
  readonly tls: NginxTlsSource;
  /** Public host name: server_name, certificate name (self-signed) and URLs.
   * @default undefined (server_name `_`, URLs on each host's public DNS name) */
  readonly domain?: string;
  /** @default config key proxyCount's default (1) */
  readonly count?: number;
  /** @default config key proxyInstanceType's default (t3.small) */
  readonly instanceType?: string;
  /** @default config key proxyMode's default (http) */
  readonly mode?: ProxyMode;
  /** @default config key balance's default (least-conn) */
  readonly balance?: BalanceSpec;
  /** Client networks allowed on the listener ports. @default every address (0.0.0.0/0 and ::/0) */
  readonly allowedCidrs?: CidrLists;
  /** Strict-Transport-Security max-age in http mode; 0 = no header.
   * @default config key hstsMaxAgeSeconds's default (one year) */
  readonly hstsMaxAgeSeconds?: number;
  /** Concurrent client connections per host; sizes worker_connections and the file limits.
   * @default the nginx renderer's default (NGINX_DEFAULTS.maxConnections) */
  readonly maxConnections?: number;
  /** @default the nginx renderer's defaults (idle above the backends' ping intervals) */
  readonly timeouts?: NginxTimeouts;
  /** Browser origins allowed on the WebSocket routes of backends whose servers do not check them
   * (`proxyEnforcesOrigins`); http mode only: stream listeners cannot read the handshake.
   * @default any origin */
  readonly allowedOrigins?: readonly string[];
  /** nginx release compiled at boot. @default the build renderer's NGINX_STABLE_VERSION */
  readonly nginxVersion?: string;
  /** Expected sha256 of the source tarball, checked besides its PGP signature. @default undefined */
  readonly nginxSha256?: string;
  /** Re-run the config association on a schedule too (e.g. `rate(1 day)`), to pick up a renewed
   * certificate from SSM or Secrets Manager and to undo manual edits. @default undefined (only on change) */
  readonly reapplySchedule?: string;
  /** @default HOST_DEFAULTS.rootVolumeSizeGiB */
  readonly rootVolumeSizeGiB?: number;
  /** Pin the AMI (changing it replaces the hosts). Unset, a host keeps the AMI it was created
   * from; see HostGroupArgs.amiId. @default the newest Amazon Linux 2023 at each host's creation */
  readonly amiId?: pulumi.Input<string>;
  readonly tags?: Readonly<Record<string, string>>;
}

export const NGINX_PROXY_DEFAULTS = {
  count: configKeys.proxyCount.default as number,
  instanceType: configKeys.proxyInstanceType.default as string,
  mode: configKeys.proxyMode.default as ProxyMode,
  balance: { strategy: configKeys.balance.default } as BalanceSpec,
  hstsMaxAgeSeconds: configKeys.hstsMaxAgeSeconds.default as number,
  allowedCidrs: { ipv4: ['0.0.0.0/0'], ipv6: ['::/0'] } as CidrLists,
} as const;

/** The NginxSpec of a proxy host, given the nodes' current addresses (one list per backend). */
function proxyHostNginxSpec(args: NginxProxyArgs, nodeAddresses: readonly (readonly string[])[]): NginxSpec {
  return proxyNginxSpec(
    {
      mode: args.mode ?? NGINX_PROXY_DEFAULTS.mode,
      balance: args.balance ?? NGINX_PROXY_DEFAULTS.balance,
      ...(args.domain ? { domain: args.domain } : {}),
      tls: NGINX_HOST_TLS_FILES,
      hstsMaxAgeSeconds: args.hstsMaxAgeSeconds ?? NGINX_PROXY_DEFAULTS.hstsMaxAgeSeconds,
      ...(args.maxConnections !== undefined ? { maxConnections: args.maxConnections } : {}),
      ...(args.timeouts ? { timeouts: args.timeouts } : {}),
      ...(args.allowedOrigins?.length ? { allowedOrigins: args.allowedOrigins } : {}),
    },
    args.backends.map((backend, index) => ({
      profile: backend.profile,
      nodes: nodeAddresses[index],
      ...(backend.prefix ? { prefix: backend.prefix } : {}),
      ...(backend.streamPort !== undefined ? { streamPort: backend.streamPort } : {}),
    })),
    proxyHostDeployment(),
  );
}

/** The first-boot files of a proxy host: helper scripts and the error page. No config, no secret. */
export function proxyBootFiles(
  options: Pick<NginxProxyArgs, 'maxConnections' | 'nginxVersion' | 'nginxSha256'>,
): RenderedFile[] {
  // The same figure nginx.conf's worker_rlimit_nofile gets from proxyHostNginxSpec (same inputs).
  const { rlimitNofile } = nginxCapacity({ maxConnections: options.maxConnections });
  return [
    {
      path: NGINX_HOST_SCRIPTS.build,
      mode: '0755',
      kind: 'nginx-build-script',
      content: renderNginxBuildScript({
        limitNofile: rlimitNofile,
        ...(options.nginxVersion ? { version: options.nginxVersion } : {}),
        ...(options.nginxSha256 ? { sha256: options.nginxSha256 } : {}),
        // Installed and enabled, not started: there is no config yet. The first apply starts it.
        startService: false,
      }),
    },
    {
      path: NGINX_HOST_SCRIPTS.applyConfig,
      mode: '0755',
      kind: 'nginx-apply-script',
      // reload-or-restart: the first apply starts nginx, every later one reloads it gracefully.
      content: renderNginxApplyConfigScript({ reloadCommand: ['systemctl', 'reload-or-restart', NGINX_SERVICE_NAME] }),
    },
    { path: NGINX_HOST_SCRIPTS.fetchTls, mode: '0755', kind: 'nginx-tls-script', content: renderNginxTlsFetchScript() },
    { path: `${NGINX_HOST_ERROR_PAGE_ROOT}/${ERROR_PAGE_FILE}`, mode: '0644', kind: 'nginx-error-page', content: renderErrorPage() },
  ];
}

/** The complete first-boot script of a proxy host. */
export function proxyUserData(files: readonly RenderedFile[], nginxVersionLabel: string): string {
  return renderBootstrapScript({
    description: `realtime-edge nginx proxy (nginx ${nginxVersionLabel} from source; config applied by SSM)`,
    files,
    steps: [{ name: 'compile and install nginx from verified source', script: renderRunScriptStep(NGINX_HOST_SCRIPTS.build) }],
  });
}

/** Type token `realtime-edge:nginx:NginxProxy`. */
export class NginxProxy extends pulumi.ComponentResource {
  readonly hosts: HostGroup;
  readonly securityGroupId: pulumi.Output<string>;
  readonly instanceIds: pulumi.Output<string[]>;
  readonly publicIps: pulumi.Output<string[]>;
  readonly publicDns: pulumi.Output<string[]>;
  /** Client URLs: `<backend>` (http mode) and `<backend>-stream` (stream mode), one per host or
   * one for the domain. */
  readonly urls: pulumi.Output<Record<string, string[]>>;
  /** The spec the live config is rendered from (for review and tests). */
  readonly nginxSpec: pulumi.Output<NginxSpec>;
  /** The live nginx.conf, as the association delivers it. */
  readonly nginxConf: pulumi.Output<string>;
  /** The first-boot script; a plain string because nothing in it depends on other resources. */
  readonly userData: string;
  readonly applyDocument: aws.ssm.Document;
  readonly applyAssociation: aws.ssm.Association;
  readonly artifacts: pulumi.Output<RenderedArtifact[]>;

  constructor(name: string, args: NginxProxyArgs, opts?: pulumi.ComponentResourceOptions) {
    super('realtime-edge:nginx:NginxProxy', name, {}, opts);
    const parent = { parent: this };
    const count = args.count ?? NGINX_PROXY_DEFAULTS.count;
    const mode = args.mode ?? NGINX_PROXY_DEFAULTS.mode;
    if (!Number.isInteger(count) || count < 1) {
      throw new Error(`${name}: count ${JSON.stringify(count)} is not allowed; expected an integer >= 1`);
    }
    if (args.backends.length === 0) throw new Error(`${name}: backends is empty; expected at least one backend`);
    // The node addresses are known only later, inside an apply, where an error would surface late
    // and far from its cause: check every other setting now, with a documentation address.
    validateNginxSpec(proxyHostNginxSpec(args, args.backends.map(() => [SPEC_CHECK_ADDRESS])));
    const tags = { ...args.tags, 'realtime-edge:component': name };
    const hostNames = Array.from({ length: count }, (_, index) => `${name}-${index}`);
    const region = aws.getRegionOutput({}, parent).region;

    // Addresses first: a self-signed certificate names them, and they outlive any instance.
    const eips = hostNames.map((host) => new aws.ec2.Eip(`${host}-eip`, { domain: 'vpc', tags: { ...tags, Name: host } }, parent));
    this.publicIps = pulumi.all(eips.map((eip) => eip.publicIp));
    this.publicDns = pulumi.all(eips.map((eip) => eip.publicDns));

    const certificate = this.certificateSource(name, args, eips, tags, region);

    const securityGroup = clientFacingSecurityGroup(
      name,
      {
        vpcId: args.vpcId,
        description: 'realtime-edge nginx proxy: listener ports from the allowed client networks only',
        nameTag: `${name}-proxy`,
        cidrs: args.allowedCidrs ?? NGINX_PROXY_DEFAULTS.allowedCidrs,
        listeners: proxyListenerPorts(mode, args.backends),
        targets: args.backends.map((backend) => ({
          name: backend.profile.name,
          port: backend.profile.port,
          securityGroupId: backend.securityGroupId,
          description: `${backend.profile.displayName} nodes`,
        })),
        tags,
      },
      parent,
    );
    this.securityGroupId = securityGroup.id;
    allowEgress(
      `${name}-egress-https`,
      { securityGroupId: securityGroup.id, port: HTTPS_PORT, description: 'nginx source, packages and SSM', tags },
      parent,
    );

    const bootFiles = proxyBootFiles(args);
    this.userData = proxyUserData(bootFiles, args.nginxVersion ?? NGINX_STABLE_VERSION);
    const subnetIds = pulumi.output(args.subnetIds);
    this.hosts = new HostGroup(
      `${name}-hosts`,
      {
        instanceType: args.instanceType ?? NGINX_PROXY_DEFAULTS.instanceType,
        securityGroupIds: [securityGroup.id],
        readableParameterArns: certificate.parameterArns,
        readableSecretArns: certificate.secretArns,
        rootVolumeSizeGiB: args.rootVolumeSizeGiB,
        amiId: args.amiId,
        // The build downloads at first boot, before the Elastic IP is attached.
        associatePublicIpAddress: true,
        tags,
        hosts: hostNames.map((host, index) => ({
          name: host,
          subnetId: subnetIds.apply((ids) => {
            if (ids.length === 0) throw new Error(`${name}: subnetIds is empty; expected at least one public subnet`);
            return ids[index % ids.length];
          }),
          userData: this.userData,
        })),
      },
      parent,
    );
    this.instanceIds = this.hosts.instanceIds;
    this.hosts.instances.forEach((instance, index) => {
      new aws.ec2.EipAssociation(
        `${hostNames[index]}-eip`,
        { allocationId: eips[index].allocationId, instanceId: instance.id },
        parent,
      );
    });

    this.nginxSpec = pulumi
      .all(args.backends.map((backend) => pulumi.output(backend.nodeAddresses)))
      .apply((addressLists) => proxyHostNginxSpec(args, addressLists));
    this.nginxConf = this.nginxSpec.apply(renderNginxConf);
    const confBase64 = this.nginxConf.apply((conf) => {
      const encoded = Buffer.from(conf, 'utf8').toString('base64');
      if (encoded.length > MAX_CONF_BASE64_BYTES) {
        throw new Error(
          `${name}: the rendered nginx.conf is ${encoded.length} bytes in base64; an SSM association carries at most ${MAX_CONF_BASE64_BYTES}`,
        );
      }
      return encoded;
    });

    const p = NGINX_APPLY_DOCUMENT_PARAMETERS;
    // Characters SSM parameter names, secret ids and ARNs use; none can close a single quote.
    const identifierPattern = '^[A-Za-z0-9/_.:+=@-]+$';
    this.applyDocument = new aws.ssm.Document(
      `${name}-apply`,
      {
        documentType: 'Command',
        documentFormat: 'JSON',
        targetType: '/AWS::EC2::Instance',
        content: JSON.stringify(
          {
            schemaVersion: '2.2',
            description: 'realtime-edge: install the TLS material and the rendered nginx.conf (nginx -t, then reload)',
            parameters: {
              [p.region]: { type: 'String', description: 'AWS region of the TLS source', allowedPattern: '^[a-z0-9-]+$' },
              [p.tlsSource]: { type: 'String', description: 'Where the certificate is', allowedValues: ['ssm', 'secrets-manager'] },
              [p.tlsFirst]: { type: 'String', description: 'Certificate parameter or secret id', allowedPattern: identifierPattern },
              [p.tlsSecond]: { type: 'String', description: 'Key parameter, or - for a secret', allowedPattern: identifierPattern },
              [p.conf]: { type: 'String', description: 'The rendered nginx.conf, base64', allowedPattern: '^[A-Za-z0-9+/=]+$' },
              tlsRevision: {
                type: 'String',
                description: 'Changes when realtime-edge renews the certificate, so the association runs again',
                default: '-',
                allowedPattern: '^[A-Za-z0-9._-]+$',
              },
            },
            mainSteps: [
              {
                action: 'aws:runShellScript',
                name: 'applyNginxConfig',
                inputs: {
                  timeoutSeconds: '3600',
                  runCommand: renderNginxApplyCommands({
                    tlsScriptPath: NGINX_HOST_SCRIPTS.fetchTls,
                    applyScriptPath: NGINX_HOST_SCRIPTS.applyConfig,
                  }),
                },
              },
            ],
          },
          null,
          2,
        ),
        tags,
      },
      parent,
    );
    this.applyAssociation = new aws.ssm.Association(
      `${name}-apply`,
      {
        name: this.applyDocument.name,
        targets: [{ key: 'InstanceIds', values: this.instanceIds }],
        parameters: {
          [p.region]: region,
          [p.tlsSource]: certificate.source,
          [p.tlsFirst]: certificate.first,
          [p.tlsSecond]: certificate.second,
          [p.conf]: confBase64,
          tlsRevision: certificate.revision,
        },
        // One host at a time, and stop at the first failure: a config that passes `nginx -t` but
        // misbehaves reaches one host, not all of them.
        maxConcurrency: '1',
        maxErrors: '0',
        complianceSeverity: 'HIGH',
        scheduleExpression: args.reapplySchedule,
      },
      parent,
    );

    this.urls = pulumi.all([this.publicDns]).apply(([dnsNames]) => {
      const hosts = args.domain ? [args.domain] : dnsNames;
      const urls: Record<string, string[]> = {};
      args.backends.forEach((backend, index) => {
        if (mode !== 'stream') {
          const prefix = proxyBackendPrefix(backend, index);
          urls[backend.profile.name] = hosts.map((h) => clientUrl(h, backend.profile, { prefix }));
        }
        if (mode !== 'http') {
          urls[`${backend.profile.name}-stream`] = hosts.map((h) => clientUrl(h, backend.profile, { port: proxyStreamPort(backend) }));
        }
      });
      return urls;
    });

    const applyName = `${name}-apply`;
    this.artifacts = pulumi.all([this.nginxConf, this.applyDocument.content]).apply(([conf, document]) => [
      ...hostNames.map((host) => ({ kind: 'user-data', resource: host, fileName: 'user-data.sh', content: this.userData })),
      { kind: 'nginx-conf', resource: applyName, fileName: 'nginx.conf', content: conf },
      { kind: 'ssm-document', resource: applyName, fileName: 'ssm-document.json', content: document },
      ...bootFiles.map((file) => ({ kind: file.kind, resource: name, fileName: file.path.split('/').pop()!, content: file.content })),
    ]);

    this.registerOutputs({
      publicIps: this.publicIps,
      publicDns: this.publicDns,
      instanceIds: this.instanceIds,
      securityGroupId: this.securityGroupId,
      urls: this.urls,
    });
  }

  /** Where the hosts read their certificate, what they may read, and a revision that changes
   * when realtime-edge itself renews it. */
  private certificateSource(
    name: string,
    args: NginxProxyArgs,
    eips: aws.ec2.Eip[],
    tags: Record<string, string>,
    region: pulumi.Output<string>,
  ): {
    source: string;
    first: pulumi.Input<string>;
    second: pulumi.Input<string>;
    revision: pulumi.Input<string>;
    parameterArns: pulumi.Input<string>[];
    secretArns: pulumi.Input<string>[];
  } {
    const parent = { parent: this };
    const source = args.tls;
    if (source.source === 'ssm') {
      return {
        source: 'ssm',
        first: source.certificateParameter,
        second: source.keyParameter,
        revision: '-',
        parameterArns: [ssmParameterArn(source.certificateParameter, parent), ssmParameterArn(source.keyParameter, parent)],
        secretArns: [],
      };
    }
    if (source.source === 'secrets-manager') {
      return {
        source: 'secrets-manager',
        first: source.secretId,
        second: '-',
        revision: '-',
        parameterArns: [],
        secretArns: [secretArn(source.secretId, region, parent)],
      };
    }
    const key = new tls.PrivateKey(`${name}-tls-key`, { algorithm: 'ECDSA', ecdsaCurve: 'P256' }, parent);
    const dnsNames = args.domain ? pulumi.output([args.domain]) : pulumi.all(eips.map((eip) => eip.publicDns));
    const certificate = new tls.SelfSignedCert(
      `${name}-tls-cert`,
      {
        privateKeyPem: key.privateKeyPem,
        subject: { commonName: dnsNames.apply((names) => names[0]), organization: 'realtime-edge (self-signed)' },
        dnsNames,
        ipAddresses: args.domain ? [] : pulumi.all(eips.map((eip) => eip.publicIp)),
        validityPeriodHours: 24 * 365,
        earlyRenewalHours: 24 * 30,
        allowedUses: ['digital_signature', 'key_encipherment', 'server_auth'],
      },
      parent,
    );
    const prefix = `/realtime-edge/${pulumi.getStack()}/${name}/tls`;
    const certificateParameter = new aws.ssm.Parameter(
      `${name}-tls-certificate`,
      { name: `${prefix}/certificate`, type: 'SecureString', value: certificate.certPem, description: 'nginx certificate (self-signed)', tags },
      parent,
    );
    const keyParameter = new aws.ssm.Parameter(
      `${name}-tls-private-key`,
      { name: `${prefix}/private-key`, type: 'SecureString', value: pulumi.secret(key.privateKeyPem), description: 'nginx private key', tags },
      parent,
    );
    return {
      source: 'ssm',
      first: certificateParameter.name,
      second: keyParameter.name,
      revision: pulumi.interpolate`${certificateParameter.version}.${keyParameter.version}`,
      parameterArns: [certificateParameter.arn, keyParameter.arn],
      secretArns: [],
    };
  }
}

/** A secret's ARN from its name or ARN. A name matches the ARN with Secrets Manager's six random
 * characters appended, and nothing else. */
function secretArn(secretId: string, region: pulumi.Output<string>, opts: pulumi.InvokeOutputOptions): pulumi.Output<string> {
  if (secretId.startsWith('arn:')) return pulumi.output(secretId);
  const identity = aws.getCallerIdentityOutput({}, opts);
  const partition = aws.getPartitionOutput({}, opts).partition;
  return pulumi.interpolate`arn:${partition}:secretsmanager:${region}:${identity.accountId}:secret:${secretId}-??????`;
}
