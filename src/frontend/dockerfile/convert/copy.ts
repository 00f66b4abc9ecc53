/**
 * COPY and ADD → a file op (dockerfile2llb `dispatchCopy`): local sources from the context
 * or another stage (wildcards, directory contents, `--parents`, `--exclude`), ADD's archive
 * extraction and http(s) downloads (`--checksum`), heredoc sources, `--chown`, `--chmod`
 * (octal or symbolic), and `--link` as a copy onto scratch merged over the stage.
 */
import type { Digest } from '../../../digest/index.ts';
import { DrayError } from '../../../errors.ts';
import {
  type Chown,
  type CopySpec,
  copy,
  http,
  merge,
  mkfile,
  type State,
  scratch,
} from '../../../solver/index.ts';
import type { SourcesAndDest } from '../instructions/index.ts';
import {
  commitToHistory,
  type DispatchContext,
  type DispatchState,
  prefixCommand,
  processCmdEnv,
  vertexMeta,
} from './state.ts';
import {
  basePath,
  cleanPath,
  containsWildcards,
  isValidSymbolicMode,
  joinPath,
  llbPath,
  normalizePath,
  uppercaseCmd,
} from './support.ts';

/** What one COPY or ADD asks for, after expansion. */
export interface CopyConfig {
  params: SourcesAndDest;
  excludePatterns: readonly string[];
  /** Where local sources come from: the context or another stage. */
  source: State;
  isAdd: boolean;
  /** The instruction text (for the vertex name) and its location. */
  code: string;
  location: { startLine: number; endLine: number };
  chown: string;
  chmod: string;
  link: boolean;
  checksum: string;
  parents: boolean;
  /** ADD `--unpack`; undefined when not given. */
  unpack: boolean | undefined;
  keepGitDir: boolean | undefined;
}

/** `user[:group]` as LLB's `WithUser` splits it; names are resolved by the file engine. */
export function parseChown(s: string): Chown {
  const colon = s.indexOf(':');
  return colon < 0 ? { user: s } : { user: s.slice(0, colon), group: s.slice(colon + 1) };
}

const gitProtocols = new Set(['http', 'https', 'ssh', 'git']);
const scpLike = /^([a-zA-Z0-9-_]+)@([a-zA-Z0-9-.]+):(.*?)(?:\?(.*?))?(?:#(.*))?$/;

/**
 * Whether a source names a git repository (dfgitutil `ParseGitRef`): `git://`, `ssh://`,
 * `user@host:path`, or http(s) ending in `.git`. `github.com/x/y` is treated as a local path.
 */
export function isGitSource(src: string): boolean {
  if (src.startsWith('./') || src.startsWith('../') || src.startsWith('github.com/')) return false;
  const proto = /^([a-zA-Z0-9]+):\/\//.exec(src);
  if (proto) {
    const scheme = proto[1]!.toLowerCase();
    if (!gitProtocols.has(scheme)) return false;
    if (scheme === 'http' || scheme === 'https') {
      let path: string;
      try {
        path = new URL(src).pathname;
      } catch {
        return false;
      }
      return path.endsWith('.git');
    }
    return true;
  }
  return scpLike.test(src);
}

/** An http(s) URL that is not a git repository. */
export function isHttpSource(src: string): boolean {
  if (!src.startsWith('http://') && !src.startsWith('https://')) return false;
  return !isGitSource(src);
}

// Go's url.Parse + path.Base, with the fallback name upstream uses.
function httpFilename(src: string): string {
  try {
    const p = decodeURIComponent(new URL(src).pathname);
    const base = basePath(p);
    if (base !== '.' && base !== '/') return base;
  } catch {
    // upstream falls back to the same name when the URL does not parse
  }
  return '__unnamed__';
}

const digestRe = /^([a-z0-9]+(?:[.+_-][a-z0-9]+)*):([a-zA-Z0-9=_-]+)$/;

// go-digest `Parse` + `Validate`, with its messages.
function parseDigest(s: string): Digest {
  const m = digestRe.exec(s);
  if (!m) throw new Error('invalid checksum digest format');
  const [, alg, hex] = m;
  const sizes: Record<string, number> = { sha256: 64, sha384: 96, sha512: 128 };
  const size = sizes[alg!];
  if (size === undefined) throw new Error('unsupported digest algorithm');
  if (hex!.length !== size) throw new Error('invalid checksum digest length');
  if (!/^[a-f0-9]+$/.test(hex!)) throw new Error('invalid checksum digest format');
  return s as Digest;
}

/** The `--chmod` value as the file engine takes it: normalised octal, or the symbolic text. Throws upstream's errors. */
export function parseChmod(chmod: string): string {
  const nonOctal = `invalid chmod parameter: '${chmod}'. it should be octal string and between 0 and 07777`;
  if (/^[0-7]+$/.test(chmod)) {
    const n = Number.parseInt(chmod, 8);
    if (n > 0o7777) throw new Error(nonOctal);
    return `0${n.toString(8).padStart(3, '0')}`;
  }
  // A value starting with a digit is octal to the symbolic parser too: report it as upstream does.
  if (/^[0-9]/.test(chmod)) throw new Error(nonOctal);
  if (!isValidSymbolicMode(chmod)) throw new Error('invalid syntax');
  return chmod;
}

/** Converts a COPY/ADD into a file op on the stage (or a merge, for `--link`). */
export function dispatchCopy(d: DispatchState, cfg: CopyConfig, ctx: DispatchContext): void {
  const destRaw = pathRelativeToWorkingDir(d.st.dir, cfg.params.destPath);
  const dest = llbPath(d.st.dir, destRaw, true);

  const common: { chown?: Chown; exclude?: readonly string[] } = {
    ...(cfg.chown !== '' ? { chown: parseChown(cfg.chown) } : {}),
    ...(cfg.excludePatterns.length > 0 ? { exclude: [...cfg.excludePatterns] } : {}),
  };
  const chmod = cfg.chmod !== '' ? parseChmod(cfg.chmod) : undefined;
  const mode = chmod !== undefined ? { chmod } : {};

  if (cfg.checksum !== '') {
    if (!cfg.isAdd) throw new Error("checksum can't be specified for COPY");
    if (cfg.params.sourcePaths.length !== 1)
      throw new Error("checksum can't be specified for multiple sources");
    const only = cfg.params.sourcePaths[0]!;
    if (!isHttpSource(only) && !isGitSource(only))
      throw new Error('checksum requires HTTP(S) or Git sources');
  }

  let commit = cfg.isAdd ? 'ADD' : 'COPY';
  if (cfg.parents) commit += ' --parents';
  if (cfg.chown !== '') commit += ` --chown=${cfg.chown}`;
  if (cfg.chmod !== '') commit += ` --chmod=${cfg.chmod}`;

  const env = d.st.env;
  const name = uppercaseCmd(processCmdEnv(ctx.shlex, cfg.code, env));
  const pgName = prefixCommand(d, name);
  const meta = vertexMeta(d, cfg.code, cfg.location);

  const actions: CopySpec[] = [];
  for (const srcRaw of cfg.params.sourcePaths) {
    commit += ` ${srcRaw}`;
    if (isGitSource(srcRaw)) {
      if (!cfg.isAdd) throw new Error("source can't be a git ref for COPY");
      throw new DrayError(
        'DRAY_DOCKERFILE',
        `ADD of a git repository is not supported by dray yet: ${srcRaw}`,
        {
          hint: 'clone the repository in a RUN step, or into the build context',
        },
      );
    }
    if (isHttpSource(srcRaw)) {
      if (!cfg.isAdd) throw new Error("source can't be a URL for COPY");
      const f = httpFilename(srcRaw);
      const checksum = cfg.checksum !== '' ? parseDigest(cfg.checksum) : undefined;
      const st = http(srcRaw, { filename: f, ...(checksum ? { checksum } : {}), name: pgName, meta });
      actions.push(
        copy(st, joinPath('/', f), dest, {
          ...mode,
          createDestPath: true,
          ...(cfg.unpack ? { extractArchive: true } : {}),
          ...common,
        }),
      );
      continue;
    }
    let src = srcRaw;
    let include: string[] | undefined;
    let requiredPaths: string[] | undefined;
    if (cfg.parents) {
      // An optional `/./` pivot: what follows it keeps its directories under dest.
      const pivot = src.indexOf('/./');
      let pattern: string;
      if (pivot < 0) {
        pattern = src;
        src = '/';
      } else {
        pattern = src.slice(pivot + 3);
        src = src.slice(0, pivot);
      }
      pattern = normalizePath('/', pattern, false);
      include = [pattern.replace(/^\//, '')];
      if (!containsWildcards(src) && !containsWildcards(pattern)) requiredPaths = [joinPath(src, pattern)];
    }
    src = cleanPath(normalizePath('/', src, false));
    if (requiredPaths) requiredPaths = requiredPaths.map((p) => normalizePath('/', p, false));
    const unpack = cfg.unpack ?? cfg.isAdd;
    actions.push(
      copy(cfg.source, src, dest, {
        ...mode,
        followSymlinks: true,
        dirCopyContents: true,
        ...(include ? { include } : {}),
        ...(requiredPaths ? { requiredPaths } : {}),
        ...(unpack ? { extractArchive: true } : {}),
        createDestPath: true,
        allowWildcard: true,
        allowEmptyWildcard: true,
        ...common,
      }),
    );
  }

  for (const content of cfg.params.sourceContents) {
    commit += ` <<${content.path}`;
    const path = joinPath('/', content.path);
    const doc = scratch.file([mkfile(path, 0o644, content.data)], {
      name: '[internal] preparing inline document',
    });
    actions.push(copy(doc, path, dest, { ...mode, createDestPath: true, ...common }));
  }
  commit += ` ${cfg.params.destPath}`;

  const noCache = d.ignoreCache ? { noCache: true } : {};
  if (cfg.link && cfg.chmod === '') {
    // Copied onto an empty tree and stacked over the stage, so it need not read the stage.
    const layer = scratch.file(actions, { name: pgName, meta, ...noCache });
    const linkName = `${pgName.slice(0, pgName.length - name.length)}LINK ${name}`;
    d.st = { ...d.st, fs: merge([d.st.fs, layer], { name: linkName, meta, ...noCache }) };
  } else {
    d.st = { ...d.st, fs: d.st.fs.file(actions, { name: pgName, meta, ...noCache }) };
  }
  commitToHistory(d, ctx, commit, true, true);
}

/** A COPY/ADD destination made absolute against the working dir, keeping a trailing `/` or `/.`. */
export function pathRelativeToWorkingDir(dir: string, p: string): string {
  if (p.startsWith('/')) return normalizePath('/', p, true);
  const rel = p === '.' || p === '' ? './' : p;
  return normalizePath(dir, rel, true);
}
