/**
 * The use cases' error family: a use case refuses (a backfill or rerun it will not start, a
 * connection it will not export) or stops (a lease lost, a race to retry) with a UseCaseError.
 * Each sets `name` to its class name and keeps its `cause` (`new Error(message, { cause })`).
 * The domain's errors are DomainError (domain/errors.ts); the CLI's are CliError/UsageError.
 */
export class UseCaseError extends Error {
  override readonly name: string = 'UseCaseError';
}
