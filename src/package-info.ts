/**
 * The service's name, version and licence as package.json states them, read once. The one
 * place that knows where package.json lies (one folder above src/ and dist/ alike), so the
 * OpenAPI document's `info` never drifts from the package it describes.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { z } from 'zod';

const packageJson = z.object({
  name: z.string().min(1),
  version: z.string().min(1),
  license: z.string().min(1),
});

export type PackageInfo = z.infer<typeof packageJson>;

export const packageInfo: PackageInfo = packageJson.parse(JSON.parse(readFileSync(path.join(__dirname, '..', 'package.json'), 'utf8')));
