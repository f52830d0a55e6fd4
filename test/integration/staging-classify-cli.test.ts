/**
 * `s3-event-export staging classify` on the local engines (DynamoDB Local, s3rver), configured as
 * an operator configures the CLI: units staged by the stager's use case on the real adapters,
 * with a batch the event source gave up on before any attempt reached the ledger (a gap the row
 * never heard of) and a unit abandoned in flight; the command answers from the segment keys and
 * the ledger row.
 */
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { runCli } from '../../cli/main.ts';
import { ENV } from '../../lambdas/definitions.ts';
import { segmentKey } from '../../lambdas/domain/staging-layout.ts';
import { stageBatch } from '../../lambdas/usecases/stage-batch.ts';
import { ManualClock } from '../../local/clock.ts';
import { createHarness, type Harness } from '../../local/harness.ts';
import { useLocalEngines } from '../support/engines.ts';

const engines = useLocalEngines();
const clock = new ManualClock(new Date('2026-11-03T08:00:00Z'));
const SHARD = 'shardId-000000000042';
const ARRIVED = '2026-11-03T08:00:00.000Z';
const BASE = 49_590_338_271_490_256_608_559_692_538_361_571_095_921_575_989_136_588_898n;
const seq = (n: number) => String(BASE + BigInt(n));
const span = (first: number, last: number) => ({ firstSequence: seq(first), lastSequence: seq(last) });

beforeAll(async () => {
  for (const [name, value] of Object.entries(engines().env)) vi.stubEnv(name, value);
  harness = await createHarness(engines(), { clock });
});
afterAll(() => vi.unstubAllEnvs());

/** The stager's adapters on the engines (the harness's own staging bucket), and the CLI's environment. */
let harness: Harness;
const env = () => ({ ...engines().env, [ENV.stagingBucket]: harness.config.stagingBucket });

/** Records first..last of the shard, as the event source hands them to the stager. */
function records(first: number, last: number) {
  return Array.from({ length: last - first + 1 }, (_, i) => ({
    sequenceNumber: seq(first + i),
    data: Buffer.from(JSON.stringify({ app_id: 'app-classify', event: { event_uuid: `c-${first + i}` } })),
    approximateArrivalTimestamp: clock.now().getTime() / 1000,
  }));
}

async function classify(first: number, last: number, ...more: string[]) {
  let stdout = '';
  let stderr = '';
  const code = await runCli(
    [
      'staging',
      'classify',
      '--shard',
      SHARD,
      '--first',
      seq(first),
      '--last',
      seq(last),
      '--arrived',
      ARRIVED,
      ...more,
    ],
    { env: env(), clock, io: { stdout: (t) => (stdout += t), stderr: (t) => (stderr += t) } },
  );
  return { code, stdout, stderr };
}

const json = async (first: number, last: number) => {
  const run = await classify(first, last, '--json');
  expect(run.stderr).toBe('');
  expect(run.code).toBe(0);
  return JSON.parse(run.stdout) as Record<string, unknown>;
};

describe('staging classify', () => {
  beforeAll(async () => {
    const { ledger, staging: store } = harness.driver.runtime;
    const deps = { ledger, store, clock };
    // Units 1-10 and 11-20 staged; 21-30 was given up on before any attempt wrote the ledger.
    await stageBatch({ shardId: SHARD, records: records(1, 10) }, deps);
    clock.advance(60_000);
    await stageBatch({ shardId: SHARD, records: records(11, 20) }, deps);
    clock.advance(60_000);
    await stageBatch({ shardId: SHARD, records: records(31, 40) }, deps);
    // Unit 41-50 fixed on the row, then the attempt died before its segment; the event source
    // split the batch, gave up on 41-45 and delivered 46-50 again: 41-50 is abandoned, 46-50 staged.
    clock.advance(60_000);
    const row = await ledger.getCheckpoint(SHARD);
    const pending = {
      ...span(41, 50),
      stageTimeMs: clock.now().getTime(),
      key: segmentKey(clock.now(), SHARD, seq(41), seq(50)),
    };
    expect(
      await ledger.putCheckpoint({ shardId: SHARD, stagedThrough: row.stagedThrough, pending }, row.version),
    ).toBe(true);
    clock.advance(60_000);
    const result = await stageBatch({ shardId: SHARD, records: records(46, 50) }, deps);
    expect(result.abandoned).toEqual([expect.objectContaining(span(41, 50))]);
    clock.advance(30 * 60_000);
  });

  it('a range in staged units is staged: nothing to put again', async () => {
    expect(await json(11, 20)).toMatchObject({
      shardId: SHARD,
      verdict: 'staged',
      staged: [span(11, 20)],
      replay: [],
    });
    const text = await classify(5, 15);
    expect(text.stdout).toContain('staged');
    expect(text.stdout).toContain('nothing to put again');
  });

  it('a range the ledger never heard of, that the shard staged past, is not staged: put exactly it again', async () => {
    expect(await json(21, 30)).toMatchObject({
      verdict: 'not staged',
      staged: [],
      abandoned: [],
      replay: [span(21, 30)],
    });
    const text = await classify(21, 30);
    expect(text.stdout).toContain(`put again now, once: ${seq(21)}-${seq(30)}`);
  });

  it('a range across staged units and a gap is partly staged, with the exact sub-range to put again', async () => {
    expect(await json(15, 35)).toMatchObject({
      verdict: 'partly staged',
      staged: [span(15, 20), span(31, 35)],
      replay: [span(21, 30)],
    });
  });

  it("an abandoned range's records are put again by StagingRangesAbandoned, without what a later unit staged", async () => {
    const answer = await json(41, 45);
    expect(answer).toMatchObject({ verdict: 'abandoned', replay: [] });
    expect(answer.abandoned).toEqual([
      { range: expect.objectContaining(span(41, 50)), replay: [span(41, 45)] },
    ]);
    expect((await classify(41, 45)).stdout).toContain('follow StagingRangesAbandoned');
  });

  it('a range the shard has not staged past is not settled yet; a malformed range is refused', async () => {
    expect(await json(51, 60)).toMatchObject({ verdict: 'not settled yet', stagedThrough: seq(50) });
    const bad = await runCli(
      ['staging', 'classify', '--shard', SHARD, '--first', '12x', '--last', seq(3), '--arrived', ARRIVED],
      { env: env(), clock, io: { stdout: () => undefined, stderr: () => undefined } },
    );
    expect(bad).not.toBe(0);
    const missing = await classify(1, 2, '--arrived', 'yesterday');
    expect(missing.code).not.toBe(0);
    expect(missing.stderr).toContain('--arrived must be an ISO-8601 instant');
  });
});
