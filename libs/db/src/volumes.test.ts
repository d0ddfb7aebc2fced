import { volumeBackendName } from './volumes';

test('volume_name_template renders like nova: %08x the sequence number, %s the id', () => {
  expect(volumeBackendName('volume-%08x', 3, 'id')).toBe('volume-00000003');
  expect(volumeBackendName('volume-%08x', 255, 'id')).toBe('volume-000000ff');
  expect(volumeBackendName('vol-%s', 1, 'abc-123')).toBe('vol-abc-123');
  expect(volumeBackendName('v%d', 42, 'x')).toBe('v42');
});
