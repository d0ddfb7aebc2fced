import { randomUUID } from 'node:crypto';
import { ConflictError, InvalidStateError, NotFoundError } from '@basalt/errors';
import type { DataSource } from 'typeorm';
import { keysetPage, type Listing, type Page } from './pagination';
import { type Row, updateReturning } from './sql';

export type TypeSortKey = 'created_at' | 'updated_at' | 'id' | 'name' | 'description' | 'is_public';

const LISTING: Listing<TypeSortKey> = {
  table: 'volume_types t',
  sortColumns: {
    created_at: 'created_at',
    updated_at: 'updated_at',
    id: 'id',
    name: 'name',
    description: "coalesce(description, '')",
    is_public: 'is_public',
  },
  notFound: (id) => `Volume type ${id} could not be found.`,
};

/** What a type list may be narrowed by (Cinder's `is_public`, `extra_specs` and, for admins, columns). */
export interface TypeFilter {
  /** true: the public types and, with `withShared`, the private ones shared with the project; false: the private ones. */
  readonly isPublic?: boolean;
  readonly withShared?: boolean;
  readonly name?: string;
  readonly description?: string;
  readonly id?: string;
  /** Types holding all these specs; `RESKEY:availability_zones` matches a zone within the list, as Cinder's LIKE. */
  readonly extraSpecs?: Readonly<Record<string, string>>;
}

export interface VolumeTypeRecord {
  readonly id: string;
  readonly name: string;
  readonly description: string | null;
  readonly isPublic: boolean;
  readonly extraSpecs: Readonly<Record<string, string>>;
  readonly createdAt: Date;
  readonly updatedAt: Date;
}

/** The name of the type volumes get when they ask for none (Cinder's default_volume_type). */
export const DEFAULT_VOLUME_TYPE = '__DEFAULT__';

/**
 * Volume types, their extra specs and, for private types, the projects with access. A type is
 * visible to a project when it is public or the project is on its access list; admins see all.
 */
export class VolumeTypeRepository {
  constructor(private readonly ds: DataSource) {}

  async create(input: Omit<VolumeTypeRecord, 'id' | 'createdAt' | 'updatedAt'>): Promise<VolumeTypeRecord> {
    try {
      const [row] = await this.ds.query(
        `INSERT INTO volume_types (id, name, description, is_public, extra_specs)
         VALUES ($1, $2, $3, $4, $5::jsonb) RETURNING *`,
        [randomUUID(), input.name, input.description, input.isPublic, JSON.stringify(input.extraSpecs)],
      );
      return toType(row);
    } catch (error) {
      if ((error as { code?: string }).code === '23505') {
        throw new ConflictError(`Volume Type ${input.name} already exists.`);
      }
      throw error;
    }
  }

  /** By id or by name; `projectId` undefined: an admin, who sees private types too. */
  async find(idOrName: string, projectId: string | undefined): Promise<VolumeTypeRecord | undefined> {
    const rows = await this.ds.query(
      `SELECT * FROM volume_types t
        WHERE NOT t.deleted AND (t.id::text = $1 OR t.name = $1) AND ${visible('$2')}
        ORDER BY (t.id::text = $1) DESC LIMIT 1`,
      [idOrName, projectId ?? null],
    );
    return rows[0] ? toType(rows[0]) : undefined;
  }

  async get(idOrName: string, projectId: string | undefined): Promise<VolumeTypeRecord> {
    const type = await this.find(idOrName, projectId);
    if (!type) throw new NotFoundError(`Volume type ${idOrName} could not be found.`);
    return type;
  }

  /** One page of the types a project may see (all for an admin, `projectId` undefined). */
  async list(
    projectId: string | undefined,
    filter: TypeFilter,
    page: Page<TypeSortKey>,
  ): Promise<VolumeTypeRecord[]> {
    const shared = `EXISTS (SELECT 1 FROM volume_type_projects a WHERE a.volume_type_id = t.id AND a.project_id = ?)`;
    const scope: Array<readonly [string, unknown?]> = [['NOT t.deleted']];
    if (projectId !== undefined) scope.push([`(t.is_public OR ${shared})`, projectId]);
    const filters: Array<readonly [string, unknown?]> = [];
    if (filter.isPublic === false) filters.push(['NOT t.is_public']);
    else if (filter.isPublic === true && filter.withShared && projectId !== undefined)
      filters.push([`(t.is_public OR ${shared})`, projectId]);
    else if (filter.isPublic === true) filters.push(['t.is_public']);
    if (filter.name !== undefined) filters.push(['t.name = ?', filter.name]);
    if (filter.description !== undefined) filters.push(['t.description = ?', filter.description]);
    if (filter.id !== undefined) filters.push(['t.id::text = ?', filter.id]);
    for (const [key, value] of Object.entries(filter.extraSpecs ?? {})) {
      filters.push(
        key === 'RESKEY:availability_zones'
          ? ["t.extra_specs ->> 'RESKEY:availability_zones' LIKE ?", `%${value}%`]
          : ['t.extra_specs @> ?::jsonb', JSON.stringify({ [key]: value })],
      );
    }
    const rows = await keysetPage(this.ds, LISTING, { scope, filters }, page);
    return rows.map(toType);
  }

  /** Name, description and visibility: what is not given stays. */
  async update(
    id: string,
    changes: { readonly name?: string; readonly description?: string | null; readonly isPublic?: boolean },
  ): Promise<VolumeTypeRecord> {
    try {
      const [row] = await updateReturning(
        this.ds,
        `UPDATE volume_types SET name = coalesce($2, name),
                                 description = CASE WHEN $3 THEN $4 ELSE description END,
                                 is_public = coalesce($5, is_public), updated_at = now()
          WHERE id = $1 AND NOT deleted RETURNING *`,
        [
          id,
          changes.name ?? null,
          changes.description !== undefined,
          changes.description ?? null,
          changes.isPublic ?? null,
        ],
      );
      if (!row) throw new NotFoundError(`Volume type ${id} could not be found.`);
      return toType(row);
    } catch (error) {
      if ((error as { code?: string }).code === '23505') {
        throw new ConflictError(`Volume Type ${changes.name} already exists.`);
      }
      throw error;
    }
  }

  /** Refused while a live volume has the type, or for the default type. */
  async delete(id: string): Promise<void> {
    const [row] = await updateReturning(
      this.ds,
      `UPDATE volume_types t SET deleted = true, deleted_at = now(), updated_at = now()
        WHERE t.id = $1 AND NOT t.deleted AND t.name <> $2
          AND NOT EXISTS (SELECT 1 FROM volumes v WHERE v.volume_type = t.id::text AND NOT v.deleted)
        RETURNING id`,
      [id, DEFAULT_VOLUME_TYPE],
    );
    if (row) return;
    const type = await this.find(id, undefined);
    if (!type) throw new NotFoundError(`Volume type ${id} could not be found.`);
    throw new InvalidStateError(
      type.name === DEFAULT_VOLUME_TYPE
        ? 'The default volume type cannot be deleted.'
        : `Target volume type is still in use. Volume Type ${id} deletion is not allowed with volumes present with the type.`,
    );
  }

  /** Sets specs (all of them, with `replace`) and drops `remove`; answers the specs as they then are. */
  async updateSpecs(
    id: string,
    changes: { readonly set?: Readonly<Record<string, string>>; readonly remove?: string },
  ): Promise<Readonly<Record<string, string>>> {
    const [row] = await updateReturning(
      this.ds,
      `UPDATE volume_types SET extra_specs = (extra_specs || $2::jsonb) - $3::text, updated_at = now()
        WHERE id = $1 AND NOT deleted RETURNING *`,
      [id, JSON.stringify(changes.set ?? {}), changes.remove ?? ''],
    );
    if (!row) throw new NotFoundError(`Volume type ${id} could not be found.`);
    return toType(row).extraSpecs;
  }

  async projects(id: string): Promise<string[]> {
    const rows: Row[] = await this.ds.query(
      'SELECT project_id FROM volume_type_projects WHERE volume_type_id = $1 ORDER BY project_id',
      [id],
    );
    return rows.map((r) => String(r.project_id));
  }

  /** Gives or takes a project's access to a private type; answers whether anything changed. */
  async setAccess(id: string, projectId: string, access: boolean): Promise<boolean> {
    const rows = access
      ? await this.ds.query(
          `INSERT INTO volume_type_projects (volume_type_id, project_id) VALUES ($1, $2)
           ON CONFLICT DO NOTHING RETURNING project_id`,
          [id, projectId],
        )
      : await updateReturning(
          this.ds,
          'DELETE FROM volume_type_projects WHERE volume_type_id = $1 AND project_id = $2 RETURNING project_id',
          [id, projectId],
        );
    return rows.length > 0;
  }
}

/** SQL: the type `t` is one the project in `param` may see (any, when it is NULL: an admin). */
function visible(param: string): string {
  return `(${param}::varchar IS NULL OR t.is_public OR EXISTS (
            SELECT 1 FROM volume_type_projects a WHERE a.volume_type_id = t.id AND a.project_id = ${param}))`;
}

function toType(r: Row): VolumeTypeRecord {
  return {
    id: String(r.id),
    name: String(r.name),
    description: (r.description as string | null) ?? null,
    isPublic: r.is_public === true,
    extraSpecs: (r.extra_specs as Record<string, string> | undefined) ?? {},
    createdAt: new Date(String(r.created_at)),
    updatedAt: new Date(String(r.updated_at)),
  };
}
