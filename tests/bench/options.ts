/** How big and how long each scenario runs: the full suite, or `--quick` as a smoke check. */
export interface BenchOptions {
  quick: boolean;
  /** Measured runs per HTTP scenario (the figure is their median). */
  runs: number;
  seconds: number;
  warmUpSeconds: number;
  connections: number;
  /** Sessions of the user whose first page is listed. */
  listedSessions: number;
  /** Users writing at once in the PATCH scenario, each to a session of their own. */
  writers: number;
  uploadMiB: number;
  /** The scenario with four uploads at once sends four of this size. */
  concurrentUploadMiB: number;
  /** Turns of the upload and download rows, each the service and its baselines back to back. */
  fileRuns: number;
  legacyDirectories: number;
  currentUsers: number;
  currentSessionsPerUser: number;
  /** Connections (each its own user) in the postgres group's 1 MiB upload and download rows. */
  fileConnections: number;
  /** Measured runs per side in the postgres group: one in the quick run (with no warm-up), a short smoke check. */
  postgresRuns: number;
  /** Replicas in the replicas group's scaled-out side (`--replicas N`, default 2). */
  replicas: number;
}

function replicasOf(argv: string[]): number {
  const at = argv.indexOf('--replicas');
  if (at < 0) return 2;
  const value = Number(argv[at + 1]);
  if (!Number.isInteger(value) || value < 2 || value > 16) throw new Error(`--replicas takes a whole number from 2 to 16, not ${argv[at + 1] ?? 'nothing'}`);
  return value;
}

export function benchOptions(argv: string[]): BenchOptions {
  const quick = argv.includes('--quick');
  const replicas = replicasOf(argv);
  return quick
    ? {
        quick,
        runs: 3,
        seconds: 1,
        warmUpSeconds: 1,
        connections: 50,
        listedSessions: 10_000,
        writers: 50,
        uploadMiB: 32,
        concurrentUploadMiB: 16,
        fileRuns: 3,
        legacyDirectories: 5_000,
        currentUsers: 100,
        currentSessionsPerUser: 100,
        fileConnections: 16,
        postgresRuns: 1,
        replicas,
      }
    : {
        quick,
        runs: 3,
        seconds: 5,
        warmUpSeconds: 2,
        connections: 50,
        listedSessions: 10_000,
        writers: 50,
        uploadMiB: 200,
        concurrentUploadMiB: 100,
        fileRuns: 7,
        legacyDirectories: 100_000,
        currentUsers: 1_000,
        currentSessionsPerUser: 100,
        fileConnections: 16,
        postgresRuns: 3,
        replicas,
      };
}
