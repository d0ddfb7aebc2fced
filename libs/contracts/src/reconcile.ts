import { type Infer, s } from '@basalt/rpc';

const finding = s.object({
  /** What kind of thing: `volume`, `target`, `account`, `acl`, `config` on a volume host. */
  kind: s.string(),
  /** Its name on the host: the volume's backend name, the target's IQN, the account, the file. */
  name: s.string(),
  /**
   * `remove`: Basalt made it (its name and marker say so) and nothing in the database needs it,
   * so it is removed (in a dry run: would be). `report`: not Basalt's, or not Basalt's to fix
   * (a volume whose storage is missing), so it is only told.
   */
  action: s.oneOf('remove', 'report'),
  reason: s.string(),
});

/**
 * What a worker found when it compared the database with what its host really holds: every
 * worker that owns host resources (volume workers: volumes and iSCSI targets; compute workers:
 * domains, secrets and instance folders) answers `reconcile` with one of these.
 */
export const reconcileReport = s.object({
  host: s.string(),
  dry_run: s.boolean(),
  findings: s.array(finding),
});

export type ReconcileReport = Infer<typeof reconcileReport>;
export type ReconcileFinding = Infer<typeof finding>;
