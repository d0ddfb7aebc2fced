import type { DataSource } from 'typeorm';
import { IMAGE_STATES, type ImageStatus } from './image-states';
import { compareAndSwap, type StatefulTable, updateReturning } from './sql';
import type { Move } from './states';

export type DiskFormat = 'raw' | 'qcow2';
export type ImageVisibility = 'public' | 'private' | 'shared' | 'community';

export interface ImageRecord {
  readonly id: string;
  readonly name: string | null;
  readonly status: ImageStatus;
  readonly diskFormat: DiskFormat | null;
  readonly containerFormat: string | null;
  readonly size: number | null;
  readonly virtualSize: number | null;
  /** MD5 of the file, as Glance's `checksum`. */
  readonly checksum: string | null;
  /** SHA-512 of the file (`os_hash_algo` sha512). */
  readonly osHashValue: string | null;
  readonly owner: string | null;
  readonly visibility: ImageVisibility;
  readonly protected: boolean;
  readonly minDisk: number;
  readonly minRam: number;
  /** Glance's additional properties: any other string-valued key the owner sets. */
  readonly properties: Readonly<Record<string, string>>;
  /** Glance's tags: a set, in the order first given. */
  readonly tags: readonly string[];
  /** The file's name under the image store's directory. */
  readonly fileName: string | null;
  readonly createdAt: Date;
  readonly updatedAt: Date;
}

/** What an image's owner may set, at create and by PATCH. */
export interface ImageFields {
  readonly name?: string | null;
  readonly diskFormat?: DiskFormat | null;
  readonly containerFormat?: string | null;
  readonly visibility?: ImageVisibility;
  readonly protected?: boolean;
  readonly minDisk?: number;
  readonly minRam?: number;
  readonly properties?: Readonly<Record<string, string>>;
  readonly tags?: readonly string[];
}

export interface NewImage extends ImageFields {
  readonly id: string;
  readonly owner: string | null;
}

/** What the image store says of an uploaded file. */
export interface ImageFile {
  readonly fileName: string;
  readonly size: number;
  readonly virtualSize: number;
  readonly checksum: string;
  readonly osHashValue: string;
}

interface ImageChanges {
  readonly fileName?: string;
  readonly size?: number;
  readonly virtualSize?: number;
  readonly checksum?: string;
  readonly osHashValue?: string;
}

const IMAGES: StatefulTable<ImageChanges> = {
  table: 'images',
  stateColumn: 'status',
  deletedState: 'deleted',
  columns: {
    fileName: 'file_name',
    size: 'size',
    virtualSize: 'virtual_size',
    checksum: 'checksum',
    osHashValue: 'os_hash_value',
  },
};

const FIELD_COLUMNS: { readonly [K in keyof ImageFields]-?: string } = {
  name: 'name',
  diskFormat: 'disk_format',
  containerFormat: 'container_format',
  visibility: 'visibility',
  protected: 'protected',
  minDisk: 'min_disk',
  minRam: 'min_ram',
  properties: 'properties',
  tags: 'tags',
};

/** Who looks at images: a project sees public and community images and its own; an admin all. */
export interface ImageViewer {
  readonly projectId: string | null;
  readonly isAdmin: boolean;
}

/** The images table: written by the image API (and `basalt image create`), read by the compute API. */
export class ImageRepository {
  constructor(private readonly ds: DataSource) {}

  async create(image: NewImage): Promise<ImageRecord> {
    const [row] = await this.ds.query(
      `INSERT INTO images (id, name, status, disk_format, container_format, owner, visibility, protected,
                           min_disk, min_ram, properties, tags)
       VALUES ($1, $2, 'queued', $3, $4, $5, $6, $7, $8, $9, $10, $11) RETURNING *`,
      [
        image.id,
        image.name ?? null,
        image.diskFormat ?? null,
        image.containerFormat ?? null,
        image.owner,
        image.visibility ?? 'shared',
        image.protected ?? false,
        image.minDisk ?? 0,
        image.minRam ?? 0,
        JSON.stringify(image.properties ?? {}),
        image.tags ?? [],
      ],
    );
    return toImage(row);
  }

  /** Moves the image along `move` (one of IMAGE_STATES'), with the stored file's facts if given. */
  async transition(
    id: string,
    move: Move<ImageStatus>,
    file: ImageChanges = {},
  ): Promise<ImageRecord | undefined> {
    const row = await compareAndSwap(this.ds, IMAGES, id, move, file);
    return row ? toImage(row) : undefined;
  }

  /** Sets what the owner changed; a deleted image is not changed. */
  async update(id: string, fields: ImageFields): Promise<ImageRecord | undefined> {
    const sets: string[] = [];
    const values: unknown[] = [id];
    for (const [key, value] of Object.entries(fields)) {
      if (value === undefined) continue;
      values.push(key === 'properties' ? JSON.stringify(value) : value);
      sets.push(`${FIELD_COLUMNS[key as keyof ImageFields]} = $${values.length}`);
    }
    const [row] = await updateReturning(
      this.ds,
      `UPDATE images SET ${[...sets, 'updated_at = now()'].join(', ')} WHERE id = $1 AND NOT deleted RETURNING *`,
      values,
    );
    return row ? toImage(row) : undefined;
  }

  /**
   * Adds a tag unless the image has it; a tag that would make more than `quota` is not added
   * (`quotaReached`). Undefined for an image deleted meanwhile.
   */
  async addTag(
    id: string,
    tag: string,
    quota: number,
  ): Promise<{ image: ImageRecord; quotaReached: false } | { quotaReached: true } | undefined> {
    const [row] = await updateReturning(
      this.ds,
      `UPDATE images SET tags = CASE WHEN $2 = ANY(tags) THEN tags ELSE array_append(tags, $2) END,
              updated_at = now()
        WHERE id = $1 AND NOT deleted AND ($2 = ANY(tags) OR cardinality(tags) < $3) RETURNING *`,
      [id, tag, quota],
    );
    if (row) return { image: toImage(row), quotaReached: false };
    const [still] = await this.ds.query('SELECT 1 FROM images WHERE id = $1 AND NOT deleted', [id]);
    return still ? { quotaReached: true } : undefined;
  }

  /** Removes a tag: undefined when the image (no longer) has it. */
  async removeTag(id: string, tag: string): Promise<ImageRecord | undefined> {
    const [row] = await updateReturning(
      this.ds,
      `UPDATE images SET tags = array_remove(tags, $2), updated_at = now()
        WHERE id = $1 AND NOT deleted AND $2 = ANY(tags) RETURNING *`,
      [id, tag],
    );
    return row ? toImage(row) : undefined;
  }

  /** Deletes an image the way `basalt image create` undoes one it could not store. */
  async remove(id: string): Promise<ImageRecord | undefined> {
    return this.transition(id, IMAGE_STATES.moves.remove);
  }

  /** An image the viewer may use: public or community, its own, or any for an admin. */
  async findVisible(id: string, viewer: ImageViewer): Promise<ImageRecord | undefined> {
    const rows = await this.ds.query(
      `SELECT * FROM images WHERE id = $1 AND NOT deleted
          AND ($3 OR visibility IN ('public', 'community') OR owner = $2)`,
      [id, viewer.projectId, viewer.isAdmin],
    );
    return rows[0] ? toImage(rows[0]) : undefined;
  }

  /**
   * Visible images, newest first, as Glance lists them: public ones and the project's own
   * (community images only by id); `name`, `status` and `visibility` filter exactly, and an
   * image has all of `tags`.
   */
  async listVisible(
    viewer: ImageViewer,
    filter: { name?: string; status?: string; visibility?: string; tags?: readonly string[] } = {},
  ): Promise<ImageRecord[]> {
    const rows = await this.ds.query(
      `SELECT * FROM images WHERE NOT deleted AND ($2 OR visibility = 'public' OR owner = $1)
          AND ($3::varchar IS NULL OR name = $3) AND ($4::varchar IS NULL OR status = $4)
          AND ($5::varchar IS NULL OR visibility = $5) AND tags @> $6::text[]
        ORDER BY created_at DESC, id DESC`,
      [
        viewer.projectId,
        viewer.isAdmin,
        filter.name ?? null,
        filter.status ?? null,
        filter.visibility ?? null,
        filter.tags ?? [],
      ],
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
    diskFormat: (r.disk_format as DiskFormat | null) ?? null,
    containerFormat: (r.container_format as string | null) ?? null,
    size: num(r.size),
    virtualSize: num(r.virtual_size),
    checksum: (r.checksum as string | null) ?? null,
    osHashValue: (r.os_hash_value as string | null) ?? null,
    owner: (r.owner as string | null) ?? null,
    visibility: r.visibility as ImageVisibility,
    protected: r.protected === true,
    minDisk: Number(r.min_disk),
    minRam: Number(r.min_ram),
    properties: (r.properties as Record<string, string> | undefined) ?? {},
    tags: (r.tags as string[] | undefined) ?? [],
    fileName: (r.file_name as string | null) ?? null,
    createdAt: new Date(String(r.created_at)),
    updatedAt: new Date(String(r.updated_at)),
  };
}
