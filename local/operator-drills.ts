/**
 * Operator drills for the simulation (local/simulation.ts): connection fields that can be wrong —
 * bucket name, bucket region, owner account, assume role, external id, an expired PGP key, a KMS
 * key not on the allowlist — are made wrong on one connection for a while, then fixed, as an
 * operator who mistyped a row and corrected it would. While a row is wrong, its windows fail (the
 * customer's bucket refuses them, local/customer-buckets.ts, or the exporter's preflight does)
 * and stay pinned; once fixed, they must be exported under the fixed row, so the run still ends
 * with every event once in the bucket the row names at the end.
 *
 * Fields the exporter accepts whatever their value — folder path, connection name, app, app and
 * db names, event and attribute selection — are drilled too: while wrong, windows are exported as
 * written (under another prefix, with another app's events, another selection...). Once fixed, the
 * operator converges as docs/operations.md says ("Fixing a row"): pause, `backfill
 * --committed-since <the wrong edit>`, resume, so every window committed under the wrong row is
 * written again under the fixed one and its manifest reports what it supersedes.
 */
import { generateKey } from 'openpgp';
import { validatePgpPublicKey } from '../lambdas/adapters/pgp.ts';
import type { Frequency } from '../lambdas/definitions.ts';
import type { Connection, ConnectionInput } from '../lambdas/domain/connection.ts';
import type { CustomerBucket } from './customer-buckets.ts';

const MINUTE = 60_000;
const DAY = 24 * 60 * MINUTE;

export const DRILL_OWNER_ACCOUNT = '444455556666';
export const DRILL_ROLE = {
  arn: 'arn:aws:iam::444455556666:role/sim-event-export-writer',
  externalId: 'sim-external-id-0001',
};
/** The key the deployment allows (the simulation's KMS allowlist). */
export const DRILL_KMS_KEY = 'arn:aws:kms:us-east-1:444455556666:key/5ab1e000-0000-4000-a000-000000000001';
const UNLISTED_KMS_KEY = 'arn:aws:kms:us-east-1:444455556666:key/5ab1e000-0000-4000-a000-0000000000ff';

/** Fields whose wrong value makes exports fail: the customer's bucket or the preflight refuses them. */
export type RefusedField =
  | 'bucketName'
  | 'bucketRegion'
  | 'bucketOwnerAccountId'
  | 'assumeRoleArn'
  | 'externalId'
  | 'pgpPublicKey'
  | 'kmsKeyArn';

/** Fields the exporter accepts whatever their (valid) value: a wrong one is exported as written. */
export type AcceptedField =
  | 'folderPath'
  | 'connectionName'
  | 'appId'
  | 'appName'
  | 'dbName'
  | 'events'
  | 'userAttributes'
  | 'deviceAttributes';

export type DrillField = RefusedField | AcceptedField;

/** The refused fields drilled, in order. The KMS drill comes last: a KMS key pins the region it must match. */
export const REFUSED_DRILL_FIELDS: readonly RefusedField[] = [
  'bucketName',
  'bucketRegion',
  'bucketOwnerAccountId',
  'assumeRoleArn',
  'externalId',
  'pgpPublicKey',
  'kmsKeyArn',
];

/** The accepted fields drilled, in order (after the refused ones). */
export const ACCEPTED_DRILL_FIELDS: readonly AcceptedField[] = [
  'folderPath',
  'connectionName',
  'appId',
  'appName',
  'dbName',
  'events',
  'userAttributes',
  'deviceAttributes',
];

export const DRILL_FIELDS: readonly DrillField[] = [...REFUSED_DRILL_FIELDS, ...ACCEPTED_DRILL_FIELDS];

export function isAcceptedField(field: DrillField): field is AcceptedField {
  return (ACCEPTED_DRILL_FIELDS as readonly string[]).includes(field);
}

/** One drill: `field` is made wrong on one connection at `from`, and fixed at `until`. */
export interface OperatorDrill {
  field: DrillField;
  from: number;
  until: number;
  /** The row patch that makes the field wrong on the connection's row `c`. */
  wrong(c: Connection): Partial<ConnectionInput>;
  /** The row patch that fixes it, given the row before the drill made it wrong. */
  fixed(original: Connection): Partial<ConnectionInput>;
}

/** A step of a drill: the field made wrong, fixed, or (accepted fields) the backfill after the fix. */
export type DrillStep =
  | { kind: 'wrong' }
  | { kind: 'fixed' }
  | { kind: 'backfill'; connectionId: string; committedSince: number; attempt: number };

/** A connection a drill may pick: one that exists and is not paused. */
export interface DrillCandidate {
  connectionId: string;
  frequency: Frequency;
}

/** The customer's bucket as the drills know it: the sink refuses a row that names it wrongly. */
export function drillBucket(bucketName: string): CustomerBucket {
  return { bucketName, bucketRegion: 'us-east-1', ownerAccountId: DRILL_OWNER_ACCOUNT, role: DRILL_ROLE };
}

/**
 * A PGP public key that expired a year before `now` (made with OpenPGP.js, as gpg would). Checked
 * with the exporter's own validation: a drill key that is still valid would be encrypted to, and
 * the drill would test nothing but the reading of `.gpg` files.
 */
export async function expiredPgpKey(now: Date): Promise<string> {
  const { publicKey } = await generateKey({
    type: 'ecc',
    curve: 'curve25519Legacy',
    userIDs: [{ name: 'Expired drill key', email: 'drill@example.com' }],
    date: new Date(now.getTime() - 400 * DAY),
    // OpenPGP.js takes seconds here.
    keyExpirationTime: DAY / 1000,
    format: 'armored',
  });
  const refusal = await validatePgpPublicKey(publicKey, now);
  if (!refusal?.message.includes('expired'))
    throw new Error(`the drill's PGP key is not refused as expired at ${now.toISOString()}`);
  return publicKey;
}

/**
 * The wrong value of a refused field and its fix. The fixes leave the row right for the rest of the
 * run (owner account and role set to the bucket's; the PGP key removed, since the simulation reads
 * its files as plain gzip; the allowlisted KMS key).
 */
function refusedPatches(
  field: RefusedField,
  bucketName: string,
  expiredKey: string,
): { wrong: Partial<ConnectionInput>; fixed: Partial<ConnectionInput> } {
  const role = { assumeRoleArn: DRILL_ROLE.arn, externalId: DRILL_ROLE.externalId };
  switch (field) {
    case 'bucketName':
      return { wrong: { bucketName: `${bucketName}-typo`.slice(0, 63) }, fixed: { bucketName } };
    case 'bucketRegion':
      return { wrong: { bucketRegion: 'eu-west-1' }, fixed: { bucketRegion: 'us-east-1' } };
    case 'bucketOwnerAccountId':
      return {
        wrong: { bucketOwnerAccountId: '999988887777' },
        fixed: { bucketOwnerAccountId: DRILL_OWNER_ACCOUNT },
      };
    case 'assumeRoleArn':
      return {
        wrong: { ...role, assumeRoleArn: 'arn:aws:iam::444455556666:role/someone-else' },
        fixed: role,
      };
    case 'externalId':
      return { wrong: { ...role, externalId: 'sim-external-id-wrong' }, fixed: role };
    case 'pgpPublicKey':
      return { wrong: { pgpPublicKey: expiredKey }, fixed: { pgpPublicKey: undefined } };
    case 'kmsKeyArn':
      return { wrong: { kmsKeyArn: UNLISTED_KMS_KEY }, fixed: { kmsKeyArn: DRILL_KMS_KEY } };
  }
}

/**
 * A wrong but valid value of an accepted field, made from the row it replaces: another folder or
 * name (a prefix no other connection holds), the run's other app, names with a typo, another event
 * or attribute selection.
 */
function acceptedWrong(
  field: AcceptedField,
  c: Connection,
  apps: readonly string[],
): Partial<ConnectionInput> {
  switch (field) {
    case 'folderPath':
      return { folderPath: c.folderPath ? `${c.folderPath}-typo` : 'misplaced' };
    case 'connectionName':
      return { connectionName: `${c.connectionName}-typo` };
    case 'appId':
      return { appId: apps.find((app) => app !== c.appId) ?? `${c.appId}-typo` };
    case 'appName':
      return { appName: `${c.appName} (typo)` };
    case 'dbName':
      return { dbName: `${c.dbName} (typo)` };
    case 'events':
      return {
        events:
          c.events.mode === 'ALL' ? { mode: 'SELECTED', names: ['PURCHASE', 'SEARCH'] } : { mode: 'ALL' },
      };
    case 'userAttributes':
      return { userAttributes: c.userAttributes === 'ALL' ? ['city'] : 'ALL' };
    case 'deviceAttributes':
      return { deviceAttributes: c.deviceAttributes === 'ALL' ? ['os'] : 'ALL' };
  }
}

/** A drill's patches: static for a refused field; for an accepted one, from the row and back to it. */
function drillPatches(
  field: DrillField,
  input: { bucketName: string; apps: readonly string[] },
  expiredKey: string,
): Pick<OperatorDrill, 'wrong' | 'fixed'> {
  if (isAcceptedField(field)) {
    return {
      wrong: (c) => acceptedWrong(field, c, input.apps),
      fixed: (original) => ({ [field]: original[field] }),
    };
  }
  const { wrong, fixed } = refusedPatches(field, input.bucketName, expiredKey);
  return { wrong: () => wrong, fixed: () => fixed };
}

/**
 * One drill per field, one after the other over [start, end): wrong from a random instant for 20
 * minutes to an hour or more (a third of the run's share of each field), fixed before the next
 * drill starts (and before `end`). The connection is picked when the drill starts ({@link drillTarget}).
 */
export async function planOperatorDrills(input: {
  random: () => number;
  bucketName: string;
  /** The run's apps: the appId drill moves a connection to another one. */
  apps: readonly string[];
  start: number;
  end: number;
  fields?: readonly DrillField[];
}): Promise<OperatorDrill[]> {
  const { random, start, end } = input;
  const fields = input.fields ?? DRILL_FIELDS;
  const expiredKey = fields.includes('pgpPublicKey') ? await expiredPgpKey(new Date(start)) : '';
  const slot = (end - start) / fields.length;
  return fields.map((field, i) => {
    const from = start + i * slot + random() * slot * 0.3;
    const until = from + 20 * MINUTE + random() * Math.max(0, slot * 0.6 - 20 * MINUTE);
    return { field, from, until, ...drillPatches(field, input, expiredKey) };
  });
}

/**
 * The connection a drill makes wrong, picked when it starts: one exported every 15 minutes when
 * there is one, so that exports meet the wrong row (on a weekly connection nothing would be
 * exported while it is wrong, and the drill would test nothing). Undefined without candidates.
 */
export function drillTarget(random: () => number, candidates: readonly DrillCandidate[]): string | undefined {
  const frequent = candidates.filter((c) => c.frequency === 'FIFTEEN_MINUTES');
  const pool = frequent.length > 0 ? frequent : candidates;
  return pool[Math.floor(random() * pool.length)]?.connectionId;
}
