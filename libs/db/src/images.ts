import type { DataSource } from 'typeorm';
import { updateReturning } from './sql';

export type ImageStatus = 'queued' | 'active' | 'deleted';
export type DiskFormat = 'raw' | 'qcow2';

export interface ImageRecord {
  readonly id: string;
  readonly name: string | null;
  readonly status: ImageStatus;
  readonly diskFormat: DiskFormat;
  readonly containerFormat: string;
  readonly size: number | null;
  readonly virtualSize: number | null;
  /** MD5 of the file, as Glance's `checksum`. */
  readonly checksum: string | null;
  /** SHA-512 of the file (`os_hash_algo` sha512). */
  readonly osHashValue: string | null;
  readonly owner: string | null;
  readonly visibility: 'public' | 'private';
  readonly minDisk: number;
  readonly minRam: number;
  /** The file's name under the image store's directory. */
  readonly fileName: string | null;
  readonly createdAt: Date;
  readonly updatedAt: Date;
}

export interface NewImage {
  readonly id: string;
  readonly name: string;
  readonly diskFormat: DiskFormat;
  readonly owner: string | null;
  readonly visibility: 'public' | 'private';
}

/** The images table: registered by operators, read by the image API and the compute API. */
export class ImageRepository {
  constructor(private readonly ds: DataSource) {}

  async create(image: NewImage): Promise<ImageRecord> {
    const [row] = await this.ds.query(
      `INSERT INTO images (id, name, status, disk_format, owner, visibility)
       VALUES ($1, $2, 'queued', $3, $4, $5) RETURNING *`,
      [image.id, image.name, image.diskFormat, image.owner, image.visibility],
    );
    return toImage(row);
  }

  /** `queued` → `active` once its file is in place, with what Glance reports about the file. */
  async activate(
    id: string,
    file: {
      fileName: string;
      size: number;
      virtualSize: number;
      checksum: string;
      osHashValue: string;
    },
  ): Promise<ImageRecord | undefined> {
    const [row] = await updateReturning(
      this.ds,
      `UPDATE images SET status = 'active', file_name = $2, size = $3, virtual_size = $4, checksum = $5,
              os_hash_value = $6, updated_at = now()
        WHERE id = $1 AND NOT deleted AND status = 'queued' RETURNING *`,
      [id, file.fileName, file.size, file.virtualSize, file.checksum, file.osHashValue],
    );
    return row ? toImage(row) : undefined;
  }

  async remove(id: string): Promise<void> {
    await this.ds.query(
      `UPDATE images SET status = 'deleted', deleted = true, deleted_at = now(), updated_at = now()
        WHERE id = $1 AND NOT deleted`,
      [id],
    );
  }

  /** An image the project may use: public, or its own. */
  async findVisible(id: string, projectId: string | null): Promise<ImageRecord | undefined> {
    const rows = await this.ds.query(
      `SELECT * FROM images WHERE id = $1 AND NOT deleted AND (visibility = 'public' OR owner = $2 OR $2 IS NULL)`,
      [id, projectId],
    );
    return rows[0] ? toImage(rows[0]) : undefined;
  }

  /** Visible images, newest first; `name` filters exactly (Glance's `?name=`). */
  async listVisible(projectId: string | null, filter: { name?: string } = {}): Promise<ImageRecord[]> {
    const rows = await this.ds.query(
      `SELECT * FROM images WHERE NOT deleted AND (visibility = 'public' OR owner = $1 OR $1 IS NULL)
          AND ($2::varchar IS NULL OR name = $2) ORDER BY created_at DESC, id DESC`,
      [projectId, filter.name ?? null],
    );
    return rows.map(toImage);
  }
}

function toImage(r: Record<string, unknown>): ImageRecord {
  const num = (v: unknown) => (v === null || v === undefined ? null : Number(v));
  return {
    id: String(r.id),
    name: (r.name as string | null) ?? null,
    status: r.status as ImageStatus,
    diskFormat: r.disk_format as DiskFormat,
    containerFormat: String(r.container_format),
    size: num(r.size),
    virtualSize: num(r.virtual_size),
    checksum: (r.checksum as string | null) ?? null,
    osHashValue: (r.os_hash_value as string | null) ?? null,
    owner: (r.owner as string | null) ?? null,
    visibility: r.visibility as 'public' | 'private',
    minDisk: Number(r.min_disk),
    minRam: Number(r.min_ram),
    fileName: (r.file_name as string | null) ?? null,
    createdAt: new Date(String(r.created_at)),
    updatedAt: new Date(String(r.updated_at)),
  };
}
