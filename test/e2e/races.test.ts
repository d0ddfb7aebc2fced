import { request, waitForVolume } from '../support/http';
import { VolumeStack } from '../support/stack';

/**
 * Requests racing on one volume, sent at once over HTTP: one wins, every loser gets a clear 4xx
 * (Cinder's fault body), and the volume ends as the winner asked — never in an error state.
 */
describe('racing requests on one volume', () => {
  const stack = new VolumeStack({ extraEnv: { BASALT__QUOTA__VOLUMES: '-1' } });
  const token = 'racer:races';
  let api = '';

  beforeAll(async () => {
    await stack.start();
    api = `${stack.volumeUrl}/v3/races`;
  }, 60_000);
  afterAll(() => stack.stop(), 60_000);

  const available = async () => {
    const created = await request(`${api}/volumes`, { method: 'POST', token, body: { volume: { size: 1 } } });
    expect(created.status).toBe(202);
    return waitForVolume(api, token, created.body.volume.id, ['available']);
  };
  const del = (id: string) => request(`${api}/volumes/${id}`, { method: 'DELETE', token });
  const extend = (id: string, size: number) =>
    request(`${api}/volumes/${id}/action`, {
      method: 'POST',
      token,
      body: { 'os-extend': { new_size: size } },
    });
  const gone = async (id: string) => {
    expect((await del(id)).status).toBe(202);
    await waitForVolume(api, token, id, ['deleted']);
  };
  /** A loser's answer: a 4xx with the fault body of its status, and a message. */
  const expectRefused = (r: { status: number; body: any }) => {
    expect([400, 404]).toContain(r.status);
    const fault = r.body[r.status === 400 ? 'badRequest' : 'itemNotFound'];
    expect(fault).toMatchObject({ code: r.status, message: expect.any(String) });
  };

  test('delete and delete: one is taken, the others are refused, the volume is gone', async () => {
    const volume = await available();
    const answers = await Promise.all(Array.from({ length: 10 }, () => del(volume.id)));
    expect(answers.filter((r) => r.status === 202)).toHaveLength(1);
    for (const r of answers.filter((a) => a.status !== 202)) expectRefused(r);
    await waitForVolume(api, token, volume.id, ['deleted']);
  }, 30_000);

  test('extend and extend: one is taken, the others are refused, the volume has the winner’s size', async () => {
    for (let round = 0; round < 3; round++) {
      const volume = await available();
      const sizes = [2, 3, 4, 5, 6, 7, 8, 9];
      const answers = await Promise.all(sizes.map((size) => extend(volume.id, size)));
      const won = sizes.filter((_, i) => answers[i]?.status === 202);
      expect(won).toHaveLength(1);
      for (const r of answers.filter((a) => a.status !== 202)) expectRefused(r);
      const after = await waitForVolume(api, token, volume.id, ['available', 'error_extending']);
      expect(after).toMatchObject({ status: 'available', size: won[0] });
      // asked again from the size each read, while the first extends run: none shrinks it or fails it
      const late = await Promise.all([extend(volume.id, won[0] as number), extend(volume.id, 20)]);
      expect(late.map((r) => r.status)).toContain(202);
      const last = await waitForVolume(api, token, volume.id, ['available', 'error_extending']);
      expect(last).toMatchObject({ status: 'available', size: 20 });
      await gone(volume.id);
    }
  }, 60_000);

  test('extend racing extend from the same size never leaves the volume in error_extending', async () => {
    const volume = await available();
    let size = 1;
    for (let round = 0; round < 10; round++) {
      // both read `size`; the larger may finish before the smaller is swapped in
      const answers = await Promise.all([extend(volume.id, size + 2), extend(volume.id, size + 1)]);
      for (const r of answers.filter((a) => a.status !== 202)) expectRefused(r);
      const after = await waitForVolume(api, token, volume.id, ['available', 'error_extending']);
      expect(after.status).toBe('available');
      expect(after.size).toBeGreaterThan(size);
      size = after.size;
    }
    await gone(volume.id);
  }, 60_000);

  test('delete and extend: exactly one wins and the volume ends as it asked', async () => {
    for (let round = 0; round < 6; round++) {
      const volume = await available();
      // alternate who is sent first
      const [d, e] =
        round % 2 === 0
          ? await Promise.all([del(volume.id), extend(volume.id, 2)])
          : await Promise.all([extend(volume.id, 2), del(volume.id)]).then(([x, y]) => [y, x]);
      expect([d?.status, e?.status].filter((s) => s === 202)).toHaveLength(1);
      if (d?.status === 202) {
        expectRefused(e as { status: number; body: any });
        await waitForVolume(api, token, volume.id, ['deleted']);
      } else {
        expectRefused(d as { status: number; body: any });
        expect(await waitForVolume(api, token, volume.id, ['available', 'error_extending'])).toMatchObject({
          status: 'available',
          size: 2,
        });
        await gone(volume.id);
      }
    }
    // every volume of these races is deleted: nothing of theirs is left exported
    expect((await stack.tgtd.targets()).trim()).toBe('');
  }, 60_000);
});
