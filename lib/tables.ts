/**
 * The DynamoDB tables, built from their one definition in lambdas/definitions.ts
 * (keys, GSIs, TTL): on-demand, point-in-time recovery, deletion protection,
 * encrypted with the AWS managed key (aws/dynamodb: auditable in CloudTrail, and
 * operators writing connection rows need no extra key-policy grant; rows hold
 * configuration and watermarks, never event data). Retained when the stack is deleted.
 */
import { RemovalPolicy } from 'aws-cdk-lib';
import * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import { Construct } from 'constructs';
import {
  CONNECTIONS_TABLE,
  EXPORT_STATE_TABLE,
  type KeyAttribute,
  STAGING_LEDGER_TABLE,
  type TableDefinition,
} from '../lambdas/definitions.ts';

function attribute(key: KeyAttribute): dynamodb.Attribute {
  return {
    name: key.name,
    type: key.type === 'S' ? dynamodb.AttributeType.STRING : dynamodb.AttributeType.NUMBER,
  };
}

/** A table as defined in lambdas/definitions.ts, with the production defaults. */
export function tableFromDefinition(scope: Construct, definition: TableDefinition): dynamodb.Table {
  const table = new dynamodb.Table(scope, definition.logicalName, {
    partitionKey: attribute(definition.partitionKey),
    ...(definition.sortKey ? { sortKey: attribute(definition.sortKey) } : {}),
    ...(definition.timeToLiveAttribute ? { timeToLiveAttribute: definition.timeToLiveAttribute } : {}),
    billingMode: dynamodb.BillingMode.PAY_PER_REQUEST,
    pointInTimeRecoverySpecification: { pointInTimeRecoveryEnabled: true },
    deletionProtection: true,
    encryption: dynamodb.TableEncryption.AWS_MANAGED,
    removalPolicy: RemovalPolicy.RETAIN,
  });
  for (const gsi of definition.globalSecondaryIndexes ?? []) {
    table.addGlobalSecondaryIndex({
      indexName: gsi.indexName,
      partitionKey: attribute(gsi.partitionKey),
      ...(gsi.sortKey ? { sortKey: attribute(gsi.sortKey) } : {}),
      projectionType: dynamodb.ProjectionType.ALL,
    });
  }
  return table;
}

export class ExportTables extends Construct {
  /** Operator-owned connection rows (GSI byFrequency for the dispatcher). */
  readonly connections: dynamodb.Table;
  /** Watermark/lease rows, window history, monthly usage. */
  readonly exportState: dynamodb.Table;
  /** The stager's per-shard checkpoints. */
  readonly stagingLedger: dynamodb.Table;

  constructor(scope: Construct, id: string) {
    super(scope, id);
    this.connections = tableFromDefinition(this, CONNECTIONS_TABLE);
    this.exportState = tableFromDefinition(this, EXPORT_STATE_TABLE);
    this.stagingLedger = tableFromDefinition(this, STAGING_LEDGER_TABLE);
  }

  /** ARN of one of the connections table's GSIs (the dispatcher queries, never scans). */
  connectionsIndexArn(
    indexName: (typeof CONNECTIONS_TABLE.globalSecondaryIndexes)[number]['indexName'],
  ): string {
    return `${this.connections.tableArn}/index/${indexName}`;
  }
}
