import { describe, expect, it } from 'vitest';
import {
  buildRecord,
  compileShaper,
  isPassThrough,
  type ReceivedEvent,
  recordFrame,
  recordLine,
  type Selection,
} from '../../lambdas/domain/export-record.ts';

const app = { appName: 'App Name', dbName: 'MoEngage App Name' };

// The sample events of docs/product.md#records, as received by the platform (keys in received order).
const userEvent: ReceivedEvent = {
  uid: 'user id',
  event_type: 'USER_ACTION_EVENT',
  event_code: 'VIEW_RADAR',
  event_name: 'VIEW_RADAR',
  user_attributes: { moengage_user_id: 'userid1', user_attr1: 'value1', user_attr2: 'value2' },
  event_source: 'MOENGAGE',
  event_attributes: { event_attr1: 'value1', event_attr2: 'value2' },
  event_uuid: '62045d15-8d5e-4cfd-ac49-5919bffb401d',
  event_time: 1652820710,
  device_attributes: { moengage_device_id: 'device id' },
};

const campaignEvent: ReceivedEvent = {
  uid: 'user id',
  event_type: 'CAMPAIGN_EVENT',
  event_code: 'MOE_EMAIL_SENT',
  event_name: 'Email Sent',
  user_attributes: { moengage_user_id: 'userid1', user_attr1: 'value1', user_attr2: 'value2' },
  event_source: 'MOENGAGE',
  email_id: 'test@xyz.com',
  event_attributes: {
    campaign_name: 'Campaign name',
    moe_campaign_tags: ['Tag1', 'Tag2'],
    campaign_type: 'GENERAL',
    moe_campaign_channel: 'Email',
    moe_delivery_type: 'One Time',
    campaign_id: 'moengage campaign id',
    campaign_channel: 'EMAIL',
  },
  event_uuid: '3b918064-08dc-47ae-b674-c23797475a8d',
  event_time: 1653022310,
  device_attributes: { moengage_device_id: 'device id if applicable' },
};

const ALL: Selection = { events: { mode: 'ALL' }, userAttributes: 'ALL', deviceAttributes: 'ALL' };

function line(event: ReceivedEvent, windowEnd: Date, selection: Selection = ALL): string | undefined {
  const shaped = compileShaper(selection).shape(event);
  return shaped && recordLine(recordFrame(app, windowEnd), JSON.stringify(shaped));
}

describe('record format (docs/product.md#records)', () => {
  it('a user event is written byte for byte in the spec key order, hour and day from the window end', () => {
    expect(line(userEvent, new Date('2022-05-20T10:00:00Z'))).toBe(
      '{"app_name":"App Name","export_hour":"10","db_name":"MoEngage App Name","event":{"uid":"user id",' +
        '"event_type":"USER_ACTION_EVENT","event_code":"VIEW_RADAR","event_name":"VIEW_RADAR","user_attributes":' +
        '{"moengage_user_id":"userid1","user_attr1":"value1","user_attr2":"value2"},"event_source":"MOENGAGE",' +
        '"event_attributes":{"event_attr1":"value1","event_attr2":"value2"},' +
        '"event_uuid":"62045d15-8d5e-4cfd-ac49-5919bffb401d","event_time":1652820710,' +
        '"device_attributes":{"moengage_device_id":"device id"}},"export_day":"2022-05-20"}',
    );
  });

  it('a campaign event keeps email_id at the event top level and export_hour has no leading zero', () => {
    expect(line(campaignEvent, new Date('2022-05-20T06:00:00Z'))).toBe(
      '{"app_name":"App Name","export_hour":"6","db_name":"MoEngage App Name","event":{"uid":"user id",' +
        '"event_type":"CAMPAIGN_EVENT","event_code":"MOE_EMAIL_SENT","event_name":"Email Sent","user_attributes":' +
        '{"moengage_user_id":"userid1","user_attr1":"value1","user_attr2":"value2"},"event_source":"MOENGAGE",' +
        '"email_id":"test@xyz.com","event_attributes":{"campaign_name":"Campaign name","moe_campaign_tags":' +
        '["Tag1","Tag2"],"campaign_type":"GENERAL","moe_campaign_channel":"Email","moe_delivery_type":"One Time",' +
        '"campaign_id":"moengage campaign id","campaign_channel":"EMAIL"},' +
        '"event_uuid":"3b918064-08dc-47ae-b674-c23797475a8d","event_time":1653022310,' +
        '"device_attributes":{"moengage_device_id":"device id if applicable"}},"export_day":"2022-05-20"}',
    );
  });

  it('an event days older than its window is stamped with the window end, not its event_time', () => {
    const offlineForDays = { ...userEvent, event_time: Date.parse('2022-05-14T23:59:00Z') / 1000 };
    const record = JSON.parse(line(offlineForDays, new Date('2022-05-20T00:00:00Z')) ?? '');
    expect(record.export_hour).toBe('0');
    expect(record.export_day).toBe('2022-05-20');
    expect(record.event.event_time).toBe(offlineForDays.event_time);
  });

  it('a window ending at midnight belongs to the new day at hour "0"', () => {
    const frame = recordFrame(app, new Date('2023-01-01T00:00:00Z'));
    expect(frame.head).toBe(
      '{"app_name":"App Name","export_hour":"0","db_name":"MoEngage App Name","event":',
    );
    expect(frame.tail).toBe(',"export_day":"2023-01-01"}');
  });

  it('has exactly the five top-level keys, in order, and matches buildRecord', () => {
    const windowEnd = new Date('2022-05-20T23:45:00Z');
    const parsed = JSON.parse(line(userEvent, windowEnd) ?? '');
    expect(Object.keys(parsed)).toEqual(['app_name', 'export_hour', 'db_name', 'event', 'export_day']);
    expect(parsed.export_hour).toBe('23');
    expect(JSON.stringify(parsed)).toBe(JSON.stringify(buildRecord(app, windowEnd, userEvent)));
  });

  it('names with quotes and non-ASCII characters are JSON-escaped in the frame', () => {
    const frame = recordFrame(
      { appName: 'Acme "Shop"', dbName: 'ショップ\n' },
      new Date('2022-05-20T10:00:00Z'),
    );
    const record = JSON.parse(recordLine(frame, '{}'));
    expect(record.app_name).toBe('Acme "Shop"');
    expect(record.db_name).toBe('ショップ\n');
  });
});

describe('event selection and attribute projection', () => {
  const selected = (names: string[], userAttributes: Selection['userAttributes'] = 'ALL'): Selection => ({
    events: { mode: 'SELECTED', names },
    userAttributes,
    deviceAttributes: 'ALL',
  });

  it('SELECTED matches on event_name', () => {
    expect(compileShaper(selected(['Email Sent'])).shape(campaignEvent)).toBeDefined();
  });

  it('SELECTED matches on event_code', () => {
    expect(compileShaper(selected(['MOE_EMAIL_SENT'])).shape(campaignEvent)).toBeDefined();
  });

  it('SELECTED drops an event whose name and code are both unlisted', () => {
    const shaper = compileShaper(selected(['PURCHASE', 'VIEW_RADAR']));
    expect(shaper.shape(campaignEvent)).toBeUndefined();
    expect(shaper.shape({ event_uuid: 'x', event_name: 'ADD_TO_CART', event_time: 1 })).toBeUndefined();
  });

  it('user attributes are reduced to the selected names, keeping moengage_user_id and the received order', () => {
    const event: ReceivedEvent = {
      ...userEvent,
      user_attributes: { city: 'Pune', moengage_user_id: 'u1', age: 31, first_name: 'Asha', email: 'a@x' },
    };
    const shaped = compileShaper(selected(['VIEW_RADAR'], ['first_name', 'city', 'not_present'])).shape(
      event,
    );
    expect(JSON.stringify(shaped?.user_attributes)).toBe(
      '{"city":"Pune","moengage_user_id":"u1","first_name":"Asha"}',
    );
    // The rest of the event is untouched, in its received order.
    expect(Object.keys(shaped ?? {})).toEqual(Object.keys(event));
    expect(shaped?.device_attributes).toEqual(event.device_attributes);
  });

  it('device attributes are reduced to the selected names, keeping moengage_device_id', () => {
    const event: ReceivedEvent = {
      ...userEvent,
      device_attributes: { os: 'android', moengage_device_id: 'd1', model: 'Pixel', app_version: '7.1' },
    };
    const shaped = compileShaper({
      events: { mode: 'ALL' },
      userAttributes: 'ALL',
      deviceAttributes: ['os'],
    }).shape(event);
    expect(JSON.stringify(shaped?.device_attributes)).toBe('{"os":"android","moengage_device_id":"d1"}');
    expect(shaped?.user_attributes).toEqual(event.user_attributes);
  });

  it('an empty attribute list keeps only the id attribute', () => {
    const shaped = compileShaper(selected(['VIEW_RADAR'], [])).shape(userEvent);
    expect(shaped?.user_attributes).toEqual({ moengage_user_id: 'userid1' });
  });

  it('projection does not modify the received event', () => {
    const event = structuredClone(userEvent);
    compileShaper(selected(['VIEW_RADAR'], ['user_attr1'])).shape(event);
    expect(event).toEqual(userEvent);
  });

  it('ALL passes every event through unchanged, including event names never seen before', () => {
    const shaper = compileShaper(ALL);
    const brandNew: ReceivedEvent = {
      event_name: 'INVENTED_TOMORROW',
      event_uuid: '0b6c0a4e-5b5e-4a51-9b5a-5a3c1e2f0a11',
      event_time: 1700000000,
      user_attributes: { anything: true },
    };
    expect(shaper.shape(brandNew)).toBe(brandNew);
    expect(shaper.shape(campaignEvent)).toBe(campaignEvent);
  });

  it('isPassThrough only when events, user and device attributes are all ALL', () => {
    expect(isPassThrough(ALL)).toBe(true);
    expect(isPassThrough({ ...ALL, events: { mode: 'SELECTED', names: ['A'] } })).toBe(false);
    expect(isPassThrough({ ...ALL, userAttributes: ['a'] })).toBe(false);
    expect(isPassThrough({ ...ALL, deviceAttributes: [] })).toBe(false);
  });
});
