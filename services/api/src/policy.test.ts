import { writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigError } from '@basalt/config';
import { ForbiddenError } from '@basalt/errors';
import { loadPolicyFile, Policy, parseCheckString } from './policy';
import { POLICY_DEFAULTS } from './policy-defaults';
import { COMPUTE_ROUTE_POLICIES, IMAGE_ROUTE_POLICIES, VOLUME_ROUTE_POLICIES } from './policy-routes';

const policy = new Policy(POLICY_DEFAULTS);
const caller = (role: string, projectId = 'p1') =>
  policy.credentials({ userId: 'u1', projectId, roles: [role] });
const own = { project_id: 'p1', user_id: 'u1' };
const other = { project_id: 'p2', user_id: 'u2' };

describe('the default rules (Cinder, Nova, Glance)', () => {
  test.each([
    // rule, admin, member, reader — on the caller's own project
    ['volume:create', true, true, false],
    ['volume:get', true, true, true],
    ['volume:get_all', true, true, true],
    ['volume:delete', true, true, false],
    ['volume:extend', true, true, false],
    ['volume_extension:volume_admin_actions:reset_status', true, false, false],
    ['volume_extension:quotas:show', true, true, true],
    ['volume_extension:quotas:update', true, false, false],
    ['volume_extension:services:index', true, false, false],
    ['os_compute_api:servers:create', true, true, false],
    ['os_compute_api:servers:index', true, true, true],
    ['os_compute_api:os-volumes-attachments:create', true, true, false],
    ['os_compute_api:os-volumes-attachments:index', true, true, true],
    ['get_image', true, true, true],
    ['add_image', true, true, false],
  ])('%s: admin %s, member %s, reader %s', (rule, admin, member, reader) => {
    expect(policy.enforce(rule, caller('admin'), own)).toBe(admin);
    expect(policy.enforce(rule, caller('member'), own)).toBe(member);
    expect(policy.enforce(rule, caller('reader'), own)).toBe(reader);
  });

  test("a member or reader of one project is refused another project's; an admin is not", () => {
    for (const rule of [
      'volume:get',
      'volume:create',
      'volume_extension:quotas:show',
      'os_compute_api:servers:show',
    ]) {
      expect(policy.enforce(rule, caller('member'), other)).toBe(false);
      expect(policy.enforce(rule, caller('reader'), other)).toBe(false);
      expect(policy.enforce(rule, caller('admin'), other)).toBe(true);
    }
  });

  test('a role that is none of the three gets nothing; roles compare case-insensitively', () => {
    expect(policy.enforce('volume:get', caller('auditor'), own)).toBe(false);
    expect(caller('constructor').roles).toEqual(['constructor']);
    expect(policy.enforce('volume:create', caller('Member'), own)).toBe(true);
  });

  test('is_admin comes from context_is_admin, and implied roles are added', () => {
    expect(caller('admin')).toMatchObject({ is_admin: true, roles: ['admin', 'member', 'reader'] });
    expect(caller('member')).toMatchObject({ is_admin: false, roles: ['member', 'reader'] });
  });

  test('authorize throws Cinder’s 403 naming the rule', () => {
    expect(() => policy.authorize('volume:create', caller('reader'), own)).toThrow(
      new ForbiddenError("Policy doesn't allow volume:create to be performed."),
    );
  });

  test('every rule a route table names exists', () => {
    for (const table of [VOLUME_ROUTE_POLICIES, COMPUTE_ROUTE_POLICIES, IMAGE_ROUTE_POLICIES]) {
      for (const entry of Object.values(table.routes)) {
        const names =
          typeof entry === 'string'
            ? [entry]
            : 'rule' in entry
              ? [entry.rule]
              : 'actions' in entry
                ? Object.values(entry.actions)
                : [];
        for (const name of names) expect([name, policy.has(name)]).toEqual([name, true]);
      }
    }
  });
});

describe('the rule language', () => {
  const creds = caller('member');
  const check = (text: string, target: Record<string, string> = own) =>
    new Policy({ ...POLICY_DEFAULTS, probe: '!' }, { probe: text }).enforce('probe', creds, target);

  test.each([
    ['@', true],
    ['!', false],
    ['', true],
    ['role:member', true],
    ['role:admin', false],
    ['not role:admin', true],
    ['role:admin or role:member', true],
    ['role:admin and role:member', false],
    ['(role:admin or role:member) and project_id:%(project_id)s', true],
    ['((role:member)) and not (project_id:p2)', true],
    ['project_id:p1', true],
    ['user_id:%(user_id)s', true],
    ['is_admin:True', false],
    ['is_admin:False', true],
    ['is_admin_project:True', true],
    ['rule:admin_api', false],
    ['rule:xena_system_admin_or_project_member', true],
    ["'p1':%(project_id)s", true],
    ["'public':%(visibility)s", false],
    ['project_id:%(missing)s', false],
    ['role:member AND project_id:p1', true],
  ])('%j → %s', (text, expected) => {
    expect(check(text)).toBe(expected);
  });

  test.each([
    ['role:', /not a check/],
    ['admin', /not a check/],
    ['(role:admin', /unclosed/],
    ['role:admin)', /after a complete expression/],
    ['role:admin or', /ends where a check/],
    ['and role:admin', /where a check was expected/],
    ['role:admin role:member', /after a complete expression/],
    ['http://example.com/check', /remote checks/],
    ['project_id:%(project_id', /malformed/],
  ])('%j is refused: %s', (text, message) => {
    expect(() => parseCheckString(text)).toThrow(message);
  });
});

describe('overrides', () => {
  test('an override replaces a default', () => {
    const strict = new Policy(POLICY_DEFAULTS, { 'volume:create': 'rule:admin_api' });
    const creds = strict.credentials({ userId: 'u1', projectId: 'p1', roles: ['member'] });
    expect(strict.enforce('volume:create', creds, own)).toBe(false);
    expect(strict.enforce('volume:delete', creds, own)).toBe(true);
  });

  test('an unknown rule name, a bad check string, an unknown or circular reference stop the start', () => {
    expect(() => new Policy(POLICY_DEFAULTS, { 'volume:crate': 'role:admin' })).toThrow(
      new ConfigError('policy: unknown rule "volume:crate"'),
    );
    expect(() => new Policy(POLICY_DEFAULTS, { 'volume:create': 'role:admin or' })).toThrow(ConfigError);
    expect(() => new Policy(POLICY_DEFAULTS, { 'volume:create': 'rule:nope' })).toThrow(
      /refers to unknown rule "nope"/,
    );
    expect(
      () => new Policy(POLICY_DEFAULTS, { admin_api: 'rule:context_is_admin or rule:admin_api' }),
    ).toThrow(/refers to itself/);
  });

  test('a policy file is YAML or JSON mapping names to strings', () => {
    const dir = tmpdir();
    const yaml = join(dir, `policy-${process.pid}.yaml`);
    writeFileSync(yaml, '"volume:create": "rule:admin_api"\n# a comment\n"volume:delete": "!"\n');
    expect(loadPolicyFile(yaml)).toEqual({ 'volume:create': 'rule:admin_api', 'volume:delete': '!' });
    const json = join(dir, `policy-${process.pid}.json`);
    writeFileSync(json, '{"volume:get": "role:admin"}');
    expect(loadPolicyFile(json)).toEqual({ 'volume:get': 'role:admin' });
    writeFileSync(json, '["volume:get"]');
    expect(() => loadPolicyFile(json)).toThrow(/must map rule names/);
    writeFileSync(json, '{"volume:get": 3}');
    expect(() => loadPolicyFile(json)).toThrow(/must be a string/);
    writeFileSync(yaml, '"a": [unclosed');
    expect(() => loadPolicyFile(yaml)).toThrow(ConfigError);
    expect(() => loadPolicyFile(join(dir, 'no-such-policy.yaml'))).toThrow(ConfigError);
  });
});
