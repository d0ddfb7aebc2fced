import { NotFoundError } from '@basalt/errors';
import type { ImageApi } from '@basalt/images';
import type { ImageSource } from './imagecache/image-source';

/** An image to boot from, as the image API shows it: active, raw or qcow2, with its download. */
export async function imageSourceOf(images: ImageApi, imageId: string): Promise<ImageSource> {
  const meta = await images.show(imageId);
  if (meta.status !== 'active') throw new NotFoundError(`Image ${imageId} is not active`);
  if (meta.disk_format !== 'raw' && meta.disk_format !== 'qcow2') {
    throw new NotFoundError(`Image ${imageId} is ${meta.disk_format}: only raw and qcow2 boot here`);
  }
  return {
    id: imageId,
    diskFormat: meta.disk_format,
    ...(typeof meta.size === 'number' ? { size: meta.size } : {}),
    ...(typeof meta.checksum === 'string' ? { checksum: meta.checksum } : {}),
    download: () => images.download(imageId),
  };
}
