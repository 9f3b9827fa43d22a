// Reading systemdunits.conf: find it, read it safely, bound its YAML, then hand each job to
// validate.ts.
//
// The file uses go.d's layout and job keys, so a go.d `systemdunits` job can be reused as it is:
//   update_every: 1            # optional module-level default for every job
//   jobs:
//     - name: service_units
//       include: ['*.service', '*.socket']
//       exclude: ['user@*.service']
//       skip_transient: false
//       timeout: 2
// Every problem is one line naming the file, the job and the key. A job with any problem (an
// unknown key, a wrong type, a pattern no unit can match, a duplicate name) is skipped and the
// others run. When no job is left (a YAML syntax error, an unreadable file, every job bad) the
// plugin must not guess: the last line says so and main prints DISABLE. Only when there is no
// config file at all (or it has no `jobs` key) does the built-in default job run.
//
// The file is hostile until checked (issue 10): only a regular file of at most MAX_CONFIG_BYTES is
// read, and its YAML is bounded (nesting, aliases, jobs, patterns) before it is composed, so that
// loading never blocks the event loop for long, whatever the file holds.

import { closeSync, constants, existsSync, fstatSync, openSync, readSync, type Stats } from 'node:fs';
import { join } from 'node:path';
import type { Document, Node as YamlNode } from 'yaml';
import { CONFIG_FILE_NAME, defaultJob, IGNORED_MODULE_KEYS, MAX_JOBS, MODULE_SCHEMA, type Context, type JobConfig } from './schema.js';
import { checkValue, parseJob, Refused } from './validate.js';
import { describe, isRecord, oneLine, suggest } from './words.js';
import { loadYaml, type Yaml } from './yaml.js';

export interface PluginConfig {
  /** Empty when no job can run: the plugin then disables itself (problems say why). */
  readonly jobs: readonly JobConfig[];
  /** Where the jobs came from: a file path or `built-in defaults`. */
  readonly source: string;
}

export interface LoadedConfig {
  readonly config: PluginConfig;
  /** One line each, ready for stderr. */
  readonly problems: readonly string[];
}

export const BUILT_IN = 'built-in defaults';
/** Ends the line that explains why no job runs. */
export const DISABLING = 'disabling the plugin';

/**
 * The largest config file read. A real one is a few KB (the sample, comments and all, is 2.5 KB;
 * a job is about 150 bytes): 32 KiB leaves room for ten times that, and bounds both the memory
 * and the time the YAML library takes (about 0.3 s for 32 KiB of the worst shapes, cold, on a busy
 * 2-core machine).
 */
export const MAX_CONFIG_BYTES = 32 * 1024;
/** `[`/`{` nesting: a job is two deep; the YAML composer recurses once per level. */
const MAX_FLOW_DEPTH = 32;
/** Top-level keys besides the ignored ones. */
const TOP_KEYS = ['jobs', MODULE_SCHEMA.updateEvery.key, MODULE_SCHEMA.contextPrefix.key];
/** Aliases in the file (`*name`): each may expand to a copy of what it names. */
const MAX_ALIASES = 100;
/** Lines said about one file; a file full of errors must not flood the agent's log. */
const MAX_PROBLEM_LINES = 20;

/**
 * Where agents keep their config (user dir, then stock dir, of each usual install, as
 * scripts/install/install.sh looks): what `--check-config` reads when run by hand, without the agent's
 * NETDATA_USER_CONFIG_DIR.
 */
export const AGENT_CONFIG_DIRS: readonly string[] = [
  '/etc/netdata',
  '/usr/lib/netdata/conf.d',
  '/opt/netdata/etc/netdata',
  '/opt/netdata/usr/lib/netdata/conf.d',
  '/usr/local/etc/netdata',
  '/usr/local/lib/netdata/conf.d',
];

/**
 * The config file to use: `--config`, then the user config dir, then the stock config dir; when
 * the agent did not name a user config dir, then `agentDirs` (none under the agent).
 */
export function findConfigFile(explicit: string | undefined, env: NodeJS.ProcessEnv, agentDirs: readonly string[] = []): string | undefined {
  if (explicit) return explicit;
  const dirs = [env.NETDATA_USER_CONFIG_DIR, env.NETDATA_STOCK_CONFIG_DIR, ...(env.NETDATA_USER_CONFIG_DIR ? [] : agentDirs)];
  for (const dir of dirs) {
    if (!dir) continue;
    const file = join(dir, CONFIG_FILE_NAME);
    if (existsSync(file)) return file;
  }
  return undefined;
}

/** No file: the built-in default job. A file: its valid jobs, possibly none (then: disable). */
export function loadConfig(file: string | undefined, pluginUpdateEvery: number): LoadedConfig {
  if (file === undefined) return { config: { jobs: [defaultJob(pluginUpdateEvery)], source: BUILT_IN }, problems: [] };
  const text = readConfigFile(file);
  if (typeof text !== 'string') return { config: { jobs: [], source: file }, problems: [`${file}: ${text.refused}; ${DISABLING}`] };
  return parseConfig(text, file, pluginUpdateEvery);
}

/**
 * The file's text, or why it is refused. Opened once and checked on that descriptor, so what is
 * checked is what is read; O_NONBLOCK keeps a FIFO from blocking the open, and only a regular
 * file is read (/dev/zero or a FIFO would never end), at most MAX_CONFIG_BYTES + 1 bytes of it.
 */
function readConfigFile(file: string): string | { refused: string } {
  let fd: number;
  try {
    fd = openSync(file, constants.O_RDONLY | constants.O_NONBLOCK | constants.O_NOCTTY);
  } catch (err) {
    return { refused: `cannot read the config (${ioReason(err)})` };
  }
  try {
    const st = fstatSync(fd);
    if (!st.isFile()) return { refused: `cannot read the config (${fileKind(st)}, not a regular file)` };
    const tooBig = (size: string) => ({ refused: `refusing the config (${size}, over the ${MAX_CONFIG_BYTES / 1024} KiB limit: a config is a few KB)` });
    if (st.size > MAX_CONFIG_BYTES) return tooBig(`${st.size} bytes`);
    const buf = Buffer.alloc(MAX_CONFIG_BYTES + 1);
    let len = 0;
    for (let n = -1; n !== 0 && len < buf.length; len += n) n = readSync(fd, buf, len, buf.length - len, null);
    if (len > MAX_CONFIG_BYTES) return tooBig('it grew while read');
    return buf.toString('utf8', 0, len);
  } catch (err) {
    return { refused: `cannot read the config (${ioReason(err)})` };
  } finally {
    closeSync(fd);
  }
}

function ioReason(err: unknown): string {
  const e = err as NodeJS.ErrnoException;
  return e.code === 'ENOENT' ? 'no such file' : e.code === 'EACCES' ? 'permission denied' : e.message;
}

function fileKind(st: Stats): string {
  if (st.isDirectory()) return 'a directory';
  if (st.isFIFO()) return 'a FIFO';
  if (st.isCharacterDevice()) return 'a character device';
  if (st.isBlockDevice()) return 'a block device';
  if (st.isSocket()) return 'a socket';
  return 'not a file';
}

interface Scan {
  /** Why the YAML is too complex to compose. */
  readonly complex?: string;
  /** The first alias (`*name`) with no anchor before it, e.g. an unquoted `*.socket`. */
  readonly unresolved?: { readonly offset: number; readonly text: string };
}

/**
 * One pass of the YAML lexer, which is linear and flat. The composer recurses per nesting level
 * and copies per alias, so those are counted before it runs.
 */
function scanYaml({ Lexer }: Yaml, text: string): Scan {
  let depth = 0;
  let aliases = 0;
  let offset = 0;
  const anchors = new Set<string>();
  let unresolved: Scan['unresolved'];
  for (const token of new Lexer().lex(text)) {
    if (token === '[' || token === '{') {
      if (++depth > MAX_FLOW_DEPTH) return { complex: `nested more than ${MAX_FLOW_DEPTH} deep at ${lineCol(text, offset)}` };
    } else if (token === ']' || token === '}') depth = Math.max(0, depth - 1);
    else if (token.startsWith('&')) anchors.add(token.slice(1));
    else if (token.startsWith('*')) {
      if (++aliases > MAX_ALIASES) return { complex: `more than ${MAX_ALIASES} aliases (*name)` };
      if (!unresolved && !anchors.has(token.slice(1))) unresolved = { offset, text: token };
    }
    // The lexer's own markers (document start, scalar…) are one control character, not in the text.
    if (!(token.length === 1 && token < ' ' && token !== '\n' && token !== '\t' && token !== '\r')) offset += token.length;
  }
  return { unresolved };
}

function lineCol(text: string, offset: number): string {
  const before = text.slice(0, offset);
  return `line ${before.split('\n').length}, column ${offset - before.lastIndexOf('\n')}`;
}

/** Parses and validates the text of a config file. Jobs with problems are left out. */
export function parseConfig(text: string, source: string, pluginUpdateEvery: number): LoadedConfig {
  const { config, problems } = parseConfigText(loadYaml(), text, source, pluginUpdateEvery);
  if (problems.length <= MAX_PROBLEM_LINES) return { config, problems };
  // The last line may say why nothing runs: keep it.
  const shown = problems.slice(0, MAX_PROBLEM_LINES - 2);
  const more = problems.length - shown.length - 1;
  return { config, problems: [...shown, `${source}: ${more} more problem${more > 1 ? 's' : ''} not shown`, problems[problems.length - 1]!] };
}

function parseConfigText(y: Yaml, text: string, source: string, pluginUpdateEvery: number): LoadedConfig {
  const none = (problems: string[]): LoadedConfig => ({ config: { jobs: [], source }, problems });
  const lines = new y.LineCounter();
  const scan = scanYaml(y, text);
  if (scan.complex) return none([`${source}: too complex for a config: ${scan.complex}; ${DISABLING}`]);
  // Keys given twice are found below (the library's own check is quadratic in the keys of a map).
  const doc = y.parseDocument(text, { uniqueKeys: false, prettyErrors: false, lineCounter: lines });
  // A duplicate key is clear enough to blame on one job; any other YAML error may have shifted
  // what follows it into other keys or jobs, so the file as a whole is refused.
  const badJobs = new Map<number, string[]>();
  const errors = [...doc.errors, ...duplicateKeys(y, doc)].sort((a, b) => a.pos[0] - b.pos[0]);
  for (const err of errors) {
    const at = locate(y, doc, err.pos[0]);
    const pos = lines.linePos(err.pos[0]);
    const where = `line ${pos.line}, column ${pos.col}`;
    const what = err.message.split('\n')[0]!;
    if (err.code === 'DUPLICATE_KEY' && at.job !== undefined) {
      const list = badJobs.get(at.job) ?? [];
      list.push(`${at.key ?? '?'}: the key is given twice (${where})`);
      badJobs.set(at.job, list);
      continue;
    }
    return none([`${source}:${context(at)} not valid YAML at ${where}: ${oneLine(what, 200)}; ${DISABLING}`]);
  }
  if (scan.unresolved) {
    // An unquoted glob: `include: [*.socket]` is an alias named `.socket` to YAML.
    const { offset, text: alias } = scan.unresolved;
    const hint = /[.*?[\]@]/.test(alias.slice(1))
      ? `'${oneLine(alias)}' starts with '*', which YAML reads as an alias: quote the glob, as in ['${oneLine(alias)}']`
      : `the alias '${oneLine(alias)}' names no anchor (&${oneLine(alias.slice(1))}) before it; a glob starting with '*' must be quoted`;
    return none([`${source}:${context(locate(y, doc, offset))} not valid YAML at ${lineCol(text, offset)}: ${hint}; ${DISABLING}`]);
  }
  let top: unknown;
  try {
    top = doc.toJS({ maxAliasCount: MAX_ALIASES });
  } catch (err) {
    return none([`${source}: not valid YAML: ${oneLine((err as Error).message, 200)}; ${DISABLING}`]);
  }
  if (top === null || top === undefined) top = {};
  if (typeof top !== 'object' || Array.isArray(top)) {
    return none([`${source}: expected a mapping with a 'jobs' list at the top, got ${describe(top)}; ${DISABLING}`]);
  }
  const problems: string[] = [];
  const mod = top as Record<string, unknown>;
  for (const key of Object.keys(mod)) {
    if (key !== 'jobs' && key !== MODULE_SCHEMA.updateEvery.key && key !== MODULE_SCHEMA.contextPrefix.key && !IGNORED_MODULE_KEYS.has(key)) {
      problems.push(`${source}: ${oneLine(key)}: unknown top-level key, ignored${suggest(key, TOP_KEYS, ` (known: ${TOP_KEYS.join(', ')})`)}`);
    }
  }
  let moduleEvery = MODULE_SCHEMA.updateEvery.default({ pluginEvery: pluginUpdateEvery, moduleEvery: pluginUpdateEvery });
  if (mod.update_every !== undefined) {
    const v = checkValue(MODULE_SCHEMA.updateEvery.type, mod.update_every, { pluginEvery: pluginUpdateEvery, moduleEvery });
    if (v instanceof Refused) problems.push(`${source}: update_every: ${v.reason}; using ${pluginUpdateEvery}`);
    else moduleEvery = v as number;
  }
  let modulePrefix = MODULE_SCHEMA.contextPrefix.default();
  if (mod.context_prefix !== undefined) {
    const v = checkValue(MODULE_SCHEMA.contextPrefix.type, mod.context_prefix, { pluginEvery: pluginUpdateEvery, moduleEvery });
    if (v instanceof Refused) problems.push(`${source}: context_prefix: ${v.reason}; using ${modulePrefix}`);
    else modulePrefix = v as string;
  }
  const ctx: Context = { pluginEvery: pluginUpdateEvery, moduleEvery, modulePrefix };
  // No jobs key (an empty file, or only defaults): the built-in job, with the file's update_every and context_prefix.
  if (!('jobs' in mod)) return { config: { jobs: [{ ...defaultJob(pluginUpdateEvery), updateEvery: moduleEvery, contextPrefix: modulePrefix }], source }, problems };
  if (!Array.isArray(mod.jobs)) return none([...problems, `${source}: jobs: expected a list of jobs, got ${describe(mod.jobs)}; ${DISABLING}`]);
  if (mod.jobs.length === 0) return none([...problems, `${source}: jobs: the list is empty; ${DISABLING}`]);
  if (mod.jobs.length > MAX_JOBS) return none([...problems, `${source}: jobs: ${mod.jobs.length} jobs, more than the ${MAX_JOBS} allowed; ${DISABLING}`]);

  const jobs: JobConfig[] = [];
  const firstWithName = new Map<string, number>();
  mod.jobs.forEach((raw: unknown, index: number) => {
    const rawName = isRecord(raw) && typeof raw.name === 'string' ? raw.name : undefined;
    const where = `${source}: job ${rawName ? `'${oneLine(rawName)}' ` : ''}(jobs[${index}])`;
    const { job, errors, notes } = parseJob(raw, ctx);
    errors.unshift(...(badJobs.get(index) ?? []));
    // The first job to use a name owns it, valid or not: which one runs must not depend on typos.
    if (rawName !== undefined) {
      const first = firstWithName.get(rawName);
      if (first !== undefined) errors.push(`name: '${oneLine(rawName)}' is already the name of jobs[${first}]`);
      else firstWithName.set(rawName, index);
    }
    for (const n of notes) problems.push(`${where}: ${n}`);
    if (!job || errors.length > 0) {
      for (const e of errors) problems.push(`${where}: ${e}; job skipped`);
      return;
    }
    jobs.push(job);
  });
  if (jobs.length === 0) problems.push(`${source}: no valid job (${mod.jobs.length} skipped); ${DISABLING}`);
  return { config: { jobs, source }, problems };
}

/**
 * Keys given twice at the top or in a job, as the YAML library would report them (with
 * uniqueKeys): one Set per mapping, so linear in the keys.
 */
function duplicateKeys({ isMap, isScalar, isSeq }: Yaml, doc: Document): { code: string; message: string; pos: [number, number] }[] {
  const found: { code: string; message: string; pos: [number, number] }[] = [];
  const check = (node: unknown): void => {
    if (!isMap(node)) return;
    const seen = new Set<unknown>();
    for (const pair of node.items) {
      if (!isScalar(pair.key)) continue;
      if (seen.has(pair.key.value) && pair.key.range) {
        found.push({ code: 'DUPLICATE_KEY', message: 'Map keys must be unique', pos: [pair.key.range[0], pair.key.range[1]] });
      }
      seen.add(pair.key.value);
    }
  };
  check(doc.contents);
  if (isMap(doc.contents)) {
    const jobs = doc.contents.items.find((p) => isScalar(p.key) && p.key.value === 'jobs');
    if (jobs && isSeq(jobs.value)) jobs.value.items.forEach(check);
  }
  return found;
}

/** ` job 'NAME' (jobs[I]): KEY:` for a message about a place in the file, or ''. */
function context(at: Location): string {
  return at.job === undefined ? '' : ` job ${at.name ? `'${at.name}' ` : ''}(jobs[${at.job}]):${at.key ? ` ${at.key}:` : ''}`;
}

interface Location {
  /** Index in `jobs` of the job holding the offset. */
  job?: number;
  name?: string;
  key?: string;
}

/** Which job and key of the (possibly broken) document an offset falls in, as far as it can tell. */
function locate({ isMap, isPair, isScalar, isSeq }: Yaml, doc: Document, offset: number): Location {
  const inside = (n: { range?: [number, number, number] | null } | null | undefined): boolean =>
    !!n?.range && offset >= n.range[0] && offset <= n.range[2];
  if (!isMap(doc.contents)) return {};
  const jobsPair = doc.contents.items.find((p) => isScalar(p.key) && p.key.value === 'jobs');
  if (!jobsPair || !isSeq(jobsPair.value)) return {};
  const items = jobsPair.value.items as YamlNode[];
  const index = items.findIndex((item) => inside(item as never));
  if (index < 0) return {};
  const item = items[index];
  const loc: Location = { job: index };
  if (isMap(item)) {
    const name = item.get('name');
    if (typeof name === 'string') loc.name = oneLine(name);
    for (const pair of item.items) {
      if (!isPair(pair) || !isScalar(pair.key)) continue;
      const keyNode = pair.key;
      const end = (pair.value as { range?: [number, number, number] } | null)?.range?.[2] ?? keyNode.range?.[2] ?? -1;
      if (keyNode.range && offset >= keyNode.range[0] && offset <= end) loc.key = oneLine(String(keyNode.value));
    }
  }
  return loc;
}
