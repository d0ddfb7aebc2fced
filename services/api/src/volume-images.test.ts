import { InvalidInputError } from '@basalt/errors';
import type { GlanceImage } from '@basalt/images';
import { checkImage, volumeImageMetadata } from './volume-images';

const GiB = 1024 ** 3;
const image: GlanceImage = {
  id: 'i1',
  name: 'guest',
  status: 'active',
  size: 64 * 1024 * 1024,
  virtual_size: 64 * 1024 * 1024,
  checksum: 'abc',
  container_format: 'bare',
  disk_format: 'raw',
  min_disk: 0,
  min_ram: 0,
  os_hash_algo: 'sha512',
  os_hash_value: 'def',
  visibility: 'private',
  self: '/v2/images/i1',
  os_distro: 'busybox',
};

describe("Cinder's checks of a volume's image", () => {
  test('an active image that fits is taken', () => expect(() => checkImage(image, 1)).not.toThrow());
  test.each([
    [{ status: 'queued' }, 1, /Image i1 is not active/],
    [{ size: GiB + 1 }, 1, /Size of specified image 2GB is larger than volume size 1GB/],
    [{ min_disk: 3 }, 2, /cannot be smaller than the image minDisk size 3GB/],
    [{ virtual_size: 2 * GiB }, 1, /virtual size is 2GB and doesn't fit in a volume of size 1GB/],
  ])('%j on a volume of %i GB is refused', (change, size, message) => {
    expect(() => checkImage({ ...image, ...change }, size)).toThrow(InvalidInputError);
    expect(() => checkImage({ ...image, ...change }, size)).toThrow(message);
  });
});

describe('volume_image_metadata', () => {
  test("the image's properties and Cinder's attributes, as text", () => {
    expect(volumeImageMetadata(image)).toEqual({
      image_id: 'i1',
      image_name: 'guest',
      checksum: 'abc',
      container_format: 'bare',
      disk_format: 'raw',
      min_disk: '0',
      min_ram: '0',
      size: String(64 * 1024 * 1024),
      os_distro: 'busybox',
    });
  });
});
