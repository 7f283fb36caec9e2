/**
 * The validated, normalized stack configuration that components consume. Produced only by
 * `parseStackConfig` (config/stack.ts); every default is already applied and every cross-key rule
 * already checked, so consumers never re-validate or fall back to defaults of their own.
 */
import type { CpuArchitecture } from '../servers/profile';
import type { BackendName } from './backends';
import type { BalanceSpec } from './proxy-defaults';

export type { BackendName } from './backends';

export type Frontend = 'nginx' | 'alb' | 'both';
export const FRONTENDS: readonly Frontend[] = ['nginx', 'alb', 'both'];

/** nginx listener mode: `http` (L7, path routing to every backend), `stream` (L4, one TCP/TLS
 * listener per backend) or `both`. */
export type ProxyMode = 'http' | 'stream' | 'both';
export const PROXY_MODES: readonly ProxyMode[] = ['http', 'stream', 'both'];

export type TlsSource = 'self-signed' | 'ssm' | 'secrets-manager' | 'acm';
export const TLS_SOURCES: readonly TlsSource[] = ['self-signed', 'ssm', 'secrets-manager', 'acm'];

export type RedisMode = 'elasticache' | 'existing';
export const REDIS_MODES: readonly RedisMode[] = ['elasticache', 'existing'];

/** One enabled backend cluster. */
export interface BackendSettings {
  /** Number of EC2 nodes, spread over the private subnets (AZs) in order. */
  readonly nodes: number;
  readonly instanceType: string;
  /** Exact pinned server version, e.g. `7.0.2`. */
  readonly version: string;
  /** Servers installed from a release archive only (Centrifugo): pinned sha256 per architecture
   * and the opt-in to install without a pin. Pass both to `NodeRenderInput` as they are. */
  readonly releaseSha256?: Readonly<Partial<Record<CpuArchitecture, string>>>;
  readonly allowUnpinnedRelease?: boolean;
}

/** Only enabled backends are present; at least one is. Key order follows the backend registry. */
export type BackendsConfig = { readonly [B in BackendName]?: BackendSettings };

/** The nginx proxy hosts; present in `StackConfig` only when `frontend` is `nginx` or `both`. */
export interface NginxProxyConfig {
  /** Number of proxy hosts, each with its own Elastic IP. */
  readonly count: number;
  readonly instanceType: string;
  readonly mode: ProxyMode;
  /** Strategy and, for `hash`, the key (`hashKey` is set only for `hash`). */
  readonly balance: BalanceSpec;
  /** nginx version compiled from source. */
  readonly version: string;
  /** Expected sha256 of `nginx-VERSION.tar.gz`, lowercase hex; unset = verify by PGP signature only. */
  readonly sha256?: string;
}

/** The Application Load Balancer; present only when `frontend` is `alb` or `both`. */
export interface AlbConfig {
  /** ACM certificate for the HTTPS listener (same region as the stack). */
  readonly certificateArn: string;
  readonly stickiness: boolean;
  readonly deregistrationDelaySeconds: number;
  readonly deletionProtection: boolean;
  /** S3 bucket for access logs; unset = access logs off. */
  readonly accessLogsBucket?: string;
}

interface TlsCommon {
  /** Strict-Transport-Security max-age; 0 = no HSTS header. */
  readonly hstsMaxAgeSeconds: number;
}

/** Where nginx gets its certificate and key. The ALB always uses `AlbConfig.certificateArn`. */
export type TlsConfig =
  | (TlsCommon & {
      /** Generated with @pulumi/tls for `domain` (or the proxy's public DNS name when unset). */
      readonly source: 'self-signed';
      readonly domain?: string;
    })
  | (TlsCommon & {
      /** SSM Parameter Store: two SecureString parameters, PEM certificate chain and PEM key. */
      readonly source: 'ssm';
      readonly domain: string;
      readonly certificateParameter: string;
      readonly keyParameter: string;
    })
  | (TlsCommon & {
      /** Secrets Manager: one secret whose SecretString is JSON
       * `{"certificate": "<PEM chain>", "privateKey": "<PEM key>"}`. */
      readonly source: 'secrets-manager';
      readonly domain: string;
      readonly secretId: string;
    })
  | (TlsCommon & {
      /** TLS ends at the ALB with its ACM certificate; only valid with `frontend: alb`. */
      readonly source: 'acm';
      readonly domain: string;
    });

/** An existing VPC. Absent from `StackConfig` = the region's default VPC and its subnets. */
export interface VpcConfig {
  readonly vpcId: string;
  /** Proxy hosts and the ALB. */
  readonly publicSubnetIds: readonly string[];
  /** Backend nodes and ElastiCache; needs a NAT route for package downloads at boot. */
  readonly privateSubnetIds: readonly string[];
}

export type RedisConfig =
  | {
      /** A new ElastiCache replication group, encrypted at rest and in transit. */
      readonly mode: 'elasticache';
      readonly nodeType: string;
      /** Replicas besides the primary (0-5). */
      readonly replicas: number;
      /** True when there is at least one replica. */
      readonly automaticFailover: boolean;
    }
  | {
      readonly mode: 'existing';
      readonly host: string;
      readonly port: number;
      readonly tls: boolean;
      /** SSM SecureString parameter holding the AUTH token; unset = no AUTH. */
      readonly authTokenParameter?: string;
    };

export interface StackConfig {
  /** AWS region (from `aws:region`). */
  readonly region: string;
  readonly backends: BackendsConfig;
  readonly frontend: Frontend;
  /** Present iff `frontend` includes nginx. */
  readonly nginx?: NginxProxyConfig;
  /** Present iff `frontend` includes alb. */
  readonly alb?: AlbConfig;
  readonly tls: TlsConfig;
  /** Client CIDRs allowed on the public listeners, split by family for security-group rules. */
  readonly allowedCidrs: { readonly ipv4: readonly string[]; readonly ipv6: readonly string[] };
  /** Browser origins allowed to connect (all backends); empty = any origin. A backend whose profile
   * does not check Origin itself has them enforced by nginx http mode and the ALB. */
  readonly allowedOrigins: readonly string[];
  readonly vpc?: VpcConfig;
  readonly redis: RedisConfig;
  /** Shape matches `NginxTimeouts`; the ALB idle timeout is `idleSeconds` too. `idleSeconds` unset =
   * derived from the enabled backends' ping intervals (`defaultIdleTimeoutSeconds`), which nginx and
   * the ALB each apply to the backends they front. */
  readonly timeouts: { readonly idleSeconds?: number; readonly connectSeconds: number };
  /** Target concurrent client connections per proxy host; also the nodes' open-file floor. */
  readonly maxConnections: number;
  /** Added to every taggable resource. */
  readonly tags: Readonly<Record<string, string>>;
}
