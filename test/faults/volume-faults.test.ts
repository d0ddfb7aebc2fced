import { FaultRig, RECOVERY_BOUND_SEC } from '../support/fault-rig';
import { VOLUME_FAULTS } from '../support/volume-faults';

const BURST = 200;

/**
 * Each fault strikes in the middle of a burst of creates and again in the middle of the deletes
 * that follow, from 16 clients. Within RECOVERY_BOUND_SEC of the fault's end every volume is
 * where its request asked, none is duplicated or in error, and the host holds exactly what the
 * database says: no file, target, account, ACL entry or target config of its own left over.
 */
describe('volumes under faults', () => {
  const rig = new FaultRig();

  beforeAll(() => rig.start(), 120_000);
  afterAll(() => rig.stop(), 60_000);

  test.each(VOLUME_FAULTS.map((f) => [f.name, f] as const))(
    '%s during 200 creates and 200 deletes',
    async (_name, fault) => {
      for (const round of await rig.run(fault, BURST)) {
        const where = `${round.fault}, ${round.phase}`;
        expect({ where, errors: round.errors }).toEqual({ where, errors: [] });
        expect({ where, stuck: round.stuck }).toEqual({ where, stuck: [] });
        expect({ where, wrongEnd: round.wrongEnd }).toEqual({ where, wrongEnd: [] });
        expect({ where, duplicates: round.duplicates }).toEqual({ where, duplicates: [] });
        expect({ where, audit: round.audit }).toEqual({
          where,
          audit: {
            orphanFiles: [],
            missingFiles: [],
            orphanTargets: [],
            missingTargets: [],
            orphanAccounts: [],
            orphanAcls: [],
            orphanConfigs: [],
          },
        });
        expect(round.recoveryMs).toBeLessThan(RECOVERY_BOUND_SEC * 1000);
        // while PostgreSQL is away the API says so and when to come back, and is itself again after
        if (round.probes.length > 0) {
          expect(round.probes).toContainEqual({ status: 503, retryAfter: expect.stringMatching(/^\d+$/) });
          for (const probe of round.probes.filter((p) => p.status !== 200)) {
            expect(probe).toEqual({ status: 503, retryAfter: expect.stringMatching(/^\d+$/) });
          }
          expect(await rig.probe()).toMatchObject({ status: 200 });
        }
      }
    },
    240_000,
  );
});
