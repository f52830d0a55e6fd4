/**
 * The simulated world, the same on every run of a seed (it is drawn from the world generator
 * only): five connections on two apps, their events, Kinesis arrivals, every schedule tick (some
 * late, some twice), frequency changes, pauses and resumes (docs/simulation.md, "What is simulated").
 */
import { FREQUENCIES } from '../../lambdas/definitions.ts';
import type { ConnectionInput } from '../../lambdas/domain/connection.ts';
import { boundariesBetween } from '../../lambdas/domain/windows.ts';
import { createEventGenerator, type GeneratedEvent } from '../events.ts';
import type { Agenda } from './agenda.ts';
import { bucketOf, DAY, HOUR, MINUTE, type SimulationSettings } from './options.ts';
import { between, exponential } from './random.ts';
import type { Tally } from './tally.ts';

export interface SimConnection {
  input: ConnectionInput;
  /** Put into the table at this time (createdAt). */
  createAt: number;
}

const SELECTED_SHOP = ['PURCHASE', 'ADD_TO_CART', 'MOE_EMAIL_SENT', 'Email Opened'];
const SELECTED_CAMPAIGNS = ['MOE_EMAIL_SENT', 'Email Opened', 'NOTIFICATION_CLICKED_MOE'];
const SELECTED_NEWS = ['NOTIFICATION_RECEIVED_MOE', 'Notification Clicked', 'SEARCH', 'BREAKING_NEWS_READ'];

export function simConnections(runId: string, start: number, random: () => number): SimConnection[] {
  const shop = `sim-${runId}-shop`;
  const news = `sim-${runId}-news`;
  const common = {
    bucketName: bucketOf(runId),
    bucketRegion: 'us-east-1',
    createdAt: new Date(start).toISOString(),
  };
  const later = start + Math.floor((2 + random() * 14) * HOUR);
  return [
    {
      createAt: start,
      input: {
        ...common,
        connectionId: `conn_${runId}-all-quarter`,
        appId: shop,
        appName: 'Sim Shop',
        dbName: 'MoEngage Sim Shop',
        connectionName: 'all-events',
        folderPath: 'raw/events',
        events: { mode: 'ALL' },
        frequency: 'FIFTEEN_MINUTES',
      },
    },
    {
      createAt: start,
      input: {
        ...common,
        connectionId: `conn_${runId}-selected-daily`,
        appId: shop,
        appName: 'Sim Shop',
        dbName: 'MoEngage Sim Shop',
        connectionName: 'purchases',
        events: { mode: 'SELECTED', names: SELECTED_SHOP },
        userAttributes: ['city', 'plan'],
        deviceAttributes: ['os'],
        frequency: 'DAILY',
      },
    },
    {
      createAt: start,
      input: {
        ...common,
        connectionId: `conn_${runId}-news-weekly`,
        appId: news,
        appName: 'Sim News',
        dbName: 'MoEngage Sim News',
        connectionName: 'news-archive',
        events: { mode: 'ALL' },
        frequency: 'WEEKLY',
      },
    },
    {
      // A second shop connection every 15 minutes: on time, it shares a group job (and one read
      // of the staged data) with all-quarter.
      createAt: start,
      input: {
        ...common,
        connectionId: `conn_${runId}-shop-campaigns`,
        appId: shop,
        appName: 'Sim Shop',
        dbName: 'MoEngage Sim Shop',
        connectionName: 'campaigns',
        events: { mode: 'SELECTED', names: SELECTED_CAMPAIGNS },
        deviceAttributes: [],
        frequency: 'FIFTEEN_MINUTES',
      },
    },
    {
      createAt: later,
      input: {
        ...common,
        createdAt: new Date(later).toISOString(),
        connectionId: `conn_${runId}-news-push`,
        appId: news,
        appName: 'Sim News',
        dbName: 'MoEngage Sim News',
        connectionName: 'push-engagement',
        folderPath: 'crm',
        events: { mode: 'SELECTED', names: SELECTED_NEWS },
        userAttributes: [],
        deviceAttributes: ['os', 'app_version'],
        frequency: 'FIFTEEN_MINUTES',
      },
    },
  ];
}

/** Kinesis batches of each app's events (a Poisson process), on one of `shards` shards each. */
export function planArrivals(
  agenda: Agenda,
  settings: SimulationSettings,
  world: () => number,
  apps: readonly string[],
  shards: number,
): void {
  apps.forEach((app, i) => {
    const generate = createEventGenerator({
      appId: app,
      seed: settings.seed * 31 + i,
      offlineShare: 0.1,
      newNames: ['BREAKING_NEWS_READ'],
      newNamesFrom: new Date(settings.start + DAY / 2),
    });
    const { start, end, batchMeanMs } = settings;
    for (let t = start + exponential(world, batchMeanMs); t < end; t += exponential(world, batchMeanMs)) {
      const count = 1 + Math.floor(world() * settings.maxBatchEvents);
      const events: GeneratedEvent[] = Array.from({ length: count }, () => generate(new Date(t)));
      agenda.add(t, { kind: 'arrival', shard: Math.floor(world() * shards), events });
    }
  });
}

/** Every tick of every frequency at boundary + settle delay; some late, some fired twice. Returns how many. */
export function planTicks(
  agenda: Agenda,
  settings: SimulationSettings,
  world: () => number,
  settleMs: number,
  tally: Tally,
): number {
  let scheduledTicks = 0;
  const { faultRate } = settings;
  for (const frequency of FREQUENCIES) {
    for (const boundary of boundariesBetween(frequency, new Date(settings.start), new Date(settings.end))) {
      const scheduled = boundary.getTime() + settleMs;
      let runAt = scheduled;
      if (world() < faultRate / 4) {
        runAt += between(world, MINUTE, 40 * MINUTE); // the invocation is late
        tally.fired('tick-delayed');
      }
      agenda.add(runAt, { kind: 'tick', frequency, scheduledTime: new Date(scheduled), duplicate: false });
      scheduledTicks += 1;
      if (world() < faultRate / 4) {
        agenda.add(runAt + between(world, 10_000, 3 * HOUR), {
          kind: 'tick',
          frequency,
          scheduledTime: new Date(scheduled),
          duplicate: true,
        });
      }
    }
  }
  return scheduledTicks;
}

/** Each connection's creation, then its frequency changes and pauses (each followed by its resume). */
export function planEdits(
  agenda: Agenda,
  settings: SimulationSettings,
  world: () => number,
  connections: readonly SimConnection[],
): void {
  const { end, frequencyChangeMeanMs: changeMean, pauseMeanMs: pauseMean } = settings;
  for (const c of connections) {
    const id = c.input.connectionId;
    agenda.add(c.createAt, { kind: 'create', connectionId: id });
    for (let t = c.createAt + exponential(world, changeMean); t < end; t += exponential(world, changeMean)) {
      agenda.add(t, { kind: 'change-frequency', connectionId: id, step: world() < 0.5 ? 1 : 2 });
    }
    for (let t = c.createAt + exponential(world, pauseMean); t < end; t += exponential(world, pauseMean)) {
      const resumeAt = t + between(world, 30 * MINUTE, 30 * HOUR);
      agenda.add(t, { kind: 'pause', connectionId: id });
      agenda.add(Math.min(resumeAt, end), { kind: 'resume', connectionId: id });
      t = resumeAt;
    }
  }
}
