import type { ImageRecord } from '@basalt/db';
import { ForbiddenError, InvalidInputError, OverLimitError } from '@basalt/errors';
import { checkTag, IMAGE_TAG_QUOTA, imageFields, imagePatch } from './image-body';

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
    [{ tags: 'a' }, InvalidInputError],
    [{ tags: [5] }, InvalidInputError],
    [{ status: 'active' }, ForbiddenError],
    [{ size: 1 }, ForbiddenError],
    [{ owner: 'p' }, ForbiddenError],
    [{ os_glance_import: 'x' }, ForbiddenError],
    [{ visibility: 'public' }, ForbiddenError],
  ])('%j is refused', (body, error) => {
    expect(() => imageFields(body, member)).toThrow(error);
  });
  test('tags are a set of strings of at most 255 characters', () => {
    expect(imageFields({ tags: ['b', 'a', 'b', 'x'.repeat(255)] }, member)).toEqual({
      tags: ['b', 'a', 'x'.repeat(255)],
      properties: {},
    });
  });
  test("a tag that is too long gets Glance's schema error", () => {
    expect(() => imageFields({ tags: ['x'.repeat(256)] }, member)).toThrow(
      `Provided object does not match schema 'image': '${'x'.repeat(256)}' is too long`,
    );
    expect(() => checkTag(7)).toThrow(
      "Provided object does not match schema 'image': 7 is not of type 'string'",
    );
    expect(checkTag('x'.repeat(255))).toBe('x'.repeat(255));
  });
  test('more tags than the quota are a 413 with what was attempted', () => {
    const tags = Array.from({ length: IMAGE_TAG_QUOTA + 1 }, (_, n) => `t${n}`);
    expect(() => imageFields({ tags }, member)).toThrow(OverLimitError);
    expect(() => imageFields({ tags }, member)).toThrow(
      'The limit has been exceeded on the number of allowed image tags. Attempted: 129, Maximum: 128',
    );
    expect(imageFields({ tags: tags.slice(1) }, member).tags).toHaveLength(IMAGE_TAG_QUOTA);
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
  test('tags are set whole by add or replace on /tags', () => {
    expect(imagePatch(image, [{ op: 'add', path: '/tags', value: ['a', 'a', 'b'] }], member)).toEqual({
      tags: ['a', 'b'],
      properties: image.properties,
    });
    expect(imagePatch(image, [{ replace: '/tags', value: [] }], member)).toMatchObject({ tags: [] });
  });
  test('a patched tag is checked as a created one', () => {
    const add = (value: unknown) => () => imagePatch(image, [{ op: 'add', path: '/tags', value }], member);
    expect(add(['x'.repeat(256)])).toThrow(InvalidInputError);
    expect(add(Array.from({ length: IMAGE_TAG_QUOTA + 1 }, (_, n) => `${n}`))).toThrow(OverLimitError);
  });
  test.each([
    [{ op: 'remove', path: '/tags' }, ForbiddenError],
    [{ op: 'replace', path: '/tags', value: 'a' }, InvalidInputError],
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
