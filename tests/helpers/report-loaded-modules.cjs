// Preloaded with `node --require` into the service's process: when it exits, writes the
// observability packages it loaded (OpenTelemetry, prom-client) to stderr as one JSON line.
'use strict';
process.on('exit', () => {
  const loaded = Object.keys(require.cache)
    .map((file) => /node_modules[\\/](@opentelemetry[\\/][^\\/]+|prom-client)[\\/]/.exec(file)?.[1])
    .filter((name) => name !== undefined);
  process.stderr.write(`loaded-packages: ${JSON.stringify([...new Set(loaded)].sort())}\n`);
});
