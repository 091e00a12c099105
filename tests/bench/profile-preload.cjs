// Preloaded with `node --require` into a service the bench profiles (`npm run bench -- --profile`):
// the first SIGUSR2 starts V8's sampling profiler in-process (node:inspector), the next one
// stops it and writes the profile to BENCH_PROFILE_DIR/<pid>-<n>.cpuprofile (written beside and
// renamed, so the bench never reads half a file). Never loaded outside the bench.
'use strict';
const { Session } = require('node:inspector');
const { renameSync, writeFileSync } = require('node:fs');
const path = require('node:path');

const dir = process.env.BENCH_PROFILE_DIR;
const session = new Session();
session.connect();
let running = false;
let taken = 0;

process.on('SIGUSR2', () => {
  if (!running) {
    running = true;
    session.post('Profiler.enable', () => session.post('Profiler.start'));
    return;
  }
  running = false;
  session.post('Profiler.stop', (error, result) => {
    if (error) {
      process.stderr.write(`profile-preload: ${error.message}\n`);
      return;
    }
    const file = path.join(dir, `${process.pid}-${++taken}.cpuprofile`);
    writeFileSync(`${file}.part`, JSON.stringify(result.profile));
    renameSync(`${file}.part`, file);
  });
});
