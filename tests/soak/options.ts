/** `npm run soak -- [--minutes N] [--users N] [--connections N] [--quick]`, parsed and checked. */

export interface SoakOptions {
  /** Whole minutes of workload; one line is printed per minute. */
  minutes: number;
  /** Distinct user ids the workload spreads over. */
  users: number;
  /** Concurrent clients, each working for one user at a time; also the client's socket cap. */
  connections: number;
  quick: boolean;
}

export const USAGE = 'usage: tsx tests/soak/run.ts [--minutes N (10)] [--users N (1000)] [--connections N (16)] [--quick (1 minute)]';

const DEFAULTS = { minutes: 10, users: 1000, connections: 16 };
const BOUNDS = {
  minutes: [1, 24 * 60],
  users: [2, 100_000],
  connections: [1, 256],
} as const;

export function soakOptions(argv: string[]): SoakOptions {
  const values: Partial<Record<keyof typeof DEFAULTS, number>> = {};
  let quick = false;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === '--quick') {
      quick = true;
      continue;
    }
    const match = /^--(minutes|users|connections)(?:=(.*))?$/.exec(arg);
    if (!match) throw new Error(`unknown argument ${JSON.stringify(arg)}`);
    const name = match[1] as keyof typeof DEFAULTS;
    const text = match[2] ?? argv[++i];
    const [min, max] = BOUNDS[name];
    if (text === undefined || !/^\d+$/.test(text) || Number(text) < min || Number(text) > max) {
      throw new Error(`--${name} needs a whole number from ${min} to ${max}`);
    }
    values[name] = Number(text);
  }
  const options: SoakOptions = {
    minutes: values.minutes ?? (quick ? 1 : DEFAULTS.minutes),
    users: values.users ?? DEFAULTS.users,
    connections: values.connections ?? DEFAULTS.connections,
    quick,
  };
  if (quick && values.minutes !== undefined && values.minutes !== 1) throw new Error('--quick runs one minute; drop --minutes or --quick');
  // Each client locks the user it works for, so the users must comfortably outnumber them.
  if (options.users < 2 * options.connections) throw new Error('--users must be at least twice --connections');
  return options;
}
