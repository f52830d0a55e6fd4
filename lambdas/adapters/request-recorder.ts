/**
 * Records the HTTP requests an SDK client sends, as they go on the wire (after
 * signing, once per attempt). Tests use it to check headers that the local
 * emulators ignore or do not echo back: `If-None-Match`, `x-amz-acl`,
 * `x-amz-expected-bucket-owner`, the SSE-KMS headers.
 */

export interface RecordedRequest {
  method: string;
  /** Path as sent (path-style: `/<bucket>/<key>`), without the query string. */
  path: string;
  query: Record<string, string | string[] | null>;
  /** Header names lower-cased. */
  headers: Record<string, string>;
}

type RecorderMiddleware = (
  next: (args: { request: unknown }) => Promise<unknown>,
) => (args: { request: unknown }) => Promise<unknown>;

interface DeserializeStepStack {
  add(
    middleware: RecorderMiddleware,
    options: { step: 'deserialize'; name: string; priority?: 'high' | 'normal' | 'low'; override?: boolean },
  ): void;
  remove(name: string): boolean;
}

/**
 * Any SDK v3 client. Its stack's `add` is overloaded per step and generic in the client's
 * input/output types, so it is narrowed to the one overload used here instead of matched structurally.
 */
interface RecordableClient {
  middlewareStack: { add: unknown; remove(name: string): boolean };
}

interface WireRequest {
  method: string;
  path: string;
  query?: Record<string, string | string[] | null>;
  headers: Record<string, string>;
}

function isWireRequest(request: unknown): request is WireRequest {
  const r = request as Partial<WireRequest> | null;
  return typeof r === 'object' && r !== null && typeof r.method === 'string' && typeof r.headers === 'object';
}

let recorderCount = 0;

export class RequestRecorder {
  readonly requests: RecordedRequest[] = [];
  private readonly name = `requestRecorder${++recorderCount}`;

  /** Start recording the requests of `client`; returns a function that stops it. */
  attach(client: RecordableClient): () => void {
    const stack = client.middlewareStack as DeserializeStepStack;
    stack.add(
      (next) => async (args) => {
        if (isWireRequest(args.request)) {
          const headers: Record<string, string> = {};
          for (const [name, value] of Object.entries(args.request.headers))
            headers[name.toLowerCase()] = value;
          this.requests.push({
            method: args.request.method,
            path: args.request.path,
            query: { ...(args.request.query ?? {}) },
            headers,
          });
        }
        return next(args);
      },
      // The deserialize step wraps the actual send: the request here is final and signed.
      { step: 'deserialize', name: this.name, priority: 'low', override: true },
    );
    return () => {
      stack.remove(this.name);
    };
  }

  clear(): void {
    this.requests.length = 0;
  }

  /** Requests whose method matches and whose path ends with `pathSuffix` (e.g. an object key). */
  find(method: string, pathSuffix = ''): RecordedRequest[] {
    return this.requests.filter(
      (r) => r.method === method && decodeURIComponent(r.path).endsWith(pathSuffix),
    );
  }
}
