import { templatePattern } from './reconciler';

describe('templatePattern', () => {
  test('the default template: volume- and eight or more hex digits, nothing else', () => {
    const ours = templatePattern('volume-%08x');
    expect(ours.test('volume-0000002a')).toBe(true);
    expect(ours.test('volume-1000000000')).toBe(true);
    for (const name of [
      'volume-2a',
      'volume-0000002a.bak',
      'xvolume-0000002a',
      'volume-0000002G',
      'notes.txt',
    ])
      expect(ours.test(name)).toBe(false);
  });

  test('an id template and literal characters that mean something in a pattern', () => {
    const ours = templatePattern('vol.%s');
    expect(ours.test('vol.0b9e5b1e-6f3c-4b8e-9d52-2f1a4c7e9a10')).toBe(true);
    expect(ours.test('volX0b9e5b1e-6f3c-4b8e-9d52-2f1a4c7e9a10')).toBe(false);
    expect(ours.test('vol.not-an-id')).toBe(false);
  });
});
