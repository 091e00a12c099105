/**
 * Fetching the identity provider's documents (the OpenID configuration and the JWKS): one
 * GET, no redirect, 200 only, at most MAX_DOCUMENT_BYTES, within the caller's deadline for
 * the whole exchange (headers and body). What comes back is only parsed JSON: the caller's
 * schema decides what it must hold.
 */

/** Far above any real JWKS or discovery document (a few KB); a larger answer is not one. */
export const MAX_DOCUMENT_BYTES = 256 * 1024;

/** Why a document could not be had, short and safe to log (never the body). */
export class KeyDocumentError extends Error {}

export async function fetchKeyDocument(url: string, signal: AbortSignal): Promise<unknown> {
  let res: Response;
  try {
    res = await fetch(url, { signal, redirect: 'error', headers: { Accept: 'application/json' } });
  } catch (error) {
    throw new KeyDocumentError(signal.aborted ? 'no answer in time' : `cannot be reached (${causeOf(error)})`, { cause: error });
  }
  try {
    if (res.status !== 200) throw new KeyDocumentError(`answered ${res.status}`);
    const declared = Number(res.headers.get('content-length') ?? '0');
    if (declared > MAX_DOCUMENT_BYTES) throw new KeyDocumentError(`is larger than ${MAX_DOCUMENT_BYTES} bytes`);
    const chunks: Uint8Array[] = [];
    let size = 0;
    for await (const chunk of res.body ?? []) {
      size += chunk.byteLength;
      if (size > MAX_DOCUMENT_BYTES) throw new KeyDocumentError(`is larger than ${MAX_DOCUMENT_BYTES} bytes`);
      chunks.push(chunk);
    }
    try {
      return JSON.parse(Buffer.concat(chunks).toString('utf8'));
    } catch {
      throw new KeyDocumentError('is not JSON');
    }
  } catch (error) {
    if (error instanceof KeyDocumentError) throw error;
    throw new KeyDocumentError(signal.aborted ? 'no answer in time' : `broke off (${causeOf(error)})`, { cause: error });
  } finally {
    // A refusal before the body was read must not leave the connection waiting on it.
    await res.body?.cancel().catch(() => undefined);
  }
}

function causeOf(error: unknown): string {
  const cause = error instanceof Error && error.cause instanceof Error ? error.cause : error;
  const code = (cause as { code?: unknown } | undefined)?.code;
  return typeof code === 'string' ? code : cause instanceof Error ? cause.message : 'unknown error';
}
