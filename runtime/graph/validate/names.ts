/**
 * Service names and references between services: each name DNS-safe and used once, and every
 * reference (`dependsOn`, `connects`, `url()`) a service value that belongs to the project.
 */
import type { DependencySpec, LoadedService, Problem } from '../../model.ts';
import { serviceNameFromPath } from '../../naming.ts';
import type { Edge } from '../order.ts';
import { isObject, show } from '../parse.ts';
import { unknownKeys, type Report } from '../report.ts';

export const SERVICE_NAME_RE = /^[a-z](?:[a-z0-9-]{0,61}[a-z0-9])?$/;
export const DEPENDENCY_KEYS = ['service', 'condition'];

/**
 * The services by name. The first occurrence of each name wins; every later one is a problem naming
 * both files. A service without `name` is named after its file only (`services/portal/sync.ts` →
 * `sync`), so two files of the same name in different folders collide: that problem says so and
 * offers `naming: 'path'` (names by path below the services folder, `portal-sync`).
 */
export function indexServices(
  services: LoadedService[],
  problems: Problem[],
  scope: { naming?: 'file' | 'path'; globs?: readonly string[]; configFile?: string } = {},
): Map<string, LoadedService> {
  const byName = new Map<string, LoadedService>();
  const named = (s: LoadedService) => isObject(s.data) && s.data.name !== undefined;
  const folder = (f: string) => f.slice(0, f.lastIndexOf('/') + 1);
  for (const svc of services) {
    const first = byName.get(svc.name);
    if (!first) {
      byName.set(svc.name, svc);
      continue;
    }
    const byFileName = (scope.naming ?? 'file') === 'file' && !named(first) && !named(svc) && folder(first.file) !== folder(svc.file);
    if (byFileName) {
      const globs = scope.globs ?? ['services/*.ts'];
      problems.push({
        file: svc.file,
        service: svc.name,
        where: 'name',
        message:
          `service name "${svc.name}" is used twice: in ${first.file} and in ${svc.file} ` +
          '(two files in different folders got the same name: a service without `name` is named after its file only, not its folder)',
        fix:
          `set \`name\` in one of them, or name services by their path: naming: 'path' in ${scope.configFile ?? 'waffle.config.ts'} ` +
          `(${first.file} → ${serviceNameFromPath(first.file, globs)}, ${svc.file} → ${serviceNameFromPath(svc.file, globs)})`,
      });
      continue;
    }
    problems.push({
      file: svc.file,
      service: svc.name,
      where: 'name',
      message: `service name "${svc.name}" is used twice: in ${first.file} and in ${svc.file}`,
      fix: `give one of them another name (set \`name\` in ${svc.file}, or rename the file)`,
    });
  }
  return byName;
}

/** The service's name (from `name` or the file name) is DNS-safe; `name`, when written, is a string. */
export function checkServiceName(service: string, written: unknown, report: Report): void {
  if (typeof service !== 'string' || !SERVICE_NAME_RE.test(service)) {
    report(
      'name',
      `service name ${show(service)} is not DNS-safe`,
      'use lowercase letters, digits and -, starting with a letter and not ending with -, at most 63 characters (set `name` or rename the file)',
    );
  }
  if (written !== undefined && typeof written !== 'string') report('name', `name must be a string, got ${show(written)}`, "for example name: 'api'");
}

/** Turns one reference into the referenced service's name, or undefined (reported). */
export type Resolve = (v: unknown, where: string, example: string) => string | undefined;

export interface ReferenceScope {
  byName: Map<string, LoadedService>;
  /** The config file and its service globs, for the fix of a reference to a service outside the project. */
  configFile: string;
  globs: string[];
}

/**
 * A resolver of references for one service. `example` shows the right form with `X` standing for the
 * service, e.g. `dependsOn: [X]`.
 */
export function referenceResolver(scope: ReferenceScope, report: Report): Resolve {
  const notInProject = (what: string, definedAt: string | undefined) => ({
    message: `${what} is not part of the project${definedAt ? ` (defined at ${definedAt})` : ''}`,
    fix:
      `add its file to the \`services\` globs in ${scope.configFile} (now ${scope.globs.map((g) => `'${g}'`).join(', ')}), ` +
      'or export the service as its file\'s default export',
  });
  return (v, where, example) => {
    if (typeof v === 'string') {
      report(where, `${show(v)} is a string; services are referenced as values`, `import the service (import ${v.replace(/[^A-Za-z0-9_$]/g, '_')} from './${v}') and write ${example.replace('X', v.replace(/[^A-Za-z0-9_$]/g, '_'))}`);
      return undefined;
    }
    if (!isObject(v) || v.$ref !== 'service') {
      report(where, `expected a service imported from its file, got ${show(v)}`, `import the service and write ${example.replace('X', 'db')}`);
      return undefined;
    }
    const target = v.service;
    const definedAt = typeof v.definedAt === 'string' ? v.definedAt : undefined;
    if (typeof target !== 'string') {
      const p = notInProject('the referenced service', definedAt);
      report(where, p.message, p.fix);
      return undefined;
    }
    if (!scope.byName.has(target)) {
      const p = notInProject(`the referenced service "${target}"`, definedAt);
      report(where, p.message, p.fix);
      return undefined;
    }
    return target;
  };
}

export interface DependsOnContext {
  service: string;
  byName: Map<string, LoadedService>;
  resolve: Resolve;
}

/**
 * `dependsOn` → dependencies with their start condition, the edges for ordering and cycle detection,
 * and the services it links to (a dependency implies a link).
 */
export function checkDependsOn(value: unknown, ctx: DependsOnContext, report: Report): { dependsOn: DependencySpec[]; edges: Edge[]; links: string[] } {
  const dependsOn: DependencySpec[] = [];
  const edges: Edge[] = [];
  const links: string[] = [];
  if (value === undefined) return { dependsOn, edges, links };
  if (!Array.isArray(value)) {
    report('dependsOn', `dependsOn must be a list, got ${show(value)}`, 'for example dependsOn: [db]');
    return { dependsOn, edges, links };
  }
  value.forEach((entry, i) => {
    const w = `dependsOn[${i}]`;
    let ref: unknown = entry;
    let condition: 'started' | 'healthy' = 'started';
    if (isObject(entry) && entry.$ref === undefined) {
      unknownKeys(entry, DEPENDENCY_KEYS, `${w}.`, report, 'a dependency');
      ref = entry.service;
      if (entry.condition !== undefined) {
        if (entry.condition !== 'started' && entry.condition !== 'healthy') {
          report(`${w}.condition`, `condition ${show(entry.condition)} must be 'started' or 'healthy'`, "condition: 'healthy'");
        } else condition = entry.condition;
      }
      if (ref === undefined) return report(`${w}.service`, 'a dependency needs `service`', "write { service: db, condition: 'healthy' }");
    }
    const target = ctx.resolve(ref, w, 'dependsOn: [X]');
    if (target === undefined) return;
    if (target === ctx.service) return report(w, `service "${ctx.service}" depends on itself`, 'remove this entry');
    if (dependsOn.some((x) => x.service === target)) return report(w, `"${target}" is listed twice in dependsOn`, 'keep one entry');
    if (condition === 'healthy') {
      const t = ctx.byName.get(target)!;
      if (!isObject(t.data) || t.data.healthcheck === undefined) {
        report(`${w}.condition`, `condition 'healthy' needs a healthcheck on "${target}" (${t.file}), which has none`, `add a healthcheck to ${t.file}, or use condition 'started'`);
      }
    }
    dependsOn.push({ service: target, condition });
    edges.push({ to: target, where: w });
    links.push(target);
  });
  return { dependsOn, edges, links };
}

/** `connects` → the services this one is linked with. */
export function checkConnects(value: unknown, ctx: { service: string; resolve: Resolve }, report: Report): string[] {
  const links: string[] = [];
  if (value === undefined) return links;
  if (!Array.isArray(value)) {
    report('connects', `connects must be a list, got ${show(value)}`, 'for example connects: [cache]');
    return links;
  }
  value.forEach((entry, i) => {
    const target = ctx.resolve(entry, `connects[${i}]`, 'connects: [X]');
    if (target === undefined) return;
    if (target === ctx.service) return report(`connects[${i}]`, `service "${ctx.service}" connects to itself`, 'remove this entry');
    links.push(target);
  });
  return links;
}
