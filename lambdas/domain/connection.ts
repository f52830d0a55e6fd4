/**
 * The export connection row (docs/product.md#connections): one schema that validates every write
 * path and every read, and also yields the published JSON Schema
 * (docs/connection.schema.json). Messages name the field and the valid form and
 * never echo secret values (PGP keys, external ids).
 */
import { z } from 'zod';
import { FREQUENCIES } from '../definitions.ts';
import { DomainError } from './errors.ts';
import { longestObjectKeyBytes, MAX_OBJECT_KEY_BYTES } from './object-keys.ts';

/*
 * Every structural rule is a zod check that z.toJSONSchema can publish (a `regex`, a length, an
 * enum, a shape) — never a `.refine` function, which the JSON Schema would silently drop — so
 * docs/connection.schema.json and validateConnection agree (test/unit/schema-agreement.test.ts
 * checks it over generated rows). Rules a schema cannot state are in CHECKS_BEYOND_SCHEMA.
 */

/**
 * Characters a name must not hold: control characters (C0, DEL, C1), format characters
 * (bidi overrides and isolates, zero-width characters, the BOM, soft hyphen...), the line and
 * paragraph separators U+2028/U+2029, and lone surrogates (ill-formed UTF-16: two different
 * ones encode to the same UTF-8 bytes, so two names would give one object key).
 */
const UNSAFE_CHARS = /[\p{Cc}\p{Cf}\p{Zl}\p{Zp}\p{Cs}]/u;

function unsafeCharacter(s: string): string | undefined {
  const found = UNSAFE_CHARS.exec(s)?.[0];
  if (found === undefined) return undefined;
  return `U+${(found.codePointAt(0) ?? 0).toString(16).toUpperCase().padStart(4, '0')}`;
}

/** Refinements every name field shares: printable, well-formed text (optionally without edge white space). */
function printable<T extends z.ZodString>(schema: T, field: string, validForm: string, edges = true) {
  const checked = schema.superRefine((s, ctx) => {
    const found = unsafeCharacter(s);
    if (found) {
      ctx.addIssue({
        code: 'custom',
        message: `${field} must not contain control characters, format characters (bidi, zero-width), line/paragraph separators or lone surrogates (found ${found} at position ${s.search(UNSAFE_CHARS)}); ${validForm}`,
      });
    }
    if (edges && s.trim() !== s) {
      ctx.addIssue({
        code: 'custom',
        message: `${field} must not start or end with white space; ${validForm}`,
      });
    }
  });
  return checked;
}

const connectionId = z
  .string({ error: 'connectionId is required: "conn_" followed by a ULID or UUID' })
  .regex(/^conn_[0-9A-Za-z-]{10,64}$/, {
    error: 'connectionId must be "conn_" followed by a ULID or UUID, e.g. conn_01JD7Z6T5Q9Y3M2K8V4W1X0ABC',
  });

const appId = z
  .string({ error: 'appId is required: the id of the app whose events are exported' })
  .regex(/^[A-Za-z0-9_.-]{1,64}$/, {
    error: 'appId must be 1-64 characters of letters, digits, "_", "." or "-"',
  });

const displayName = (field: string) =>
  printable(
    z
      .string({ error: `${field} is required: a non-empty string written into every record` })
      .min(1, { error: `${field} must not be empty` })
      .max(256, { error: `${field} must be at most 256 characters` }),
    field,
    'use 1-256 printable characters',
    false,
  );

const connectionName = printable(
  z
    .string({ error: 'connectionName is required: 1-100 characters, no "/"' })
    .min(1, { error: 'connectionName must not be empty (1-100 characters, no "/")' })
    .max(100, { error: 'connectionName must be at most 100 characters' })
    .regex(/^[^/]*$/, {
      error: 'connectionName must not contain "/" (it is one folder of the object key)',
    })
    .regex(/^(?!\.{1,2}$)/, {
      error: 'connectionName must not be "." or ".." (it is a folder of the object key)',
    }),
  'connectionName',
  'use 1-100 printable characters without "/", e.g. daily_events',
);

const bucketName = z
  .string({ error: 'bucketName is required: the name of the customer S3 bucket' })
  .regex(/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/, {
    error:
      'bucketName must be a valid S3 bucket name: 3-63 characters of lowercase letters, digits, "." and "-", starting and ending with a letter or digit',
  })
  .regex(/^(?![\s\S]*(\.\.|\.-|-\.))/, {
    error: 'bucketName must not contain "..", ".-" or "-."',
  })
  .regex(/^(?!\d+\.\d+\.\d+\.\d+$)/, {
    error: 'bucketName must not be formatted as an IP address',
  });

const bucketRegion = z
  .string({ error: 'bucketRegion is required: the AWS region of the bucket, e.g. ap-south-1' })
  .regex(/^[a-z]{2}(-gov|-iso[a-z]?)?-[a-z]+-\d{1,2}$/, {
    error: 'bucketRegion must be an AWS region code such as ap-south-1 or us-east-1',
  });

const accountId = z.string().regex(/^\d{12}$/, {
  error: 'bucketOwnerAccountId must be the 12-digit AWS account id of the bucket owner',
});

/** Most folders in a folderPath. */
export const MAX_FOLDERS = 32;

const FOLDER_FORM = 'use printable "/"-separated folder names, e.g. my_folder/sub_folder';

const folderPath = printable(
  z
    .string()
    .min(1, { error: 'folderPath must not be empty; omit it for no folder' })
    .max(512, { error: 'folderPath must be at most 512 characters' })
    .regex(/^(?!\/)[\s\S]*(?<!\/)$/, {
      error: 'folderPath must not start or end with "/", e.g. my_folder/sub_folder',
    })
    .regex(/^(?![\s\S]*\/\/)/, { error: 'folderPath must not contain "//"' })
    .regex(/^(?!(?:[\s\S]*\/)?\.{1,2}(?:\/|$))/, {
      error: 'folderPath must not contain "." or ".." segments',
    })
    .regex(/^[^/]*(?:\/[^/]*){0,31}$/, {
      // Each folder is a prefix claim written in one DynamoDB transaction (domain/namespaces.ts).
      error: `folderPath must have at most ${MAX_FOLDERS} folders`,
    })
    .regex(/^(?!\s)(?![\s\S]*\/\s)(?![\s\S]*\s\/)(?![\s\S]*\s$)/, {
      error: `folderPath folder names must not start or end with white space; ${FOLDER_FORM}`,
    }),
  'folderPath',
  FOLDER_FORM,
);

const eventName = printable(
  z
    .string()
    .min(1, { error: 'an event name must not be empty' })
    .max(256, { error: 'an event name must be at most 256 characters' }),
  'an event name',
  'use the event name or code as sent by the app',
  false,
);

const events = z.discriminatedUnion(
  'mode',
  [
    z.object({ mode: z.literal('ALL') }).strict(),
    z
      .object({
        mode: z.literal('SELECTED'),
        names: z
          .array(eventName, { error: 'events.names must be a list of event names or event codes' })
          .min(1, { error: 'events.names must list at least one event name (or use {"mode":"ALL"})' }),
      })
      .strict(),
  ],
  { error: 'events must be {"mode":"ALL"} or {"mode":"SELECTED","names":["EVENT_NAME", ...]}' },
);

const attributeSelection = (field: string) =>
  z.union(
    [
      z.literal('ALL'),
      z.array(
        printable(
          z.string().min(1, { error: `${field} names must not be empty` }),
          `${field} names`,
          'use the attribute name as sent by the app',
          false,
        ),
        {
          error: `${field} must be "ALL" or a list of attribute names`,
        },
      ),
    ],
    { error: `${field} must be "ALL" or a list of attribute names` },
  );

const frequency = z.enum(FREQUENCIES, {
  error: `frequency must be one of ${FREQUENCIES.join(', ')}`,
});

const pgpPublicKey = z
  .string()
  .regex(/^(?![\s\S]*-----BEGIN PGP PRIVATE KEY BLOCK-----)/, {
    error: 'pgpPublicKey: this is a private key; paste the public key (gpg --armor --export <key id>)',
  })
  .regex(/-----BEGIN PGP PUBLIC KEY BLOCK-----[\s\S]+-----END PGP PUBLIC KEY BLOCK-----/, {
    error:
      'pgpPublicKey must be an ASCII-armored OpenPGP public key ("-----BEGIN PGP PUBLIC KEY BLOCK-----" ... ), as printed by gpg --armor --export <key id>',
  });

const kmsKeyArn = z
  .string()
  .regex(
    /^arn:aws[a-z-]*:kms:[a-z0-9-]+:\d{12}:key\/(mrk-[0-9a-f]{32}|[0-9a-f]{8}(-[0-9a-f]{4}){3}-[0-9a-f]{12})$/,
    {
      error:
        'kmsKeyArn must be a KMS key ARN, e.g. arn:aws:kms:ap-south-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab (not an alias)',
    },
  );

const assumeRoleArn = z.string().regex(/^arn:aws[a-z-]*:iam::\d{12}:role\/[\w+=,.@/-]{1,512}$/, {
  error: 'assumeRoleArn must be an IAM role ARN, e.g. arn:aws:iam::123456789012:role/event-export-writer',
});

const externalId = z.string().regex(/^[\w+=,.@:/-]{2,1224}$/, {
  error: 'externalId must be 2-1224 characters of letters, digits and +=,.@:/-',
});

const isoInstant = (field: string) =>
  z.iso.datetime({ offset: true, error: `${field} must be an ISO-8601 instant, e.g. 2026-11-01T00:00:00Z` });

export const CONNECTION_STATUSES = ['ACTIVE', 'PAUSED', 'DISABLED'] as const;
export type ConnectionStatus = (typeof CONNECTION_STATUSES)[number];

/** Fields that only come together; published as the JSON Schema's `dependentRequired`. */
const REQUIRED_TOGETHER = {
  assumeRoleArn: {
    requires: 'externalId',
    message:
      'externalId is required with assumeRoleArn: the external id the customer put in the role trust policy',
  },
  externalId: {
    requires: 'assumeRoleArn',
    message: 'assumeRoleArn is required when externalId is set (or remove externalId)',
  },
} as const;

/**
 * What validateConnection and the commands check that docs/connection.schema.json cannot express
 * (listed in docs/operations.md, "What the schema does not check").
 */
export const CHECKS_BEYOND_SCHEMA = [
  {
    field: 'kmsKeyArn',
    rule: "the key is in the bucket's region (bucketRegion)",
    checkedBy: 'every validation (validateConnection)',
  },
  {
    field: 'pgpPublicKey',
    rule: 'parses as an OpenPGP public key that can encrypt (not expired, not revoked)',
    checkedBy: 'connections test and every export (preflight)',
  },
  {
    field: 'kmsKeyArn',
    rule: "is in the deployment's KMS key allowlist (kmsKeyAllowlist context key, KMS_KEY_ALLOWLIST)",
    checkedBy: 'connections test and every export (preflight)',
  },
  {
    field: 'connectionName',
    rule: 'is unique per app (appId) across the Connections table',
    checkedBy: 'connections put',
  },
  {
    field: 'appName, dbName, connectionName, folderPath, event and attribute names',
    rule: 'printable: no control, format (bidi, zero-width) or line/paragraph separator characters, no lone surrogates, no edge white space (the error names the character and its position)',
    checkedBy: 'every validation (validateConnection)',
  },
  {
    field: 'folderPath, connectionName',
    rule: "the prefix does not equal, contain or lie inside another connection's prefix in the same bucket; the longest key fits 1,024 UTF-8 bytes",
    checkedBy: 'connections put (atomic prefix claims), every export and the hourly sweep',
  },
] as const;

export const connectionSchema = z
  .object({
    connectionId,
    appId,
    appName: displayName('appName'),
    dbName: displayName('dbName'),
    connectionName,
    bucketName,
    bucketRegion,
    bucketOwnerAccountId: accountId.optional(),
    folderPath: folderPath.optional(),
    events,
    userAttributes: attributeSelection('userAttributes').default('ALL'),
    deviceAttributes: attributeSelection('deviceAttributes').default('ALL'),
    frequency,
    pgpPublicKey: pgpPublicKey.optional(),
    kmsKeyArn: kmsKeyArn.optional(),
    assumeRoleArn: assumeRoleArn.optional(),
    externalId: externalId.optional(),
    status: z
      .enum(CONNECTION_STATUSES, { error: `status must be one of ${CONNECTION_STATUSES.join(', ')}` })
      .default('ACTIVE'),
    startFrom: isoInstant('startFrom').optional(),
    createdAt: isoInstant('createdAt'),
    updatedAt: isoInstant('updatedAt').optional(),
  })
  .strict()
  .superRefine((row, ctx) => {
    for (const [field, { requires, message }] of Object.entries(REQUIRED_TOGETHER)) {
      const present = (name: string) => (row as Record<string, unknown>)[name] !== undefined;
      if (present(field) && !present(requires)) ctx.addIssue({ code: 'custom', path: [requires], message });
    }
    checkKeyLength(row, ctx);
    if (row.kmsKeyArn) {
      const keyRegion = row.kmsKeyArn.split(':')[3];
      if (keyRegion !== row.bucketRegion) {
        ctx.addIssue({
          code: 'custom',
          path: ['kmsKeyArn'],
          message: `kmsKeyArn is in ${keyRegion} but the bucket is in ${row.bucketRegion}: SSE-KMS needs a key in the bucket's region`,
        });
      }
    }
  });

/** Every key the row can produce (data parts, manifest, probe) must fit S3's key limit. */
function checkKeyLength(
  row: { connectionName: string; folderPath?: string | undefined; pgpPublicKey?: string | undefined },
  ctx: z.RefinementCtx,
): void {
  const bytes = longestObjectKeyBytes(row);
  if (bytes <= MAX_OBJECT_KEY_BYTES) return;
  const field = row.folderPath ? 'folderPath' : 'connectionName';
  ctx.addIssue({
    code: 'custom',
    path: [field],
    message: `${field}: folderPath and connectionName make object keys of up to ${bytes} UTF-8 bytes, over S3's limit of ${MAX_OBJECT_KEY_BYTES}; shorten them by at least ${bytes - MAX_OBJECT_KEY_BYTES} bytes (non-ASCII characters take 2-4 bytes each)`,
  });
}

export type Connection = z.output<typeof connectionSchema>;
export type ConnectionInput = z.input<typeof connectionSchema>;

export interface FieldError {
  /** Dotted path of the offending field, e.g. `events.names`. */
  field: string;
  message: string;
}

export class InvalidConnectionError extends DomainError {
  override readonly name = 'InvalidConnectionError';
  constructor(
    readonly connectionId: string | undefined,
    readonly errors: FieldError[],
  ) {
    super(
      `connection ${connectionId ?? '(no connectionId)'} is invalid: ${errors.map((e) => `${e.field}: ${stripFieldPrefix(e)}`).join('; ')}`,
    );
  }
}

function stripFieldPrefix(e: FieldError): string {
  const leaf = e.field.split('.').pop() ?? e.field;
  return e.message.startsWith(`${leaf} `) || e.message.startsWith(`${leaf}:`)
    ? e.message.slice(leaf.length).replace(/^:?\s*/, '')
    : e.message;
}

export type ValidationResult = { ok: true; connection: Connection } | { ok: false; errors: FieldError[] };

/** Validate a raw row (from DynamoDB, a file or the CLI). Never throws, never echoes secret values. */
export function validateConnection(raw: unknown): ValidationResult {
  const parsed = connectionSchema.safeParse(raw);
  if (parsed.success) return { ok: true, connection: parsed.data };
  const errors = parsed.error.issues.map((issue): FieldError => {
    const field = issue.path.length ? issue.path.join('.') : '(row)';
    let message = issue.message;
    if (issue.code === 'unrecognized_keys') {
      message = `unknown field(s) ${issue.keys.map((k) => JSON.stringify(k)).join(', ')}: remove them (see docs/connection.schema.json)`;
    } else if (issue.code === 'invalid_type' && issue.path.length === 0) {
      message = 'a connection row must be a JSON object';
    }
    return { field, message };
  });
  return { ok: false, errors };
}

/**
 * The checks that need more than the row: whether the PGP key is usable as of now (parsed,
 * not expired or revoked, strong enough) and whether the KMS key is on this deployment's
 * allowlist. Injected, so the domain stays free of OpenPGP and of the deployment's settings.
 */
export interface ConnectionChecks {
  /** The refusal of `pgpPublicKey` as of `now`, or undefined when the key is usable. */
  pgpPublicKey(armored: string, now: Date): Promise<FieldError | undefined>;
  /** The refusal of `kmsKeyArn`, or undefined when this deployment may use the key. */
  kmsKeyArn(kmsKeyArn: string): FieldError | undefined;
}

/**
 * What the exporter refuses in a well-formed row, in the order it checks (KMS key, then PGP
 * key). Every write path and the exporter use this one function, so the CLI refuses exactly
 * what an export would.
 */
export async function connectionRefusals(
  connection: Connection,
  checks: ConnectionChecks,
  now: Date,
): Promise<FieldError[]> {
  const refusals: FieldError[] = [];
  const kms = connection.kmsKeyArn ? checks.kmsKeyArn(connection.kmsKeyArn) : undefined;
  if (kms) refusals.push(kms);
  const pgp = connection.pgpPublicKey ? await checks.pgpPublicKey(connection.pgpPublicKey, now) : undefined;
  if (pgp) refusals.push(pgp);
  return refusals;
}

/** {@link validateConnection}, then {@link connectionRefusals}: the whole verdict on a row as of `now`. */
export async function validateConnectionAt(
  raw: unknown,
  checks: ConnectionChecks,
  now: Date,
): Promise<ValidationResult> {
  const result = validateConnection(raw);
  if (!result.ok) return result;
  const refusals = await connectionRefusals(result.connection, checks, now);
  return refusals.length ? { ok: false, errors: refusals } : result;
}

/** Validate or throw {@link InvalidConnectionError}. */
export function parseConnection(raw: unknown): Connection {
  const result = validateConnection(raw);
  if (result.ok) return result.connection;
  const id =
    raw && typeof raw === 'object' && typeof (raw as { connectionId?: unknown }).connectionId === 'string'
      ? (raw as { connectionId: string }).connectionId
      : undefined;
  throw new InvalidConnectionError(id, result.errors);
}

/** The JSON Schema published as docs/connection.schema.json. */
export function connectionJsonSchema(): Record<string, unknown> {
  const schema = z.toJSONSchema(connectionSchema, { io: 'input', unrepresentable: 'any' }) as Record<
    string,
    unknown
  >;
  return {
    $id: 'https://github.com/s3-event-export/s3-event-export/docs/connection.schema.json',
    title: 'Export connection row (DynamoDB table Connections)',
    ...schema,
    dependentRequired: Object.fromEntries(
      Object.entries(REQUIRED_TOGETHER).map(([field, { requires }]) => [field, [requires]]),
    ),
  };
}
