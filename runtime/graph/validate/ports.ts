/**
 * Validation of a service's main `port` and published `ports`, and of host ports across the project:
 * one host address, port and protocol can be bound by one container only.
 */
import type { PortBinding, Problem } from '../../model.ts';
import { hostIpsOverlap, parsePort, show } from '../parse.ts';
import { isPort, type Report } from '../report.ts';

/** `port`: the main container port, or undefined (absent, or reported). */
export function checkPort(value: unknown, report: Report): number | undefined {
  if (value === undefined) return undefined;
  if (isPort(value)) return value;
  report('port', `port ${show(value)} must be a whole number in 1..65535`, 'for example port: 8080');
  return undefined;
}

/** A published port with the entry it came from (`ports[1]`), for conflict messages. */
export interface PlacedBinding {
  where: string;
  binding: PortBinding;
}

/** `ports` → bindings in order (ranges expanded); invalid entries are reported and left out. */
export function checkPorts(value: unknown, report: Report): PlacedBinding[] {
  const out: PlacedBinding[] = [];
  if (value === undefined) return out;
  if (!Array.isArray(value)) {
    report('ports', `ports must be a list, got ${show(value)}`, "for example ports: ['8080:80']");
    return out;
  }
  value.forEach((p, i) => {
    const r = parsePort(p);
    if (!r.ok) return report(`ports[${i}]`, r.message, r.fix);
    for (const binding of r.value) out.push({ where: `ports[${i}]`, binding });
  });
  return out;
}

/** A fixed host port bound by a service, as collected across the project. */
export interface HostBinding {
  service: string;
  file: string;
  where: string;
  b: PortBinding;
}

/**
 * Host ports bound twice, within one service or across services: each later binding that overlaps an
 * earlier one (same protocol and port, overlapping addresses; 0.0.0.0 overlaps every address) is one
 * problem, reported on the later binding.
 */
export function hostPortConflicts(bindings: HostBinding[]): Problem[] {
  const problems: Problem[] = [];
  for (let j = 0; j < bindings.length; j++) {
    const b = bindings[j];
    for (let i = 0; i < j; i++) {
      const a = bindings[i];
      if (a.b.protocol !== b.b.protocol || a.b.host !== b.b.host || !hostIpsOverlap(a.b.hostIp, b.b.hostIp)) continue;
      if (a.service === b.service && a.where === b.where) continue;
      const what = `host port ${b.b.host}/${b.b.protocol} on ${b.b.hostIp}`;
      problems.push({
        file: b.file,
        service: b.service,
        where: b.where,
        message:
          a.service === b.service
            ? `${what} is bound twice by service "${b.service}" (${b.file}): ${a.where} and ${b.where}`
            : `${what} is also bound by service "${a.service}" (${a.file}, ${a.where}); service "${b.service}" (${b.file}) cannot bind it too`,
        fix: 'use a different host port, or bind different host addresses with hostIp (0.0.0.0 overlaps every address)',
      });
      break;
    }
  }
  return problems;
}
