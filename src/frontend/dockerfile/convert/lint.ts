/**
 * Build checks (BuildKit's `frontend/dockerfile/linter`): the rules dockerfile2llb runs while
 * converting, configured by the `# check=skip=…;error=true` directive and by check comments
 * directly above an instruction. Findings become warnings; with `error=true` any finding
 * fails the build after conversion, as upstream.
 */
import { DrayError } from '../../../errors.ts';
import type { Location } from '../instructions/index.ts';
import { DirectiveParser } from '../parser/index.ts';

/** One warning of a conversion. */
export interface DockerfileWarning {
  /** The rule's short message, e.g. `JSON arguments recommended for CMD to prevent …`. */
  message: string;
  /** 1-based line it points at. */
  line?: number;
  /** The check's name (`JSONArgsRecommended`); absent for parser warnings. */
  rule?: string;
  /** Documentation of the rule. */
  url?: string;
}

const ruleUrls: Record<string, string> = {
  StageNameCasing: 'stage-name-casing',
  FromAsCasing: 'from-as-casing',
  NoEmptyContinuation: 'no-empty-continuation',
  ConsistentInstructionCasing: 'consistent-instruction-casing',
  DuplicateStageName: 'duplicate-stage-name',
  ReservedStageName: 'reserved-stage-name',
  JSONArgsRecommended: 'json-args-recommended',
  MaintainerDeprecated: 'maintainer-deprecated',
  UndefinedArgInFrom: 'undefined-arg-in-from',
  WorkdirRelativePath: 'workdir-relative-path',
  UndefinedVar: 'undefined-var',
  MultipleInstructionsDisallowed: 'multiple-instructions-disallowed',
  LegacyKeyValueFormat: 'legacy-key-value-format',
  RedundantTargetPlatform: 'redundant-target-platform',
  SecretsUsedInArgOrEnv: 'secrets-used-in-arg-or-env',
  InvalidDefaultArgInFrom: 'invalid-default-arg-in-from',
  FromPlatformFlagConstDisallowed: 'from-platform-flag-const-disallowed',
  ExposeProtoCasing: 'expose-proto-casing',
  ExposeInvalidFormat: 'expose-invalid-format',
};

interface LintConfig {
  skipAll: boolean;
  skip: ReadonlySet<string>;
  returnAsError: boolean;
}

/** Parses a `check` directive value (`skip=A,B;error=true`); throws DRAY_DOCKERFILE as upstream. */
export function parseLintOptions(value: string): LintConfig {
  const s = value.trim();
  const out = { skipAll: false, skip: new Set<string>(), returnAsError: false };
  if (s === '') return out;
  const parts = s.split(';');
  // strings.SplitN(s, ";", 3): the third part keeps any further semicolons.
  const limited = parts.length > 3 ? [parts[0]!, parts[1]!, parts.slice(2).join(';')] : parts;
  for (const p of limited) {
    const eq = p.indexOf('=');
    if (eq < 0) throw new DrayError('DRAY_DOCKERFILE', `invalid check option "${p}"`);
    const k = p.slice(0, eq).trim();
    const v = p.slice(eq + 1).trim();
    switch (k) {
      case 'skip':
        if (v === 'all') out.skipAll = true;
        else for (const r of v.split(',')) out.skip.add(r.trim());
        break;
      case 'experimental':
        break; // dray runs no experimental checks
      case 'error':
        if (['1', 't', 'T', 'TRUE', 'true', 'True'].includes(v)) out.returnAsError = true;
        else if (['0', 'f', 'F', 'FALSE', 'false', 'False'].includes(v)) out.returnAsError = false;
        else
          throw new DrayError(
            'DRAY_DOCKERFILE',
            `failed to parse check options: failed to parse check option "${p}": strconv.ParseBool: parsing "${v}": invalid syntax`,
          );
        break;
      default:
        throw new DrayError('DRAY_DOCKERFILE', `invalid check option "${k}"`);
    }
  }
  return out;
}

/** Runs checks and collects their warnings into a shared list. */
export class Linter {
  readonly #config: LintConfig;
  readonly #sink: DockerfileWarning[];
  readonly #called: Set<string>;

  constructor(config: LintConfig, sink: DockerfileWarning[], called: Set<string> = new Set()) {
    this.#config = config;
    this.#sink = sink;
    this.#called = called;
  }

  /** The linter with check comments directly above an instruction merged in. */
  withComments(comments: readonly string[] | undefined): Linter {
    if (!comments || comments.length === 0) return this;
    for (const comment of comments) {
      const d = new DirectiveParser({ comment: '' }).parseLine(comment);
      if (d?.name !== 'check') continue;
      const v = d.value.split(' ')[0] ?? '';
      let other: LintConfig;
      try {
        other = parseLintOptions(v);
      } catch {
        return this;
      }
      return new Linter(
        {
          skipAll: this.#config.skipAll || other.skipAll,
          skip: new Set([...this.#config.skip, ...other.skip]),
          returnAsError: this.#config.returnAsError,
        },
        this.#sink,
        this.#called,
      );
    }
    return this;
  }

  /** Reports a finding of `rule` unless the rule is skipped. */
  run(rule: string, message: string, loc?: Location): void {
    if (this.#config.skipAll || this.#config.skip.has(rule)) return;
    this.#called.add(rule);
    const slug = ruleUrls[rule];
    this.#sink.push({
      message,
      ...(loc ? { line: loc.startLine } : {}),
      rule,
      ...(slug ? { url: `https://docs.docker.com/go/dockerfile/rule/${slug}/` } : {}),
    });
  }

  /** With `error=true`: the error that fails the build when any check fired. */
  error(): DrayError | undefined {
    if (!this.#config.returnAsError || this.#called.size === 0) return undefined;
    return new DrayError(
      'DRAY_DOCKERFILE',
      `lint violation found for rules: ${[...this.#called].join(', ')}`,
      {
        hint: 'fix the warnings, or relax the `# check=` directive',
      },
    );
  }
}
