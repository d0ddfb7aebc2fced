import type { ImageRecord } from '@basalt/db';
import { ForbiddenError, InvalidInputError } from '@basalt/errors';
import { imageFields, imagePatch } from './image-body';

const member = { isAdmin: false };
const image = { properties: { purpose: 'test', kept: 'yes' } } as unknown as ImageRecord;

describe("Glance's image create body", () => {
  test('core attributes are checked, the rest are string properties', () => {
    expect(
      imageFields(
        {
          id: 'x',
          name: 'n',
          disk_format: 'qcow2',
          container_format: 'bare',
          min_disk: 2,
          protected: true,
          os_distro: 'd',
        },
        member,
      ),
    ).toEqual({
      name: 'n',
      diskFormat: 'qcow2',
      containerFormat: 'bare',
      minDisk: 2,
      protected: true,
      properties: { os_distro: 'd' },
    });
  });
  test.each([
    [{ disk_format: 'vmdk' }, InvalidInputError],
    [{ container_format: 'zip' }, InvalidInputError],
    [{ min_ram: -1 }, InvalidInputError],
    [{ protected: 'yes' }, InvalidInputError],
    [{ custom: 5 }, InvalidInputError],
    [{ tags: ['a'] }, InvalidInputError],
    [{ status: 'active' }, ForbiddenError],
    [{ size: 1 }, ForbiddenError],
    [{ owner: 'p' }, ForbiddenError],
    [{ os_glance_import: 'x' }, ForbiddenError],
    [{ visibility: 'public' }, ForbiddenError],
  ])('%j is refused', (body, error) => {
    expect(() => imageFields(body, member)).toThrow(error);
  });
  test('an admin may make an image public', () => {
    expect(imageFields({ visibility: 'public' }, { isAdmin: true })).toMatchObject({ visibility: 'public' });
  });
});

describe("Glance's JSON patch", () => {
  test('2.1 and 2.0 operations replace core attributes and add, replace or remove properties', () => {
    expect(
      imagePatch(
        image,
        [
          { op: 'replace', path: '/name', value: 'new' },
          { op: 'add', path: '/extra', value: 'e' },
          { replace: '/kept', value: 'changed' },
          { op: 'remove', path: '/purpose' },
        ],
        member,
      ),
    ).toEqual({ name: 'new', properties: { kept: 'changed', extra: 'e' } });
  });
  test.each([
    [{ op: 'remove', path: '/name' }, ForbiddenError],
    [{ op: 'replace', path: '/checksum', value: 'x' }, ForbiddenError],
    [{ op: 'remove', path: '/missing' }, InvalidInputError],
    [{ op: 'replace', path: '/missing', value: 'x' }, InvalidInputError],
    [{ op: 'move', path: '/name' }, InvalidInputError],
    [{ op: 'add', path: '/a/b', value: 'x' }, InvalidInputError],
  ])('%j is refused', (op, error) => {
    expect(() => imagePatch(image, [op], member)).toThrow(error);
  });
  test('a patch is a list', () => {
    expect(() => imagePatch(image, { op: 'add' }, member)).toThrow(InvalidInputError);
  });
});
