import { errorMessage } from '@basalt/errors';
import type { Logger } from '@basalt/log';

/** One thing a reconciler found on its host: the shape of the `reconcile` RPC's findings. */
export interface Finding {
  readonly kind: string;
  readonly name: string;
  readonly action: 'remove' | 'report';
  readonly reason: string;
}

/**
 * What a reconciler found on its host and did about it. A `remove` finding's removal runs unless
 * this is a dry run; a removal that fails is logged and the finding stays in the report, so one
 * stubborn leftover does not stop the others being removed.
 */
export class ReconcileFindings {
  readonly findings: Finding[] = [];

  constructor(
    private readonly dryRun: boolean,
    private readonly log: Logger,
  ) {}

  async act(finding: Finding, removal: () => Promise<void>): Promise<void> {
    this.findings.push(finding);
    if (this.dryRun || finding.action !== 'remove') return;
    try {
      await removal();
      this.log.warn({ kind: finding.kind, name: finding.name, reason: finding.reason }, 'orphan removed');
    } catch (error) {
      this.log.error({ kind: finding.kind, name: finding.name, err: errorMessage(error) }, 'orphan left');
    }
  }

  /**
   * Something on the host that no live row needs: removed (for `reason`) when Basalt's name and
   * marker say Basalt made it, else only reported, as not Basalt's to touch.
   */
  orphan(
    kind: string,
    name: string,
    mine: boolean,
    reason: string,
    removal: () => Promise<void>,
  ): Promise<void> {
    return this.act(
      { kind, name, action: mine ? 'remove' : 'report', reason: mine ? reason : 'not made by Basalt' },
      removal,
    );
  }

  /** A finding only told, never acted on. */
  tell(finding: Omit<Finding, 'action'>): void {
    this.findings.push({ ...finding, action: 'report' });
  }

  /** The answer to `reconcile`, logged when anything was found. */
  report(host: string): { host: string; dry_run: boolean; findings: Finding[] } {
    if (this.findings.length > 0) {
      this.log.warn(
        {
          dry_run: this.dryRun,
          removed: this.findings.filter((f) => f.action === 'remove').length,
          findings: this.findings,
        },
        'reconciled the host with the database',
      );
    }
    return { host, dry_run: this.dryRun, findings: this.findings };
  }
}
