/** `/openapi.json`: the API description, built once, public like the health probes. */
import type { IRouter } from 'express';
import { buildOpenApiDocument } from '../openapi';

export function openApiRoute(router: IRouter): void {
  const document = JSON.stringify(buildOpenApiDocument());
  router.get('/openapi.json', (_req, res) => {
    res.set('Cache-Control', 'no-cache').type('application/json').send(document);
  });
}
