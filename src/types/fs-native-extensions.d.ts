// The part of fs-native-extensions this service uses (the package ships no types).
declare module 'fs-native-extensions' {
  /** Takes an advisory lock on an open descriptor; false when another descriptor holds it. */
  export function tryLock(fd: number, options?: { shared?: boolean }): boolean;
  export function unlock(fd: number): void;
}
