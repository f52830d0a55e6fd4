/**
 * Vitest helper: one set of local engines per test file.
 *
 *   const engines = useLocalEngines();
 *   it('...', () => { const { tables } = engines(); ... });
 */
import { afterAll, beforeAll } from 'vitest';
import { type LocalEngineOptions, type LocalEngines, startLocalEngines } from '../../local/engines.ts';

export function useLocalEngines(options: LocalEngineOptions = {}): () => LocalEngines {
  let engines: LocalEngines | undefined;
  beforeAll(async () => {
    engines = await startLocalEngines(options);
  });
  afterAll(async () => {
    await engines?.stop();
  });
  return () => {
    if (!engines)
      throw new Error('local engines are not running: call useLocalEngines() at the top of a test file');
    return engines;
  };
}
