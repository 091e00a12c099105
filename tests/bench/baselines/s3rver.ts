/**
 * Not a baseline: the S3 that the service and the bare S3 baseline share (s3rver, objects
 * under BENCH_DIR), in a process of its own so that it competes with neither the bench's
 * load generator nor the server being measured. Plain s3rver: the test helper's extras
 * (injected failures, a log of every request) have no place in a measurement, and the bench
 * makes its bucket itself.
 */
import http from 'node:http';
import S3rver from 's3rver';
import { benchDirectory, listen } from './listen';

listen(http.createServer(new S3rver({ directory: benchDirectory(), silent: true, vhostBuckets: false }).callback()));
