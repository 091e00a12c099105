/** Where the versioned API lives: every route under it passes authentication, the per-user limit and tenancy first. */
export const API_BASE = '/api/v1';
