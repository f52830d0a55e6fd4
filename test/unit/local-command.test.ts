/** `local`: bad options are refused before any engine starts (the engines: test/integration/local-command.test.ts). */
import { describe, expect, it } from 'vitest';
import { exportLines } from '../../cli/commands/local.ts';
import { runCli } from '../../cli/main.ts';

async function local(argv: string[]) {
  let stderr = '';
  const code = await runCli(['local', ...argv], {
    env: {},
    io: { stdout: () => {}, stderr: (t) => (stderr += t) },
  });
  return { code, stderr };
}

describe('local: options', () => {
  it.each([
    [['--port', '70000'], '--port must be a port number 1-65535, got "70000"'],
    [['--port', 'abc'], '--port must be a port number 1-65535, got "abc"'],
    [['--bucket', 'My_Bucket'], '--bucket "My_Bucket" is not a valid bucket name'],
    [['extra'], 'unexpected argument(s): extra'],
  ])('%j is a usage error naming the option', async (argv, message) => {
    const run = await local(argv);
    expect(run.code).toBe(2);
    expect(run.stderr).toContain(message);
  });

  it('prints export lines a shell can paste, quoting what needs it', () => {
    expect(exportLines({ AWS_ENDPOINT_URL: 'http://127.0.0.1:4566', EMPTY: '', ODD: "a b'c" })).toEqual([
      'export AWS_ENDPOINT_URL=http://127.0.0.1:4566',
      'export EMPTY=',
      `export ODD='a b'\\''c'`,
    ]);
  });
});
