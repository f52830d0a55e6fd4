/** Connection rows for integration tests that share one set of engines per file. */
import { type Connection, type ConnectionInput, parseConnection } from '../../lambdas/domain/connection.ts';

/**
 * A factory of fresh connections: each call gets its own id, app and connection name (so tests
 * sharing the engines never see each other's state), exporting ALL events every 15 minutes.
 */
export function connectionFactory(options: {
  /** Letters/digits for the connection id, e.g. `failpoint`. */
  idPrefix: string;
  /** Short prefix for app id and connection name, e.g. `fp`. */
  namePrefix: string;
  appName: string;
  bucketName: string;
}): (overrides?: Partial<ConnectionInput>) => Connection {
  let next = 0;
  return (overrides = {}) => {
    next += 1;
    const n = String(next).padStart(4, '0');
    return parseConnection({
      connectionId: `conn_${options.idPrefix}${n}`,
      appId: `app-${options.namePrefix}-${n}`,
      appName: options.appName,
      dbName: `${options.appName} DB`,
      connectionName: `${options.namePrefix}-${n}`,
      bucketName: options.bucketName,
      bucketRegion: 'us-east-1',
      events: { mode: 'ALL' },
      frequency: 'FIFTEEN_MINUTES',
      createdAt: '2026-11-02T10:00:00.000Z',
      ...overrides,
    });
  };
}
