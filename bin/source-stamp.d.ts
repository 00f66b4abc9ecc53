/** The stamp of the sources under `repo` (see source-stamp.js). */
export function sourceStamp(repo: string): string;
/** Whether `stamp` still describes the sources under `repo`. */
export function stampMatches(repo: string, stamp: string): boolean;
