/**
 * docs/operations.md (and the guides) against the software: every context key lib/config.ts
 * reads is documented with bounds that configFromContext enforces; every stack output a runbook
 * names exists; every AWS CLI step uses AWS CLI v2 syntax; every s3-event-export step names a
 * command and options the CLI has; the EventBridge events carry the documented fields.
 */
import { readFileSync } from 'node:fs';
import { EventBridgeClient, PutEventsCommand } from '@aws-sdk/client-eventbridge';
import { mockClient } from 'aws-sdk-client-mock';
import { describe, expect, it } from 'vitest';
import { GLOBAL_OPTIONS } from '../../cli/main.ts';
import { COMMANDS, findCommand } from '../../cli/registry.ts';
import { EVENT_SOURCE, EventBridgeNotifier } from '../../lambdas/adapters/eventbridge-notifier.ts';
import { configFromContext } from '../../lib/config.ts';
import { synthesize } from '../cdk/synth.ts';

const root = new URL('../../', import.meta.url);
const read = (path: string) => readFileSync(new URL(path, root), 'utf8');
const operations = read('docs/operations.md');
const GUIDES = ['docs/operations.md', 'docs/producers.md', 'docs/customers.md', 'docs/security.md'];

/** Fenced code blocks (with their info string). */
function codeBlocks(doc: string): { info: string; body: string }[] {
  return [...doc.matchAll(/^( *)```([^\n]*)\n([\s\S]*?)^\1```$/gm)].map((m) => ({
    info: (m[2] ?? '').trim(),
    body: (m[3] ?? '').replace(new RegExp(`^${m[1]}`, 'gm'), ''),
  }));
}

/** Shell commands of the sh blocks, continuation lines joined, comments dropped. */
function shellCommands(doc: string): string[] {
  return codeBlocks(doc)
    .filter((b) => b.info === 'sh')
    .flatMap((b) => b.body.replace(/\\\n\s*/g, ' ').split('\n'))
    .map((line) => line.replace(/\s+#.*$/, '').trim())
    .filter((line) => line && !line.startsWith('#'));
}

/** The config table's rows: key → bounds cell. */
function configRows(): Map<string, string> {
  const rows = new Map<string, string>();
  for (const m of operations.matchAll(/^\| `([A-Za-z]+)`(?:, `([A-Za-z]+)`)? \|[^|]*\|([^|]*)\|/gm)) {
    rows.set(m[1] as string, (m[3] ?? '').trim());
    if (m[2]) rows.set(m[2], (m[3] ?? '').trim());
  }
  return rows;
}

describe('context keys', () => {
  it('every key lib/config.ts and bin/app.ts read is in the configuration table', () => {
    const asked = new Set<string>();
    configFromContext((key) => {
      asked.add(key);
      return undefined;
    });
    const app = read('bin/app.ts');
    for (const m of app.matchAll(/context\('([A-Za-z]+)'\)/g)) asked.add(m[1] as string);
    expect(asked.size).toBeGreaterThan(15);
    const rows = configRows();
    for (const key of asked) expect(rows.has(key), `context key ${key} is not documented`).toBe(true);
  });

  it('every documented numeric range is the one configFromContext enforces', () => {
    const ranges = [...configRows()].filter(([, bounds]) => /^(\w+|\d+)–\d+$/.test(bounds));
    expect(ranges.length).toBeGreaterThanOrEqual(11);
    for (const [key, bounds] of ranges) {
      const [low, high] = bounds.split('–') as [string, string];
      // A lower bound named after another key: probe with that key at its own minimum.
      const base: Record<string, unknown> = /^\d+$/.test(low) ? {} : { [low]: 5 };
      const min = /^\d+$/.test(low) ? Number(low) : 5;
      const max = Number(high);
      const parse = (value: number) => () => configFromContext((k) => ({ ...base, [key]: value })[k]);
      expect(parse(min), `${key}=${min}`).not.toThrow();
      expect(parse(max), `${key}=${max}`).not.toThrow();
      expect(parse(min - 1), `${key}=${min - 1}`).toThrow(new RegExp(key));
      expect(parse(max + 1), `${key}=${max + 1}`).toThrow(new RegExp(key));
    }
  });
});

describe('runbook steps', () => {
  const outputs = Object.keys(synthesize().template.toJSON().Outputs as object);

  it('every <Name> placeholder of the runbooks and policies is a stack output', () => {
    const names = new Set<string>();
    for (const doc of GUIDES)
      for (const m of read(doc).matchAll(/<([A-Z][A-Za-z]+(?:Name|Arn|Url))>/g)) names.add(m[1] as string);
    expect(names.size).toBeGreaterThan(8);
    for (const name of names) expect(outputs, `<${name}>`).toContain(name);
  });

  it('AWS CLI steps use AWS CLI v2 syntax: a JSON --payload comes with --cli-binary-format raw-in-base64-out', () => {
    const aws = GUIDES.flatMap((doc) => shellCommands(read(doc))).filter((c) => c.startsWith('aws '));
    expect(aws.length).toBeGreaterThan(5);
    for (const command of aws) {
      if (command.startsWith('aws lambda invoke')) {
        expect(command).toContain('--cli-binary-format raw-in-base64-out');
        const payload = /--payload '([^']+)'/.exec(command)?.[1];
        expect(() => JSON.parse(payload ?? ''), command).not.toThrow();
      }
      if (command.startsWith('aws sqs start-message-move-task'))
        expect(command).toMatch(/--source-arn <\w+QueueArn>/);
      if (command.startsWith('aws sqs ')) expect(command).toMatch(/--queue-url <\w+Url>|--source-arn/);
    }
    // The inline mentions outside blocks follow the same rule.
    for (const doc of GUIDES)
      for (const m of read(doc).matchAll(/`aws lambda invoke[^`]*`/g))
        expect(m[0]).toContain('raw-in-base64-out');
  });

  it('every s3-event-export step names a command of the CLI and only options it knows', () => {
    const steps = GUIDES.flatMap((doc) => shellCommands(read(doc)))
      .flatMap((c) => c.split(/\$\(|\|/))
      .map((c) => c.replace(/^.*?\b(s3-event-export )/, '$1').replace(/\)"?$/, ''))
      .filter((c) => c.startsWith('s3-event-export '));
    expect(steps.length).toBeGreaterThan(10);
    for (const step of steps) {
      const words = step.split(/\s+/).slice(1);
      const positional = words.filter((w) => !w.startsWith('-'));
      const found = findCommand(positional, COMMANDS);
      expect(found, step).toBeDefined();
      const known = { ...GLOBAL_OPTIONS, ...found?.command.options };
      for (const option of words.filter((w) => w.startsWith('--')))
        expect(Object.keys(known), `${step}: ${option}`).toContain(option.slice(2).split('=')[0]);
    }
  });

  it('the operator policy is valid JSON IAM policy', () => {
    const [policy] = codeBlocks(operations).filter((b) => b.info === 'json operator-policy');
    const parsed = JSON.parse(policy?.body ?? '') as { Version: string; Statement: { Action: string[] }[] };
    expect(parsed.Version).toBe('2012-10-17');
    expect(parsed.Statement.flatMap((s) => s.Action)).toEqual(
      expect.arrayContaining([
        'sts:AssumeRole',
        'sts:TagSession',
        'sqs:StartMessageMoveTask',
        'cloudformation:DescribeStacks',
      ]),
    );
  });
});

describe('EventBridge events', () => {
  it('each detail-type is documented with exactly the fields the exporter sends', async () => {
    const eventBridge = mockClient(EventBridgeClient);
    eventBridge.on(PutEventsCommand).resolves({ FailedEntryCount: 0, Entries: [{ EventId: 'e' }] });
    const notifier = new EventBridgeNotifier(new EventBridgeClient({ region: 'us-east-1' }));
    const at = new Date('2026-11-02T10:15:00Z');
    await notifier.windowCommitted({
      connectionId: 'conn_01JD7Z6T5Q9Y3M2K8V4W1X0ABC',
      windowStart: new Date('2026-11-02T10:00:00Z'),
      windowEnd: at,
      sequence: 1,
      records: 3,
      bytes: 120,
      files: 1,
      recovered: true,
    } as Parameters<EventBridgeNotifier['windowCommitted']>[0]);
    await notifier.exportFailed({
      connectionId: 'conn_01JD7Z6T5Q9Y3M2K8V4W1X0ABC',
      windowEnd: at,
      diagnosis: {
        code: 'BUCKET_NOT_FOUND',
        message: 'm',
        at: at.toISOString(),
        windowEnd: at.toISOString(),
      },
    });
    const sent = eventBridge.commandCalls(PutEventsCommand).map((c) => c.args[0].input.Entries?.[0]);
    eventBridge.restore();
    expect(sent.map((e) => e?.DetailType)).toEqual([
      'ExportSucceeded',
      'ConnectionRecovered',
      'ExportFailed',
    ]);
    for (const entry of sent) {
      expect(entry?.Source).toBe(EVENT_SOURCE);
      const row = new RegExp(`^\\| \`${entry?.DetailType}\` \\| [^|]+ \\| ([^|]+) \\|$`, 'm').exec(
        operations,
      );
      expect(row, `${entry?.DetailType} row`).not.toBeNull();
      const documented =
        row?.[1]?.trim() === 'as `ExportSucceeded`'
          ? /^\| `ExportSucceeded` \| [^|]+ \| ([^|]+) \|$/m.exec(operations)?.[1]
          : row?.[1];
      const fields = [...(documented ?? '').matchAll(/`(\w+)`/g)].map((m) => m[1]);
      const detail = JSON.parse(entry?.Detail ?? '{}') as Record<string, unknown>;
      expect(fields.slice(0, Object.keys(detail).length).sort(), entry?.DetailType).toEqual(
        Object.keys(detail).sort(),
      );
    }
    const [pattern] = codeBlocks(operations).filter((b) => b.info === 'json eventbridge-pattern');
    expect(JSON.parse(pattern?.body ?? '')).toMatchObject({
      source: [EVENT_SOURCE],
      'detail-type': ['ExportFailed'],
    });
  });
});
