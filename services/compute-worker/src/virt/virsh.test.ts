import { InvalidInputError } from '@basalt/errors';
import { type Command, type CommandResult, ScriptedRunner } from '@basalt/exec';
import pino from 'pino';
import { Virsh } from './virsh';
import { VirshSessions } from './virsh-session';

const URI = 'qemu:///system';

/** Sessions that record the lines they would hand virsh and start none. */
class RecordingSessions extends VirshSessions {
  readonly argvs: (readonly string[])[] = [];

  constructor() {
    super(pino({ level: 'silent' }), URI);
  }

  protected override async once(command: Command): Promise<CommandResult> {
    this.argvs.push(command.argv);
    return { exitCode: 0, stdout: '', stderr: '', durationMs: 0 };
  }
}

describe('Virsh', () => {
  test('through the command runner a command is its own argv words', async () => {
    const runner = new ScriptedRunner();
    await new Virsh(runner, URI).run(['secret-set-value', '5a0e1f9e-0000-5000-8000-000000000001', '--plain']);
    expect(runner.argvs).toEqual([
      ['virsh', '-c', URI, 'secret-set-value', '5a0e1f9e-0000-5000-8000-000000000001', '--plain'],
    ]);
  });

  test('to a session a command is the one line virsh parses', async () => {
    const sessions = new RecordingSessions();
    await new Virsh(sessions, URI).run(['attach-device', 'instance-00000001', '/tmp/d/document', '--live']);
    expect(sessions.argvs).toEqual([
      ['virsh', '-c', URI, 'attach-device instance-00000001 /tmp/d/document --live'],
    ]);
  });

  test.each([['a b'], ['x;y'], ["it's"], ['$(id)'], ['"q"'], ['']])(
    'a session refuses the word %p before anything runs',
    async (word) => {
      const sessions = new RecordingSessions();
      await expect(new Virsh(sessions, URI).run(['domstate', word])).rejects.toThrow(InvalidInputError);
      expect(sessions.argvs).toHaveLength(0);
    },
  );
});
