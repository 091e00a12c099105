/** The PostgreSQL backend with its bytes under DATA_DIR/blobs (BLOB_STORE=fs) against the storage contract every backend must pass. */
import { describeStorageContract } from '../contract';
import { openContractSubject } from '../storage-under-test';

describeStorageContract('postgres with BLOB_STORE=fs', () => openContractSubject('postgres', { BLOB_STORE: 'fs' }));
