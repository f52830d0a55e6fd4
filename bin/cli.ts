/**
 * The operator CLI (`s3-event-export`). Routing, help and exit codes live in
 * cli/main.ts; commands in cli/commands/, listed in cli/registry.ts.
 */
import { runCli } from '../cli/main.ts';

process.exitCode = await runCli(process.argv.slice(2));
