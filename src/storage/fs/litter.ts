/**
 * Names that operating systems, file managers, editors, network filesystems and git
 * placeholders leave in any directory they touch. They are never ours and never a user's data: classification
 * (legacy cleanup, the data check) looks past them, and nothing deletes them.
 */
const LITTER_NAMES = new Set([
  '.DS_Store',
  'Thumbs.db',
  'ehthumbs.db',
  'desktop.ini',
  'lost+found',
  '.directory',
  '.Trashes',
  '.fseventsd',
  '.Spotlight-V100',
  '.TemporaryItems',
  // The placeholder that keeps an empty directory in git, as this repository's data/ has.
  '.gitkeep',
]);

/**
 * `._*` AppleDouble files, `.nfs*` silly-renames, and editor leftovers: Vim swap files
 * (`.name.swp`, `.swo`...), Emacs backups (`name~`) and lock files (`.#name`).
 */
const LITTER_PATTERN = /^(\._.*|\.nfs.*|\..*\.sw[a-p]|.*~|\.#.*)$/;

export function isLitter(name: string): boolean {
  return LITTER_NAMES.has(name) || LITTER_PATTERN.test(name);
}
