import { loadConfig, schema } from '@basalt/config';
import { ScriptedRunner } from '@basalt/exec';
import { createComputeDrivers } from './compute-drivers';

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
    expect(drivers.connector.properties()).toEqual({
      ip: '192.0.2.10',
      initiator: 'iqn.2010-10.org.basalt:compute1',
      host: 'compute1',
    });
  });
});
