import type { ConnectionInfo, Connector } from '@basalt/contracts';
import { errorMessage, isRetryable } from '@basalt/errors';
import type { Command, CommandRunner } from '@basalt/exec';
import { exists } from '../exists';
import { pollFor } from '../poll';
import { VolumeConnectionError } from '../virt/errors';
import { type IscsiTarget, iscsiTarget } from './iscsi-target';
import { writeNodeAuth } from './node-record';
import type { VolumeConnection, VolumeConnector } from './volume-connector';

/** iscsiadm's ISCSI_ERR_SESS_EXISTS: already logged in. */
const SESSION_EXISTS = 15;
/** iscsiadm's ISCSI_ERR_NO_OBJS_FOUND: no such node record or session. */
const NO_OBJECTS = 21;

export interface IscsiadmConnectorOptions {
  /** Seconds to wait for the by-path device after login (`[compute] volume_device_timeout`). */
  readonly deviceTimeoutMs: number;
  /** Whether a guest other than the one being detached still uses the device: then the session stays. */
  readonly deviceInUse: (devicePath: string) => Promise<boolean>;
  /** How the device's appearance is checked (a stat of /dev/disk/by-path/...). */
  readonly deviceExists?: (devicePath: string) => Promise<boolean>;
  /** Time between rescans while the device has not appeared. */
  readonly rescanIntervalMs?: number;
  /** open-iscsi's node database (`/etc/iscsi/nodes`), where the record's CHAP settings are written. */
  readonly nodesDir: string;
}

/**
 * The host's open-iscsi kernel initiator, as the seed attaches volumes: a node record with
 * CHAP, a login, then the SCSI disk `/dev/disk/by-path/ip-<portal>-iscsi-<iqn>-lun-<n>` handed
 * to libvirt as a block disk. The CHAP settings go into the node record's file, never into
 * iscsiadm's argv; the runner still hides the password should iscsiadm print it.
 */
export class IscsiadmConnector implements VolumeConnector {
  readonly kind = 'iscsiadm';

  constructor(
    private readonly runner: CommandRunner,
    private readonly connector: Connector,
    private readonly options: IscsiadmConnectorOptions,
  ) {}

  properties(): Connector {
    return this.connector;
  }

  describe(info: ConnectionInfo): VolumeConnection {
    const target = iscsiTarget(info);
    const devicePath = byPath(target);
    return {
      source: { type: 'block', path: devicePath },
      resources: [
        { kind: 'iscsi-session', portal: target.portal, iqn: target.iqn, lun: target.lun, devicePath },
      ],
    };
  }

  /** Nothing: the node record needs the target the volume host names. */
  async prepare(): Promise<void> {}

  async connect(info: ConnectionInfo): Promise<VolumeConnection> {
    const target = iscsiTarget(info);
    const connection = this.describe(info);
    const devicePath = byPath(target);
    const shown = await this.node(target, [], [NO_OBJECTS]);
    if (shown.exitCode === NO_OBJECTS) await this.node(target, ['--op', 'new']);
    await this.update(target, 'node.startup', 'automatic');
    if (target.auth !== undefined) {
      await writeNodeAuth(this.options.nodesDir, target, target.auth).catch((error: unknown) => {
        throw error instanceof VolumeConnectionError
          ? error
          : new VolumeConnectionError(`node record of ${target.iqn}: ${errorMessage(error)}`, {
              cause: error,
            });
      });
    }
    await this.node(target, ['--login'], [SESSION_EXISTS]);
    const deviceExists = this.options.deviceExists ?? exists;
    const interval = this.options.rescanIntervalMs ?? 2000;
    let lastRescan = performance.now();
    const found = await pollFor(async () => {
      if (await deviceExists(devicePath)) return true;
      if (performance.now() - lastRescan >= interval) {
        lastRescan = performance.now();
        await this.node(target, ['--rescan'], [NO_OBJECTS]);
      }
      return undefined;
    }, this.options.deviceTimeoutMs);
    if (found === undefined) {
      throw new VolumeConnectionError(
        `${devicePath} did not appear within ${this.options.deviceTimeoutMs / 1000} s of the login`,
        { retryable: true, data: { devicePath } },
      );
    }
    return connection;
  }

  /** A rescan of the session: the kernel reads the LUN's capacity again and the block device grows. */
  async extend(info: ConnectionInfo): Promise<void> {
    await this.node(iscsiTarget(info), ['--rescan']);
  }

  async disconnect(info: ConnectionInfo): Promise<void> {
    const target = iscsiTarget(info);
    if (await this.options.deviceInUse(byPath(target))) return;
    await this.node(target, ['--logout'], [NO_OBJECTS]);
    await this.node(target, ['--op', 'delete'], [NO_OBJECTS]);
  }

  /** Nothing was made before the login. */
  async forget(): Promise<void> {}

  private update(target: IscsiTarget, name: string, value: string) {
    return this.node(target, ['--op', 'update', '-n', name, '-v', value]);
  }

  /** `iscsiadm -m node -T <iqn> -p <portal> ...`, with the CHAP password hidden wherever it is shown. */
  private async node(target: IscsiTarget, args: readonly string[], okExitCodes: readonly number[] = []) {
    const command: Command = {
      argv: ['iscsiadm', '-m', 'node', '-T', target.iqn, '-p', target.portal, ...args],
      okExitCodes,
      timeoutMs: 120_000,
      ...(target.auth === undefined ? {} : { secrets: [target.auth.password] }),
    };
    try {
      return await this.runner.run(command);
    } catch (error) {
      throw new VolumeConnectionError(errorMessage(error), { retryable: isRetryable(error), cause: error });
    }
  }
}

/** The udev name of a LUN, as `/dev/disk/by-path` spells it. */
export function byPath(target: IscsiTarget): string {
  return `/dev/disk/by-path/ip-${target.portal}-iscsi-${target.iqn}-lun-${target.lun}`;
}
