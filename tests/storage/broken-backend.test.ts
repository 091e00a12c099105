/**
 * The contract suite is worth running only if it fails a backend that breaks the contract.
 * Here the real (filesystem) backend is wrapped into backends broken on purpose, each in a
 * way a database backend could plausibly be broken (a read outside the transaction that
 * writes, a count taken before the insert, a quota check that does not see uploads in
 * flight); the case for the broken guarantee must fail on it, and pass on the real backend
 * in the same test, so that its failure is the flaw's and not the case's.
 */
import type { MetadataBackend } from '../../src/sessions/ports';
import { contractCases, contractSubject, type ContractClaim } from './contract';
import { openStorageUnderTest } from './storage-under-test';

const TIMEOUT_MS = 180_000;

/** Every method forwarded, so that a broken backend below overrides exactly one. */
function forwarding(inner: MetadataBackend): MetadataBackend {
  return {
    createSession: (...a) => inner.createSession(...a),
    readSession: (...a) => inner.readSession(...a),
    updateSession: (...a) => inner.updateSession(...a),
    deleteSession: (...a) => inner.deleteSession(...a),
    listSessions: (...a) => inner.listSessions(...a),
    appendMessage: (...a) => inner.appendMessage(...a),
    listMessages: (...a) => inner.listMessages(...a),
    beginUpload: (...a) => inner.beginUpload(...a),
    listFiles: (...a) => inner.listFiles(...a),
    findFile: (...a) => inner.findFile(...a),
    deleteFile: (...a) => inner.deleteFile(...a),
    usage: (...a) => inner.usage(...a),
    deleteUser: (...a) => inner.deleteUser(...a),
  };
}

interface BrokenBackend {
  flaw: string;
  claim: ContractClaim;
  breaks(inner: MetadataBackend): MetadataBackend;
}

const BROKEN: BrokenBackend[] = [
  {
    flaw: 'checks If-Match against a snapshot read before the write, so racing updates all pass it',
    claim: 'of 50 racing updates with the same If-Match exactly one wins, the rest are PreconditionFailed',
    breaks: (inner) => ({
      ...forwarding(inner),
      updateSession: async (userId, sessionId, mutate, admit) => {
        const stale = await inner.readSession(userId, sessionId);
        if (!stale) return null;
        return inner.updateSession(userId, sessionId, () => mutate(stale), admit);
      },
    }),
  },
  {
    flaw: 'numbers a message from a count of the log read before the append, so racing appends share a seq',
    claim: '50 racing appends to one session get seq 1..50, each once, listed in order',
    breaks: (inner) => ({
      ...forwarding(inner),
      appendMessage: async (userId, sessionId, build, admit) => {
        const log = await inner.listMessages(userId, sessionId, { afterSeq: 0, limit: Number.MAX_SAFE_INTEGER });
        if (!log) return null;
        const seq = log.items.length + 1;
        return inner.appendMessage(userId, sessionId, () => build(seq), admit);
      },
    }),
  },
  {
    flaw: "admits an upload's bytes against usage read when it began, blind to other uploads in flight",
    claim: 'racing uploads and appends never pass the byte quota, which is exact to the byte, and usage is what is stored',
    breaks: (inner) => ({
      ...forwarding(inner),
      beginUpload: async (userId, sessionId, admission) => {
        const stale = await inner.usage(userId);
        return inner.beginUpload(userId, sessionId, {
          admitFile: admission.admitFile,
          admit: (_usage, added) => admission.admit(stale, added),
        });
      },
    }),
  },
];

/** Runs one contract case on fresh fs storage, its backend passed through `adapt`. */
async function runCase(claim: ContractClaim, adapt: (inner: MetadataBackend) => MetadataBackend): Promise<void> {
  const { storage, close } = await openStorageUnderTest('fs');
  try {
    await contractCases[claim](contractSubject({ backend: adapt(storage.backend), blobs: storage.blobs }));
  } finally {
    await close();
  }
}

describe('the storage contract catches a broken backend', () => {
  it.each(BROKEN)(
    'one that $flaw fails "$claim", which the real backend passes',
    async ({ claim, breaks }) => {
      // Through the same forwarding wrapper, unbroken: the wrapper alone breaks nothing.
      await runCase(claim, forwarding);
      await expect(runCase(claim, breaks)).rejects.toThrow();
    },
    TIMEOUT_MS,
  );
});
