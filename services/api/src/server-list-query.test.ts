import { ForbiddenError, InvalidInputError } from '@basalt/errors';
import { parseServerList } from './server-list-query';

const member = { isAdmin: false, version: '2.1' };
const admin = { isAdmin: true, version: '2.1' };

describe("parseServerList reads a server list's query as nova's controller does", () => {
  test('defaults: the live servers, newest first, as many as the cap', () => {
    expect(parseServerList({}, 1000, member)).toEqual({
      page: { limit: 1000, sort: [{ key: 'created_at', dir: 'desc' }] },
      filter: { deleted: false },
      allTenants: false,
      empty: false,
    });
    expect(parseServerList({ limit: '5000', marker: 'm' }, 1000, member).page).toMatchObject({
      limit: 1000,
      marker: 'm',
    });
  });

  test("several sort keys take the first direction where none is given; nova's ignored keys go", () => {
    const q = parseServerList(
      { sort_key: ['display_name', 'vcpus', 'vm_state'], sort_dir: ['asc', 'desc'] },
      10,
      member,
    );
    // vcpus and its direction (desc) are dropped; vm_state takes the first one
    expect(q.page.sort).toEqual([
      { key: 'display_name', dir: 'asc' },
      { key: 'vm_state', dir: 'asc' },
    ]);
    expect(() => parseServerList({ sort_key: 'host' }, 10, member)).toThrow(ForbiddenError);
    expect(parseServerList({ sort_key: 'host' }, 10, admin).page.sort).toEqual([
      { key: 'host', dir: 'desc' },
    ]);
    expect(() => parseServerList({ sort_key: 'a', sort_dir: ['asc', 'desc'] }, 10, member)).toThrow(
      InvalidInputError,
    );
    expect(() => parseServerList({ sort_key: 'uuid', sort_dir: ['asc', 'desc'] }, 10, member)).toThrow(
      'Sort direction size exceeds sort key size',
    );
  });

  test("status names nova's states; ACTIVE is any task, REBOOT a task; DELETED is for admins", () => {
    expect(parseServerList({ status: 'active' }, 10, member).filter).toEqual({
      vmStates: ['active'],
      deleted: false,
    });
    expect(parseServerList({ status: 'REBOOT' }, 10, member).filter).toEqual({
      vmStates: ['active'],
      taskStates: ['reboot_pending', 'reboot_started', 'rebooting'],
      deleted: false,
    });
    expect(() => parseServerList({ status: 'DELETED' }, 10, member)).toThrow(ForbiddenError);
    expect(parseServerList({ status: 'DELETED' }, 10, admin).filter).toEqual({
      vmStates: ['deleted'],
      deleted: true,
    });
    expect(parseServerList({ status: 'NOPE' }, 10, member).empty).toBe(true);
    expect(() => parseServerList({ status: 'NOPE' }, 10, { ...member, version: '2.38' })).toThrow(
      'Invalid status value',
    );
  });

  test('admin filters are dropped for members; changes-since keeps the deleted, read as UTC', () => {
    expect(parseServerList({ host: 'h1', deleted: 'true' }, 10, member).filter).toEqual({ deleted: false });
    expect(parseServerList({ host: 'h1', deleted: 'true' }, 10, admin).filter).toEqual({
      host: 'h1',
      deleted: true,
    });
    expect(parseServerList({ 'changes-since': '2026-12-01T10:00:00' }, 10, member).filter).toEqual({
      changesSince: new Date('2026-12-01T10:00:00Z'),
    });
    expect(parseServerList({ all_tenants: '', tenant_id: 'p2' }, 10, admin)).toMatchObject({
      allTenants: true,
      projectId: 'p2',
    });
    expect(parseServerList({ all_tenants: '0', tenant_id: 'p2' }, 10, admin).allTenants).toBe(false);
    expect(parseServerList({ all_tenants: '0', tenant_id: 'p2' }, 10, admin).projectId).toBeUndefined();
  });

  test('2.73: locked is a filter (a strict boolean) and a sort key; before, a dropped sort key', () => {
    const v273 = { isAdmin: false, version: '2.73' };
    expect(parseServerList({ locked: 'true' }, 10, v273).filter).toMatchObject({ locked: true });
    expect(parseServerList({ locked: 'off' }, 10, v273).filter).toMatchObject({ locked: false });
    expect(parseServerList({ locked: 'true' }, 10, { ...v273, version: '2.72' }).filter).not.toHaveProperty(
      'locked',
    );
    expect(() => parseServerList({ locked: 'maybe' }, 10, v273)).toThrow(
      "Invalid input received: Unrecognized value 'maybe', acceptable values are: '0', '1', 'f', 'false', 'n', 'no', 'off', 'on', 't', 'true', 'y', 'yes'",
    );
    // unlike all_tenants, an empty value is no boolean
    expect(() => parseServerList({ locked: '' }, 10, v273)).toThrow(InvalidInputError);
    expect(parseServerList({ sort_key: 'locked' }, 10, v273).page.sort).toEqual([
      { key: 'locked', dir: 'desc' },
    ]);
    // dropped before 2.73: the default order remains
    expect(parseServerList({ sort_key: 'locked' }, 10, member).page.sort).toEqual([]);
    expect(() => parseServerList({ sort_key: 'nope' }, 10, v273)).toThrow(
      /^Invalid input for query parameters sort_key\. Value: nope\. 'nope' is not one of \['locked', 'access_ip_v4', .*'vm_state', 'architecture', .*'launched_on', 'memory_mb', .*'vm_mode'\]$/,
    );
  });

  test('2.66: changes-before keeps the deleted and may not precede changes-since', () => {
    const v266 = { isAdmin: false, version: '2.66' };
    expect(parseServerList({ 'changes-before': '2026-12-01T00:00:00' }, 10, v266).filter).toEqual({
      changesBefore: new Date('2026-12-01T00:00:00Z'),
    });
    expect(() =>
      parseServerList({ 'changes-since': '2026-12-02', 'changes-before': '2026-12-01' }, 10, v266),
    ).toThrow('The value of changes-since must be less than or equal to changes-before.');
    expect(parseServerList({ 'changes-before': 'x' }, 10, member).filter).toEqual({ deleted: false });
  });
});
