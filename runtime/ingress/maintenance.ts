/**
 * Which services are in maintenance, kept in the project's state directory (`maintenance.json`), so
 * every later plan and apply keeps answering with the page until `waffle maintenance off`. The page is
 * stored as it was when maintenance was turned on.
 */
import fs from 'node:fs';
import path from 'node:path';
import { writeFileAtomic } from '../secrets/state.ts';

const FILE = 'maintenance.json';

export interface MaintenanceRecord {
  /** When it was turned on (ISO time). */
  since: string;
  /** The page answered with 503. */
  page: string;
}

/** Service → its maintenance record; empty when none (or unreadable). */
export function readMaintenance(dir: string): Record<string, MaintenanceRecord> {
  try {
    const data = JSON.parse(fs.readFileSync(path.join(dir, FILE), 'utf8')) as Record<string, MaintenanceRecord>;
    const out: Record<string, MaintenanceRecord> = {};
    for (const [k, v] of Object.entries(data ?? {})) if (v && typeof v.page === 'string') out[k] = { since: String(v.since ?? ''), page: v.page };
    return out;
  } catch {
    return {};
  }
}

/** Turns maintenance of `service` on (with `page`) or off. */
export function setMaintenance(dir: string, service: string, page: string | null, now = new Date()): void {
  const all = readMaintenance(dir);
  if (page === null) delete all[service];
  else all[service] = { since: now.toISOString(), page };
  writeFileAtomic(path.join(dir, FILE), JSON.stringify(all, null, 2) + '\n');
}

/** Service → page, as the planner takes it. */
export function maintenancePages(dir: string): Record<string, string> {
  return Object.fromEntries(Object.entries(readMaintenance(dir)).map(([k, v]) => [k, v.page]));
}
