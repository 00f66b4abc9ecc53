/**
 * Variable expansion of a command's words, exactly where BuildKit applies it (the commands
 * implementing `SupportsSingleWordExpansion` / `…Raw`): ENV and LABEL keys and values, COPY
 * and ADD sources, destination, `--chown`, `--chmod` (and ADD `--checksum`), WORKDIR, USER,
 * VOLUME, STOPSIGNAL and RUN `--mount` values; heredoc bodies of COPY/ADD with the raw
 * expander. Never RUN/CMD/ENTRYPOINT arguments, HEALTHCHECK, SHELL, ONBUILD or MAINTAINER;
 * EXPOSE and ARG are expanded by their dispatchers.
 */
import { parseMount, type WordExpander } from './run-mount.ts';
import type { Command, KeyValuePair, SourceContent } from './types.ts';

function expandPairs(pairs: readonly KeyValuePair[], expand: WordExpander): KeyValuePair[] {
  return pairs.map((p) => ({ key: expand(p.key), value: expand(p.value), noDelim: p.noDelim }));
}

function expandContents(contents: readonly SourceContent[], raw: WordExpander): SourceContent[] {
  return contents.map((c) => (c.expand ? { ...c, data: raw(c.data) } : c));
}

/**
 * Returns `cmd` with its expandable words expanded (a new object; `cmd` is not changed).
 * `expand` is the instruction lexer against the step's environment; `raw` keeps quotes (for
 * heredoc bodies). Errors of the expanders propagate unchanged.
 */
export function expandCommand(cmd: Command, expand: WordExpander, raw: WordExpander): Command {
  switch (cmd.kind) {
    case 'env':
      return { ...cmd, env: expandPairs(cmd.env, expand) };
    case 'label':
      return { ...cmd, labels: expandPairs(cmd.labels, expand) };
    case 'add': {
      const chown = expand(cmd.chown);
      const chmod = expand(cmd.chmod);
      const checksum = expand(cmd.checksum);
      const sourcePaths = cmd.sourcePaths.map(expand);
      const destPath = expand(cmd.destPath);
      const sourceContents = expandContents(cmd.sourceContents, raw);
      return { ...cmd, chown, chmod, checksum, sourcePaths, destPath, sourceContents };
    }
    case 'copy': {
      const chown = expand(cmd.chown);
      const chmod = expand(cmd.chmod);
      const sourcePaths = cmd.sourcePaths.map(expand);
      const destPath = expand(cmd.destPath);
      const sourceContents = expandContents(cmd.sourceContents, raw);
      return { ...cmd, chown, chmod, sourcePaths, destPath, sourceContents };
    }
    case 'workdir':
      return { ...cmd, path: expand(cmd.path) };
    case 'user':
      return { ...cmd, user: expand(cmd.user) };
    case 'volume':
      return { ...cmd, volumes: cmd.volumes.map(expand) };
    case 'stopsignal':
      return { ...cmd, signal: expand(cmd.signal) };
    case 'run':
      return { ...cmd, mounts: cmd.mountSpecs.map((m) => parseMount(m, expand)) };
    default:
      return cmd;
  }
}
