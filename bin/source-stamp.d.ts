/** The stamp of the sources under `repo` (see source-stamp.js). */
export function sourceStamp(repo: string): string;
