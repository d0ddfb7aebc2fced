import { loadConfig, schema } from '@basalt/config';
import { type Command, type CommandResult, ScriptedRunner } from '@basalt/exec';
import { activeSpan, recordSpans, SpanKind, SpanStatusCode } from '@basalt/trace';
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

/** Remembers which span each command ran under. */
class SpanNotingRunner extends ScriptedRunner {
  readonly ranUnder: Array<{ argv: readonly string[]; span: string | undefined }> = [];

  override run(command: Command): Promise<CommandResult> {
    this.ranUnder.push({ argv: command.argv, span: activeSpan()?.spanContext().spanId });
    return super.run(command);
  }
}

describe('the libvirt drivers as built', () => {
  test('each hypervisor and secret operation is a libvirt span holding its virsh commands', async () => {
    const recorder = recordSpans();
    const runner = new SpanNotingRunner()
      .on(['virsh', '-c', 'qemu:///system', 'domstate'], { stdout: 'running\n' })
      .on(['virsh', '-c', 'qemu:///system', 'secret-undefine'], {
        exitCode: 1,
        stderr: 'error: no permission',
      });
    const drivers = createComputeDrivers(config('qemu'), runner);
    await drivers.hypervisor.attachDisk(
      'instance-00000001',
      "<disk type='network' device='disk'><target dev='vdc' bus='virtio'/></disk>",
    );
    await drivers.secrets.define('volume-00000001');
    await drivers.secrets.ensure('volume-00000001', 's3cr3t-value');
    await expect(drivers.secrets.remove('volume-00000001')).rejects.toThrow('no permission');
    const [attach, ...rest] = recorder.spans();
    const define = rest.find((s) => s.name === 'libvirt secret-define');
    const ensure = rest.find((s) => s.name === 'libvirt secret-set-value');
    const remove = rest.find((s) => s.name === 'libvirt secret-undefine');
    expect(attach).toMatchObject({ name: 'libvirt attach-device', kind: SpanKind.CLIENT });
    expect(attach?.attributes).toEqual({ 'libvirt.domain': 'instance-00000001' });
    expect(define?.attributes).toEqual({ 'libvirt.secret.usage': 'volume-00000001' });
    expect(ensure?.attributes).toEqual({ 'libvirt.secret.usage': 'volume-00000001' });
    expect(ensure?.status.code).not.toBe(SpanStatusCode.ERROR);
    expect(remove?.status.code).toBe(SpanStatusCode.ERROR);
    const seen = recorder
      .spans()
      .map((s) => ({ attributes: s.attributes, status: s.status, events: s.events }));
    expect(JSON.stringify(seen)).not.toContain('s3cr3t-value');
    const attaching = runner.ranUnder.filter((r) => r.argv.includes('attach-device'));
    expect(attaching).toHaveLength(1);
    expect(attaching[0]?.span).toBe(attach?.spanContext().spanId);
    const defining = runner.ranUnder.find((r) => r.argv.includes('secret-define'));
    expect(defining?.span).toBe(define?.spanContext().spanId);
    const setting = runner.ranUnder.find((r) => r.argv.includes('secret-set-value'));
    expect(setting?.span).toBe(ensure?.spanContext().spanId);
    const undefining = runner.ranUnder.find((r) => r.argv.includes('secret-undefine'));
    expect(undefining?.span).toBe(remove?.spanContext().spanId);
    await recorder.stop();
  });
});
