#!/usr/bin/env node
// Runs the TypeScript CLI straight from the repository, without a build step.
import { register } from 'tsx/esm/api';

// The Lambdas run on Node 24; Node 20 is a supported local runtime until the SDK drops it
// (January 2027). Its multi-line notice on every command is noise for operators.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';

register();
await import('./cli.ts');
