import type { QuotaSet } from '@basalt/db';
import { InvalidInputError } from '@basalt/errors';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { objectBody, quotaLimit } from './validate';
import type { VolumeRouteDeps } from './volume-routes';

type Params = { target_project_id: string; class_name: string };

/** Cinder's os-quota-sets (a project's limits, its defaults, its usage) and os-quota-class-sets. */
export function registerQuotaRoutes(app: FastifyInstance, deps: VolumeRouteDeps, prefix: string): void {
  const tags = { schema: { tags: ['quotas'] } };
  // who may read or change which project's quotas is the policy's (the path's project is its target)
  const target = (req: FastifyRequest) => (req.params as Params).target_project_id;
  const withUsage = async (project: string) => {
    const [limits, used] = await Promise.all([
      deps.quotas.limits(project, deps.quotaDefaults),
      deps.quotas.usage(project),
    ]);
    const entries = Object.entries(limits).map(([r, limit]) => [
      r,
      { limit, in_use: used[r] ?? 0, reserved: 0 },
    ]);
    return Object.fromEntries(entries);
  };

  app.get(`${prefix}/os-quota-sets/:target_project_id`, tags, async (req) => {
    const project = target(req);
    const usage = ['1', 'true', 'True'].includes(String((req.query as { usage?: string }).usage));
    const values = usage ? await withUsage(project) : await deps.quotas.limits(project, deps.quotaDefaults);
    return { quota_set: { id: project, ...values } };
  });
  app.get(`${prefix}/os-quota-sets/:target_project_id/defaults`, tags, async (req) => {
    const project = target(req);
    return { quota_set: { id: project, ...(await deps.quotas.classLimits('default', deps.quotaDefaults)) } };
  });
  app.put(`${prefix}/os-quota-sets/:target_project_id`, tags, async (req) => {
    const project = (req.params as Params).target_project_id;
    const values = quotaValues(objectBody(req.body, 'quota_set'), await deps.quotas.resources());
    const used = await deps.quotas.usage(project);
    for (const [resource, limit] of Object.entries(values)) {
      const inUse = used[resource] ?? 0;
      if (limit >= 0 && resource !== 'per_volume_gigabytes' && limit < inUse) {
        throw new InvalidInputError(
          `Quota limit ${limit} for ${resource} must be equal or greater than existing resources. Current usage is ${inUse}.`,
        );
      }
    }
    await deps.quotas.set(project, values);
    return { quota_set: await deps.quotas.limits(project, deps.quotaDefaults) };
  });
  app.delete(`${prefix}/os-quota-sets/:target_project_id`, tags, async (req, reply) => {
    await deps.quotas.reset((req.params as Params).target_project_id);
    reply.code(200);
    return '';
  });

  app.get(`${prefix}/os-quota-class-sets/:class_name`, tags, async (req) => {
    const name = (req.params as Params).class_name;
    return { quota_class_set: { id: name, ...(await deps.quotas.classLimits(name, deps.quotaDefaults)) } };
  });
  app.put(`${prefix}/os-quota-class-sets/:class_name`, tags, async (req) => {
    const name = (req.params as Params).class_name;
    if (name.length === 0 || name.length > 255) throw new InvalidInputError('Invalid quota class name.');
    const values = quotaValues(objectBody(req.body, 'quota_class_set'), await deps.quotas.resources());
    await deps.quotas.setClass(name, values);
    return { quota_class_set: await deps.quotas.classLimits(name, deps.quotaDefaults) };
  });
}

/**
 * The limits a quota-set body gives; a key that is none of `resources` (the fixed ones and every
 * volume type's) is refused, as Cinder does.
 */
function quotaValues(body: Record<string, unknown>, resources: readonly string[]): QuotaSet {
  const values: Record<string, number> = {};
  const bad: string[] = [];
  for (const [key, value] of Object.entries(body)) {
    if (resources.includes(key)) {
      values[key] = quotaLimit(key, value);
    } else if (key !== 'tenant_id' && key !== 'id') bad.push(key);
  }
  if (bad.length > 0) throw new InvalidInputError(`Bad key(s) in quota set: ${bad.join(', ')}`);
  return values;
}
