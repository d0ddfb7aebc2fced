import { loadConfig, schema } from '@basalt/config';
import type { ConnectionInfo } from '@basalt/contracts';
import { ScriptedRunner } from '@basalt/exec';
import { createComputeDrivers } from './compute-drivers';

const IQN = 'iqn.2010-10.org.openstack:volume-00000003';
const DEVICE = `/dev/disk/by-path/ip-127.0.0.1:3260-iscsi-${IQN}-lun-1`;
const info: ConnectionInfo = {
  driver_volume_type: 'iscsi',
  data: {
    target_portal: '127.0.0.1:3260',
    target_iqn: IQN,
    target_lun: 1,
    target_discovered: false,
    volume_id: 'v3',
    auth_method: 'CHAP',
    auth_username: 'u',
    auth_password: 'p',
  },
};
const HEADER = ' Type   Device   Target   Source\n-----------------------------------\n';

function config(connector: 'qemu' | 'iscsiadm') {
  return loadConfig(schema, {
    env: {
      BASALT__DEFAULT__HOST: 'compute1',
      BASALT__COMPUTE__VOLUME_CONNECTOR: connector,
      BASALT__COMPUTE__INSTANCES_PATH: '/var/lib/basalt/instances',
      BASALT__COMPUTE__INITIATOR_IQN: 'iqn.2010-10.org.basalt:compute1',
      BASALT__COMPUTE__MY_IP: '192.0.2.10',
    },
  });
}

describe('createComputeDrivers', () => {
  test('[compute] picks the connector; the connector dict names this host', () => {
    const runner = new ScriptedRunner();
    expect(createComputeDrivers(config('qemu'), runner).connector.kind).toBe('qemu');
    const drivers = createComputeDrivers(config('iscsiadm'), runner);
    expect(drivers.connector.kind).toBe('iscsiadm');
    expect(drivers.connectorProperties).toEqual({
      ip: '192.0.2.10',
      initiator: 'iqn.2010-10.org.basalt:compute1',
      host: 'compute1',
    });
  });

  test('the iscsiadm session stays while another domain has the device, and goes when none has', async () => {
    let other = true;
    const runner = new ScriptedRunner()
      .on(['virsh', '-c', 'qemu:///system', 'list'], { stdout: 'instance-00000001\ninstance-00000002\n' })
      .on(['virsh', '-c', 'qemu:///system', 'domblklist'], (argv) => ({
        stdout: `${HEADER} block disk vdc ${argv[4] === 'instance-00000002' && other ? DEVICE : '/dev/sdz'}\n`,
      }));
    const { connector } = createComputeDrivers(config('iscsiadm'), runner);
    await connector.disconnect(info);
    expect(runner.argvs.some((a) => a[0] === 'iscsiadm')).toBe(false);
    other = false;
    await connector.disconnect(info);
    expect(runner.argvs.filter((a) => a[0] === 'iscsiadm').map((a) => a.slice(7))).toEqual([
      ['--logout'],
      ['--op', 'delete'],
    ]);
  });
});
