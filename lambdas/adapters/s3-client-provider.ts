/**
 * S3 clients for writing into customers' buckets, one per (bucket region, credentials identity);
 * plugs into `S3ExportSink` as its `clientFor`. On AWS every connection writes with its own
 * session of the exporter role, tagged `export-connection-id = <connectionId>` (and, in
 * assume-role mode, from it the customer's role with the external id, the tag not transitive).
 * Credentials are cached until shortly before they expire, on the injected clock; locally (no
 * exporter role) a plain client to the endpoint is returned. Why: docs/security.md#one-stable-exporter-role,
 * docs/security.md#assume-role-mode-external-id.
 */
import { createHash } from 'node:crypto';
import type { S3Client } from '@aws-sdk/client-s3';
import { AssumeRoleCommand, type AssumeRoleCommandOutput, STSClient } from '@aws-sdk/client-sts';
import { CONNECTION_SESSION_TAG } from '../definitions.ts';
import type { Clock, SinkTarget } from '../ports/index.ts';
import { type CredentialsOption, createS3Client } from './aws-clients.ts';
import { translateAwsError } from './aws-errors.ts';

export interface SessionCredentials {
  accessKeyId: string;
  secretAccessKey: string;
  sessionToken: string;
  expiration: Date;
}

export type StsClientFactory = (options: { region: string; credentials?: CredentialsOption }) => STSClient;

export interface S3ClientProviderOptions {
  /** Region of the exporter (its STS calls go to this regional endpoint). */
  region: string;
  /** Credentials of the running function; absent = the SDK's default chain. */
  baseCredentials?: CredentialsOption | undefined;
  /** The stable exporter role (`EXPORTER_ROLE_ARN`); absent locally. */
  exporterRoleArn?: string | undefined;
  createStsClient?: StsClientFactory;
  /** S3 endpoint for every region (local engines). */
  endpoint?: string | undefined;
  clock: Clock;
  /** Session length asked of STS (role chaining caps it at one hour). Default 3600. */
  sessionDurationSeconds?: number;
  /** Credentials are renewed this long before they expire. Default 5 minutes. */
  refreshMarginMs?: number;
  /** Clients kept per container (least recently used are dropped). Default 500. */
  maxClients?: number;
}

export interface S3ClientProvider {
  /** The client to write `target` with: region = `target.bucketRegion`, credentials of its identity. */
  clientFor(target: SinkTarget): Promise<S3Client>;
  /** The session credentials used for `target`; undefined locally (base credentials). */
  credentialsFor(target: SinkTarget): Promise<SessionCredentials | undefined>;
}

export const DEFAULT_REFRESH_MARGIN_MS = 5 * 60 * 1000;

const defaultStsClient: StsClientFactory = ({ region, credentials }) =>
  new STSClient({ region, ...(credentials ? { credentials } : {}) });

/** `export-<connectionId>`, restricted to STS's session-name alphabet and length (2-64). */
export function roleSessionName(connectionId: string): string {
  return `export-${connectionId}`.replace(/[^\w+=,.@-]/g, '-').slice(0, 64);
}

interface CachedCredentials {
  credentials: SessionCredentials;
  refreshAt: number;
}

/**
 * Credentials by identity, fetched (once, even under concurrency) when absent or within `marginMs`
 * of their expiry on `clock`.
 */
function credentialCache(
  clock: Clock,
  marginMs: number,
): (identity: string, fetch: () => Promise<SessionCredentials>) => Promise<SessionCredentials> {
  const cache = new Map<string, CachedCredentials>();
  const inFlight = new Map<string, Promise<SessionCredentials>>();
  return (identity, fetch) => {
    const hit = cache.get(identity);
    if (hit && clock.now().getTime() < hit.refreshAt) return Promise.resolve(hit.credentials);
    let pending = inFlight.get(identity);
    if (!pending) {
      pending = fetch()
        .then((credentials) => {
          cache.set(identity, { credentials, refreshAt: credentials.expiration.getTime() - marginMs });
          return credentials;
        })
        .finally(() => inFlight.delete(identity));
      inFlight.set(identity, pending);
    }
    return pending;
  };
}

/** STS AssumeRole → session credentials; `fallbackExpiry` (epoch ms) when STS gives no expiration. */
async function assumeRole(
  sts: STSClient,
  input: AssumeRoleCommand['input'],
  fallbackExpiry: () => number,
): Promise<SessionCredentials> {
  let response: AssumeRoleCommandOutput;
  try {
    response = await sts.send(new AssumeRoleCommand(input));
  } catch (error) {
    throw translateAwsError(error, 'STS');
  }
  const c = response.Credentials;
  if (!c?.AccessKeyId || !c.SecretAccessKey || !c.SessionToken) {
    throw new Error(`STS AssumeRole of ${input.RoleArn} returned no credentials`);
  }
  return {
    accessKeyId: c.AccessKeyId,
    secretAccessKey: c.SecretAccessKey,
    sessionToken: c.SessionToken,
    // Without an expiry, renew after a quarter of the session.
    expiration: c.Expiration ?? new Date(fallbackExpiry()),
  };
}

export function createS3ClientProvider(options: S3ClientProviderOptions): S3ClientProvider {
  const createSts = options.createStsClient ?? defaultStsClient;
  const duration = options.sessionDurationSeconds ?? 3600;
  const margin = options.refreshMarginMs ?? DEFAULT_REFRESH_MARGIN_MS;
  const maxClients = options.maxClients ?? 500;
  const cached = credentialCache(options.clock, margin);
  const assume = (sts: STSClient, input: AssumeRoleCommand['input']) =>
    assumeRole(sts, input, () => options.clock.now().getTime() + (duration * 1000) / 4 + margin);
  const clients = new Map<string, S3Client>();
  let baseSts: STSClient | undefined;

  const exporterSession = (connectionId: string, exporterRoleArn: string) =>
    cached(`exporter|${connectionId}`, () => {
      baseSts ??= createSts({ region: options.region, credentials: options.baseCredentials });
      return assume(baseSts, {
        RoleArn: exporterRoleArn,
        RoleSessionName: roleSessionName(connectionId),
        DurationSeconds: duration,
        Tags: [{ Key: CONNECTION_SESSION_TAG, Value: connectionId }],
      });
    });

  /** The external id is part of the identity (a changed id must not reuse a session), kept hashed. */
  const customerIdentity = (target: SinkTarget) => {
    const idHash = createHash('sha256')
      .update(target.externalId ?? '')
      .digest('hex')
      .slice(0, 16);
    return `customer|${target.connectionId}|${target.assumeRoleArn}|${idHash}`;
  };

  /** STS as the connection's tagged exporter session: one client per connection, kept (bounded). */
  const chainedSts = new Map<string, STSClient>();
  const stsAsExporter = (connectionId: string, exporterRoleArn: string): STSClient => {
    let sts = chainedSts.get(connectionId);
    if (sts) {
      chainedSts.delete(connectionId);
    } else {
      sts = createSts({
        region: options.region,
        credentials: () => exporterSession(connectionId, exporterRoleArn),
      });
    }
    chainedSts.set(connectionId, sts);
    if (chainedSts.size > maxClients) {
      const [oldest, dropped] = chainedSts.entries().next().value as [string, STSClient];
      chainedSts.delete(oldest);
      dropped.destroy();
    }
    return sts;
  };

  const customerSession = (target: SinkTarget, exporterRoleArn: string) =>
    cached(customerIdentity(target), async () => {
      // Fetch the exporter session first, so that its refusal is reported as such.
      await exporterSession(target.connectionId, exporterRoleArn);
      return assume(stsAsExporter(target.connectionId, exporterRoleArn), {
        RoleArn: target.assumeRoleArn as string,
        RoleSessionName: roleSessionName(target.connectionId),
        DurationSeconds: duration,
        ...(target.externalId ? { ExternalId: target.externalId } : {}),
      });
    });

  /** Who the client writes as; the client cache is keyed by it (with the region). */
  const identityOf = (target: SinkTarget): string => {
    if (!options.exporterRoleArn) return 'base';
    if (target.assumeRoleArn) return customerIdentity(target);
    return `exporter|${target.connectionId}`;
  };

  const credentialsFor = async (target: SinkTarget): Promise<SessionCredentials | undefined> => {
    const exporterRoleArn = options.exporterRoleArn;
    if (!exporterRoleArn) return undefined;
    return target.assumeRoleArn
      ? customerSession(target, exporterRoleArn)
      : exporterSession(target.connectionId, exporterRoleArn);
  };

  const clientFor = async (target: SinkTarget): Promise<S3Client> => {
    const key = `${target.bucketRegion}|${identityOf(target)}`;
    const existing = clients.get(key);
    if (existing) {
      clients.delete(key);
      clients.set(key, existing);
      if (options.exporterRoleArn) await credentialsFor(target); // fail here, not mid-upload
      return existing;
    }
    let credentials: CredentialsOption | undefined = options.baseCredentials;
    if (options.exporterRoleArn) {
      await credentialsFor(target); // surfaces STS errors to the caller (diagnosis) before any upload
      // The SDK asks again when its copy is within 5 minutes of `expiration`; we answer from our cache.
      credentials = async () => (await credentialsFor(target)) as SessionCredentials;
    }
    const client = createS3Client({ region: target.bucketRegion, endpoint: options.endpoint, credentials });
    clients.set(key, client);
    if (clients.size > maxClients) {
      const oldest = clients.keys().next().value;
      if (oldest !== undefined) clients.delete(oldest);
    }
    return client;
  };

  return { clientFor, credentialsFor };
}
