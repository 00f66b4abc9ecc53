import { readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';

/**
 * The only place dray reads the environment. Everything it finds is passed to the library
 * as options.
 */
export interface CliEnvironment {
  /** Data root: --root, else DRAY_ROOT, else $XDG_DATA_HOME/dray, else ~/.local/share/dray. */
  root: string;
  /** docker-compatible config dir: --config, else DOCKER_CONFIG, else ~/.docker. */
  configDir: string;
  /** --insecure-registry flags plus `insecure-registries` from <configDir>/dray.json. */
  insecureRegistries: string[];
  isTTY: boolean;
}

export function defaultRoot(env: NodeJS.ProcessEnv = process.env): string {
  if (env.DRAY_ROOT) return env.DRAY_ROOT;
  const data = env.XDG_DATA_HOME || join(homedir(), '.local', 'share');
  return join(data, 'dray');
}

export function defaultConfigDir(env: NodeJS.ProcessEnv = process.env): string {
  return env.DOCKER_CONFIG || join(homedir(), '.docker');
}

/** Reads `insecure-registries` from <configDir>/dray.json (missing file: none). */
export function configuredInsecureRegistries(configDir: string): string[] {
  try {
    const doc = JSON.parse(readFileSync(join(configDir, 'dray.json'), 'utf8')) as {
      'insecure-registries'?: unknown;
    };
    const list = doc['insecure-registries'];
    return Array.isArray(list) ? list.filter((x): x is string => typeof x === 'string') : [];
  } catch {
    return [];
  }
}

export function resolveEnvironment(
  flags: { root?: string; config?: string; insecureRegistry?: string[] },
  env: NodeJS.ProcessEnv = process.env,
  isTTY = Boolean(process.stderr.isTTY),
): CliEnvironment {
  const configDir = flags.config ?? defaultConfigDir(env);
  return {
    root: flags.root ?? defaultRoot(env),
    configDir,
    insecureRegistries: [...(flags.insecureRegistry ?? []), ...configuredInsecureRegistries(configDir)],
    isTTY,
  };
}
