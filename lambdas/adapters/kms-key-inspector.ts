/**
 * KmsKeyInspector on AWS KMS: `DescribeKey` with the same identity that writes the
 * connection's objects (its tagged exporter session, or the customer's role), in the key's
 * region. Used by "test connection" only; exports never call KMS directly.
 */
import { DescribeKeyCommand, type DescribeKeyCommandOutput, KMSClient } from '@aws-sdk/client-kms';
import type { KmsKeyDescription, KmsKeyInspector, SinkTarget } from '../ports/index.ts';
import type { CredentialsOption } from './aws-clients.ts';
import { translateAwsError } from './aws-errors.ts';
import type { SessionCredentials } from './s3-client-provider.ts';

export type KmsClientFactory = (options: { region: string; credentials?: CredentialsOption }) => KMSClient;

export interface KmsKeyInspectorOptions {
  /** Session credentials of a target (S3ClientProvider.credentialsFor); undefined = the function's own. */
  credentialsFor?: (target: SinkTarget) => Promise<SessionCredentials | undefined>;
  createKmsClient?: KmsClientFactory;
  /** KMS endpoint (local emulators); absent on AWS. */
  endpoint?: string | undefined;
}

/** Clients kept per container (least recently used are dropped). */
const MAX_CLIENTS = 100;

export function createKmsKeyInspector(options: KmsKeyInspectorOptions = {}): KmsKeyInspector {
  const createClient: KmsClientFactory =
    options.createKmsClient ??
    (({ region, credentials }) =>
      new KMSClient({
        region,
        ...(credentials ? { credentials } : {}),
        ...(options.endpoint ? { endpoint: options.endpoint } : {}),
      }));
  // One client per region and identity, made once and kept: its credentials are asked for on
  // each use (the session provider caches and renews them), from the latest target of that id.
  const clients = new Map<string, KMSClient>();
  const latest = new Map<string, SinkTarget>();

  const clientFor = async (target: SinkTarget, region: string): Promise<KMSClient> => {
    const credentials = await options.credentialsFor?.(target); // surfaces STS errors here
    const key = credentials ? `${region}|${target.connectionId}` : region;
    latest.set(key, target);
    let client = clients.get(key);
    if (client) {
      clients.delete(key);
    } else {
      const credentialsFor = options.credentialsFor;
      client = createClient({
        region,
        ...(credentials && credentialsFor
          ? { credentials: async () => (await credentialsFor(latest.get(key) ?? target)) ?? credentials }
          : {}),
      });
    }
    clients.set(key, client);
    if (clients.size > MAX_CLIENTS) {
      const [oldest, dropped] = clients.entries().next().value as [string, KMSClient];
      clients.delete(oldest);
      latest.delete(oldest);
      dropped.destroy();
    }
    return client;
  };

  return {
    async describeKey(target: SinkTarget, kmsKeyArn: string): Promise<KmsKeyDescription> {
      const region = kmsKeyArn.split(':')[3] || target.bucketRegion;
      let KeyMetadata: DescribeKeyCommandOutput['KeyMetadata'];
      try {
        const client = await clientFor(target, region);
        ({ KeyMetadata } = await client.send(new DescribeKeyCommand({ KeyId: kmsKeyArn })));
      } catch (error) {
        // STS refusals of the session come typed already; the rest is KMS's.
        throw translateAwsError(error, 'KMS');
      }
      return {
        keyState: KeyMetadata?.KeyState ?? 'Unknown',
        enabled: KeyMetadata?.Enabled === true && KeyMetadata.KeyState === 'Enabled',
        keyManager: KeyMetadata?.KeyManager,
      };
    },
  };
}
