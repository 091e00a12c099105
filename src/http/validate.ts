/** Runs a schema over request input and turns its complaints into one 400. */
import type { z } from 'zod';
import { BadRequest } from '../errors';

export function parseInput<S extends z.ZodType>(schema: S, input: unknown, where: 'body' | 'query'): z.output<S> {
  const result = schema.safeParse(input);
  if (result.success) return result.data;
  const problems = result.error.issues.map((issue) => {
    const at = issue.path.length > 0 ? issue.path.join('.') : where;
    return `${at}: ${issue.message}`;
  });
  throw new BadRequest(problems.join('; '));
}
