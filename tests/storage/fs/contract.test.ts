/** The filesystem backend (the embedded default) against the storage contract every backend must pass. */
import { describeStorageContract } from '../contract';
import { openContractSubject } from '../storage-under-test';

describeStorageContract('fs', () => openContractSubject('fs'));
