import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 120_000,
    // Integration tests start their own DynamoDB Local + s3rver per file; two cores.
    maxWorkers: 2,
    pool: 'forks',
  },
});
