/** `/openapi.json`: the API description, built once, public like the health probes. */
import { Router } from 'express';
import { buildOpenApiDocument } from '../openapi';

export function openApiRouter(): Router {
  const router = Router();
  const document = JSON.stringify(buildOpenApiDocument());
  router.get('/openapi.json', (_req, res) => {
    res.set('Cache-Control', 'no-cache').type('application/json').send(document);
  });
  return router;
}
