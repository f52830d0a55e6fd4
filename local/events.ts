/**
 * Deterministic generator of realistic platform events (docs/product.md#records shapes): user
 * actions from apps and web, campaign events (e-mail, push), and offline
 * deliveries whose event_time is days older than their arrival.
 */

/** mulberry32: a small, fast, seeded PRNG. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function uuidFrom(random: () => number): string {
  const hex = Array.from({ length: 32 }, () => Math.floor(random() * 16).toString(16)).join('');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-4${hex.slice(13, 16)}-a${hex.slice(17, 20)}-${hex.slice(20, 32)}`;
}

const USER_ACTIONS = ['VIEW_RADAR', 'APP_OPENED', 'ADD_TO_CART', 'PURCHASE', 'SEARCH', 'VIEW_PRODUCT'];
const CAMPAIGN_EVENTS: [code: string, name: string, channel: string][] = [
  ['MOE_EMAIL_SENT', 'Email Sent', 'EMAIL'],
  ['MOE_EMAIL_OPEN', 'Email Opened', 'EMAIL'],
  ['NOTIFICATION_RECEIVED_MOE', 'Notification Received', 'PUSH'],
  ['NOTIFICATION_CLICKED_MOE', 'Notification Clicked', 'PUSH'],
];

export interface GeneratedEvent {
  app_id: string;
  event: Record<string, unknown>;
}

export interface EventGeneratorOptions {
  appId: string;
  seed: number;
  users?: number;
  /** Share of events delivered late, with an event_time 1-4 days before arrival (default 0.05). */
  offlineShare?: number;
  /** Share of campaign events (default 0.3). */
  campaignShare?: number;
  /** Extra event names that only start appearing after `newNamesFrom` (tests "ALL includes future names"). */
  newNames?: string[];
  newNamesFrom?: Date;
}

export function createEventGenerator(options: EventGeneratorOptions): (receivedAt: Date) => GeneratedEvent {
  const random = seededRandom(options.seed);
  const users = options.users ?? 200;
  const offlineShare = options.offlineShare ?? 0.05;
  const campaignShare = options.campaignShare ?? 0.3;
  const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)]!;

  return (receivedAt) => {
    const user = Math.floor(random() * users);
    const offline = random() < offlineShare;
    const eventTime =
      Math.floor(receivedAt.getTime() / 1000) - (offline ? Math.floor(86_400 * (1 + random() * 3)) : 0);
    const userAttributes = {
      moengage_user_id: `user-${user}`,
      first_name: `Name${user}`,
      city: pick(['Tokyo', 'Osaka', 'Mumbai', 'Pune', 'Berlin']),
      plan: pick(['free', 'pro', 'enterprise']),
    };
    const deviceAttributes = {
      moengage_device_id: `device-${user}-${user % 3}`,
      os: pick(['ANDROID', 'iOS', 'WEB']),
      app_version: pick(['5.1.0', '5.2.3', '6.0.0']),
    };
    if (random() < campaignShare) {
      const [code, name, channel] = pick(CAMPAIGN_EVENTS);
      return {
        app_id: options.appId,
        event: {
          uid: `user-${user}`,
          event_type: 'CAMPAIGN_EVENT',
          event_code: code,
          event_name: name,
          user_attributes: userAttributes,
          event_source: 'MOENGAGE',
          ...(channel === 'EMAIL' ? { email_id: `user${user}@example.com` } : {}),
          event_attributes: {
            campaign_name: `Campaign ${user % 7}`,
            moe_campaign_tags: ['Tag1', 'Tag2'],
            campaign_type: 'GENERAL',
            moe_campaign_channel: channel === 'EMAIL' ? 'Email' : 'Push',
            moe_delivery_type: 'One Time',
            campaign_id: `campaign-${user % 7}`,
            campaign_channel: channel,
          },
          event_uuid: uuidFrom(random),
          event_time: eventTime,
          device_attributes: deviceAttributes,
        },
      };
    }
    const useNew =
      options.newNames?.length &&
      options.newNamesFrom &&
      receivedAt >= options.newNamesFrom &&
      random() < 0.2;
    const action = useNew ? pick(options.newNames!) : pick(USER_ACTIONS);
    return {
      app_id: options.appId,
      event: {
        uid: `user-${user}`,
        event_type: 'USER_ACTION_EVENT',
        event_code: action,
        event_name: action,
        user_attributes: userAttributes,
        event_source: 'MOENGAGE',
        event_attributes: { screen: pick(['home', 'cart', 'search']), value: Math.floor(random() * 1000) },
        event_uuid: uuidFrom(random),
        event_time: eventTime,
        device_attributes: deviceAttributes,
      },
    };
  };
}
