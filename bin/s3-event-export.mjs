#!/usr/bin/env node
// Runs the TypeScript CLI straight from the repository, without a build step.
import { register } from 'tsx/esm/api';

register();
await import('./cli.ts');
