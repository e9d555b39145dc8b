// Why the native addon did not load, and the fix for the package manager that installed this
// copy of deltaprop. Each manager has its own way of running (or refusing to run) a dependency's
// install script, so advice for one is wrong for another: npm 11 and pnpm 10 skip it until the
// user approves it, Bun until the package is trusted, yarn 1 runs it.
import { existsSync, readFileSync } from 'node:fs';
import { join, sep } from 'node:path';

export type PackageManager = 'npm' | 'pnpm' | 'yarn' | 'bun';

/**
 * What the install script leaves in build/ when it ran but no addon came of it (see
 * scripts/install-failed.cjs): the manager's user agent and why.
 */
export const INSTALL_FAILED_MARKER = 'install-failed.json';

export interface InstallRecord {
  /** npm_config_user_agent of the install, e.g. 'pnpm/10.34.8 npm/? node/v20.20.2 linux x64'. */
  userAgent: string;
  /** The platform-arch the install ran on. */
  target: string;
}

/** The manager named first in a user agent string ('npm/11.19.1 node/v20…' → 'npm'). */
export function managerFromUserAgent(userAgent: string | undefined): PackageManager | null {
  const m = /^(npm|pnpm|yarn|bun)\//.exec(userAgent ?? '');
  return m ? (m[1] as PackageManager) : null;
}

/**
 * The project folder that holds this package: above the outermost node_modules in its path
 * (pnpm's node_modules/.pnpm/deltaprop@…/node_modules/deltaprop included), or null outside one.
 */
export function projectRoot(packageRoot: string): string | null {
  const at = packageRoot.indexOf(`${sep}node_modules${sep}`);
  return at < 0 ? null : packageRoot.slice(0, at) || sep;
}

/** The manager that laid out the installed package, from the layout it leaves behind. */
export function detectPackageManager(packageRoot: string, record: InstallRecord | null = null): PackageManager | null {
  const fromRecord = managerFromUserAgent(record?.userAgent);
  if (fromRecord) return fromRecord;
  if (packageRoot.includes(`${sep}node_modules${sep}.pnpm${sep}`)) return 'pnpm';
  const project = projectRoot(packageRoot);
  if (project === null) return null;
  const has = (...p: string[]) => existsSync(join(project, ...p));
  if (has('node_modules', '.pnpm') || has('pnpm-lock.yaml')) return 'pnpm';
  if (has('bun.lock') || has('bun.lockb')) return 'bun';
  if (has('node_modules', '.yarn-integrity') || has('yarn.lock')) return 'yarn';
  if (has('node_modules', '.package-lock.json') || has('package-lock.json')) return 'npm';
  return null;
}

/** The install record in build/, if the install script ran and failed to produce an addon. */
export function readInstallRecord(packageRoot: string): InstallRecord | null {
  try {
    const r = JSON.parse(readFileSync(join(packageRoot, 'build', INSTALL_FAILED_MARKER), 'utf8'));
    return typeof r?.userAgent === 'string' ? r : null;
  } catch {
    return null;
  }
}

const TOOLCHAIN = 'a C++ toolchain (g++ or clang, make, python3)';

/** The command that runs deltaprop's install script again, for each manager. */
const REBUILD: Record<PackageManager, string> = {
  npm: 'npm rebuild deltaprop',
  pnpm: 'pnpm rebuild deltaprop',
  yarn: 'yarn install --force',
  bun: 'bun pm trust deltaprop',
};

/** How each manager lets a dependency's install script run, when it skipped it. */
const APPROVE: Record<PackageManager, string> = {
  npm: 'npm skips dependencies\' install scripts until they are approved (or with --ignore-scripts):' +
    ' `npm install-scripts approve deltaprop && npm rebuild deltaprop`',
  pnpm: 'pnpm does not run dependencies\' build scripts until they are approved:' +
    ' `pnpm approve-builds` (select deltaprop), then `pnpm rebuild deltaprop`',
  yarn: 'yarn did not run deltaprop\'s install script (--ignore-scripts?): `yarn install --force`',
  bun: 'Bun does not run install scripts of packages it does not trust: `bun pm trust deltaprop`',
};

/**
 * One or two sentences for the native loader's error: why no addon loaded and the fix, for the
 * manager that installed this copy (or for each, when it cannot tell).
 */
export function installAdvice(packageRoot: string, loadError: string): string {
  const target = `${process.platform}-${process.arch}`;
  const record = readInstallRecord(packageRoot);
  const manager = detectPackageManager(packageRoot, record);
  const who = manager ? `installed with ${manager}` : 'package manager not recognized';
  const eachManager = (table: Record<PackageManager, string>) =>
    (Object.keys(table) as PackageManager[]).map((m) => `${m}: ${table[m]}`).join('; ');
  if (/node-gyp-build package is missing/.test(loadError)) {
    return ` Reinstall deltaprop: its dependency node-gyp-build, which finds the addon, is not installed.`;
  }
  if (/No native build was found/.test(loadError)) {
    const where = `There is no prebuild for ${target} in ${join(packageRoot, 'prebuilds')} and no local build in ${join(packageRoot, 'build')}`;
    if (record) {
      // the install script ran: compiling failed
      const rebuild = manager ? `\`${REBUILD[manager]}\`` : `the install script again (${eachManager(REBUILD)})`;
      return ` ${where} (${who}): the install script ran but compiling the addon failed.` +
        ` Install ${TOOLCHAIN}, then run ${rebuild}.`;
    }
    const approve = manager ? APPROVE[manager] : `if the install script was skipped: ${eachManager(APPROVE)}`;
    const bunBuild = manager === 'bun' ? ' (compiling under Bun needs node-gyp on PATH, e.g. `bun add -g node-gyp`)' : '';
    return ` ${where} (${who}): the install script, which compiles one, did not run. ${approve}${bunBuild};` +
      ` compiling needs ${TOOLCHAIN}.`;
  }
  // A build was found but did not load (e.g. a prebuild for a newer glibc): compile one here.
  const rebuild = manager ? `\`${REBUILD[manager]}\`` : `the install script again (${eachManager(REBUILD)})`;
  return ` The addon for ${target} in ${packageRoot} did not load (${who}); to compile one for this machine,` +
    ` install ${TOOLCHAIN} and run ${rebuild}. The prebuilds need glibc >= 2.34 and GCC 12's libstdc++.`;
}
