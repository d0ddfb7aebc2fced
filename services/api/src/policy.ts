import { readFileSync } from 'node:fs';
import { ConfigError } from '@basalt/config';
import { errorMessage, ForbiddenError } from '@basalt/errors';
import { parse as parseYaml } from 'yaml';

/** What a check is evaluated against: the caller's credentials, as oslo.policy's `creds`. */
export interface Credentials {
  readonly user_id: string;
  readonly project_id: string;
  /** Lower-cased, with the roles they imply (admin ⊃ member ⊃ reader), as Keystone puts them in a token. */
  readonly roles: readonly string[];
  readonly is_admin: boolean;
  readonly is_admin_project: boolean;
}

/** What the action is on: its `project_id` (the resource's or the URL's) and `user_id`. */
export type PolicyTarget = Readonly<Record<string, string>>;

type Check =
  | { readonly kind: 'true' }
  | { readonly kind: 'false' }
  | { readonly kind: 'not'; readonly check: Check }
  | { readonly kind: 'and' | 'or'; readonly checks: readonly Check[] }
  | { readonly kind: 'rule'; readonly name: string }
  | { readonly kind: 'role'; readonly match: string }
  | { readonly kind: 'generic'; readonly key: string; readonly match: string };

/** Keystone's implied roles: a token names the roles its role implies too. */
const IMPLIED: Readonly<Record<string, readonly string[]>> = {
  admin: ['member', 'reader'],
  member: ['reader'],
};

/**
 * oslo.policy's rule language (`role:admin or (role:member and project_id:%(project_id)s)`, `@`,
 * `!`, `rule:<name>`, `not`, `<cred>:<literal or %(target)s>`), evaluated over a table of defaults
 * and the operator's overrides. Every rule is parsed and every `rule:` reference resolved at
 * construction, so a bad policy file stops the process instead of refusing requests later.
 */
export class Policy {
  private readonly rules = new Map<string, Check>();

  constructor(defaults: Readonly<Record<string, string>>, overrides: Readonly<Record<string, string>> = {}) {
    for (const [name, text] of Object.entries(defaults)) this.rules.set(name, parseRule(name, text));
    for (const [name, text] of Object.entries(overrides)) {
      if (!this.rules.has(name)) throw new ConfigError(`policy: unknown rule "${name}"`);
      this.rules.set(name, parseRule(name, text));
    }
    for (const name of this.rules.keys()) this.resolve(name, []);
  }

  has(rule: string): boolean {
    return this.rules.has(rule);
  }

  /** The credentials of a caller: roles widened by what they imply, `is_admin` by `context_is_admin`. */
  credentials(caller: { userId: string; projectId: string; roles: readonly string[] }): Credentials {
    const roles = new Set<string>();
    for (const role of caller.roles.map((r) => r.toLowerCase())) {
      roles.add(role);
      // own keys only: a role named "constructor" implies nothing
      for (const implied of Object.hasOwn(IMPLIED, role) ? (IMPLIED[role] as readonly string[]) : [])
        roles.add(implied);
    }
    const base = {
      user_id: caller.userId,
      project_id: caller.projectId,
      roles: [...roles],
      is_admin: false,
      is_admin_project: true,
    };
    return { ...base, is_admin: this.enforce('context_is_admin', base, {}) };
  }

  enforce(rule: string, creds: Credentials, target: PolicyTarget): boolean {
    const check = this.rules.get(rule);
    if (!check) throw new Error(`policy: no rule "${rule}"`);
    return this.evaluate(check, creds, target);
  }

  /** Cinder's refusal when a rule says no: 403 with the rule's name. */
  authorize(rule: string, creds: Credentials, target: PolicyTarget): void {
    if (!this.enforce(rule, creds, target)) {
      throw new ForbiddenError(`Policy doesn't allow ${rule} to be performed.`);
    }
  }

  private evaluate(check: Check, creds: Credentials, target: PolicyTarget): boolean {
    switch (check.kind) {
      case 'true':
        return true;
      case 'false':
        return false;
      case 'not':
        return !this.evaluate(check.check, creds, target);
      case 'and':
        return check.checks.every((c) => this.evaluate(c, creds, target));
      case 'or':
        return check.checks.some((c) => this.evaluate(c, creds, target));
      case 'rule':
        return this.evaluate(this.rules.get(check.name) as Check, creds, target);
      case 'role': {
        const role = substitute(check.match, target);
        return role !== undefined && creds.roles.includes(role.toLowerCase());
      }
      case 'generic': {
        const match = substitute(check.match, target);
        if (match === undefined) return false;
        // a quoted key is a literal compared with the target ('public':%(visibility)s)
        if (/^'.*'$/.test(check.key)) return check.key.slice(1, -1) === match;
        const value = (creds as unknown as Record<string, unknown>)[check.key];
        return value !== undefined && value !== null && pythonString(value) === match;
      }
    }
  }

  private resolve(name: string, path: readonly string[]): void {
    if (path.includes(name))
      throw new ConfigError(`policy: rule "${name}" refers to itself (${[...path, name].join(' → ')})`);
    const visit = (check: Check): void => {
      if (check.kind === 'rule') {
        if (!this.rules.has(check.name)) {
          throw new ConfigError(`policy: rule "${name}" refers to unknown rule "${check.name}"`);
        }
        this.resolve(check.name, [...path, name]);
      } else if (check.kind === 'not') visit(check.check);
      else if (check.kind === 'and' || check.kind === 'or') check.checks.forEach(visit);
    };
    visit(this.rules.get(name) as Check);
  }
}

/** Rule overrides from `[oslo_policy] policy_file`: a YAML (or JSON) mapping of rule name to check string. */
export function loadPolicyFile(path: string): Record<string, string> {
  let parsed: unknown;
  try {
    parsed = parseYaml(readFileSync(path, 'utf8'));
  } catch (error) {
    throw new ConfigError(`oslo_policy.policy_file ${path}: ${errorMessage(error)}`);
  }
  if (parsed === null || parsed === undefined) return {};
  if (typeof parsed !== 'object' || Array.isArray(parsed)) {
    throw new ConfigError(`oslo_policy.policy_file ${path}: must map rule names to check strings`);
  }
  const rules: Record<string, string> = {};
  for (const [name, text] of Object.entries(parsed)) {
    if (typeof text !== 'string') {
      throw new ConfigError(`oslo_policy.policy_file ${path}: rule "${name}" must be a string`);
    }
    rules[name] = text;
  }
  return rules;
}

function parseRule(name: string, text: string): Check {
  try {
    return parseCheckString(text);
  } catch (error) {
    throw new ConfigError(`policy: rule "${name}": ${errorMessage(error)}`);
  }
}

/** Parses one check string; throws on anything oslo.policy would not read the same way. */
export function parseCheckString(text: string): Check {
  const tokens = tokenize(text);
  if (tokens.length === 0) return { kind: 'true' };
  let at = 0;
  const peek = () => tokens[at];
  // one level of the grammar: operands joined by `op`, and binds looser than `next`
  const joined = (op: 'and' | 'or', next: () => Check) => (): Check => {
    const checks = [next()];
    while (peek() === op) {
      at++;
      checks.push(next());
    }
    return checks.length === 1 ? (checks[0] as Check) : { kind: op, checks };
  };
  const andExpr = (): Check => joined('and', notExpr)();
  const orExpr = joined('or', andExpr);
  const notExpr = (): Check => {
    const token = tokens[at++];
    if (token === undefined) throw new Error(`"${text}" ends where a check was expected`);
    if (token === 'not') return { kind: 'not', check: notExpr() };
    if (token === '(') {
      const inner = orExpr();
      if (tokens[at++] !== ')') throw new Error(`"${text}" has an unclosed parenthesis`);
      return inner;
    }
    if (token === ')' || token === 'and' || token === 'or') {
      throw new Error(`"${text}" has "${token}" where a check was expected`);
    }
    return atom(token);
  };
  const check = orExpr();
  if (at !== tokens.length) throw new Error(`"${text}" has "${tokens[at]}" after a complete expression`);
  return check;
}

function atom(token: string): Check {
  if (token === '@') return { kind: 'true' };
  if (token === '!') return { kind: 'false' };
  const colon = token.indexOf(':');
  if (colon <= 0 || colon === token.length - 1) throw new Error(`"${token}" is not a check (kind:match)`);
  const key = token.slice(0, colon);
  const match = token.slice(colon + 1);
  if (/%\((?![A-Za-z0-9_.]+\)s)/.test(match)) throw new Error(`"${token}" has a malformed %(name)s`);
  if (key === 'rule') return { kind: 'rule', name: match };
  if (key === 'role') return { kind: 'role', match };
  if (key === 'http' || key === 'https') throw new Error(`"${token}": remote checks are not supported`);
  if (!/^([A-Za-z_][A-Za-z0-9_.]*|'[^']*')$/.test(key)) throw new Error(`"${token}" has a bad key "${key}"`);
  return { kind: 'generic', key, match };
}

/** oslo's tokenizer: words split on white space, parentheses peeled off their ends. */
function tokenize(text: string): string[] {
  const tokens: string[] = [];
  for (const word of text.trim().split(/\s+/).filter(Boolean)) {
    const lead = /^\(*/.exec(word)?.[0].length ?? 0;
    let rest = word.slice(lead);
    let trail = 0;
    while (rest.endsWith(')')) {
      rest = rest.slice(0, -1);
      trail++;
    }
    for (let i = 0; i < lead; i++) tokens.push('(');
    const keyword = rest.toLowerCase();
    if (rest) tokens.push(keyword === 'and' || keyword === 'or' || keyword === 'not' ? keyword : rest);
    for (let i = 0; i < trail; i++) tokens.push(')');
  }
  return tokens;
}

/** `%(name)s` replaced from the target; undefined when the target lacks a name (the check fails). */
function substitute(match: string, target: PolicyTarget): string | undefined {
  let missing = false;
  const value = match.replace(/%\(([A-Za-z0-9_.]+)\)s/g, (_m, key: string) => {
    const v = Object.hasOwn(target, key) ? target[key] : undefined;
    if (v === undefined) missing = true;
    return v ?? '';
  });
  return missing ? undefined : value;
}

/** Values as oslo compares them: Python's str(), so True is "True". */
function pythonString(value: unknown): string {
  if (typeof value === 'boolean') return value ? 'True' : 'False';
  return String(value);
}
