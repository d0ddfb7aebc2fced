import type { ConnectionInfo } from '@basalt/contracts';
import { InvalidInputError } from '@basalt/errors';
import { assertIqn } from '@basalt/naming';

const VOLUME_ID = /^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$/;

/** The iSCSI target of a `connection_info`, checked before any of it reaches a command or XML. */
export interface IscsiTarget {
  readonly volumeId: string;
  /** `host:port` as iscsiadm and the by-path names write it. */
  readonly portal: string;
  readonly host: string;
  readonly port: number;
  readonly iqn: string;
  readonly lun: number;
  readonly auth?: { readonly username: string; readonly password: string };
}

export function iscsiTarget(info: ConnectionInfo): IscsiTarget {
  if (info.driver_volume_type !== 'iscsi') {
    throw new InvalidInputError(`Volume driver type ${String(info.driver_volume_type)} is not iscsi`);
  }
  const data = info.data;
  const portal = /^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+):(\d{1,5})$/.exec(data.target_portal ?? '');
  const port = Number(portal?.[2]);
  if (portal === null || port < 1 || port > 65535)
    throw new InvalidInputError(`Bad target portal ${data.target_portal}`);
  assertIqn(data.target_iqn ?? '');
  if (!Number.isSafeInteger(data.target_lun) || data.target_lun < 0 || data.target_lun > 16383) {
    throw new InvalidInputError(`Bad target LUN ${data.target_lun}`);
  }
  if (!VOLUME_ID.test(data.volume_id ?? '')) throw new InvalidInputError(`Bad volume id ${data.volume_id}`);
  const auth =
    data.auth_method === 'CHAP'
      ? { username: checkedWord('CHAP user name', data.auth_username), password: data.auth_password }
      : undefined;
  if (auth !== undefined && (auth.password ?? '').length === 0)
    throw new InvalidInputError('CHAP without a password');
  return {
    volumeId: data.volume_id,
    portal: `${portal[1]}:${port}`,
    host: (portal[1] ?? '').replace(/^\[|\]$/g, ''),
    port,
    iqn: data.target_iqn,
    lun: data.target_lun,
    ...(auth === undefined ? {} : { auth }),
  };
}

function checkedWord(what: string, value: string | undefined): string {
  if (value === undefined || !/^[A-Za-z0-9_.@:-]{1,255}$/.test(value))
    throw new InvalidInputError(`Bad ${what}`);
  return value;
}
