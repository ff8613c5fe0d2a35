/**
 * Rollback pins: `waffle rollback` records, per project and service, the generation it switched to (on
 * Swarm: the previous spec it went back to) and the service's definition hash at that moment (`pins.json` in the project's state directory). The
 * planner reads them like observed state: a pinned service is left alone until its definition changes
 * (a new commit) or `waffle rollback --release` forgets the pin. Written atomically; never holds a value.
 */
import fs from 'node:fs';
import path from 'node:path';
import type { SwarmPin } from './model.ts';
import { stateDir, writeFileAtomic } from './secrets/state.ts';

export interface PinRecord {
  /**
   * The generation the service was rolled back to. On Swarm (where `swarm` is set) there are no
   * generations: it is the service's spec version (`Version.Index`) the rollback was sent against.
   */
  generation: number;
  /**
   * The service's definition hash when it was pinned: plan/container.ts `definitionHash` on the single
   * engine, targets/swarm/rollback.ts `swarmDefinitionHash` on Swarm.
   */
  definitionHash: string;
  /** The generation that served before the rollback, when there was one. */
  from?: number;
  /** The repository's commit when it was pinned. */
  commit: string;
  /** ISO time of the rollback. */
  at: string;
  /** A Swarm service rolled back to its previous spec (Swarm's own rollback): what it runs since. */
  swarm?: SwarmPin;
}

type Env = Record<string, string | undefined>;

const FILE = 'pins.json';

export class PinStore {
  readonly file: string;

  constructor(project: string, env: Env) {
    this.file = path.join(stateDir(project, env), FILE);
  }

  /** Every pin of the project, by service. An absent file is no pin; an unreadable one is an error naming it. */
  read(): Record<string, PinRecord> {
    let text: string;
    try {
      text = fs.readFileSync(this.file, 'utf8');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return {};
      throw e;
    }
    let data: unknown;
    try {
      data = JSON.parse(text);
    } catch {
      throw new Error(`the rollback pins in ${this.file} are not valid JSON. Fix: remove the file (every pin is forgotten) or repair it`);
    }
    const pins = (data as { pins?: unknown })?.pins;
    const out: Record<string, PinRecord> = {};
    if (!pins || typeof pins !== 'object') return out;
    for (const [service, v] of Object.entries(pins as Record<string, PinRecord>)) {
      if (v && Number.isInteger(v.generation) && typeof v.definitionHash === 'string') out[service] = v;
    }
    return out;
  }

  get(service: string): PinRecord | undefined {
    return this.read()[service];
  }

  /** Records (or replaces) the pin of `service`. */
  set(service: string, pin: PinRecord): void {
    const pins = this.read();
    pins[service] = pin;
    this.#write(pins);
  }

  /** Forgets the pins of `services`; returns those that existed. */
  drop(services: string[]): Record<string, PinRecord> {
    const pins = this.read();
    const dropped: Record<string, PinRecord> = {};
    for (const s of services) {
      if (!pins[s]) continue;
      dropped[s] = pins[s]!;
      delete pins[s];
    }
    if (Object.keys(dropped).length > 0) this.#write(pins);
    return dropped;
  }

  /** Forgets every pin (the project was destroyed). */
  clear(): void {
    fs.rmSync(this.file, { force: true });
  }

  #write(pins: Record<string, PinRecord>): void {
    if (Object.keys(pins).length === 0) return this.clear();
    writeFileAtomic(this.file, JSON.stringify({ version: 1, pins }, null, 2) + '\n');
  }
}
