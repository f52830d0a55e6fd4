/**
 * KmsKeyInspector on AWS KMS: `DescribeKey` with the same identity that writes the
 * connection's objects (its tagged exporter session, or the customer's role), in the key's
 * region. Used by "test connection" only; exports never call KMS directly.
 */
import { DescribeKeyCommand, KMSClient } from '@aws-sdk/client-kms';
import type { SinkTarget } from '../ports/index.ts';
import type { KmsKeyDescription, KmsKeyInspector } from '../usecases/test-connection.ts';
import type { CredentialsOption } from './aws-clients.ts';
import type { SessionCredentials } from './s3-client-provider.ts';

export type KmsClientFactory = (options: { region: string; credentials?: CredentialsOption }) => KMSClient;

export interface KmsKeyInspectorOptions {
  /** Session credentials of a target (S3ClientProvider.credentialsFor); undefined = the function's own. */
  credentialsFor?: (target: SinkTarget) => Promise<SessionCredentials | undefined>;
  createKmsClient?: KmsClientFactory;
  /** KMS endpoint (local emulators); absent on AWS. */
  endpoint?: string | undefined;
}

export function createKmsKeyInspector(options: KmsKeyInspectorOptions = {}): KmsKeyInspector {
  const createClient: KmsClientFactory =
    options.createKmsClient ??
    (({ region, credentials }) =>
      new KMSClient({
        region,
        ...(credentials ? { credentials } : {}),
        ...(options.endpoint ? { endpoint: options.endpoint } : {}),
      }));
  return {
    async describeKey(target: SinkTarget, kmsKeyArn: string): Promise<KmsKeyDescription> {
      const credentials = await options.credentialsFor?.(target);
      const region = kmsKeyArn.split(':')[3] || target.bucketRegion;
      const client = createClient({ region, ...(credentials ? { credentials } : {}) });
      try {
        const { KeyMetadata } = await client.send(new DescribeKeyCommand({ KeyId: kmsKeyArn }));
        return {
          keyState: KeyMetadata?.KeyState ?? 'Unknown',
          enabled: KeyMetadata?.Enabled === true && KeyMetadata.KeyState === 'Enabled',
          keyManager: KeyMetadata?.KeyManager,
        };
      } finally {
        client.destroy();
      }
    },
  };
}
