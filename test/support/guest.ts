import { readFileSync } from 'node:fs';
import { createConnection } from 'node:net';

/**
 * The test image's guest as a test sees it: its console (`console.log`, where /init reports its
 * disks) and a root shell on its second serial port (a unix socket libvirt binds).
 */
export class Guest {
  constructor(
    readonly consoleLog: string,
    readonly shellSocket: string,
  ) {}

  console(): string {
    try {
      return readFileSync(this.consoleLog, 'utf8');
    } catch {
      return '';
    }
  }

  /** Waits until the console, from `offset` on, matches `pattern`; returns the match. */
  async waitForConsole(pattern: RegExp, timeoutMs = 90_000, offset = 0): Promise<RegExpExecArray> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const match = pattern.exec(this.console().slice(offset));
      if (match) return match;
      if (Date.now() > deadline) {
        throw new Error(
          `guest console never showed ${pattern}:\n${this.console().slice(offset).slice(-2000)}`,
        );
      }
      await new Promise((r) => setTimeout(r, 200));
    }
  }

  /**
   * Waits for the guest to boot again after the console read `before`, and answers where that
   * boot's output starts (the console may have started over or gone on).
   */
  async waitForNextBoot(before: string, timeoutMs = 90_000): Promise<number> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const now = this.console();
      const restarted = now.length < before.length || !now.startsWith(before);
      const at = now.indexOf('BOOTED', restarted ? 0 : before.length);
      if (at >= 0) return at;
      if (Date.now() > deadline) throw new Error(`the guest did not boot again:\n${now.slice(-2000)}`);
      await new Promise((r) => setTimeout(r, 200));
    }
  }

  /** Runs `command` in the guest's shell and returns what it printed. */
  async sh(command: string, timeoutMs = 30_000): Promise<string> {
    const end = `__END_${Math.random().toString(36).slice(2)}__`;
    return new Promise((resolve, reject) => {
      const socket = createConnection(this.shellSocket);
      let out = '';
      const timer = setTimeout(() => {
        socket.destroy();
        reject(new Error(`guest command timed out: ${command}\n${out}`));
      }, timeoutMs);
      // split by quotes, so an echo of the command line itself never looks like the end
      socket.on('connect', () => socket.write(`${command}; echo ${end.slice(0, 4)}''${end.slice(4)}\n`));
      socket.on('data', (chunk) => {
        out += chunk.toString('utf8');
        const at = out.indexOf(end);
        if (at >= 0) {
          clearTimeout(timer);
          socket.destroy();
          resolve(out.slice(0, at));
        }
      });
      socket.on('error', (error) => {
        clearTimeout(timer);
        reject(error);
      });
    });
  }
}
