import { COMPACTION_DELAY_SECONDS } from '../../lambdas/definitions.ts';
import type { DroppedRangeClassification, SequenceRange } from '../../lambdas/domain/dropped-ranges.ts';
import { type CliCommand, CliError, noPositionals } from '../command.ts';
import { operationSettings, parseInstant, requiredOption } from '../operations.ts';

const parts = (ranges: readonly SequenceRange[]) =>
  ranges.map((r) => `${r.firstSequence}-${r.lastSequence}`).join(', ');

/** What the operator does about a classified range, in the runbook's words. */
function verdictLines(c: DroppedRangeClassification): string[] {
  const lines = [`${c.range.firstSequence}-${c.range.lastSequence}: ${c.verdict}`];
  if (c.verdict === 'not settled yet') {
    lines.push(
      c.settlesAt
        ? `an abandoned range holding its records was recorded less than ${COMPACTION_DELAY_SECONDS} s ago (an attempt that timed out may still write its segment): run this again after ${c.settlesAt}`
        : `the shard has staged through ${c.stagedThrough ?? 'nothing yet'}: wait for its next batch, then run this again`,
    );
    return lines;
  }
  if (c.staged.length > 0) lines.push(`staged (never put again): ${parts(c.staged)}`);
  for (const a of c.abandoned)
    lines.push(
      `abandoned ${a.range.firstSequence}-${a.range.lastSequence} (recorded ${a.range.at}): follow StagingRangesAbandoned, put again once: ${a.replay.length > 0 ? parts(a.replay) : 'nothing (all staged)'}`,
    );
  if (c.replay.length > 0) lines.push(`put again now, once: ${parts(c.replay)}`);
  if (c.verdict === 'staged') lines.push('nothing to put again: delete the message');
  return lines;
}

export const stagingClassify: CliCommand = {
  name: 'staging classify',
  summary: 'Say which records of a failure-queue range of a shard are staged, abandoned, or to be put again',
  usage: '--shard ID --first SEQ --last SEQ --arrived INSTANT',
  description:
    'For a message of the stager failure queue (StagerFailureQueueNotEmpty): lists the segments of\n' +
    "the shard staged since the range's first arrival (segment keys name their unit's sequence range)\n" +
    "and reads the shard's StagingLedger row. The verdict is one of: staged (nothing to do), abandoned\n" +
    '(follow StagingRangesAbandoned with the parts listed), not staged or partly staged (put exactly the\n' +
    'listed parts into the stream again, once), not settled yet (the shard has not staged past the\n' +
    'range: wait and run again). Parts are inclusive ranges of sequence numbers; a listed part never\n' +
    'holds a record of a staged segment.',
  options: {
    shard: { type: 'string', valueName: 'ID', description: "the message's KinesisBatchInfo.shardId" },
    first: { type: 'string', valueName: 'SEQ', description: 'its startSequenceNumber' },
    last: { type: 'string', valueName: 'SEQ', description: 'its endSequenceNumber' },
    arrived: {
      type: 'string',
      valueName: 'INSTANT',
      description: 'its approximateArrivalOfFirstRecord (ISO-8601)',
    },
  },
  async run(args, ctx) {
    noPositionals(args);
    const shardId = requiredOption(args, 'shard', 'ID (the shard of the failure message)');
    const firstSequence = requiredOption(args, 'first', 'SEQ (startSequenceNumber)');
    const lastSequence = requiredOption(args, 'last', 'SEQ (endSequenceNumber)');
    const firstArrival = parseInstant(
      requiredOption(args, 'arrived', 'INSTANT (approximateArrivalOfFirstRecord)'),
      '--arrived',
    );
    const { stagingRetentionDays } = operationSettings(ctx);
    const [ledger, store, usecase, errors] = await Promise.all([
      ctx.stagingLedger(),
      ctx.stagingStore(),
      import('../../lambdas/usecases/classify-dropped-range.ts'),
      import('../../lambdas/domain/dropped-ranges.ts'),
    ]);
    let result: DroppedRangeClassification;
    try {
      result = await usecase.classifyDroppedRange(
        { shardId, firstSequence, lastSequence, firstArrival },
        { ledger, store, clock: ctx.clock, stagingRetentionDays },
      );
    } catch (error) {
      if (
        error instanceof errors.InvalidSequenceRangeError ||
        error instanceof usecase.DroppedRangeUnanswerableError
      )
        throw new CliError(error.message);
      throw error;
    }
    if (ctx.settings.json) ctx.print(JSON.stringify({ shardId, ...result }, null, 2));
    else for (const line of verdictLines(result)) ctx.print(line);
    return 0;
  },
};
