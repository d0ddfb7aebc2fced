import { InvalidInputError } from '@basalt/errors';
import { ScriptedRunner } from '@basalt/exec';
import { Virsh } from './virsh';

const URI = 'qemu:///system';

describe('Virsh', () => {
  test("a sequence is one virsh run of its commands joined by virsh's own separator", async () => {
    const runner = new ScriptedRunner();
    await new Virsh(runner, URI).sequence([
      ['secret-define', '/tmp/basalt-virsh-a1/document'],
      ['secret-set-value', '5a0e1f9e-0000-5000-8000-000000000001', '--plain'],
    ]);
    expect(runner.argvs).toEqual([
      [
        'virsh',
        '-c',
        URI,
        'secret-define /tmp/basalt-virsh-a1/document ; secret-set-value 5a0e1f9e-0000-5000-8000-000000000001 --plain',
      ],
    ]);
  });

  test.each([['a b'], ['x;y'], ["it's"], ['$(id)'], ['"q"'], ['']])(
    'a sequence refuses the word %p before anything runs',
    async (word) => {
      const runner = new ScriptedRunner();
      await expect(new Virsh(runner, URI).sequence([['domstate', word]])).rejects.toThrow(InvalidInputError);
      expect(runner.calls).toHaveLength(0);
    },
  );
});
