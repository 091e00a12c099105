/** The PostgreSQL backend paired with its S3 blob store (s3rver) against the storage contract every backend must pass. */
import { describeStorageContract } from '../contract';
import { openContractSubject } from '../storage-under-test';

describeStorageContract('postgres', () => openContractSubject('postgres'));
