import type { ImageRecord } from '@basalt/db';
import { imageView } from './compute-views';
import { CONTAINER_FORMATS, DISK_FORMATS } from './image-body';
import { imageSchema, imagesSchema } from './image-schemas';

const image = {
  id: '8a1f0c3e-5b7d-4e2a-9c6f-1d2e3f4a5b6c',
  name: 'n',
  status: 'active',
  properties: {},
  tags: ['a'],
  createdAt: new Date(0),
  updatedAt: new Date(0),
} as unknown as ImageRecord;

describe("Glance's image schemas", () => {
  test('every attribute of the image view is a base property, as Glance filters its views by them', () => {
    const properties = imageSchema().properties;
    for (const key of Object.keys(imageView(image))) expect(properties).toHaveProperty([key]);
    expect(properties.tags).toEqual({
      type: 'array',
      description: 'List of strings related to the image',
      items: { type: 'string', maxLength: 255 },
    });
  });
  test('the formats are the ones the API takes, and anything else is a string property', () => {
    const schema = imageSchema();
    expect(schema.properties.disk_format.enum).toEqual([null, ...DISK_FORMATS]);
    expect(schema.properties.container_format.enum).toEqual([null, ...CONTAINER_FORMATS]);
    expect(schema.additionalProperties).toEqual({ type: 'string' });
  });
  test('the collection lists images of the image schema', () => {
    const schema = imagesSchema();
    expect(schema.name).toBe('images');
    expect(schema.properties.images.items).toEqual(imageSchema());
    expect(schema.links.map((l) => l.rel)).toEqual(['first', 'next', 'describedby']);
  });
});
